// Command plana-image builds plana's container image with no Docker daemon:
// an OCI image index for each platform it is given a binary for, on an
// empty base, with CA certificates and an unprivileged user. It writes the
// index as an archive that `docker load`, containerd and crane read, and
// with --push also pushes it to a registry.
//
//	make image    # builds plana for linux/amd64 and linux/arm64, then this
//	go run ./cmd/plana-image --binary linux/amd64=bin/linux_amd64/plana \
//	    --version v1.2.3 --revision $(git rev-parse HEAD) \
//	    --created 2026-12-01T10:00:00Z --out dist/plana-image.tar
//
// It is a build tool, like cmd/gen-docs: no release archive ships it, and
// plana's binary imports none of it (a test holds that).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// binaries is the repeatable --binary PLATFORM=PATH flag.
type binaries map[string]string

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binaries) Set(v string) error {
	plat, path, ok := strings.Cut(v, "=")
	if !ok || plat == "" || path == "" {
		return fmt.Errorf("want PLATFORM=PATH, such as linux/amd64=bin/linux_amd64/plana")
	}
	if _, dup := b[plat]; dup {
		return fmt.Errorf("%s given twice", plat)
	}
	b[plat] = path
	return nil
}

// refs is the repeatable --push REF flag.
type refs []string

func (r *refs) String() string     { return strings.Join(*r, ",") }
func (r *refs) Set(v string) error { *r = append(*r, v); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plana-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := Build{Binaries: binaries{}}
	var created, out, ref string
	var push refs
	fs.Var(binaries(b.Binaries), "binary", "`PLATFORM=PATH`: plana built for PLATFORM (linux/amd64, linux/arm64); repeat for each platform")
	fs.StringVar(&b.Version, "version", "", "the version the binaries were stamped with (label org.opencontainers.image.version)")
	fs.StringVar(&b.Revision, "revision", "", "the full commit they were built from (label org.opencontainers.image.revision)")
	fs.StringVar(&created, "created", "", "the commit's time, RFC 3339: every timestamp in the image")
	fs.StringVar(&out, "out", filepath.Join("dist", "plana-image.tar"), "write the archive here")
	fs.StringVar(&ref, "name", "", "the name the archive gives the image when loaded (default plana:VERSION)")
	fs.Var(&push, "push", "`REF`: also push the index there, with the credentials docker or crane logged in with; repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "plana-image: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q: every input is a flag (see -h)", fs.Arg(0))
	}
	if len(b.Binaries) == 0 {
		return usage("no binary: give --binary PLATFORM=PATH for each platform, such as linux/amd64=bin/linux_amd64/plana")
	}
	if b.Version == "" || b.Revision == "" || created == "" {
		return usage("--version, --revision and --created are required: the image is stamped with them")
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return usage("--created %q: want RFC 3339, such as 2026-12-01T10:00:00Z (the commit's time: git log -1 --format=%%cI)", created)
	}
	b.Created = t
	if ref == "" {
		// A tag takes letters, digits, '_', '.' and '-'; a snapshot's
		// version may hold a '+'.
		ref = "plana:" + strings.ReplaceAll(b.Version, "+", "-")
	}
	if err := b.write(ctx, out, ref, push, stdout); err != nil {
		fmt.Fprintf(stderr, "plana-image: %v\n", err)
		return 1
	}
	return 0
}

func (b Build) write(ctx context.Context, out, ref string, push []string, stdout io.Writer) error {
	idx, err := b.Index()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, idx, ref, b.Created); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// A run cut short leaves the last archive whole, never half of one.
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s (%d bytes), index %s\n", out, ref, buf.Len(), digest)
	for _, p := range push {
		dst, err := name.ParseReference(p)
		if err != nil {
			return fmt.Errorf("--push %q: %w", p, err)
		}
		if err := remote.WriteIndex(dst, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing to %s: %w", p, err)
		}
		fmt.Fprintf(stdout, "pushed %s\n", dst.Context().Digest(digest.String()))
	}
	return nil
}
