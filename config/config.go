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
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultProfile is used when neither --profile nor PLANA_PROFILE is set.
const DefaultProfile = "default"

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
	targets      []TargetRule
	notify       []string
	machineName  string
	hostname     func() (string, error)
	allow        []AllowRule
}

// Profile is the profile in use.
func (c *Config) Profile() string { return c.profile }

// ProfileSource says how the profile was chosen.
func (c *Config) ProfileSource() Source { return c.profileSource }

// Path is the config file's location (which may not exist yet).
func (c *Config) Path() string { return c.path }

// APIURL is the BOS API's base URL, without a trailing slash.
func (c *Config) APIURL() string { return c.apiURL }

// MachineName is this machine's name: machine_name, else the host name made
// safe for a User-Agent (see MaxMachineName).
func (c *Config) MachineName() string { return c.machineName }

// PollInterval is the interval between polls while waiting.
func (c *Config) PollInterval() time.Duration { return c.pollInterval }

// Cadence is the default rotation cadence.
func (c *Config) Cadence() time.Duration { return c.cadence }

// QuietPeriod is the configured quiet period; ok is false when unset, in
// which case callers suggest one from the execution log.
func (c *Config) QuietPeriod() (d time.Duration, ok bool) { return c.quietPeriod, c.quietPeriod > 0 }

// CadenceOverrides are the per-name cadences, in the order they are tried.
func (c *Config) CadenceOverrides() []Override { return slices.Clone(c.overrides) }

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
	case KeyTargets:
		if len(c.targets) == 0 {
			return "", nil
		}
		return flowYAML(targetsYAML(c.targets)), nil
	case KeyMachineName:
		return c.machineName, nil
	case KeyNotify:
		if len(c.notify) == 0 {
			return "", nil
		}
		return flowYAML(c.notify), nil
	case KeyAuditAllow:
		if len(c.allow) == 0 {
			return "", nil
		}
		return flowYAML(allowYAML(c.allow)), nil
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
