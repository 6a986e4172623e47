package rotation

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/ref"
)

// WatchOptions of `plana keys watch`.
type WatchOptions struct {
	IO     *iostreams.IOStreams
	Client func() (*client.Client, error)

	Key          string
	PollInterval time.Duration
	Output       string
}

const defaultWatchPoll = 2 * time.Second

// NewCmdWatch builds `plana keys watch`.
func NewCmdWatch(f *cmdutil.Factory, runF func(context.Context, *WatchOptions) error) *cobra.Command {
	o := &WatchOptions{IO: f.IOStreams, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "watch KEY",
		Short: "Follow a revoked key's refused calls live: where it is still configured",
		Long: `Follow the calls that still present KEY after its revoke, as the execution log
records them: each is refused with 401, and its source IP, user agent and path say
where the key is still configured (the place you forgot). It starts with the calls
refused since the revoke, then prints each new one as it comes, until Ctrl-C, which
ends with the calls counted by source. For a key not revoked yet it waits for its
first refused call.`,
		Example: `  $ plana keys watch pa_live_AB7K2XYZ
  $ plana keys watch "Nightly stock sync (2025)" -o json | jq .source_ip`,
		Args: cmdutil.ExactArgs(1, "KEY"),
		RunE: func(c *cobra.Command, args []string) error {
			o.Key = args[0]
			if runF != nil {
				return runF(c.Context(), o)
			}
			return watchRun(c.Context(), o)
		},
	}
	durationFlag(cmd, &o.PollInterval, "poll-interval", "how often to read the execution log (default 2s)")
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd
}

// watchEvent is one line of `plana keys watch -o json`.
type watchEvent struct {
	At        time.Time `json:"at"`
	KeyPrefix string    `json:"key_prefix"`
	Status    int       `json:"status"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	SourceIP  string    `json:"source_ip"`
	UserAgent string    `json:"user_agent"`
}

func watchRun(ctx context.Context, o *WatchOptions) error {
	ios := o.IO
	api, k, err := resolveKey(ctx, o.Client, o.Key)
	if err != nil {
		return err
	}
	since := time.Now().UTC()
	if now, ok := api.ServerNow(); ok {
		since = now
	}
	if k.RevokedAt != nil {
		since = *k.RevokedAt
		fmt.Fprintf(ios.ErrOut, "Refused calls presenting %s, revoked %s; Ctrl-C to stop\n", keyLabel(ref.Of(*k)), k.RevokedAt.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(ios.ErrOut, "%s is still active: waiting for calls refused after its revoke; Ctrl-C to stop\n", keyLabel(ref.Of(*k)))
	}
	poll := o.PollInterval
	if poll <= 0 {
		poll = defaultWatchPoll
	}
	tally := gate.NewTally()
	enc := json.NewEncoder(ios.Out)
	err = gate.WatchRefused(ctx, api, k.ID, since, poll, func(e client.ExecutionLogEntry) error {
		tally.Add(e)
		if o.Output == cmdutil.FormatJSON {
			return enc.Encode(watchEvent{At: e.At.UTC(), KeyPrefix: e.KeyPrefix, Status: e.Status, Method: e.Method, Path: e.Path, SourceIP: e.SourceIP, UserAgent: e.UserAgent})
		}
		// Each field is whatever a caller sent: escaped, it can neither act
		// on the terminal nor forge a line or a column.
		_, err := fmt.Fprintf(ios.Out, "%s  %d  %s  %s  %s %s\n", e.At.UTC().Format(time.RFC3339), e.Status,
			textsafe.Clean(e.SourceIP), textsafe.Clean(e.UserAgent), textsafe.Clean(e.Method), textsafe.Clean(e.Path))
		return err
	})
	if err != nil {
		return mapErr(err)
	}
	printRefusedSummary(ios, tally.Sources())
	return nil
}

// printRefusedSummary ends a watch with the refused calls by source, on
// stderr so that -o json stays one event per line.
func printRefusedSummary(ios *iostreams.IOStreams, sources []gate.Source) {
	if len(sources) == 0 {
		fmt.Fprintln(ios.ErrOut, "No refused call.")
		return
	}
	fmt.Fprintln(ios.ErrOut, "Refused calls by source:")
	for _, s := range sources {
		fmt.Fprintf(ios.ErrOut, "  %s  %s  %s  ×%d  last %s\n", textsafe.Clean(s.SourceIP), textsafe.Clean(s.UserAgent), textsafe.Clean(s.Path),
			s.Calls, s.LastSeen.UTC().Format(time.RFC3339))
	}
}
