package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// setenv isolates a test from the caller's PLANA_* and XDG variables.
func setenv(t *testing.T, m map[string]string) {
	t.Helper()
	for _, k := range []string{"PLANA_PROFILE", "PLANA_API_URL", "PLANA_POLL_INTERVAL", "PLANA_ROTATION_CADENCE",
		"PLANA_ROTATION_QUIET_PERIOD", "PLANA_ROTATION_CADENCE_OVERRIDES", "PLANA_ROTATION_TARGETS", "PLANA_NOTIFY", "PLANA_MACHINE_NAME",
		"PLANA_AUDIT_ALLOW"} {
		t.Setenv(k, "")
	}
	for k, v := range m {
		t.Setenv(k, v)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plana", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("plana", pflag.ContinueOnError)
	fs.String("profile", "", "")
	fs.String("api-url", "", "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

const twoProfiles = `profiles:
  default:
    api_url: https://file-default:1
    poll_interval: 10s
  staging:
    api_url: https://staging.example.com/
    rotation:
      cadence: 90d
      cadence_overrides:
        - pattern: "CI *"
          cadence: 30d
        - pattern: "*(2025)"
          cadence: 2d
`

func TestDefaults(t *testing.T) {
	setenv(t, nil)
	c, err := Load(Options{Path: filepath.Join(t.TempDir(), "none.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile() != "default" || c.APIURL() != "http://127.0.0.1:8787" || c.Cadence() != 365*day || c.PollInterval() != 30*time.Second {
		t.Errorf("defaults: profile %q url %q cadence %v poll %v", c.Profile(), c.APIURL(), c.Cadence(), c.PollInterval())
	}
	if _, ok := c.QuietPeriod(); ok {
		t.Error("quiet period set by default; it must be suggested from the log")
	}
	for _, k := range Keys() {
		if got := c.Source(k).Kind; got != SourceDefault {
			t.Errorf("Source(%s) = %v, want default", k, got)
		}
	}
}

func TestPrecedence(t *testing.T) {
	p := writeFile(t, twoProfiles)
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantURL    string
		wantSource SourceKind
	}{
		{"file", nil, nil, "https://file-default:1", SourceFile},
		{"env over file", nil, map[string]string{"PLANA_API_URL": "https://env:2"}, "https://env:2", SourceEnv},
		{"flag over env", []string{"--api-url", "https://flag:3"}, map[string]string{"PLANA_API_URL": "https://env:2"}, "https://flag:3", SourceFlag},
		{"empty env ignored", nil, map[string]string{"PLANA_API_URL": ""}, "https://file-default:1", SourceFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			c, err := Load(Options{Path: p, Flags: flags(t, tt.args...)})
			if err != nil {
				t.Fatal(err)
			}
			if c.APIURL() != tt.wantURL {
				t.Errorf("APIURL = %q, want %q", c.APIURL(), tt.wantURL)
			}
			if got := c.Source(KeyAPIURL).Kind; got != tt.wantSource {
				t.Errorf("Source = %v, want %v", got, tt.wantSource)
			}
		})
	}
}

func TestProfiles(t *testing.T) {
	p := writeFile(t, twoProfiles)
	setenv(t, map[string]string{"PLANA_PROFILE": "staging"})
	c, err := Load(Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile() != "staging" || c.ProfileSource().Kind != SourceEnv {
		t.Fatalf("profile %q from %v", c.Profile(), c.ProfileSource())
	}
	if c.APIURL() != "https://staging.example.com" {
		t.Errorf("APIURL = %q", c.APIURL())
	}
	if c.PollInterval() != 30*time.Second {
		t.Errorf("staging must not inherit default's poll_interval: %v", c.PollInterval())
	}
	if c.Cadence() != 90*day {
		t.Errorf("Cadence = %v", c.Cadence())
	}
	if ov := c.CadenceOverrides(); len(ov) != 2 || ov[0] != (Override{"CI *", 30 * day}) || ov[1] != (Override{"*(2025)", 2 * day}) {
		t.Errorf("CadenceOverrides = %+v, want both, in the file's order", ov)
	}
	setenv(t, map[string]string{"PLANA_PROFILE": "staging"})
	c2, err := Load(Options{Path: p, Flags: flags(t, "--profile", "default")})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Profile() != "default" || c2.APIURL() != "https://file-default:1" {
		t.Errorf("--profile must beat PLANA_PROFILE: %q %q", c2.Profile(), c2.APIURL())
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"unknown key", "profiles:\n  default:\n    api_ulr: x\n", nil, []string{`"api_ulr"`, "known keys", "api_url"}},
		{"bad duration in file", "profiles:\n  default:\n    poll_interval: soon\n", nil, []string{"poll_interval", "file", "36h"}},
		{"bad env", "", map[string]string{"PLANA_ROTATION_CADENCE": "-1d"}, []string{"rotation.cadence", "PLANA_ROTATION_CADENCE"}},
		{"bad url", "", map[string]string{"PLANA_API_URL": "localhost:8787"}, []string{"api_url", "http(s)://"}},
		{"top-level key", "api_url: http://x\n", nil, []string{"profiles.default.api_url"}},
		{"profile that is not a map", "profiles:\n  default: api_url=http://x\n", nil, []string{"profile default must be a map", "profiles.default.api_url"}},
		{"profile that is a list", "profiles:\n  default:\n    - api_url: http://x\n", nil, []string{"profile default must be a map"}},
		{"bad override", "profiles:\n  default:\n    rotation:\n      cadence_overrides:\n        - pattern: \"[\"\n          cadence: 1d\n", nil, []string{"cadence_overrides", "glob"}},
		{"bad profile", "", map[string]string{"PLANA_PROFILE": "../etc"}, []string{"invalid profile", "PLANA_PROFILE"}},
		{"long profile", "", map[string]string{"PLANA_PROFILE": strings.Repeat("a", 64)}, []string{"invalid profile", "PLANA_PROFILE"}},
		{"machine name that would end the User-Agent", "", map[string]string{"PLANA_MACHINE_NAME": "ci) evil/1.0 ("}, []string{"machine_name", "PLANA_MACHINE_NAME", "letters, digits"}},
		{"machine name with a control", "profiles:\n  default:\n    machine_name: \"a\\u202eb\"\n", nil, []string{"machine_name", "file", `\u202e`}},
		{"machine name too long", "", map[string]string{"PLANA_MACHINE_NAME": strings.Repeat("a", 65)}, []string{"machine_name", "at most 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			_, err := Load(Options{Path: writeFile(t, tt.file)})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSetWritesAtomicallyAndPrivately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	p := filepath.Join(dir, "plana", "config.yaml")
	setenv(t, nil)
	c, err := Load(Options{Path: p, Flags: flags(t, "--profile", "staging")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyCadence, "180d"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyCadenceOverrides, "CI *=30d, Nightly*=2d"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyPollInterval, "never"); err == nil || !strings.Contains(err.Error(), "poll_interval") {
		t.Errorf("bad value accepted or unnamed: %v", err)
	}
	if err := c.Set("colour", "on"); err == nil || !strings.Contains(err.Error(), "known keys") {
		t.Errorf("unknown key: %v", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(p)); st.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", st.Mode().Perm())
	}
	setenv(t, nil)
	again, err := Load(Options{Path: p, Flags: flags(t, "--profile", "staging")})
	if err != nil {
		t.Fatal(err)
	}
	if again.Cadence() != 180*day || again.Source(KeyCadence).Kind != SourceFile {
		t.Errorf("after Set: cadence %v from %v", again.Cadence(), again.Source(KeyCadence))
	}
	if v, _ := again.Get(KeyCadenceOverrides); v != "CI *=30d,Nightly*=2d" {
		t.Errorf("overrides read back as %q", v)
	}
	setenv(t, nil)
	def, err := Load(Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if def.Cadence() != 365*day {
		t.Errorf("a staging Set leaked into default: %v", def.Cadence())
	}
	if err := again.Set(KeyCadence, ""); err != nil {
		t.Fatal(err)
	}
	if again.Source(KeyCadence).Kind != SourceDefault || again.Cadence() != 365*day {
		t.Errorf("unset: %v from %v", again.Cadence(), again.Source(KeyCadence))
	}
}

func TestDirs(t *testing.T) {
	d, err := configDir(env(map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/u"}))
	if err != nil || d != "/x/cfg/plana" {
		t.Errorf("configDir = %q, %v", d, err)
	}
	d, _ = configDir(env(map[string]string{"XDG_CONFIG_HOME": "relative", "HOME": "/home/u"}))
	if d != "/home/u/.config/plana" {
		t.Errorf("relative XDG_CONFIG_HOME must be ignored: %q", d)
	}
	d, _ = stateDir(env(map[string]string{"HOME": "/home/u"}))
	if d != "/home/u/.local/state/plana" {
		t.Errorf("stateDir = %q", d)
	}
	d, _ = stateDir(env(map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/home/u"}))
	if d != "/s/plana" {
		t.Errorf("stateDir = %q", d)
	}
}

// machine_name defaults to the host name, made fit for a User-Agent; a
// name given in the environment or the file wins.
func TestMachineName(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.yaml")
	for _, c := range []struct {
		host, env, want string
		src             SourceKind
	}{
		{"build-7.example.com", "", "build-7.example.com", SourceDefault},
		{"ana's laptop\x1b[2J\u202e", "", "ana-s-laptop--2J-", SourceDefault},
		{strings.Repeat("h", 100), "", strings.Repeat("h", MaxMachineName), SourceDefault},
		{"", "", "unknown", SourceDefault},
		{"-._", "", "unknown", SourceDefault},
		{"build-7", "ana-laptop", "ana-laptop", SourceEnv},
	} {
		setenv(t, map[string]string{"PLANA_MACHINE_NAME": c.env})
		cfg, err := Load(Options{Path: none, Hostname: func() (string, error) { return c.host, nil }})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := cfg.Get(KeyMachineName); cfg.MachineName() != c.want || got != c.want || cfg.Source(KeyMachineName).Kind != c.src {
			t.Errorf("host %q, env %q: MachineName %q, Get %q, from %v; want %q from %v", c.host, c.env, cfg.MachineName(), got, cfg.Source(KeyMachineName), c.want, c.src)
		}
	}
	setenv(t, nil)
	p := writeFile(t, "profiles:\n  default:\n    machine_name: ana-laptop\n")
	cfg, err := Load(Options{Path: p})
	if err != nil || cfg.MachineName() != "ana-laptop" || cfg.Source(KeyMachineName).Kind != SourceFile {
		t.Errorf("from the file: %v, %q", err, cfg.MachineName())
	}
}
