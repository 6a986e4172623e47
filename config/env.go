package config

// StateDirFrom is StateDir read through getenv rather than the process
// environment, so a caller carrying its own environment (the command
// Factory, a parallel test) gets the state directory that environment names.
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
