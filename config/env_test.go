package config

import (
	"path/filepath"
	"testing"
)

// A Load given its own environment reads nothing of the process's, keeps the
// order flag, env, file, default, and names the env as the source.
func TestLoadReadsOnlyItsGetenv(t *testing.T) {
	setenv(t, map[string]string{"PLANA_API_URL": "https://process:1", "PLANA_POLL_INTERVAL": "1m", "PLANA_PROFILE": "process"})
	dir := t.TempDir()
	own := env(map[string]string{
		"XDG_CONFIG_HOME":        dir,
		"PLANA_API_URL":          "https://own-env:1",
		"PLANA_ROTATION_CADENCE": "10d",
	})
	p := filepath.Join(dir, "plana", "config.yaml")
	c, err := Load(Options{Getenv: own})
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != p || c.Profile() != DefaultProfile {
		t.Errorf("path %q profile %q: read the process environment", c.Path(), c.Profile())
	}
	if c.APIURL() != "https://own-env:1" || c.Source(KeyAPIURL) != (Source{SourceEnv, "PLANA_API_URL"}) {
		t.Errorf("api_url = %q from %s", c.APIURL(), c.Source(KeyAPIURL))
	}
	if c.Cadence().Hours() != 240 {
		t.Errorf("cadence = %v, want 10d from the given env", c.Cadence())
	}
	if got, _ := c.Get(KeyPollInterval); got == "1m" || c.Source(KeyPollInterval).Kind != SourceDefault {
		t.Errorf("poll_interval = %s from %s: read the process environment", got, c.Source(KeyPollInterval))
	}

	c, err = Load(Options{Getenv: own, Flags: flags(t, "--api-url", "https://flag:1")})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL() != "https://flag:1" || c.Source(KeyAPIURL).Kind != SourceFlag {
		t.Errorf("a flag must outrank the env: api_url = %q from %s", c.APIURL(), c.Source(KeyAPIURL))
	}
}

func TestStateDirFrom(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/process")
	d, err := StateDirFrom(env(map[string]string{"XDG_STATE_HOME": "/own", "HOME": "/home/u"}))
	if err != nil || d != "/own/plana" {
		t.Errorf("StateDirFrom = %q, %v", d, err)
	}
}
