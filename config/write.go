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
	var stored any = value
	if s.kind == kindOverrides {
		ov, _ := parseOverrides(value)
		list := make([]any, len(ov))
		for i, o := range ov {
			list[i] = map[string]any{"pattern": o.Pattern, "cadence": FormatDuration(o.Cadence)}
		}
		stored = list
	}
	switch s.kind {
	case kindTargets:
		rules, _ := parseTargets(value)
		stored = targetsYAML(rules)
	case kindAllow:
		rules, _ := parseAllow(value)
		stored = allowYAML(rules)
	case kindNotify:
		hooks, _ := parseNotify(value)
		list := make([]any, len(hooks))
		for i, h := range hooks {
			list[i] = h
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
