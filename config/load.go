package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Options say where Load looks.
type Options struct {
	// Flags may carry "profile" and "api-url"; only flags the user set count.
	Flags *pflag.FlagSet
	// Path overrides the config file location.
	Path string
	// Getenv is the environment every layer reads; os.Getenv when nil.
	Getenv func(string) string
	// Hostname is machine_name's default; os.Hostname when nil.
	Hostname func() (string, error)
}

// profileRe has no counted repetition: `{0,62}` compiles to 62 copies at
// every plana start; the length is checked apart (validProfile).
var profileRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func validProfile(p string) bool { return len(p) <= 63 && profileRe.MatchString(p) }

// ErrInvalid is matched (errors.Is) by every error Load returns: a
// configuration plana cannot use, whatever is wrong with it (a bad value,
// an unknown key, a profile name, a file that cannot be read or is not
// YAML). The command layer maps them all to one exit code.
var ErrInvalid = errors.New("invalid configuration")

// invalidError marks an error of Load as ErrInvalid, keeping its message.
type invalidError struct{ err error }

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Load reads the file and resolves every setting, failing with the name of
// the offending key on any unknown key or bad value. Every error it returns
// is ErrInvalid.
func Load(o Options) (*Config, error) {
	c, err := load(o)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return nil, &invalidError{err}
	}
	return c, err
}

func load(o Options) (*Config, error) {
	c := &Config{flags: o.Flags, getenv: o.Getenv, path: o.Path, hostname: o.Hostname}
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	if c.hostname == nil {
		c.hostname = os.Hostname
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
	raw, ok := profiles[c.profile].(map[string]any)
	if p := profiles[c.profile]; p != nil && !ok {
		return fmt.Errorf("config file %s: profile %s must be a map of settings, e.g. profiles.%s.api_url: URL; got %v", c.path, c.profile, c.profile, p)
	}
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
			return &SettingError{Key: s.key, Source: c.Source(s.key), Err: err}
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
