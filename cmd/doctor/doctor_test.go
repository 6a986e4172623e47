package doctor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/secret"
)

func runDoctor(t *testing.T, e *cmdtest.Env) (Report, error) {
	t.Helper()
	e.Out.Reset()
	err := e.Run(NewCmdDoctor(e.Factory, nil), "-o", "json")
	var rep Report
	if jerr := json.Unmarshal(e.Out.Bytes(), &rep); jerr != nil {
		t.Fatalf("invalid JSON: %v\n%s", jerr, e.Out)
	}
	e.AssertNoSecrets()
	return rep, err
}

func byName(rep Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range rep.Checks {
		m[c.Name] = c
	}
	return m
}

func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	rep, err := runDoctor(t, e)
	if err != nil || !rep.OK {
		t.Fatalf("err = %v, report %+v", err, rep)
	}
	checks := byName(rep)
	for _, name := range []string{"Keyring", "Config", "API", "Token", "Clock", "State"} {
		if checks[name].Status != StatusOK {
			t.Errorf("%s: %+v", name, checks[name])
		}
	}
	if !strings.Contains(checks["Token"].Summary, "ana@example.com") || !strings.Contains(checks["Token"].Summary, "keyring") {
		t.Errorf("token check: %+v", checks["Token"])
	}
	if !strings.Contains(strings.Join(checks["Config"].Details, "\n"), "api_url = "+e.URL+" (env PLANA_API_URL)") {
		t.Errorf("config details lack the source of api_url: %v", checks["Config"].Details)
	}
}

func TestDoctorFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *cmdtest.Env)
		check string
		want  Status
		fix   string
	}{
		{"no keyring", func(_ *testing.T, e *cmdtest.Env) { e.Store.SetErr = secret.ErrUnavailable }, "Keyring", StatusFail, "Secret Service"},
		// cron or CI: PLANA_TOKEN and no keyring is how such a machine works.
		{"PLANA_TOKEN only, no keyring", func(_ *testing.T, e *cmdtest.Env) {
			e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
			e.Store.SetErr = secret.ErrUnavailable
		}, "Keyring", StatusWarn, "PLANA_TOKEN alone"},
		{"not logged in", func(_ *testing.T, e *cmdtest.Env) { _ = e.Store.Delete(secret.TokenName("default")) }, "Token", StatusFail, "plana auth login"},
		{"API down", func(_ *testing.T, e *cmdtest.Env) { e.Setenv("PLANA_API_URL", "http://127.0.0.1:1") }, "API", StatusFail, "api_url"},
		{"state readable by others", func(t *testing.T, e *cmdtest.Env) {
			dir := filepath.Join(e.Getenv("XDG_STATE_HOME"), "plana")
			if err := os.MkdirAll(filepath.Join(dir, "rotations"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "State", StatusFail, "chmod -R go-rwx"},
		{"unfinished rotations", func(t *testing.T, e *cmdtest.Env) {
			dir := filepath.Join(e.Getenv("XDG_STATE_HOME"), "plana", "rotations")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Dir(dir), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"a.json", "b.json"} {
				if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}, "Rotations", StatusWarn, "plana keys rotate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := cmdtest.New(t)
			tt.setup(t, e)
			rep, err := runDoctor(t, e)
			c := byName(rep)[tt.check]
			if c.Status != tt.want || !strings.Contains(c.Fix, tt.fix) {
				t.Errorf("%s = %+v, want %s with a fix mentioning %q", tt.check, c, tt.want, tt.fix)
			}
			if tt.want == StatusFail && (!errors.Is(err, cmdutil.ErrSilent) || rep.OK) {
				t.Errorf("a failed check must exit 1: err %v ok %v", err, rep.OK)
			}
			if tt.want == StatusWarn && (err != nil || !rep.OK) {
				t.Errorf("a warning must not fail doctor: err %v", err)
			}
		})
	}
}

func TestDoctorClockSkew(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	e.Factory.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	cmd := NewCmdDoctor(e.Factory, nil)
	cmd.SetArgs([]string{"-o", "json"})
	if err := e.Run(cmd, "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(e.Out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if c := byName(rep)["Clock"]; c.Status != StatusWarn || !strings.Contains(c.Summary, "off the server's") {
		t.Errorf("clock = %+v", c)
	}
}
