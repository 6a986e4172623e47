package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// SettingError is a setting whose value is unusable, naming where the value
// came from so the user knows which of flag, environment or file to fix.
// cmd/root maps it to the usage exit code.
type SettingError struct {
	Key    string
	Source Source
	Err    error
}

func (e *SettingError) Error() string { return fmt.Sprintf("%s (from %s): %v", e.Key, e.Source, e.Err) }
func (e *SettingError) Unwrap() error { return e.Err }

// Is makes a SettingError ErrInvalid, as every error of Load is.
func (e *SettingError) Is(target error) bool { return target == ErrInvalid }

// parseURL accepts the API's base URL only: scheme://host[:port], with at
// most a trailing slash. Every request path begins with /v1/, so a base that
// already ends in /v1 asks for /v1/v1/..., which a server's catch-all may
// answer 200 with nothing in it: plana would then see no keys and report
// that all is well.
func parseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q: want http(s)://host[:port]", s)
	}
	base := u.Scheme + "://" + u.Host
	switch {
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "", fmt.Errorf("%q is plain http to a host that is not loopback: the management key would cross the network readable by anyone on the way; "+
			"use https://%s, or reach a bos-emulator on another machine through a tunnel to loopback (ssh -L 8787:127.0.0.1:8787 HOST, then http://127.0.0.1:8787)", s, u.Host)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q has a path (%s), but the API URL is the base that plana's /v1/... requests go under: use %s", s, u.EscapedPath(), base)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q has a query or a fragment, which an API base URL cannot carry: use %s", s, base)
	case u.User != nil:
		return "", fmt.Errorf("the API URL carries a user name or password, which plana would send and print; it authenticates with the management key only: use %s", base)
	}
	return base, nil
}

// isLoopback is true for the names and addresses that never leave the
// machine: localhost, 127.0.0.0/8 and ::1. Plain http is allowed there
// only, for a bos-emulator on the same machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Origin is the origin (RFC 6454) of an API URL: scheme://host:port, in
// lower case and with the port spelled out, so https://BOS.example.com and
// https://bos.example.com:443/ are one origin. The stored management token
// is bound to one. It is "" for a URL that is not http(s).
func Origin(apiURL string) string {
	u, err := url.Parse(strings.TrimSpace(apiURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// APIOrigin is the origin of APIURL.
func (c *Config) APIOrigin() string { return Origin(c.apiURL) }
