package keys

import (
	"context"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/keys/rotation"
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

On a terminal, a name too long for the terminal's width is cut with "…"; piped,
and with -o json, yaml or csv, names are whole.

With -o json, yaml or csv the keys stream page by page, so even a workspace with
tens of thousands of keys lists in constant memory.`,
		Example: `  $ plana keys list
  $ plana keys list --status all -o json |
      jq '.[] | select(.rotation_due)'`,
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
	policy := rotation.PolicyOf(cfg)
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
				if err := p.Add(newKeyRecord(k, policy, now)); err != nil {
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
			records = append(records, newKeyRecord(k, policy, now))
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

// minNameWidth is as narrow as truncation makes the name column: below it
// names stop telling keys apart, and the line overflows instead.
const minNameWidth = 20

var keyTableHeaders = []string{"Name", "Prefix", "Scopes", "Created", "Created by", "Last used", "Age", "Status", "Rotation due"}

func renderKeyTable(ios *iostreams.IOStreams, records []KeyRecord, now time.Time) error {
	t := cmdutil.NewTablePrinter(ios, keyTableHeaders...)
	clean := make([]KeyRecord, len(records))
	for i, r := range records {
		clean[i] = r.clean()
	}
	records = clean
	if !ios.IsStdoutTTY() {
		for _, r := range records {
			t.AddRow(r.Name, r.Prefix, strings.Join(r.Scopes, ","), stamp(&r.CreatedAt), r.CreatedBy.Email,
				stamp(r.LastUsedAt), config.FormatDuration(now.Sub(r.CreatedAt).Truncate(time.Minute)), r.Status, stamp(r.RotationDueAt))
		}
		return t.Render()
	}
	cs := ios.ColorScheme()
	// Cells are laid out as plain text, and coloured only once the name is
	// cut to what the terminal leaves for it.
	type cell struct {
		text  string
		color func(string) string
	}
	rows := make([][]cell, len(records))
	for i, r := range records {
		lastUsed := "never"
		if r.LastUsedAt != nil {
			lastUsed = cmdutil.Ago(now, *r.LastUsedAt)
		}
		status := cell{r.Status, cs.Green}
		due := cell{text: "-"}
		if r.Status != client.StatusActive {
			status.color = cs.Gray
		} else if r.RotationDueAt != nil {
			if r.RotationDue {
				due = cell{"overdue " + cmdutil.FuzzyDuration(now.Sub(*r.RotationDueAt)), cs.Red}
			} else {
				due = cell{text: cmdutil.FuzzyAgo(now, *r.RotationDueAt)}
			}
		}
		rows[i] = []cell{{text: r.Name}, {text: r.Prefix}, {text: strings.Join(r.Scopes, ",")},
			{text: r.CreatedAt.UTC().Format(time.DateOnly)}, {text: r.CreatedBy.Email}, {text: lastUsed},
			{text: cmdutil.FuzzyDuration(now.Sub(r.CreatedAt))}, status, due}
	}
	if width := ios.TerminalWidth(); width > 0 {
		plain := make([][]string, len(rows))
		for i, row := range rows {
			for _, c := range row {
				plain[i] = append(plain[i], c.text)
			}
		}
		nameWidth := max(width-otherColumnsWidth(plain), minNameWidth)
		for _, row := range rows {
			row[0].text = runewidth.Truncate(row[0].text, nameWidth, "…")
		}
	}
	for _, row := range rows {
		fields := make([]string, len(row))
		for j, c := range row {
			fields[j] = c.text
			if c.color != nil {
				fields[j] = c.color(c.text)
			}
		}
		t.AddRow(fields...)
	}
	return t.Render()
}

// otherColumnsWidth is how many cells of a line every column but the first
// (the name) takes, with the two-space gap before each.
func otherColumnsWidth(rows [][]string) int {
	total := 0
	for j := 1; j < len(keyTableHeaders); j++ {
		w := runewidth.StringWidth(keyTableHeaders[j])
		for _, r := range rows {
			w = max(w, runewidth.StringWidth(r[j]))
		}
		total += 2 + w
	}
	return total
}
