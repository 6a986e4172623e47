package config

import (
	"errors"
	"os"
	"path/filepath"
)

// ConfigDir is $XDG_CONFIG_HOME/plana, else ~/.config/plana.
func ConfigDir() (string, error) { return configDir(os.Getenv) }

func configDir(getenv func(string) string) (string, error) {
	return xdgDir(getenv, "XDG_CONFIG_HOME", ".config")
}

func stateDir(getenv func(string) string) (string, error) {
	return xdgDir(getenv, "XDG_STATE_HOME", filepath.Join(".local", "state"))
}

// xdgDir follows the XDG base directory spec, which says a relative value
// is invalid and must be ignored.
func xdgDir(getenv func(string) string, env, fallback string) (string, error) {
	if d := getenv(env); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "plana"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", errors.New("cannot find the home directory: set HOME or " + env)
		}
	}
	return filepath.Join(home, fallback, "plana"), nil
}
