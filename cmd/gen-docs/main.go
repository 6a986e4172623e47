// Command gen-docs writes plana's reference from the cobra command tree:
// markdown pages, man pages (section 1) and shell completion scripts.
//
//	go run ./cmd/gen-docs --markdown-dir docs/cli --man-dir docs/man
//	go run ./cmd/gen-docs --man-dir .release/man --completion-dir .release/completions
//
// The output depends only on the code: the committed docs are compared with
// a fresh generation by gen_docs_test.go. Man pages carry no date unless
// SOURCE_DATE_EPOCH is set (a release sets it to the commit's time).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/root"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// Options say where each kind of output goes; an empty directory skips it.
type Options struct {
	MarkdownDir   string
	ManDir        string
	CompletionDir string
	// ManDate is the man pages' header date; nil leaves it blank.
	ManDate *time.Time
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen-docs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.MarkdownDir, "markdown-dir", "", "write one markdown page per command and help topic here")
	fs.StringVar(&o.ManDir, "man-dir", "", "write man pages (section 1) here")
	fs.StringVar(&o.CompletionDir, "completion-dir", "", "write plana.bash, _plana (zsh), plana.fish and plana.ps1 here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (o.MarkdownDir == "" && o.ManDir == "" && o.CompletionDir == "") {
		fmt.Fprintln(stderr, "usage: gen-docs [--markdown-dir DIR] [--man-dir DIR] [--completion-dir DIR] (at least one)")
		return 2
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "SOURCE_DATE_EPOCH=%q: want seconds since 1970, e.g. $(git log -1 --format=%%ct)\n", v)
			return 2
		}
		d := time.Unix(sec, 0).UTC()
		o.ManDate = &d
	}
	if err := Generate(o); err != nil {
		fmt.Fprintln(stderr, "gen-docs:", err)
		return 1
	}
	return 0
}

// newRoot is the command tree exactly as `plana` builds it, with nothing
// taken from the machine: the factory's parts are never called while
// generating.
func newRoot() *cobra.Command {
	f := cmdutil.New(cmdutil.FactoryOptions{
		IOStreams: iostreams.System(),
		// Any non-empty version: it makes cobra add --version, as the binary has.
		Version: "docs",
		Secrets: func() (secret.Store, error) { return nil, errors.New("gen-docs uses no keyring") },
	})
	cmd := root.NewCmdRoot(f)
	// cobra adds --version only on Execute; the docs describe it too.
	cmd.InitDefaultVersionFlag()
	cmd.DisableAutoGenTag = true
	return cmd
}

// Generate writes the requested outputs, replacing earlier pages so that a
// removed command leaves no stale file behind.
func Generate(o Options) error {
	cmd := newRoot()
	if o.MarkdownDir != "" {
		if err := writeMarkdown(cmd, o.MarkdownDir); err != nil {
			return err
		}
	}
	if o.ManDir != "" {
		if err := writeMan(cmd, o.ManDir, o.ManDate); err != nil {
			return err
		}
	}
	if o.CompletionDir != "" {
		if err := writeCompletions(cmd, o.CompletionDir); err != nil {
			return err
		}
	}
	return nil
}

// commands is every command that gets a page, root first.
func commands(cmd *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{cmd}
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			out = append(out, commands(sub)...)
		}
	}
	return out
}

// helpTopics are read with `plana help NAME`. cobra's generators skip them
// in a tree, and on their own would give them flags and a synopsis they do
// not have, so they get pages of their own (topicMarkdown).
func helpTopics(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range cmd.Commands() {
		if sub.IsAdditionalHelpTopicCommand() {
			out = append(out, sub)
		}
	}
	return out
}

func cleanDir(dir, glob string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

func writeMarkdown(root *cobra.Command, dir string) error {
	if err := cleanDir(dir, "*.md"); err != nil {
		return err
	}
	for _, c := range commands(root) {
		var b bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &b, func(s string) string { return s }); err != nil {
			return err
		}
		if topics := helpTopics(c); len(topics) > 0 {
			b.WriteString("\n### Help topics\n\n")
			for _, t := range topics {
				fmt.Fprintf(&b, "* [%s](%s)\t - %s\n", topicPath(t), mdName(t), t.Short)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, mdName(c)), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	for _, t := range helpTopics(root) {
		page := fmt.Sprintf("## %s\n\n%s\n\n```\n%s```\n\n### SEE ALSO\n\n* [%s](%s)\t - %s\n",
			topicPath(t), t.Short, t.Long, root.Name(), mdName(root), root.Short)
		if err := os.WriteFile(filepath.Join(dir, mdName(t)), []byte(page), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func topicPath(t *cobra.Command) string { return t.Root().Name() + " help " + t.Name() }

func mdName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

func manName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
}

// noDate stands in for the header date when there is none; it is blanked
// out of the rendered .TH line.
var noDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func writeMan(root *cobra.Command, dir string, date *time.Time) error {
	if err := cleanDir(dir, "*.1"); err != nil {
		return err
	}
	d := noDate
	if date != nil {
		d = *date
	}
	for _, c := range commands(root) {
		h := &doc.GenManHeader{Section: "1", Source: "plana", Manual: "plana manual", Date: &d}
		var b bytes.Buffer
		if err := doc.GenMan(c, h, &b); err != nil {
			return err
		}
		if err := writeManPage(filepath.Join(dir, manName(c)), b.Bytes(), date == nil); err != nil {
			return err
		}
	}
	for _, t := range helpTopics(root) {
		// The same markdown cobra feeds md2man, with the text as written.
		src := fmt.Sprintf("%% %q \"1\" %q \"plana\" \"plana manual\"\n# NAME\n%s \\- %s\n\n# SYNOPSIS\n**%s**\n\n# DESCRIPTION\n```\n%s```\n\n# SEE ALSO\n**%s(1)**\n",
			strings.ToUpper(strings.TrimSuffix(manName(t), ".1")), d.Format("Jan 2006"),
			strings.TrimSuffix(manName(t), ".1"), t.Short, topicPath(t), t.Long, root.Name())
		if err := writeManPage(filepath.Join(dir, manName(t)), md2man.Render([]byte(src)), date == nil); err != nil {
			return err
		}
	}
	return nil
}

func writeManPage(path string, page []byte, blankDate bool) error {
	if blankDate {
		stamp := []byte(`" "` + noDate.Format("Jan 2006") + `" "`)
		i := bytes.Index(page, stamp)
		if i < 0 {
			return fmt.Errorf("%s: no header date to blank", path)
		}
		page = append(append(page[:i:i], `" "" "`...), page[i+len(stamp):]...)
	}
	return os.WriteFile(path, page, 0o644)
}

func writeCompletions(cmd *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(string) error{
		"plana.bash": func(p string) error { return cmd.GenBashCompletionFileV2(p, true) },
		"_plana":     cmd.GenZshCompletionFile,
		"plana.fish": func(p string) error { return cmd.GenFishCompletionFile(p, true) },
		"plana.ps1":  cmd.GenPowerShellCompletionFileWithDesc,
	} {
		if err := gen(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
