package iostreams

// ColorScheme wraps text in ANSI colours when the streams allow colour and
// returns it unchanged otherwise.
type ColorScheme struct{ enabled bool }

// ColorScheme returns the scheme for s.
func (s *IOStreams) ColorScheme() ColorScheme { return ColorScheme{enabled: s.colorEnabled} }

func (c ColorScheme) wrap(code, t string) string {
	if !c.enabled || t == "" {
		return t
	}
	return "\x1b[" + code + "m" + t + "\x1b[0m"
}

func (c ColorScheme) Bold(t string) string   { return c.wrap("1", t) }
func (c ColorScheme) Red(t string) string    { return c.wrap("31", t) }
func (c ColorScheme) Green(t string) string  { return c.wrap("32", t) }
func (c ColorScheme) Yellow(t string) string { return c.wrap("33", t) }
func (c ColorScheme) Gray(t string) string   { return c.wrap("90", t) }

// SuccessIcon, WarningIcon and FailureIcon mark outcomes in human output.
func (c ColorScheme) SuccessIcon() string { return c.Green("✓") }
func (c ColorScheme) WarningIcon() string { return c.Yellow("!") }
func (c ColorScheme) FailureIcon() string { return c.Red("X") }
