package config

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Setting names.
const (
	KeyAPIURL           = "api_url"
	KeyPollInterval     = "poll_interval"
	KeyCadence          = "rotation.cadence"
	KeyQuietPeriod      = "rotation.quiet_period"
	KeyCadenceOverrides = "rotation.cadence_overrides"
	KeyTargets          = "rotation.targets"
	KeyNotify           = "notify"
	KeyMachineName      = "machine_name"
	KeyAuditAllow       = "audit.allow"
)

type kind int

const (
	kindURL kind = iota
	kindDuration
	kindOptionalDuration
	kindOverrides
	kindTargets
	kindNotify
	kindMachineName
	kindAllow
)

type setting struct {
	key, env, flag, def, help string
	kind                      kind
}

var settings = []setting{
	{KeyAPIURL, "PLANA_API_URL", "api-url", "http://127.0.0.1:8787", "base URL of the BOS API, scheme://host[:port] without a path; plain http to loopback only (default: the local bos-emulator)", kindURL},
	{KeyPollInterval, "PLANA_POLL_INTERVAL", "", "30s", "how often waits poll the API", kindDuration},
	{KeyCadence, "PLANA_ROTATION_CADENCE", "", "365d", "how often every key should be rotated", kindDuration},
	{KeyQuietPeriod, "PLANA_ROTATION_QUIET_PERIOD", "", "", "how long the old key must be unused before revoking (empty: suggest one from the execution log)", kindOptionalDuration},
	{KeyCadenceOverrides, "PLANA_ROTATION_CADENCE_OVERRIDES", "", "", "per-key cadences: a list of {pattern, cadence}; pattern is a glob on the key name (as a string: 'GLOB=DUR,GLOB=DUR')", kindOverrides},
	{KeyTargets, "PLANA_ROTATION_TARGETS", "", "", "deploy targets by key name, for keys rotate --due and --issued-by: a list of {match: GLOB, to: [TARGET, ...], cadence, quiet_period} (as a string: the same list in YAML)", kindTargets},
	{KeyNotify, "PLANA_NOTIFY", "", "", "hooks told of every rotation event, one JSON line on stdin per run: exec:CMD or a list of them", kindNotify},
	{KeyMachineName, "PLANA_MACHINE_NAME", "", "", "this machine's name, sent in the User-Agent of plana's requests (plana/VERSION (OS; NAME)) so the execution log shows which machine used which management key, and named in each successor's lineage as where its plaintext went (keys rotate --stored-on NAME finds a lost machine's keys by it): letters, digits, '.', '-' and '_', at most 64 characters", kindMachineName},
	{KeyAuditAllow, "PLANA_AUDIT_ALLOW", "", "", "expected callers keys audit does not flag (a new region, a new client): a list of {match: GLOB, source_ip: CIDR, user_agent: GLOB} (as a string: the same list in YAML)", kindAllow},
}

func lookupSetting(key string) (setting, error) {
	for _, s := range settings {
		if s.key == key {
			return s, nil
		}
	}
	return setting{}, fmt.Errorf("unknown config key %q; known keys: %s", key, strings.Join(Keys(), ", "))
}

// Keys lists every setting name, sorted.
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key
	}
	sort.Strings(out)
	return out
}

// Help describes a setting, for `plana config` and `plana help environment`.
func Help(key string) (env, def, help string) {
	s, err := lookupSetting(key)
	if err != nil {
		return "", "", ""
	}
	if s.kind == kindMachineName {
		return s.env, "the host name", s.help
	}
	return s.env, s.def, s.help
}

// apply validates raw and stores it in the typed field of s.
func (c *Config) apply(s setting, raw any) error {
	switch s.kind {
	case kindURL:
		u, err := parseURL(fmt.Sprint(raw))
		if err != nil {
			return err
		}
		c.apiURL = u
	case kindDuration, kindOptionalDuration:
		str := strings.TrimSpace(fmt.Sprint(raw))
		if str == "" && s.kind == kindOptionalDuration {
			c.quietPeriod = 0
			return nil
		}
		d, err := parsePositive(str)
		if err != nil {
			return err
		}
		switch s.key {
		case KeyPollInterval:
			c.pollInterval = d
		case KeyCadence:
			c.cadence = d
		case KeyQuietPeriod:
			c.quietPeriod = d
		}
	case kindTargets:
		t, err := parseTargets(raw)
		if err != nil {
			return err
		}
		c.targets = t
	case kindNotify:
		n, err := parseNotify(raw)
		if err != nil {
			return err
		}
		c.notify = n
	case kindMachineName:
		str := strings.TrimSpace(fmt.Sprint(raw))
		if str == "" {
			h, err := c.hostname()
			if err != nil {
				h = ""
			}
			c.machineName = hostMachineName(h)
			return nil
		}
		n, err := ParseMachineName(str)
		if err != nil {
			return err
		}
		c.machineName = n
	case kindAllow:
		a, err := parseAllow(raw)
		if err != nil {
			return err
		}
		c.allow = a
	case kindOverrides:
		ov, err := parseOverrides(raw)
		if err != nil {
			return err
		}
		c.overrides = ov
	}
	return nil
}

func parsePositive(s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive, e.g. 30s, 36h, 365d", s)
	}
	return d, nil
}

const overridesHint = "want a list of {pattern: GLOB, cadence: DURATION}, or the string 'GLOB=DURATION,GLOB=DURATION'"

// parseOverrides accepts the file's list of maps or the env/CLI string form.
func parseOverrides(raw any) ([]Override, error) {
	var pairs [][2]string
	switch v := raw.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(v) == "" {
			return nil, nil
		}
		for _, item := range strings.Split(v, ",") {
			pat, dur, ok := strings.Cut(item, "=")
			if !ok {
				return nil, fmt.Errorf("%q: %s", item, overridesHint)
			}
			pairs = append(pairs, [2]string{strings.TrimSpace(pat), strings.TrimSpace(dur)})
		}
	case []any:
		for _, item := range v {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, errors.New(overridesHint)
			}
			for k := range m {
				if k != "pattern" && k != "cadence" {
					return nil, fmt.Errorf("unknown field %q: %s", k, overridesHint)
				}
			}
			pat, _ := m["pattern"].(string)
			pairs = append(pairs, [2]string{pat, fmt.Sprint(m["cadence"])})
		}
	default:
		return nil, errors.New(overridesHint)
	}
	out := make([]Override, 0, len(pairs))
	for _, p := range pairs {
		if p[0] == "" {
			return nil, fmt.Errorf("empty pattern: %s", overridesHint)
		}
		if _, err := path.Match(p[0], ""); err != nil {
			return nil, fmt.Errorf("bad glob %q: %v", p[0], err)
		}
		d, err := parsePositive(p[1])
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p[0], err)
		}
		out = append(out, Override{Pattern: p[0], Cadence: d})
	}
	return out, nil
}
