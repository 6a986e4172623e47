package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plana-cli/plana/internal/atomicfile"
)

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
	stored, err := storedValue(s.kind, value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
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

// storedValue is value as the file keeps it: a list setting as a YAML list,
// anything else as the text given.
func storedValue(k kind, value string) (any, error) {
	switch k {
	case kindOverrides:
		ov, err := parseOverrides(value)
		list := make([]any, len(ov))
		for i, o := range ov {
			list[i] = map[string]any{"pattern": o.Pattern, "cadence": FormatDuration(o.Cadence)}
		}
		return list, err
	case kindTargets:
		rules, err := parseTargets(value)
		return targetsYAML(rules), err
	case kindAllow:
		rules, err := parseAllow(value)
		return allowYAML(rules), err
	case kindNotify:
		hooks, err := parseNotify(value)
		list := make([]any, len(hooks))
		for i, h := range hooks {
			list[i] = h
		}
		return list, err
	}
	return value, nil
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
