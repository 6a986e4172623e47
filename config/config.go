// Package config resolves plana's settings from flags, the environment, the
// config file and defaults, in that order of precedence, per profile.
//
// The file is $XDG_CONFIG_HOME/plana/config.yaml (~/.config/plana/config.yaml
// when XDG_CONFIG_HOME is unset). One file holds every profile, so a user
// sees all workspaces at a glance:
//
//	profiles:
//	  default:
//	    api_url: https://bos.example.com
//	    rotation:
//	      cadence: 365d
//	      cadence_overrides:
//	        - pattern: "CI *"
//	          cadence: 90d
//	  staging:
//	    api_url: https://staging.bos.example.com
//
// The profile is --profile, else PLANA_PROFILE, else "default".
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/plana-cli/plana/internal/atomicfile"
)

// DefaultProfile is used when neither --profile nor PLANA_PROFILE is set.
const DefaultProfile = "default"

// Setting names.
const (
	KeyAPIURL           = "api_url"
	KeyPollInterval     = "poll_interval"
	KeyCadence          = "rotation.cadence"
	KeyQuietPeriod      = "rotation.quiet_period"
	KeyCadenceOverrides = "rotation.cadence_overrides"
)

type kind int

const (
	kindURL kind = iota
	kindDuration
	kindOptionalDuration
	kindOverrides
)

type setting struct {
	key, env, flag, def, help string
	kind                      kind
}

var settings = []setting{
	{KeyAPIURL, "PLANA_API_URL", "api-url", "http://127.0.0.1:8787", "base URL of the BOS API (default: the local bos-emulator)", kindURL},
	{KeyPollInterval, "PLANA_POLL_INTERVAL", "", "30s", "how often waits poll the API", kindDuration},
	{KeyCadence, "PLANA_ROTATION_CADENCE", "", "365d", "how often every key should be rotated", kindDuration},
	{KeyQuietPeriod, "PLANA_ROTATION_QUIET_PERIOD", "", "", "how long the old key must be unused before revoking (empty: suggest one from the execution log)", kindOptionalDuration},
	{KeyCadenceOverrides, "PLANA_ROTATION_CADENCE_OVERRIDES", "", "", "per-key cadences: a list of {pattern, cadence}; pattern is a glob on the key name (as a string: 'GLOB=DUR,GLOB=DUR')", kindOverrides},
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
	return s.env, s.def, s.help
}

// Override is a cadence for the keys whose name matches Pattern.
type Override struct {
	Pattern string        `json:"pattern" yaml:"pattern"`
	Cadence time.Duration `json:"-" yaml:"-"`
}

// SourceKind says which layer a value came from.
type SourceKind string

const (
	SourceFlag    SourceKind = "flag"
	SourceEnv     SourceKind = "env"
	SourceFile    SourceKind = "file"
	SourceDefault SourceKind = "default"
)

// Source is where a value came from, e.g. {env, PLANA_API_URL}.
type Source struct {
	Kind   SourceKind `json:"kind" yaml:"kind"`
	Detail string     `json:"detail,omitempty" yaml:"detail,omitempty"`
}

func (s Source) String() string {
	if s.Detail == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + " " + s.Detail
}

// Options say where Load looks.
type Options struct {
	// Flags may carry "profile" and "api-url"; only flags the user set count.
	Flags *pflag.FlagSet
	// Path overrides the config file location.
	Path string
	// Getenv is the environment every layer reads; os.Getenv when nil.
	Getenv func(string) string
}

// Config is the resolved configuration of one profile.
type Config struct {
	profile       string
	profileSource Source
	path          string
	doc           map[string]any // the whole file
	section       map[string]any // this profile's part, flattened keys
	flags         *pflag.FlagSet
	getenv        func(string) string
	v             *viper.Viper

	apiURL       string
	pollInterval time.Duration
	cadence      time.Duration
	quietPeriod  time.Duration
	overrides    []Override
}

// profileRe has no counted repetition: `{0,62}` compiles to 62 copies at
// every plana start; the length is checked apart (validProfile).
var profileRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func validProfile(p string) bool { return len(p) <= 63 && profileRe.MatchString(p) }

