package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
)

// AllowRule is one entry of audit.allow: an expected change (a new region,
// a new client) that `plana keys audit` stops flagging. The calls of keys
// whose name matches Match (a glob, as in rotation.targets), from SourceIP
// (a CIDR or one address; empty: any) with a user agent matching UserAgent
// (a glob whose * matches anything, slashes included; empty: any).
type AllowRule struct {
	Match     string `json:"match" yaml:"match"`
	SourceIP  string `json:"source_ip,omitempty" yaml:"source_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty" yaml:"user_agent,omitempty"`
}

const allowHint = "want a list of {match: GLOB, source_ip: CIDR, user_agent: GLOB}, with source_ip or user_agent or both"

// parseAllow accepts the file's list of maps, or the same list as YAML or
// JSON text (from the environment or config set).
func parseAllow(raw any) ([]AllowRule, error) {
	items, err := listOf(raw, allowHint, false)
	if err != nil || items == nil {
		return nil, err
	}
	out := make([]AllowRule, 0, len(items))
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %d: %s", i+1, allowHint)
		}
		var r AllowRule
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("entry %d (%s): want text, not %v; %s", i+1, k, v, allowHint)
			}
			switch k {
			case "match":
				r.Match = s
			case "source_ip":
				r.SourceIP = s
			case "user_agent":
				r.UserAgent = s
			default:
				return nil, fmt.Errorf("entry %d: unknown field %q; %s", i+1, k, allowHint)
			}
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("entry %d: %v; %s", i+1, err, allowHint)
		}
		out = append(out, r)
	}
	return out, nil
}

func (r AllowRule) check() error {
	if r.Match == "" {
		return errors.New("no match")
	}
	if _, err := path.Match(r.Match, ""); err != nil {
		return fmt.Errorf("bad glob %q: %v", r.Match, err)
	}
	if r.SourceIP == "" && r.UserAgent == "" {
		return fmt.Errorf("match %q allows every call: give source_ip or user_agent", r.Match)
	}
	if r.SourceIP != "" {
		_, perr := netip.ParsePrefix(r.SourceIP)
		_, aerr := netip.ParseAddr(r.SourceIP)
		if perr != nil && aerr != nil {
			return fmt.Errorf("source_ip %q is not an address or a CIDR such as 203.0.113.0/24", r.SourceIP)
		}
	}
	return nil
}

// AuditAllow are the profile's audit.allow rules.
func (c *Config) AuditAllow() []AllowRule { return slices.Clone(c.allow) }

// allowYAML is rules as config get prints them and the file stores them.
func allowYAML(rules []AllowRule) []any {
	out := make([]any, len(rules))
	for i, r := range rules {
		m := map[string]any{"match": r.Match}
		if r.SourceIP != "" {
			m["source_ip"] = r.SourceIP
		}
		if r.UserAgent != "" {
			m["user_agent"] = r.UserAgent
		}
		out[i] = m
	}
	return out
}
