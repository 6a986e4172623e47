package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	testVersion  = "v9.8.7-imagetest"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
	testCreated  = "2026-11-30T08:15:00Z"
)

var platforms = []string{"linux/amd64", "linux/arm64"}

var (
	// builtBinaries is plana built for each platform by TestMain, stamped
	// with testVersion as the Makefile stamps a release.
	builtBinaries = map[string]string{}
	// sharedDir lasts as long as the test binary.
	sharedDir string
	// registryHost is a registry on loopback (go-containerregistry's own,
	// in memory) for the test binary's life.
	registryHost string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plana-image-test-")
	if err != nil {
		log.Fatal(err)
	}
	sharedDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		registryHost = strings.TrimPrefix(srv.URL, "http://")
		for _, p := range platforms {
			goos, goarch, _ := strings.Cut(p, "/")
			out := filepath.Join(dir, goos+"_"+goarch, "plana")
			cmd := exec.Command("go", "build", "-trimpath", "-o", out,
				"-ldflags", "-s -w -X github.com/plana-cli/plana/internal/build.Version="+testVersion+
					" -X github.com/plana-cli/plana/internal/build.Commit="+testRevision[:7]+
					" -X github.com/plana-cli/plana/internal/build.Date="+testCreated,
				"./cmd/plana")
			cmd.Dir = filepath.Join("..", "..")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
			if b, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building plana for %s: %v\n%s", p, err, b)
				return 1
			}
			builtBinaries[p] = out
		}
		return m.Run()
	}()
	os.Exit(code)
}

// buildArchive runs the command as `make image` does and returns the
// archive's path and what it printed.
func buildArchive(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plana-image.tar")
	args := []string{"--version", testVersion, "--revision", testRevision, "--created", testCreated, "--out", out}
	for _, p := range platforms {
		args = append(args, "--binary", p+"="+builtBinaries[p])
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(args, extra...), &stdout, &stderr); code != 0 {
		t.Fatalf("plana-image exited %d: %s", code, stderr.String())
	}
	return out, stdout.String()
}

// shared is one build, pushed as a release pushes it, to registryHost
// under two tags. An image takes seconds to compress (more under -race),
// so TestArchive and TestPush share it. No credentials are needed: the
// registry takes anonymous pushes, and nobody has any for its port.
var shared struct {
	once                   sync.Once
	archive, printed, repo string
}

func sharedArchive(t *testing.T) (archive, printed, repo string) {
	t.Helper()
	shared.once.Do(func() {
		repo := registryHost + "/plana-cli/plana"
		archive, printed := buildArchive(t, "--push", repo+":9.8.7", "--push", repo+":latest")
		// t.TempDir ends with the first test: keep the archive.
		keep := filepath.Join(sharedDir, "plana-image.tar")
		if err := os.Rename(archive, keep); err != nil {
			t.Fatal(err)
		}
		shared.archive, shared.printed, shared.repo = keep, printed, repo
	})
	if shared.archive == "" {
		t.Fatal("the shared build failed (see the first test that ran it)")
	}
	return shared.archive, shared.printed, shared.repo
}

// untar unpacks the archive into a directory, as `crane push DIR` and
// other OCI layout readers need it.
func untar(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// imageFile is one file of an image's flattened file system.
type imageFile struct {
	hdr  *tar.Header
	body []byte
}

// files flattens img's layers, as a container runtime does.
func files(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	fs := map[string]imageFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fs["/"+strings.TrimSuffix(h.Name, "/")] = imageFile{h, b}
	}
}

