package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
)

// TestImageRunsARotation runs the image as a container runtime would,
// short of namespaces: its layers unpacked into a root file system, plana
// started there by chroot as the image's user, with the image's
// environment and nothing else but PLANA_TOKEN and PLANA_API_URL (a real
// emulator on loopback). As the README's CronJob, with no keyring and no
// state kept: it creates the successor, deploys it to an env file on the
// writable /tmp, keeps its journal under XDG_STATE_HOME, and exits 3
// while the gate waits. chroot needs root, as CI has.
func TestImageRunsARotation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot and a file owned by the image's user need root (CI runs as root)")
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	if _, ok := builtBinaries[plat]; !ok {
		t.Skipf("the image has no %s binary to run here", plat)
	}
	archive, _, _ := sharedArchive(t)
	outer, err := layout.ImageIndexFromPath(untar(t, archive))
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var img v1.Image
	for _, d := range im.Manifests {
		if d.Platform.String() == plat {
			if img, err = idx.Image(d.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := unpack(t, img)

	emu, url := emutest.Start(t, emulator.Config{})
	seed, err := emu.SeedDemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The automation's env file, on the one writable directory, owned by
	// the image's user as a volume the job writes would be.
	target := filepath.Join(root, "tmp", "stock-sync.env")
	if err := os.WriteFile(target, []byte("PLANA_KEY="+seed.AutomationKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(target, uid, uid); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(cf.Config.Entrypoint[0], "keys", "rotate", "Nightly stock sync (2025)",
		"--to", "env-file:/tmp/stock-sync.env", "--quiet-period", "3s", "--no-wait", "--yes")
	cmd.Dir = "/"
	cmd.Env = append(append([]string{}, cf.Config.Env...), "PLANA_TOKEN="+seed.AdminToken, "PLANA_API_URL="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("plana keys rotate in the image: %v, want exit 3 (deployed, the gate not met yet)\n%s", err, out)
	}
	env, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "PLANA_KEY_NEW=pa_") {
		t.Errorf("the env file holds no PLANA_KEY_NEW after the run (%d bytes)\n%s", len(env), out)
	}
	state := ""
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "XDG_STATE_HOME="); ok {
			state = v
		}
	}
	journals, _ := filepath.Glob(filepath.Join(root, state, "plana", "rotations", "*.json"))
	if len(journals) != 1 {
		t.Errorf("found journals %v under XDG_STATE_HOME=%s, want the rotation's one\n%s", journals, state, out)
	}
}

// unpack flattens img's layers into a new directory, keeping each entry's
// mode and owner, as a container runtime does.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return root
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o600)
			}
		default:
			t.Fatalf("%s: unexpected type %c in the image", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Chmod(p, mode)
		}
		if err == nil {
			err = os.Chown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
