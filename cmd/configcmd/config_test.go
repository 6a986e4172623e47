package configcmd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

func TestConfigSetGetList(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if err := e.Run(NewCmdSet(e.Factory, nil), "rotation.cadence", "180d"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.Getenv("XDG_CONFIG_HOME"), "plana", "config.yaml")
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v", err, st.Mode())
	}

	if err := e.Run(NewCmdGet(e.Factory, nil), "rotation.cadence"); err != nil {
		t.Fatal(err)
	}
	if e.Out.String() != "180d\n" {
		t.Errorf("get = %q", e.Out)
	}

	e.Out.Reset()
	if err := e.Run(NewCmdList(e.Factory, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var l List
	if err := json.Unmarshal(e.Out.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, s := range l.Settings {
		sources[s.Key] = s.Source.String()
	}
	if sources["rotation.cadence"] != "file "+p || sources["api_url"] != "env PLANA_API_URL" || sources["poll_interval"] != "default" {
		t.Errorf("sources = %v", sources)
	}

	// A set value that the environment overrides says so.
	e.ErrOut.Reset()
	if err := e.Run(NewCmdSet(e.Factory, nil), "api_url", "https://bos.example.com"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.ErrOut.String(), "PLANA_API_URL overrides the file") {
		t.Errorf("no warning about the env override: %s", e.ErrOut)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	tests := []struct {
		args []string
		set  bool
		want string
	}{
		{[]string{"colour"}, false, "known keys"},
		{[]string{"colour", "on"}, true, "known keys"},
		{[]string{"poll_interval", "often"}, true, "poll_interval"},
		{[]string{"api_url", "bos.example.com"}, true, "http(s)://"},
		{[]string{"rotation.cadence_overrides", "CI"}, true, "GLOB=DURATION"},
		{[]string{"machine_name", "ana's laptop"}, true, "letters, digits"},
		{[]string{"poll_interval"}, true, "missing VALUE"},
	}
	for _, tt := range tests {
		cmd := NewCmdGet(e.Factory, nil)
		if tt.set {
			cmd = NewCmdSet(e.Factory, nil)
		}
		err := e.Run(cmd, tt.args...)
		var fe *cmdutil.FlagError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &fe) {
			t.Errorf("%v: err = %v, want a usage error mentioning %q", tt.args, err, tt.want)
		}
	}
}
