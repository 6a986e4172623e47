package cmdutil

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/plana-cli/plana/internal/iostreams"
)

// Output formats for -o.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
	FormatCSV   = "csv"
)

type formatValue struct {
	target  *string
	allowed []string
}

func (f *formatValue) String() string { return *f.target }
func (f *formatValue) Type() string   { return "format" }
func (f *formatValue) Set(s string) error {
	if !slices.Contains(f.allowed, s) {
		return fmt.Errorf("unsupported output format %q: use one of %s", s, strings.Join(f.allowed, ", "))
	}
	*f.target = s
	return nil
}

// AddOutputFlag adds -o/--output accepting formats, the first being the
// default. Any other value is a usage error that lists the accepted ones.
func AddOutputFlag(cmd *cobra.Command, target *string, formats ...string) {
	*target = formats[0]
	cmd.Flags().VarP(&formatValue{target: target, allowed: formats}, "output", "o",
		"output format: "+strings.Join(formats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return formats, cobra.ShellCompDirectiveNoFileComp
	})
}

// PrintObject writes v as JSON or YAML. Field names come from the json and
// yaml struct tags and are part of plana's contract with scripts.
func PrintObject(w io.Writer, format string, v any) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("format %q is not an object format", format)
}

// ListPrinter streams a list as JSON, YAML or CSV one item at a time, so
// memory stays flat however long the list.
type ListPrinter[T any] struct {
	w      io.Writer
	format string
	n      int
	csv    *csv.Writer
	header []string
	row    func(T) []string
}

// NewListPrinter writes items of type T to w in format; csvHeader and csvRow
// are used only for CSV.
func NewListPrinter[T any](w io.Writer, format string, csvHeader []string, csvRow func(T) []string) *ListPrinter[T] {
	p := &ListPrinter[T]{w: w, format: format, header: csvHeader, row: csvRow}
	if format == FormatCSV {
		p.csv = csv.NewWriter(w)
	}
	return p
}

// Add writes one item.
func (p *ListPrinter[T]) Add(item T) error {
	defer func() { p.n++ }()
	switch p.format {
	case FormatJSON:
		b, err := json.MarshalIndent(item, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if p.n == 0 {
			sep = "[\n  "
		}
		_, err = io.WriteString(p.w, sep+string(b))
		return err
	case FormatYAML:
		// A one-item sequence per item concatenates into one sequence.
		b, err := yaml.Marshal([]T{item})
		if err != nil {
			return err
		}
		_, err = p.w.Write(b)
		return err
	case FormatCSV:
		if p.n == 0 {
			if err := p.csv.Write(p.header); err != nil {
				return err
			}
		}
		if err := p.csv.Write(p.row(item)); err != nil {
			return err
		}
		p.csv.Flush()
		return p.csv.Error()
	}
	return fmt.Errorf("format %q is not a list format", p.format)
}

// Close ends the list; an empty list is still valid JSON, YAML or CSV.
func (p *ListPrinter[T]) Close() error {
	var err error
	switch p.format {
	case FormatJSON:
		if p.n == 0 {
			_, err = io.WriteString(p.w, "[]\n")
		} else {
			_, err = io.WriteString(p.w, "\n]\n")
		}
	case FormatYAML:
		if p.n == 0 {
			_, err = io.WriteString(p.w, "[]\n")
		}
	case FormatCSV:
		if p.n == 0 {
			err = p.csv.Write(p.header)
		}
		p.csv.Flush()
		if err == nil {
			err = p.csv.Error()
		}
	}
	return err
}

// TablePrinter prints rows for people on a terminal (aligned columns with a
// header) and tab-separated without a header otherwise, like gh.
type TablePrinter struct {
	ios     *iostreams.IOStreams
	headers []string
	rows    [][]string
}

// NewTablePrinter starts a table with the given column headers.
func NewTablePrinter(ios *iostreams.IOStreams, headers ...string) *TablePrinter {
	return &TablePrinter{ios: ios, headers: headers}
}

// AddRow adds one row; it must have as many fields as there are headers.
func (t *TablePrinter) AddRow(fields ...string) { t.rows = append(t.rows, fields) }

// Render writes the table to Out.
func (t *TablePrinter) Render() error {
	if !t.ios.IsStdoutTTY() {
		for _, r := range t.rows {
			if _, err := fmt.Fprintln(t.ios.Out, strings.Join(r, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	var buf bytes.Buffer
	// The two spaces between columns are one of padding and a one-space
	// separator: tablewriter repeats a padding string once per missing cell,
	// so a two-space padding overshoots, and cutting a coloured cell back
	// adds a stray reset code after it.
	table := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbolCustom("plana").WithColumn(" "),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.On, BetweenRows: tw.Off, ShowHeader: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.On),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: " ", Overwrite: true}),
		tablewriter.WithTrimSpace(tw.Off),
	)
	table.Header(t.headers)
	if err := table.Bulk(t.rows); err != nil {
		return err
	}
	if err := table.Render(); err != nil {
		return err
	}
	// Padding leaves spaces after the last column; they only get in the
	// way of copy and paste.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		trimmed := strings.TrimRight(line, " \n")
		if line == "" {
			continue
		}
		if _, err := fmt.Fprintln(t.ios.Out, trimmed); err != nil {
			return err
		}
	}
	return nil
}
