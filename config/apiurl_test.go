package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestAPIURLShape(t *testing.T) {
	tests := []struct {
		name, in string
		want     string   // the resolved URL; "" for an error
		errWants []string // what the error must say
	}{
		{"base", "https://bos.example.com", "https://bos.example.com", nil},
		{"trailing slash", "https://bos.example.com/", "https://bos.example.com", nil},
		{"port", "http://127.0.0.1:8787/", "http://127.0.0.1:8787", nil},
		{"path /v1", "http://127.0.0.1:8787/v1", "", []string{"/v1", "use http://127.0.0.1:8787"}},
		{"path /v1/", "https://bos.example.com/v1/", "", []string{"use https://bos.example.com"}},
		{"deeper path", "https://bos.example.com/api/v1/me", "", []string{"/api/v1/me", "use https://bos.example.com"}},
		{"query", "https://bos.example.com/?x=1", "", []string{"query", "use https://bos.example.com"}},
		{"user info", "https://ana:hunter2@bos.example.com", "", []string{"user name or password", "use https://bos.example.com"}},
		{"no scheme", "bos.example.com", "", []string{"http(s)://host"}},
		{"http to loopback v4", "http://127.0.0.1:8787", "http://127.0.0.1:8787", nil},
		{"http to 127/8", "http://127.3.2.1:8787", "http://127.3.2.1:8787", nil},
		{"http to ::1", "http://[::1]:8787", "http://[::1]:8787", nil},
		{"http to localhost", "http://LocalHost:8787", "http://LocalHost:8787", nil},
		{"http to a host", "http://bos.example.com", "", []string{"plain http", "use https://bos.example.com", "ssh -L"}},
		{"http to a LAN address", "http://192.168.1.20:8787", "", []string{"plain http", "use https://192.168.1.20:8787"}},
		{"http to a name ending in localhost", "http://localhost.attacker.example", "", []string{"plain http"}},
		{"http to 0.0.0.0", "http://0.0.0.0:8787", "", []string{"plain http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, map[string]string{"PLANA_API_URL": tt.in})
			c, err := Load(Options{Path: filepath.Join(t.TempDir(), "none.yaml")})
			if tt.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.APIURL() != tt.want {
					t.Errorf("APIURL() = %q, want %q", c.APIURL(), tt.want)
				}
				return
			}
			var se *SettingError
			if !errors.As(err, &se) || se.Key != KeyAPIURL || se.Source != (Source{SourceEnv, "PLANA_API_URL"}) {
				t.Fatalf("error = %v, want a SettingError for api_url from PLANA_API_URL", err)
			}
			for _, w := range append(tt.errWants, "PLANA_API_URL") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the error repeats the URL's password")
			}
		})
	}
}

// Each layer is named, so the user knows what to fix.
func TestAPIURLErrorNamesItsSource(t *testing.T) {
	p := writeFile(t, "profiles:\n  default:\n    api_url: https://bos.example.com/v1\n")
	setenv(t, nil)
	_, err := Load(Options{Path: p})
	if err == nil || !strings.Contains(err.Error(), "file "+p) {
		t.Errorf("from the file: %v", err)
	}
	_, err = Load(Options{Path: p, Flags: flags(t, "--api-url", "https://flag.example.com/v1")})
	if err == nil || !strings.Contains(err.Error(), "flag --api-url") || !strings.Contains(err.Error(), "use https://flag.example.com") {
		t.Errorf("from the flag: %v", err)
	}
	c, err := Load(Options{Path: filepath.Join(t.TempDir(), "none.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(KeyAPIURL, "https://bos.example.com/v1"); err == nil || !strings.Contains(err.Error(), "use https://bos.example.com") {
		t.Errorf("config set: %v", err)
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://bos.example.com", "https://bos.example.com:443"},
		{"https://BOS.Example.com:443/", "https://bos.example.com:443"},
		{"HTTP://127.0.0.1:8787", "http://127.0.0.1:8787"},
		{"http://localhost", "http://localhost:80"},
		{"http://[::1]:8787", "http://[::1]:8787"},
		{"bos.example.com", ""},
	}
	for _, tt := range tests {
		if got := Origin(tt.in); got != tt.want {
			t.Errorf("Origin(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if Origin("https://bos.example.com") == Origin("https://bos.example.com:8443") || Origin("http://127.0.0.1:1") == Origin("https://127.0.0.1:1") {
		t.Error("a port or a scheme of its own must make another origin")
	}
}
