// Package version is `plana version`: the build's identity as stamped into
// package internal/build by -ldflags (the Makefile, .goreleaser.yaml).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/build"
	"github.com/plana-cli/plana/internal/iostreams"
)

// Info is the build's identity; its field names are part of -o json.
type Info struct {
	Version   string `json:"version" yaml:"version"`
	Commit    string `json:"commit" yaml:"commit"`
	Date      string `json:"date" yaml:"date"`
	GoVersion string `json:"go_version" yaml:"go_version"`
	Platform  string `json:"platform" yaml:"platform"`
}

// Current fills what -ldflags left unset from the Go build info, so a
// `go build` in a checkout still says which commit it is.
func Current() Info {
	i := Info{Version: build.Version, Commit: build.Commit, Date: build.Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	// internal/build's placeholders for "not stamped".
	if i.Version == "dev" {
		i.Version = ""
	}
	if i.Commit == "none" {
		i.Commit = ""
	}
	if i.Date == "unknown" {
		i.Date = ""
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// Options of `plana version`.
type Options struct {
	IO     *iostreams.IOStreams
	Output string
}

// NewCmdVersion builds `plana version`.
func NewCmdVersion(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print plana's version",
		Args:  cmdutil.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

func versionRun(opts *Options) error {
	i := Current()
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintObject(opts.IO.Out, opts.Output, i)
	}
	fmt.Fprintf(opts.IO.Out, "plana %s", i.Version)
	if i.Commit != "" {
		fmt.Fprintf(opts.IO.Out, " (%s", i.Commit)
		if i.Date != "" {
			fmt.Fprintf(opts.IO.Out, ", %s", i.Date)
		}
		fmt.Fprint(opts.IO.Out, ")")
	}
	fmt.Fprintf(opts.IO.Out, " %s %s\n", i.GoVersion, i.Platform)
	return nil
}
