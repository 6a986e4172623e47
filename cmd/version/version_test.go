package version

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
)

func TestVersion(t *testing.T) {
	Version, Commit, Date = "v1.2.3", "abc1234", "2026-01-02T03:04:05Z"
	t.Cleanup(func() { Version, Commit, Date = "", "", "" })
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
