package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/plana-cli/plana/client"
)

// Tool is a secret store's command-line program (pass, sops) that plana
// runs as a child: secrets go to it on stdin only, never in its arguments
// or its environment, and the environment it gets is ChildEnv's.
type Tool struct {
	Path string // as found on PATH
	Dir  string // its working directory; empty: plana's
}

// FindTool finds name on PATH; install says how to get it when it is not
// there.
func FindTool(name, install string) (Tool, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return Tool{}, fmt.Errorf("%s is not installed or not on PATH: %s", name, install)
	}
	return Tool{Path: p}, nil
}

// ToolError is a tool that exited with an error: what it was asked to do
// and the end of what it said on stderr, with anything that was on its
// stdin (and anything shaped like a key) cut out.
type ToolError struct {
	Tool     string
	Args     []string
	ExitCode int
	Stderr   string
}

func (e *ToolError) Error() string {
	msg := fmt.Sprintf("%s %s exited with status %d", e.Tool, strings.Join(e.Args, " "), e.ExitCode)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Run runs the tool with args, stdin on its standard input, and returns
// its standard output. The context's end kills it and whatever it started.
func (t Tool) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Dir = t.Dir
	cmd.Env = ChildEnv()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	OwnProcessGroup(cmd)
	err := cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s: %w", filepath.Base(t.Path), args[0], ctx.Err())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, fmt.Errorf("running %s: %w", t.Path, err)
	}
	return nil, &ToolError{
		Tool: filepath.Base(t.Path), Args: args, ExitCode: exit.ExitCode(),
		Stderr: scrub(lastLines(errb.String(), 5), stdin),
	}
}

// lastLines keeps the end of a tool's stderr: the error is there.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// scrub cuts out of text every line of what the tool read on stdin (a
// tool may echo its input in an error) and everything shaped like a key.
func scrub(text string, stdin []byte) string {
	for _, l := range strings.Split(string(stdin), "\n") {
		if l = strings.TrimSpace(l); len(l) >= 8 {
			text = strings.ReplaceAll(text, l, "[stdin]")
		}
	}
	return client.Redact(text)
}
