package root

import (
	"fmt"
	"strings"

	"github.com/olekukonko/tablewriter/pkg/twwarp"
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
)

// helpWidth is how wide a help topic's lines may be: its man page sets them
// in by 8 columns, as written, and 72 more fit a terminal of 80.
const helpWidth = 72

const exitCodesHelp = `plana's exit status tells scripts what happened:

  0    done
  1    error
  2    usage or configuration: unknown command, bad flag or argument;
       a config file that cannot be read, is not YAML or holds an
       unknown key; a setting plana cannot use, from a flag, the
       environment or the file (an api_url with a path, or plain http
       to a host that is not loopback)
  3    gate not met yet / work pending: run the same command again
       later (e.g. "plana keys rotate KEY --no-wait --yes" from cron
       until it exits 0)
  4    not authenticated: no token anywhere, BOS refused it, or the
       stored token is bound to another API (Try: plana auth login)
  5    keys are due for rotation ("plana keys due")
  6    suspicious calls found: "plana keys audit" flagged calls the
       keys' owners did not make (with --rotate: unless a rotation
       failed, 1, or still waits for its new key in use, 3)
  130  interrupted (Ctrl-C)
`

func environmentHelp() string {
	paras := []string{
		`PLANA_TOKEN: a BOS management key (scope keys:manage). It takes precedence over the ` +
			`token stored by "plana auth login" in the OS keyring; use it in CI and cron. Unlike the ` +
			`stored token, it is not bound to one API: plana sends it to whatever api_url says.`,
		`PLANA_PROFILE: the profile to use when --profile is not given (default "default"). ` +
			`Each profile has its own settings in the config file and its own keyring token.`,
		`Settings, each also readable from the config file (precedence: flag, environment, ` +
			`config file, default; "plana config list" shows where each value came from):`,
	}
	for _, k := range config.Keys() {
		env, def, help := config.Help(k)
		if def == "" {
			def = "unset"
		}
		paras = append(paras, fmt.Sprintf("%s (%s, default %s): %s", env, k, def, help))
	}
	paras = append(paras,
		`PLANA_KEYRING_TIMEOUT: how long to wait for the OS keyring before giving up (default 3s).`,
		`XDG_CONFIG_HOME: the config file is $XDG_CONFIG_HOME/plana/config.yaml `+
			`(default ~/.config/plana/config.yaml).`,
		`XDG_STATE_HOME: rotation journals and the rotation log live in $XDG_STATE_HOME/plana `+
			`(default ~/.local/state/plana).`,
		`NO_COLOR: set to anything to disable colour. Colour is also off when stdout is not a `+
			`terminal or TERM is "dumb".`)
	var b strings.Builder
	for i, p := range paras {
		if i > 0 {
			b.WriteString("\n")
		}
		lines, _ := twwarp.WrapString(p, helpWidth)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

// newHelpTopic is a command without Run: cobra lists it under "Additional
// help topics" and `plana help NAME` prints its text.
func newHelpTopic(name, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Long:  long,
	}
}

// helpTopicArgs accepts `plana help [COMMAND...]` only for a command or
// topic that exists.
func helpTopicArgs(c *cobra.Command, args []string) error {
	target, rest, err := c.Root().Find(args)
	if err == nil && len(rest) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown help topic %q", strings.Join(args, " "))
	if target != nil && len(rest) > 0 {
		if s := target.SuggestionsFor(rest[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
	}
	return cmdutil.FlagErrorf("%s\n\nRun '%s help' for the commands and help topics.", msg, c.Root().CommandPath())
}
