//go:build !windows

package rotate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
)

// Env files that are not this rotation's to write are refused in the
// target's check, before step 1: no key is created that could only end in
// a file others can swap, or in another automation's file.
func TestUntrustedEnvFileRefusedBeforeStep1(t *testing.T) {
	other := client.FormatKey("live", "OTHER001", "b2Xw2LmN9pRt4VbZ8cDe1FgH3jKs6YuQ")
	tests := []struct {
		name  string
		setup func(t *testing.T, w *world)
		want  string
	}{
		{"in a directory every user may write", func(t *testing.T, w *world) {
			if err := os.Chmod(filepath.Dir(w.EnvPath), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "which every user may write and which has no sticky bit"},
		{"holding another key", func(t *testing.T, w *world) {
			if err := os.WriteFile(w.EnvPath, []byte("PLANA_KEY="+other+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "holds PLANA_KEY=" + client.PrefixOf(other) + "…, another key than the one being rotated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.setup(t, w)
			before, _ := os.ReadFile(w.EnvPath)
			n := len(w.Keys(client.StatusAll))
			_, err := w.rotator().Rotate(context.Background(), w.Old, fastOpts(w))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want a refusal saying %q, got %v", tt.want, err)
			}
			if got := len(w.Keys(client.StatusAll)); got != n {
				t.Errorf("%d keys created before the refusal", got-n)
			}
			if after, _ := os.ReadFile(w.EnvPath); string(after) != string(before) {
				t.Errorf("the env file changed: %q", after)
			}
		})
	}
}

// A file with no PLANA_KEY is accepted, with a warning that says plana
// cannot tell it is the automation's.
func TestEnvFileWithoutAKeyWarns(t *testing.T) {
	w := newWorld(t)
	if err := os.WriteFile(w.EnvPath, []byte("API_URL=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if res == nil || res.New == nil || !res.Targets[0].Deployed {
		t.Fatalf("want the file deployed to: %v", err)
	}
	if !strings.Contains(w.rep.Text(), "has no PLANA_KEY: plana cannot tell that it is the automation's file") {
		t.Errorf("no warning:\n%s", w.rep.Text())
	}
}
