package cmdtest

import (
	"path/filepath"
	"testing"
)

// The Factory reads its Env's environment and never the process's: what
// lets every test built on New run in parallel.
func TestFactoryIgnoresTheProcessEnvironment(t *testing.T) {
	for k, v := range map[string]string{"XDG_STATE_HOME": "/process/state", "XDG_CONFIG_HOME": "/process/config",
		"PLANA_API_URL": "http://process:1", "PLANA_TOKEN": "not-a-key", "PLANA_POLL_INTERVAL": "often"} {
		t.Setenv(k, v)
	}
	e := New(t)
	dir, err := e.Factory.StateDir()
	if want := filepath.Join(e.Getenv("XDG_STATE_HOME"), "plana"); err != nil || dir != want {
		t.Errorf("StateDir() = %q, %v; want %q", dir, err, want)
	}
	cfg, err := e.Factory.Config()
	if err != nil {
		t.Fatalf("config read the process's PLANA_POLL_INTERVAL: %v", err)
	}
	if cfg.APIURL() != e.URL || filepath.Dir(filepath.Dir(cfg.Path())) != e.Getenv("XDG_CONFIG_HOME") {
		t.Errorf("api_url %q, config %q: read the process environment", cfg.APIURL(), cfg.Path())
	}
	if tok, err := e.Factory.Token(); err != nil || tok.Source != "keyring" {
		t.Errorf("token from %v (%v), want the keyring", tok.Source, err)
	}
	e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
	if tok, err := e.Factory.Token(); err != nil || tok.Source != "PLANA_TOKEN" {
		t.Errorf("token from %v (%v) after Setenv, want PLANA_TOKEN", tok.Source, err)
	}
}
