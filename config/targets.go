package config

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// TargetRule is one entry of rotation.targets: the keys whose name matches
// Match (a glob) deploy to To, each with its own cadence and quiet period
// when set.
type TargetRule struct {
	Match       string        `json:"match" yaml:"match"`
	To          []string      `json:"to" yaml:"to"`
	Cadence     time.Duration `json:"-" yaml:"-"`
	QuietPeriod time.Duration `json:"-" yaml:"-"`
}

const targetsHint = "want a list of {match: GLOB, to: [TARGET, ...], cadence: DURATION, quiet_period: DURATION}; " +
	"TARGET is env-file:/ABSOLUTE/PATH, k8s:NAMESPACE/NAME, aws-sm:SECRET_ID, aws-ssm:PATH, sops:/ABSOLUTE/PATH, pass:PATH, exec:CMD, exec-ab:CMD or stdout"

// parseTargets accepts the file's list of maps, or the same list as YAML or
// JSON text (from the environment or config set).
func parseTargets(raw any) ([]TargetRule, error) {
	items, err := listOf(raw, targetsHint, false)
	if err != nil || items == nil {
		return nil, err
	}
	out := make([]TargetRule, 0, len(items))
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %d: %s", i+1, targetsHint)
		}
		var r TargetRule
		for k, v := range m {
			var err error
			switch k {
			case "match":
				r.Match, _ = v.(string)
			case "to":
				r.To, err = targetList(v)
			case "cadence":
				r.Cadence, err = parsePositive(fmt.Sprint(v))
			case "quiet_period":
				r.QuietPeriod, err = parsePositive(fmt.Sprint(v))
			default:
				err = fmt.Errorf("unknown field %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d (%s): %v; %s", i+1, k, err, targetsHint)
			}
		}
		if r.Match == "" {
			return nil, fmt.Errorf("entry %d: no match: %s", i+1, targetsHint)
		}
		if _, err := path.Match(r.Match, ""); err != nil {
			return nil, fmt.Errorf("entry %d: bad glob %q: %v", i+1, r.Match, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func targetList(v any) ([]string, error) {
	var list []any
	switch t := v.(type) {
	case string:
		list = []any{t}
	case []any:
		list = t
	case []string:
		for _, x := range t {
			list = append(list, x)
		}
	default:
		return nil, errors.New("to must be a target or a list of targets")
	}
	var out []string
	for _, item := range list {
		s, _ := item.(string)
		if err := checkTarget(s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("to is empty")
	}
	return out, nil
}

// checkTarget refuses what step 2 could not deploy to. A relative env file
// would depend on where cron happens to start plana, and so would a
// relative sops file. What follows a store's kind is checked when the
// rotation opens the target.
func checkTarget(s string) error {
	if s == "stdout" {
		return nil
	}
	kind, arg, _ := strings.Cut(s, ":")
	switch {
	case !slices.Contains(targetKinds, kind):
		return fmt.Errorf("unknown target %q", s)
	case strings.TrimSpace(arg) == "":
		return fmt.Errorf("target %q names nothing after %q", s, kind+":")
	case (kind == "env-file" || kind == "sops") && !filepath.IsAbs(arg):
		return fmt.Errorf("target %q: the file's path must be absolute", s)
	}
	return nil
}

// targetKinds are the kinds of target written KIND:ARG.
var targetKinds = []string{"env-file", "exec", "exec-ab", "k8s", "aws-sm", "aws-ssm", "sops", "pass"}

// listOf reads a setting that holds a list: a list from the file, or text
// (the environment, config set) holding a YAML list, or, where one item
// alone is allowed, text that is not a list. Empty is nil.
func listOf(raw any, hint string, oneAllowed bool) ([]any, error) {
	if s, ok := raw.(string); ok {
		t := strings.TrimSpace(s)
		switch {
		case t == "":
			return nil, nil
		case oneAllowed && !strings.HasPrefix(t, "["):
			return []any{t}, nil
		}
		// Unmarshalled untrimmed: a block list's indentation counts.
		if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
			return nil, fmt.Errorf("not a YAML list: %v; %s", err, hint)
		}
	}
	if raw == nil {
		return nil, nil
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, errors.New(hint)
	}
	return items, nil
}

const notifyHint = "want exec:CMD, or a list of them"

// parseNotify accepts one hook, a list, or a list as YAML text.
func parseNotify(raw any) ([]string, error) {
	items, err := listOf(raw, notifyHint, true)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, item := range items {
		s, _ := item.(string)
		if cmd, ok := strings.CutPrefix(s, "exec:"); !ok || strings.TrimSpace(cmd) == "" {
			return nil, fmt.Errorf("hook %q: %s", s, notifyHint)
		}
		out = append(out, s)
	}
	return out, nil
}

// Targets are the profile's rotation.targets, in the order they are tried.
func (c *Config) Targets() []TargetRule { return slices.Clone(c.targets) }

// Notify are the profile's notify hooks.
func (c *Config) Notify() []string { return slices.Clone(c.notify) }

// targetsYAML is rules as config get prints them and the file stores them.
func targetsYAML(rules []TargetRule) []any {
	out := make([]any, len(rules))
	for i, r := range rules {
		m := map[string]any{"match": r.Match, "to": r.To}
		if r.Cadence > 0 {
			m["cadence"] = FormatDuration(r.Cadence)
		}
		if r.QuietPeriod > 0 {
			m["quiet_period"] = FormatDuration(r.QuietPeriod)
		}
		out[i] = m
	}
	return out
}

func flowYAML(v any) string {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	setFlow(n)
	out, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(out))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}
