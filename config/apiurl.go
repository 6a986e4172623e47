package config

import (
	"fmt"
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
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q has a path (%s), but the API URL is the base that plana's /v1/... requests go under: use %s", s, u.EscapedPath(), base)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q has a query or a fragment, which an API base URL cannot carry: use %s", s, base)
	case u.User != nil:
		return "", fmt.Errorf("the API URL carries a user name or password, which plana would send and print; it authenticates with the management key only: use %s", base)
	}
	return base, nil
}