// Load reads the file and resolves every setting, failing with the name of
// the offending key on any unknown key or bad value.
func Load(o Options) (*Config, error) {
	c := &Config{flags: o.Flags, getenv: o.Getenv, path: o.Path}
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	if c.path == "" {
		dir, err := configDir(c.getenv)
		if err != nil {
			return nil, err
		}
		c.path = filepath.Join(dir, "config.yaml")
	}
	c.profile, c.profileSource = DefaultProfile, Source{Kind: SourceDefault}
	if f := c.flag("profile"); f != nil {
		c.profile, c.profileSource = f.Value.String(), Source{SourceFlag, "--profile"}
	} else if p := c.getenv("PLANA_PROFILE"); p != "" {
		c.profile, c.profileSource = p, Source{SourceEnv, "PLANA_PROFILE"}
	}
	if !validProfile(c.profile) {
		return nil, fmt.Errorf("invalid profile name %q (from %s): use lower-case letters, digits, '-' and '_'", c.profile, c.profileSource)
	}
	if err := c.readFile(); err != nil {
		return nil, err
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) flag(name string) *pflag.Flag {
	if c.flags == nil {
		return nil
	}
	if f := c.flags.Lookup(name); f != nil && f.Changed {
		return f
	}
	return nil
}

func (c *Config) readFile() error {
	c.doc = map[string]any{}
	c.section = map[string]any{}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if err := yaml.Unmarshal(data, &c.doc); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", c.path, err)
	}
	if c.doc == nil {
		c.doc = map[string]any{}
	}
	for k := range c.doc {
		if k != "profiles" {
			return fmt.Errorf("config file %s: unknown top-level key %q; settings go under profiles.<name>, e.g. profiles.default.%s", c.path, k, k)
		}
	}
	profiles, ok := c.doc["profiles"].(map[string]any)
	if c.doc["profiles"] != nil && !ok {
		return fmt.Errorf("config file %s: profiles must be a map of profile name to settings", c.path)
	}
	raw, _ := profiles[c.profile].(map[string]any)
	flatten("", raw, c.section)
	for k := range c.section {
		if _, err := lookupSetting(k); err != nil {
			return fmt.Errorf("config file %s, profile %s: %w", c.path, c.profile, err)
		}
	}
	return nil
}

// flatten turns {rotation: {cadence: 2d}} into {"rotation.cadence": "2d"};
// lists (cadence_overrides) stay values.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

func (c *Config) resolve() error {
	c.v = viper.New()
	for _, s := range settings {
		c.v.SetDefault(s.key, s.def)
		c.bindEnv(s)
		if s.flag != "" && c.flags != nil {
			if f := c.flags.Lookup(s.flag); f != nil {
				if err := c.v.BindPFlag(s.key, f); err != nil {
					return err
				}
			}
		}
	}
	nested := map[string]any{}
	for k, v := range c.section {
		setNested(nested, strings.Split(k, "."), v)
	}
	if err := c.v.MergeConfigMap(nested); err != nil {
		return err
	}
	for _, s := range settings {
		if err := c.apply(s, c.v.Get(s.key)); err != nil {
			return fmt.Errorf("%s (from %s): %w", s.key, c.Source(s.key), err)
		}
	}
	return nil
}

func setNested(m map[string]any, parts []string, v any) {
	if len(parts) == 1 {
		m[parts[0]] = v
		return
	}
	sub, ok := m[parts[0]].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[parts[0]] = sub
	}
	setNested(sub, parts[1:], v)
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
	case kindOverrides:
		ov, err := parseOverrides(raw)
		if err != nil {
			return err
		}
		c.overrides = ov
	}
	return nil
}

func parseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q: want http(s)://host[:port]", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
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

// Profile is the profile in use.
func (c *Config) Profile() string { return c.profile }

// ProfileSource says how the profile was chosen.
func (c *Config) ProfileSource() Source { return c.profileSource }

// Path is the config file's location (which may not exist yet).
func (c *Config) Path() string { return c.path }

// APIURL is the BOS API's base URL, without a trailing slash.
func (c *Config) APIURL() string { return c.apiURL }

