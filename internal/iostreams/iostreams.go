// Package iostreams carries the three standard streams plus what plana needs
// to know about them: which are terminals, whether colour is wanted, and how
// to prompt. Data goes to Out, progress, prompts and hints to ErrOut, so that
// `plana keys list -o json | jq` never sees a spinner.
package iostreams

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"golang.org/x/term"
)

// ErrNoTTY is returned by prompts when the process cannot ask anybody.
var ErrNoTTY = errors.New("cannot prompt: not running interactively")

// IOStreams is the process's standard streams with their terminal facts.
type IOStreams struct {
	In  io.Reader
	Out io.Writer
	// ErrOut is written from more than one goroutine (the spinner, notify
	// hooks' warnings): a writer put here must be safe for that, as
	// os.Stderr and Test's are.
	ErrOut io.Writer

	stdinTTY, stdoutTTY, stderrTTY bool
	colorEnabled                   bool

	// outWidth and errWidth measure the terminal stdout and stderr are, in
	// cells, 0 when unknown. They are asked each time, as terminals resize.
	outWidth, errWidth func() int

	// readSecret reads one line without echo. On a real terminal it is
	// term.ReadPassword; in tests it reads a line from In.
	readSecret func() (string, error)
	inReader   *bufio.Reader
}

// System returns the process's streams. Colour is on only when stdout is a
// terminal, NO_COLOR is unset (https://no-color.org) and TERM is not "dumb".
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	s.colorEnabled = s.stdoutTTY && ColorAllowed(os.Getenv)
	s.outWidth, s.errWidth = fileWidth(os.Stdout, s.stdoutTTY), fileWidth(os.Stderr, s.stderrTTY)
	fd := int(os.Stdin.Fd())
	s.readSecret = func() (string, error) {
		b, err := term.ReadPassword(fd)
		return string(b), err
	}
	return s
}

// ColorAllowed applies the environment's vetoes on colour.
func ColorAllowed(getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

func fileWidth(f *os.File, tty bool) func() int {
	return func() int {
		if !tty {
			return 0
		}
		w, _, err := term.GetSize(int(f.Fd()))
		if err != nil || w <= 0 {
			return 0
		}
		return w
	}
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Test returns streams backed by buffers, none of them a terminal; flip the
// TTY flags with the setters to exercise terminal behaviour.
func Test() (ios *IOStreams, in *bytes.Buffer, out *bytes.Buffer, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	ios = &IOStreams{In: in, Out: out, ErrOut: &lockedWriter{w: errOut}}
	ios.readSecret = func() (string, error) {
		line, err := ios.reader().ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	return ios, in, out, errOut
}

// lockedWriter serialises writes to a writer that is not safe for
// concurrent use, such as Test's buffers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *IOStreams) reader() *bufio.Reader {
	if s.inReader == nil {
		s.inReader = bufio.NewReader(s.In)
	}
	return s.inReader
}

func (s *IOStreams) IsStdinTTY() bool       { return s.stdinTTY }
func (s *IOStreams) IsStdoutTTY() bool      { return s.stdoutTTY }
func (s *IOStreams) IsStderrTTY() bool      { return s.stderrTTY }
func (s *IOStreams) SetStdinTTY(v bool)     { s.stdinTTY = v }
func (s *IOStreams) SetStdoutTTY(v bool)    { s.stdoutTTY = v }
func (s *IOStreams) SetStderrTTY(v bool)    { s.stderrTTY = v }
func (s *IOStreams) ColorEnabled() bool     { return s.colorEnabled }
func (s *IOStreams) SetColorEnabled(v bool) { s.colorEnabled = v }

// TerminalWidth is the width in cells of the terminal stdout is, 0 when
// stdout is not a terminal or its width cannot be read: callers then leave
// lines whole.
func (s *IOStreams) TerminalWidth() int { return width(s.outWidth) }

// StderrWidth is TerminalWidth for stderr, where progress is drawn.
func (s *IOStreams) StderrWidth() int { return width(s.errWidth) }

// SetTerminalWidth fixes the width both streams report, for tests.
func (s *IOStreams) SetTerminalWidth(w int) {
	s.outWidth = func() int { return w }
	s.errWidth = s.outWidth
}

func width(f func() int) int {
	if f == nil {
		return 0
	}
	return f()
}

// CanPrompt reports whether someone can answer: prompts are written to
// ErrOut and read from In, so both must be terminals. Stdout may be piped.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// PromptSecret asks for a value without echoing it.
func (s *IOStreams) PromptSecret(label string) (string, error) {
	if !s.CanPrompt() {
		return "", ErrNoTTY
	}
	fmt.Fprint(s.ErrOut, label)
	v, err := s.readSecret()
	// ReadPassword swallows the user's Enter; end the prompt line ourselves.
	fmt.Fprintln(s.ErrOut)
	if err != nil {
		return "", fmt.Errorf("reading input: %w", err)
	}
	return v, nil
}

// Confirm asks a yes/no question; an empty answer means def.
func (s *IOStreams) Confirm(question string, def bool) (bool, error) {
	if !s.CanPrompt() {
		return false, ErrNoTTY
	}
	hint := "y/N"
	if def {
		hint = "Y/n"
	}
	for {
		fmt.Fprintf(s.ErrOut, "%s [%s] ", question, hint)
		line, err := s.reader().ReadString('\n')
		if err != nil && line == "" {
			return false, fmt.Errorf("reading answer: %w", err)
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(s.ErrOut, "Please answer y or n.")
		if err != nil {
			return false, fmt.Errorf("reading answer: %w", err)
		}
	}
}

// ReadAll reads the whole of In, for --with-token style input.
func (s *IOStreams) ReadAll() (string, error) {
	b, err := io.ReadAll(io.LimitReader(s.reader(), 1<<16))
	return string(b), err
}