// TestArchive builds the image from real plana binaries and reads it back
// as an OCI layout: two platforms, each a non-root user, plana as its
// entrypoint, the binary it was given (executable, for its architecture),
// a CA bundle Go accepts, the OCI labels; and the linux/amd64 binary,
// taken out of the image and run, says the version it was stamped with.
func TestArchive(t *testing.T) {
	archive, printed, _ := sharedArchive(t)
	dir := untar(t, archive)
	for _, f := range []string{"oci-layout", "index.json", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the archive has no %s: %v", f, err)
		}
	}

	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 || om.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json holds %+v, want one image index", om.Manifests)
	}
	if got, want := om.Manifests[0].Annotations["io.containerd.image.name"], "docker.io/library/plana:"+testVersion; got != want {
		t.Errorf("index.json names the image %q, want %q (the default name, as containerd spells it)", got, want)
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(printed, om.Manifests[0].Digest.String()) {
		t.Errorf("plana-image printed %q, without the index digest %s", printed, om.Manifests[0].Digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		got = append(got, d.Platform.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, platforms) {
		t.Fatalf("the index's platforms are %v, want %v", got, platforms)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/plana-cli/plana",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testRevision,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created":  testCreated,
	}
	for k, v := range wantLabels {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}

	for _, d := range im.Manifests {
		plat := d.Platform.String()
		t.Run(plat, func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS+"/"+cf.Architecture != plat {
				t.Errorf("config says %s/%s under the %s entry", cf.OS, cf.Architecture, plat)
			}
			if want, _ := time.Parse(time.RFC3339, testCreated); !cf.Created.Equal(want) {
				t.Errorf("config created %v, want the commit's time %v", cf.Created.Time, want)
			}
			for k, v := range wantLabels {
				if cf.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
				}
			}
			uidStr, gidStr, _ := strings.Cut(cf.Config.User, ":")
			user, uerr := strconv.Atoi(uidStr)
			group, gerr := strconv.Atoi(gidStr)
			if uerr != nil || gerr != nil || user == 0 || group == 0 {
				t.Errorf("User is %q, want a numeric non-root UID:GID (a pod's runAsNonRoot checks a number)", cf.Config.User)
			}
			if len(cf.Config.Entrypoint) != 1 || path.Base(cf.Config.Entrypoint[0]) != "plana" {
				t.Errorf("Entrypoint is %q, want plana", cf.Config.Entrypoint)
			}
			envs := map[string]string{}
			for _, e := range cf.Config.Env {
				k, v, _ := strings.Cut(e, "=")
				envs[k] = v
			}

			fs := files(t, img)
			bin, ok := fs[cf.Config.Entrypoint[0]]
			if !ok {
				t.Fatalf("no %s in the image's layers", cf.Config.Entrypoint[0])
			}
			if bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o111 != 0o111 {
				t.Errorf("%s is type %c mode %o, want an executable file", bin.hdr.Name, bin.hdr.Typeflag, bin.hdr.Mode)
			}
			want, err := os.ReadFile(builtBinaries[plat])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bin.body, want) {
				t.Errorf("%s in the image is not the plana built for %s", bin.hdr.Name, plat)
			}
			ef, err := elf.NewFile(bytes.NewReader(bin.body))
			if err != nil {
				t.Fatalf("%s is not an ELF binary: %v", bin.hdr.Name, err)
			}
			wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[cf.Architecture]
			if ef.Machine != wantMachine {
				t.Errorf("%s is built for %v, want %v", bin.hdr.Name, ef.Machine, wantMachine)
			}
			if slices.ContainsFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
				t.Errorf("%s asks for a dynamic loader; an empty base has none (build with CGO_ENABLED=0)", bin.hdr.Name)
			}

			ca, ok := fs["/etc/ssl/certs/ca-certificates.crt"]
			if !ok {
				t.Fatal("no /etc/ssl/certs/ca-certificates.crt in the image")
			}
			if n := countCerts(t, ca.body); n < 100 {
				t.Errorf("the CA bundle holds %d certificates, want the NSS roots (over 100)", n)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(ca.body) {
				t.Error("Go's crypto/x509 reads no certificate from the CA bundle")
			}

			passwd := string(fs["/etc/passwd"].body)
			line := fmt.Sprintf(":x:%d:%d:", user, group)
			if !strings.Contains(passwd, line) {
				t.Errorf("/etc/passwd has no entry for %d:%d (os/user looks the user up there):\n%s", user, group, passwd)
			}
			home, ok := fs[envs["HOME"]]
			if envs["HOME"] == "" || !ok || home.hdr.Typeflag != tar.TypeDir || home.hdr.Uid != user {
				t.Errorf("HOME=%q: want a directory of the image owned by %d", envs["HOME"], user)
			}
			state := envs["XDG_STATE_HOME"]
			if !strings.HasPrefix(state, "/tmp/") {
				t.Errorf("XDG_STATE_HOME=%q, want it under /tmp, the pod's one writable place", state)
			}
			if tmp := fs["/tmp"]; tmp.hdr == nil || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode&0o1777 != 0o1777 {
				t.Error("no /tmp of mode 1777 in the image: plana could not create its state there")
			}

			if plat == runtime.GOOS+"/"+runtime.GOARCH {
				exe := filepath.Join(t.TempDir(), "plana")
				if err := os.WriteFile(exe, bin.body, 0o755); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(exe, "version")
				cmd.Env = []string{"HOME=" + t.TempDir()}
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("plana version from the image: %v\n%s", err, out)
				}
				if want := "plana " + testVersion + " (" + testRevision[:7] + ", " + testCreated + ")"; !strings.HasPrefix(string(out), want) {
					t.Errorf("plana version from the image printed %q, want %q...", out, want)
				}
			}
		})
	}

	// What reads manifest.json (Docker's classic store, `crane push FILE`)
	// gets the linux/amd64 image, with the same config and layers.
	docker, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatalf("reading the archive as a docker-save tarball: %v", err)
	}
	amd64, err := idx.Image(im.Manifests[slices.IndexFunc(im.Manifests, func(d v1.Descriptor) bool {
		return d.Platform.String() == "linux/amd64"
	})].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layerIDs(t, docker), layerIDs(t, amd64); !slices.Equal(got, want) {
		t.Errorf("manifest.json's image is config and layers %v, want linux/amd64's %v", got, want)
	}
	var mj []struct{ RepoTags []string }
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mj); err != nil || len(mj) != 1 || !slices.Equal(mj[0].RepoTags, []string{"plana:" + testVersion}) {
		t.Errorf("manifest.json is %s, want one image tagged plana:%s", b, testVersion)
	}
}

