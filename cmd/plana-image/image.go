package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed layout. plana runs as an unprivileged user with no
// shell and no package manager around it: the binary, the CA bundle, and
// the passwd and group entries that name its user.
const (
	uid         = 65532 // the "nonroot" id of distroless and Chainguard images, so policies that expect it match
	userName    = "plana"
	homeDir     = "/home/plana"
	binaryPath  = "/usr/local/bin/plana"
	caPath      = "/etc/ssl/certs/ca-certificates.crt" // the first place Go's crypto/x509 looks on Linux
	stateHome   = "/tmp/plana/state"
	sourceURL   = "https://github.com/plana-cli/plana"
	licence     = "Apache-2.0"
	description = "Rotate BOS API keys without downtime."
)

// env is the image's environment. A CronJob's run keeps nothing (the
// server and the deploy target hold the rotation), so what plana writes,
// rotation journals, the rotation log and their locks, goes under /tmp:
// the one directory of the image any user may write to, and where a pod
// with a read-only root file system mounts an emptyDir. Settings are still
// read from $HOME/.config/plana, where a ConfigMap can be mounted.
var env = []string{
	"PATH=/usr/local/bin",
	"HOME=" + homeDir,
	"XDG_STATE_HOME=" + stateHome,
}

// Build says what goes into the image and how it is stamped.
type Build struct {
	// Binaries maps a platform ("linux/amd64") to a plana built for it.
	Binaries map[string]string
	Version  string
	// Revision is the full commit the binaries were built from.
	Revision string
	// Created is the commit's time: every timestamp in the image is this
	// one, so one commit builds one digest.
	Created time.Time
}

// Index builds the multi-platform image: one image per binary, each the
// shared base layer and a layer holding its binary, on an empty base.
func (b Build) Index() (v1.ImageIndex, error) {
	if len(b.Binaries) == 0 {
		return nil, fmt.Errorf("no binary: give at least one --binary PLATFORM=PATH")
	}
	base, err := layer(b.Created, baseFiles()...)
	if err != nil {
		return nil, err
	}
	platforms := make([]string, 0, len(b.Binaries))
	for p := range b.Binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		if plat.OS != "linux" || plat.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH (the image is Linux only)", p)
		}
		img, err := b.image(*plat, base, b.Binaries[p])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: plat, Annotations: b.annotations()},
		})
	}
	return mutate.Annotations(idx, b.annotations()).(v1.ImageIndex), nil
}

func (b Build) image(plat v1.Platform, base v1.Layer, binary string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	if err := checkBinary(bin, plat); err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	top, err := layer(b.Created,
		dir("/usr", 0, 0o755), dir("/usr/local", 0, 0o755), dir("/usr/local/bin", 0, 0o755),
		file(binaryPath, 0, 0o755, bin))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: b.Created}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "plana-image: passwd, group, CA certificates, home and /tmp", Comment: caSource,
		}},
		mutate.Addendum{Layer: top, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "plana-image: " + binaryPath,
		}},
	)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant, cfg.OSVersion = plat.OS, plat.Architecture, plat.Variant, plat.OSVersion
	cfg.Created = created
	cfg.Author = ""
	cfg.Config = v1.Config{
		User:       strconv.Itoa(uid) + ":" + strconv.Itoa(uid),
		Entrypoint: []string{binaryPath},
		Env:        env,
		Labels:     b.annotations(),
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, b.annotations()).(v1.Image), nil
}

// annotations are the OCI pre-defined ones, as labels of each image's
// config (what `docker inspect` shows) and as annotations of its manifest
// and of the index (what registries show).
func (b Build) annotations() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "plana",
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.version":     b.Version,
		"org.opencontainers.image.revision":    b.Revision,
		"org.opencontainers.image.created":     b.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.licenses":    licence,
	}
}

// entry is one file or directory of a layer.
type entry struct {
	hdr  tar.Header
	body []byte
}

func dir(path string, owner int, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: path[1:] + "/", Mode: mode, Uid: owner, Gid: owner}}
}

func file(path string, owner int, mode int64, body []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: path[1:], Mode: mode, Uid: owner, Gid: owner, Size: int64(len(body))}, body: body}
}

func baseFiles() []entry {
	return []entry{
		dir("/etc", 0, 0o755),
		file("/etc/passwd", 0, 0o644, []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n"+
				fmt.Sprintf("%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, uid, uid, userName, homeDir))),
		file("/etc/group", 0, 0o644, []byte(
			"root:x:0:\n"+fmt.Sprintf("%s:x:%d:\n", userName, uid))),
		dir("/etc/ssl", 0, 0o755),
		dir("/etc/ssl/certs", 0, 0o755),
		file(caPath, 0, 0o644, caBundle()),
		dir("/home", 0, 0o755),
		dir(homeDir, uid, 0o755),
		dir("/tmp", 0, 0o1777),
	}
}

// layer is a gzipped tar of entries, each dated t and with no user or
// group names, so its bytes depend on its contents and t alone (and on
// compress/gzip, whose output the pinned Go toolchain fixes).
func layer(t time.Time, entries ...entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime = t.UTC().Truncate(time.Second)
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// Compressed here, once: given a tar, go-containerregistry compresses it
	// again each time it is read (for the digest, then for the archive).
	// The default level: the best one is four times slower for 1.5% less.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// machines are the ELF machines of the architectures the image is built for.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkBinary refuses a binary that could not run in its image: one for
// another architecture (two --binary flags swapped), or one that needs a
// dynamic loader, which an empty base does not have (built without
// CGO_ENABLED=0).
func checkBinary(bin []byte, plat v1.Platform) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not a Linux executable: %w", err)
	}
	want, ok := machines[plat.Architecture]
	if !ok {
		return fmt.Errorf("architecture %q: want one of amd64, arm64", plat.Architecture)
	}
	if f.Machine != want {
		return fmt.Errorf("built for %v, not %s", f.Machine, plat.Architecture)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked: an empty base has no loader; build it with CGO_ENABLED=0")
		}
	}
	return nil
}
