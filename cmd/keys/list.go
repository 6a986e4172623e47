package keys

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
)

// ListOptions of `plana keys list`.
type ListOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Client func() (*client.Client, error)
	Now    func() time.Time

	Status string
	Output string
}

// NewCmdList builds `plana keys list`.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Config: f.Config, Client: f.Client, Now: f.Now}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the workspace's API keys",
		Long: `List the workspace's API keys with their age, last use and rotation due date.

The due date is the creation date plus the rotation cadence (rotation.cadence, or the
first matching rotation.cadence_overrides pattern). Times are the server's.

With -o json, yaml or csv the keys stream page by page, so even a workspace with
tens of thousands of keys lists in constant memory.`,
		Example: `  $ plana keys list
  $ plana keys list --status all -o json | jq '.[] | select(.rotation_due)'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch opts.Status {
			case client.StatusActive, client.StatusRevoked, client.StatusAll:
			default:
				return cmdutil.FlagErrorf("invalid --status %q: use active, revoked or all", opts.Status)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Status, "status", client.StatusActive, "which keys: active, revoked or all")
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML, cmdutil.FormatCSV)
	return cmd
}

var csvHeader = []string{"id", "name", "prefix", "scopes", "status", "created_at", "created_by", "last_used_at", "revoked_at", "rotation_cadence", "rotation_due_at", "rotation_due"}

func csvRow(r KeyRecord) []string {
	due := "false"
	if r.RotationDue {
		due = "true"
	}
	return []string{r.ID, r.Name, r.Prefix, strings.Join(r.Scopes, " "), r.Status, stamp(&r.CreatedAt),
		r.CreatedBy.Email, stamp(r.LastUsedAt), stamp(r.RevokedAt), r.RotationCadence, stamp(r.RotationDueAt), due}
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func listRun(ctx context.Context, opts *ListOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	lo := client.ListKeysOptions{Status: opts.Status, PageSize: 1000}
	if opts.Output != cmdutil.FormatTable {
		p := cmdutil.NewListPrinter(opts.IO.Out, opts.Output, csvHeader, csvRow)
		err := c.ListKeysPages(ctx, lo, func(page []client.APIKey) error {
			now := serverNow(c, opts.Now)
			for _, k := range page {
				if err := p.Add(newKeyRecord(k, cfg, now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return p.Close()
	}

	var records []KeyRecord
	err = c.ListKeysPages(ctx, lo, func(page []client.APIKey) error {
		now := serverNow(c, opts.Now)
		for _, k := range page {
			records = append(records, newKeyRecord(k, cfg, now))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(records) == 0 {
		if opts.IO.IsStdoutTTY() {
			msg := "No active keys."
			if opts.Status != client.StatusActive {
				msg = "No keys."
			}
			_, err := opts.IO.ErrOut.Write([]byte(msg + "\n"))
			return err
		}
		return nil
	}
	return renderKeyTable(opts.IO, records, serverNow(c, opts.Now))
}

func renderKeyTable(ios *iostreams.IOStreams, records []KeyRecord, now time.Time) error {
	cs := ios.ColorScheme()
	tty := ios.IsStdoutTTY()
	t := cmdutil.NewTablePrinter(ios, "Name", "Prefix", "Scopes", "Created", "Created by", "Last used", "Age", "Status", "Rotation due")
	for _, r := range records {
		if !tty {
			t.AddRow(r.Name, r.Prefix, strings.Join(r.Scopes, ","), stamp(&r.CreatedAt), r.CreatedBy.Email,
				stamp(r.LastUsedAt), config.FormatDuration(now.Sub(r.CreatedAt).Truncate(time.Minute)), r.Status, stamp(r.RotationDueAt))
			continue
		}
		lastUsed := "never"
		if r.LastUsedAt != nil {
			lastUsed = cmdutil.FuzzyAgo(now, *r.LastUsedAt)
		}
		status := cs.Green(r.Status)
		due := "-"
		if r.Status != client.StatusActive {
			status = cs.Gray(r.Status)
		} else if r.RotationDueAt != nil {
			if r.RotationDue {
				due = cs.Red("overdue " + cmdutil.FuzzyDuration(now.Sub(*r.RotationDueAt)))
			} else {
				due = cmdutil.FuzzyAgo(now, *r.RotationDueAt)
			}
		}
		t.AddRow(r.Name, r.Prefix, strings.Join(r.Scopes, ","), r.CreatedAt.UTC().Format(time.DateOnly), r.CreatedBy.Email,
			lastUsed, cmdutil.FuzzyDuration(now.Sub(r.CreatedAt)), status, due)
	}
	return t.Render()
}
