package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The archive is what `docker save` has written since Docker 25: an OCI
// image layout (oci-layout, index.json, blobs/sha256/…) that also carries
// a docker-save manifest.json. The layout holds the whole multi-platform
// index, for what reads OCI layouts: containerd (`ctr images import`, kind,
// k3s), Docker with the containerd image store, podman, skopeo, crane (on
// the unpacked directory). manifest.json names one image, linux/amd64, for
// Docker's classic image store, which keeps one platform per name anyway.
const dockerPlatform = "linux/amd64"

// WriteArchive writes idx to w as that archive, named ref (a tag such as
// "plana:1.2.3"). Entries are in a fixed order and dated t, so the same
// index and name give the same bytes.
func WriteArchive(w io.Writer, idx v1.ImageIndex, ref string, t time.Time) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	blobs := map[v1.Hash][]byte{}
	idxRaw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		return err
	}
	blobs[idxDigest] = idxRaw

	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var docker []dockerManifest
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		entry, err := addImage(blobs, img)
		if err != nil {
			return err
		}
		if desc.Platform != nil && desc.Platform.String() == dockerPlatform {
			entry.RepoTags = []string{ref}
			docker = append(docker, entry)
		}
	}
	if len(docker) != 1 {
		return fmt.Errorf("the index has %d %s images, want 1 for manifest.json", len(docker), dockerPlatform)
	}

	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIImageIndex,
			Digest:    idxDigest,
			Size:      int64(len(idxRaw)),
			Annotations: map[string]string{
				// containerd names the image it imports by the first,
				// and other OCI tools by the second (the tag alone).
				"io.containerd.image.name":          fullName(tag),
				"org.opencontainers.image.ref.name": tag.TagStr(),
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	manifestJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	mtime := t.UTC().Truncate(time.Second)
	put := func(path string, body []byte) error {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}
		if strings.HasSuffix(path, "/") {
			h = &tar.Header{Typeflag: tar.TypeDir, Name: path, Mode: 0o755, ModTime: mtime}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, f := range []struct {
		path string
		body []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexJSON},
		{"manifest.json", manifestJSON},
		{"blobs/", nil},
		{"blobs/sha256/", nil},
	} {
		if err := put(f.path, f.body); err != nil {
			return err
		}
	}
	digests := make([]v1.Hash, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].Hex < digests[j].Hex })
	for _, d := range digests {
		if err := put(blobPath(d), blobs[d]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerManifest is one entry of a docker-save manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// addImage adds img's manifest, config and compressed layers to blobs and
// returns its manifest.json entry.
func addImage(blobs map[v1.Hash][]byte, img v1.Image) (dockerManifest, error) {
	var m dockerManifest
	raw, err := img.RawManifest()
	if err != nil {
		return m, err
	}
	d, err := img.Digest()
	if err != nil {
		return m, err
	}
	blobs[d] = raw
	cfg, err := img.RawConfigFile()
	if err != nil {
		return m, err
	}
	cd, err := img.ConfigName()
	if err != nil {
		return m, err
	}
	blobs[cd] = cfg
	m.Config = blobPath(cd)
	layers, err := img.Layers()
	if err != nil {
		return m, err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return m, err
		}
		if _, ok := blobs[ld]; !ok {
			rc, err := l.Compressed()
			if err != nil {
				return m, err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return m, err
			}
			blobs[ld] = b
		}
		m.Layers = append(m.Layers, blobPath(ld))
	}
	return m, nil
}

func blobPath(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// fullName is the name as containerd and the kubelet spell it: a tag with
// no registry is Docker Hub's, and one with no owner is under library/, so
// `plana:1.2.3` is imported as the image a pod's `image: plana:1.2.3` asks
// for.
func fullName(t name.Tag) string {
	reg := t.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.Context().RepositoryStr() + ":" + t.TagStr()
}
