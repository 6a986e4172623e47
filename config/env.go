package config

// StateDirFrom is $XDG_STATE_HOME/plana, else ~/.local/state/plana, read
// through getenv: rotation journals and the rotation log live there. The
// command Factory passes its own environment, so a test can name the
// directory without touching the process's.
func StateDirFrom(getenv func(string) string) (string, error) { return stateDir(getenv) }

// bindEnv is viper's env layer read through c.getenv, which viper cannot
// take: an override outranks the file and the default, as the env does. A
// flag the user set outranks the env, so then the env is left out.
func (c *Config) bindEnv(s setting) {
	if s.flag != "" && c.flag(s.flag) != nil {
		return
	}
	if v := c.getenv(s.env); v != "" {
		c.v.Set(s.key, v)
	}
}