func countCerts(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Errorf("certificate %d of the CA bundle: %v", n, err)
		}
		n++
	}
}

// layerIDs is an image's config digest followed by its layers' digests.
func layerIDs(t *testing.T, img v1.Image) []string {
	t.Helper()
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{c.String()}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.String())
	}
	return ids
}

// TestArchiveIsReproducible builds the archive again from the same inputs:
// the same bytes, so the same digest. A layer dated another second has
// another digest, so the comparison is not blind.
func TestArchiveIsReproducible(t *testing.T) {
	first, _, _ := sharedArchive(t)
	second, _ := buildArchive(t)
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds from the same binaries, version, revision and time differ")
	}

	created, _ := time.Parse(time.RFC3339, testCreated)
	digest := func(at time.Time) v1.Hash {
		l, err := layer(at, baseFiles()...)
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if digest(created) == digest(created.Add(time.Second)) {
		t.Error("a layer's digest does not depend on its files' time")
	}
}

// TestPush reads the shared build back from the registry it was pushed to,
// under both tags: the archive's index, and each platform's image in it.
func TestPush(t *testing.T) {
	archive, printed, repo := sharedArchive(t)
	outer, err := layout.ImageIndexFromPath(untar(t, archive))
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := om.Manifests[0].Digest
	for _, tag := range []string{"9.8.7", "latest"} {
		ref, err := name.ParseReference(repo + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("reading %s back: %v", ref, err)
		}
		got, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s is %s, want the archive's index %s", ref, got, want)
		}
		img, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
		if err != nil {
			t.Fatalf("pulling linux/arm64 from %s: %v", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "arm64" || cf.Config.Labels["org.opencontainers.image.version"] != testVersion {
			t.Errorf("pulled linux/arm64 from %s, got %s/%s version %q", ref, cf.OS, cf.Architecture, cf.Config.Labels["org.opencontainers.image.version"])
		}
	}
	if !strings.Contains(printed, "pushed "+repo+"@"+want.String()) {
		t.Errorf("plana-image printed %q, without the pushed digest", printed)
	}
}

// TestUsage: what is missing or malformed is refused with exit 2, before
// anything is written, saying what to give.
func TestUsage(t *testing.T) {
	bin := "linux/amd64=" + builtBinaries["linux/amd64"]
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no created", []string{"--binary", bin, "--version", "v1", "--revision", "abc"}, "--created are required"},
		{"created not RFC 3339", []string{"--binary", bin, "--version", "v1", "--revision", "abc", "--created", "2026-11-30"}, "want RFC 3339"},
		{"binary without platform", []string{"--binary", "plana", "--version", "v1", "--revision", "abc", "--created", testCreated}, "PLATFORM=PATH"},
		{"platform twice", []string{"--binary", bin, "--binary", bin, "--version", "v1", "--revision", "abc", "--created", testCreated}, "given twice"},
		{"argument", []string{"--version", "v1", "--revision", "abc", "--created", testCreated, "extra"}, "unexpected argument"},
		{"no binary", []string{"--version", "v1", "--revision", "abc", "--created", testCreated}, "give --binary PLATFORM=PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "image.tar")
			var stderr bytes.Buffer
			code := run(context.Background(), append(tc.args, "--out", out), io.Discard, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an archive was written")
			}
		})
	}
}

// TestWrongBinary: a binary that could not run in its image is refused,
// and no archive is written.
func TestWrongBinary(t *testing.T) {
	script := filepath.Join(t.TempDir(), "plana")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho plana\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, binary, want string
	}{
		{"swapped", "linux/arm64=" + builtBinaries["linux/amd64"], "built for EM_X86_64, not arm64"},
		{"not ELF", "linux/amd64=" + script, "not a Linux executable"},
		{"other OS", "windows/amd64=" + builtBinaries["linux/amd64"], "want linux/ARCH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "image.tar")
			var stderr bytes.Buffer
			code := run(context.Background(), []string{"--binary", tc.binary, "--version", "v1", "--revision", "abc", "--created", testCreated, "--out", out}, io.Discard, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an archive was written")
			}
		})
	}
}

// TestPlanaDoesNotImportTheImageTool keeps the image build out of the
// binary it packages: plana links no container registry client.
func TestPlanaDoesNotImportTheImageTool(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/plana")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/google/go-containerregistry", "golang.org/x/crypto/x509roots", "github.com/docker/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("plana's binary imports %s: the image tool's dependencies leaked into it", pkg)
			}
		}
	}
}