// PollInterval is the interval between polls while waiting.
func (c *Config) PollInterval() time.Duration { return c.pollInterval }

// Cadence is the default rotation cadence.
func (c *Config) Cadence() time.Duration { return c.cadence }

// QuietPeriod is the configured quiet period; ok is false when unset, in
// which case callers suggest one from the execution log.
func (c *Config) QuietPeriod() (d time.Duration, ok bool) { return c.quietPeriod, c.quietPeriod > 0 }

// CadenceOverrides are the per-name cadences, in the order they are tried.
func (c *Config) CadenceOverrides() []Override { return slices.Clone(c.overrides) }

// CadenceFor is the cadence of the key named name: the first override whose
// pattern matches, else the default cadence.
func (c *Config) CadenceFor(name string) time.Duration {
	for _, o := range c.overrides {
		if ok, _ := path.Match(o.Pattern, name); ok {
			return o.Cadence
		}
	}
	return c.cadence
}

// Get returns a setting's value as text, as `config get` prints it.
func (c *Config) Get(key string) (string, error) {
	s, err := lookupSetting(key)
	if err != nil {
		return "", err
	}
	switch s.key {
	case KeyAPIURL:
		return c.apiURL, nil
	case KeyPollInterval:
		return FormatDuration(c.pollInterval), nil
	case KeyCadence:
		return FormatDuration(c.cadence), nil
	case KeyQuietPeriod:
		if c.quietPeriod == 0 {
			return "", nil
		}
		return FormatDuration(c.quietPeriod), nil
	default:
		parts := make([]string, len(c.overrides))
		for i, o := range c.overrides {
			parts[i] = o.Pattern + "=" + FormatDuration(o.Cadence)
		}
		return strings.Join(parts, ","), nil
	}
}

// Source says where the value of key came from.
func (c *Config) Source(key string) Source {
	s, err := lookupSetting(key)
	if err != nil {
		return Source{}
	}
	if s.flag != "" && c.flag(s.flag) != nil {
		return Source{SourceFlag, "--" + s.flag}
	}
	if c.getenv(s.env) != "" {
		return Source{SourceEnv, s.env}
	}
	if _, ok := c.section[s.key]; ok {
		return Source{SourceFile, c.path}
	}
	return Source{Kind: SourceDefault}
}

// Set validates value and writes it to this profile in the config file,
// atomically and readable only by the user; an empty value removes the
// setting. Flags and env still win over the file.
func (c *Config) Set(key, value string) error {
	s, err := lookupSetting(key)
	if err != nil {
		return err
	}
	check := *c
	if value != "" {
		if err := check.apply(s, value); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	var stored any = value
	if s.kind == kindOverrides {
		ov, _ := parseOverrides(value)
		list := make([]any, len(ov))
		for i, o := range ov {
			list[i] = map[string]any{"pattern": o.Pattern, "cadence": FormatDuration(o.Cadence)}
		}
		stored = list
	}
	profiles, _ := c.doc["profiles"].(map[string]any)
	if profiles == nil {
		profiles = map[string]any{}
		c.doc["profiles"] = profiles
	}
	section, _ := profiles[c.profile].(map[string]any)
	if section == nil {
		section = map[string]any{}
		profiles[c.profile] = section
	}
	if value == "" {
		deleteNested(section, strings.Split(key, "."))
	} else {
		setNested(section, strings.Split(key, "."), stored)
	}
	if err := c.write(); err != nil {
		return err
	}
	if value == "" {
		delete(c.section, key)
	} else {
		c.section[key] = stored
	}
	return c.resolve()
}

func deleteNested(m map[string]any, parts []string) {
	if len(parts) == 1 {
		delete(m, parts[0])
		return
	}
	if sub, ok := m[parts[0]].(map[string]any); ok {
		deleteNested(sub, parts[1:])
		if len(sub) == 0 {
			delete(m, parts[0])
		}
	}
}

func (c *Config) write() error {
	data, err := yaml.Marshal(c.doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	if err := atomicfile.WriteFile(c.path, data, 0o600); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}
