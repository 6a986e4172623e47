package version

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/build"
	"github.com/plana-cli/plana/internal/iostreams"
)

func TestVersion(t *testing.T) {
	saved := [3]string{build.Version, build.Commit, build.Date}
	build.Version, build.Commit, build.Date = "v1.2.3", "abc1234", "2026-01-02T03:04:05Z"
	t.Cleanup(func() { build.Version, build.Commit, build.Date = saved[0], saved[1], saved[2] })
	ios, _, out, _ := iostreams.Test()
	cmd := NewCmdVersion(&cmdutil.Factory{IOStreams: ios}, nil)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "plana v1.2.3 (abc1234, 2026-01-02T03:04:05Z) go") {
		t.Errorf("version line %q", out)
	}
	out.Reset()
	cmd = NewCmdVersion(&cmdutil.Factory{IOStreams: ios}, nil)
	cmd.SetArgs([]string{"-o", "json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var i Info
	if err := json.Unmarshal(out.Bytes(), &i); err != nil || i.Version != "v1.2.3" || i.Commit != "abc1234" || i.GoVersion == "" {
		t.Errorf("json = %s (%v)", out, err)
	}
}

// TestVersionStampedByLdflags builds plana the way the Makefile and
// .goreleaser.yaml do and runs it: the -X paths they use must be the
// variables `plana version` reads.
func TestVersionStampedByLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds plana")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to build plana: ", err)
	}
	bin := filepath.Join(t.TempDir(), "plana")
	const pkg = "github.com/plana-cli/plana/internal/build"
	ldflags := "-s -w -X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Commit=0123abc -X " + pkg + ".Date=2026-03-04T05:06:07Z"
	gobuild := exec.Command(goBin, "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "github.com/plana-cli/plana/cmd/plana")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for args, want := range map[string]string{
		"version":         "plana v9.8.7 (0123abc, 2026-03-04T05:06:07Z) go",
		"--version":       "plana v9.8.7\n",
		"version -o json": `"version": "v9.8.7"`,
	} {
		out, err := exec.Command(bin, strings.Fields(args)...).Output()
		if err != nil {
			t.Fatalf("plana %s: %v", args, err)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("plana %s printed %q, want %q in it", args, out, want)
		}
	}
	out, _ := exec.Command(bin, "version", "-o", "json").Output()
	var i Info
	if err := json.Unmarshal(out, &i); err != nil || i.Commit != "0123abc" || i.Date != "2026-03-04T05:06:07Z" {
		t.Errorf("version -o json = %s (%v)", out, err)
	}
}
