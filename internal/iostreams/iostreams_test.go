package iostreams

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"
)

func TestColorAllowed(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"plain", map[string]string{"TERM": "xterm-256color"}, true},
		{"NO_COLOR", map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, false},
		{"dumb terminal", map[string]string{"TERM": "dumb"}, false},
	}
	for _, tt := range tests {
		if got := ColorAllowed(env(tt.env)); got != tt.want {
			t.Errorf("%s: ColorAllowed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestColorSchemeOnlyWhenEnabled(t *testing.T) {
	ios, _, _, _ := Test()
	if got := ios.ColorScheme().Red("x"); got != "x" {
		t.Errorf("colour off: got %q", got)
	}
	ios.SetColorEnabled(true)
	if got := ios.ColorScheme().Red("x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("colour on: got %q", got)
	}
}

func TestPromptSecret(t *testing.T) {
	ios, in, _, errOut := Test()
	in.WriteString("hunter2\n")
	if _, err := ios.PromptSecret("Token: "); !errors.Is(err, ErrNoTTY) {
		t.Fatalf("without a TTY: err = %v, want ErrNoTTY", err)
	}
	ios.SetStdinTTY(true)
	ios.SetStderrTTY(true)
	got, err := ios.PromptSecret("Token: ")
	if err != nil || got != "hunter2" {
		t.Fatalf("PromptSecret = %q, %v", got, err)
	}
	if strings.Contains(errOut.String(), "hunter2") {
		t.Error("the prompt echoed the secret")
	}
	if !strings.HasPrefix(errOut.String(), "Token: ") {
		t.Errorf("prompt label missing: %q", errOut.String())
	}
}

func TestConfirm(t *testing.T) {
	tests := []struct {
		input string
		def   bool
		want  bool
	}{
		{"y\n", false, true},
		{"no\n", true, false},
		{"\n", true, true},
		{"\n", false, false},
		{"maybe\nyes\n", false, true},
	}
	for _, tt := range tests {
		ios, in, _, _ := Test()
		ios.SetStdinTTY(true)
		ios.SetStderrTTY(true)
		in.WriteString(tt.input)
		got, err := ios.Confirm("Revoke?", tt.def)
		if err != nil || got != tt.want {
			t.Errorf("Confirm(%q, %v) = %v, %v; want %v", tt.input, tt.def, got, err, tt.want)
		}
	}
	ios, _, _, _ := Test()
	if _, err := ios.Confirm("Revoke?", true); !errors.Is(err, ErrNoTTY) {
		t.Errorf("Confirm without a TTY: err = %v, want ErrNoTTY", err)
	}
}

func TestProgressNonTTYPrintsEachChangeOnce(t *testing.T) {
	ios, _, out, errOut := Test()
	p := ios.StartProgress("waiting for the new key")
	p.Update("waiting for the new key")
	p.Update("waiting for the old key to go quiet")
	p.Update("waiting for the old key to go quiet")
	p.Update("waiting for the new key")
	p.Stop()
	p.Stop()
	want := "waiting for the new key\nwaiting for the old key to go quiet\nwaiting for the new key\n"
	if errOut.String() != want {
		t.Errorf("progress lines:\n%q\nwant\n%q", errOut.String(), want)
	}
	if out.Len() != 0 {
		t.Errorf("progress wrote to stdout: %q", out.String())
	}
}

func TestProgressTTYSpinsAndClears(t *testing.T) {
	ios, _, _, errOut := Test()
	ios.SetStderrTTY(true)
	p := ios.StartProgress("first")
	p.Update("second")
	// Wait for a redraw showing the new text rather than sleeping blindly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		seen := strings.Contains(errOut.String(), "second")
		p.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("spinner never drew the updated text")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	s := errOut.String()
	if !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("spinner line not cleared at stop: %q", s)
	}
	if strings.Contains(s, "\n") {
		t.Errorf("spinner must redraw one line, found a newline: %q", s)
	}
}

func TestFitLine(t *testing.T) {
	tests := []struct {
		line  string
		width int
		want  string
	}{
		{"⠋ waiting", 80, "⠋ waiting"},
		{"⠋ waiting", 0, "⠋ waiting"},
		{"⠋ waiting for the old key to go quiet", 20, "⠋ waiting for the …"},
		{"⠋ 東京の鍵を待っています", 12, "⠋ 東京の鍵…"},
		{"⠋ café au lait", 10, "⠋ café a…"},
		{"⠋ two\nlines", 80, "⠋ two lines"},
	}
	for _, tt := range tests {
		got := fitLine(tt.line, tt.width)
		if got != tt.want {
			t.Errorf("fitLine(%q, %d) = %q, want %q", tt.line, tt.width, got, tt.want)
		}
		if tt.width > 0 && runewidth.StringWidth(got) >= tt.width {
			t.Errorf("fitLine(%q, %d) is %d cells wide, want less than %d", tt.line, tt.width, runewidth.StringWidth(got), tt.width)
		}
	}
}

// Every frame of the spinner fits the terminal, whatever the text; on a
// pipe the text stays whole for the log.
func TestProgressFitsTheTerminal(t *testing.T) {
	const width = 30
	text := "waiting for the old key 「夜間在庫同期」 to go quiet: last used 3 minutes ago from 203.0.113.7"
	ios, _, _, errOut := Test()
	ios.SetStderrTTY(true)
	ios.SetTerminalWidth(width)
	p := ios.StartProgress(text)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		frames := strings.Count(errOut.String(), "\r\x1b[K")
		p.mu.Unlock()
		if frames >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("spinner drew fewer than 2 frames in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	for _, frame := range strings.Split(errOut.String(), "\r\x1b[K") {
		if w := runewidth.StringWidth(frame); w >= width {
			t.Errorf("frame %q is %d cells wide on a %d-cell terminal", frame, w, width)
		}
		if frame != "" && !strings.HasSuffix(frame, "…") {
			t.Errorf("frame %q is cut without …", frame)
		}
	}

	ios, _, _, errOut = Test()
	ios.SetTerminalWidth(width)
	ios.StartProgress(text).Stop()
	if errOut.String() != text+"\n" {
		t.Errorf("on a pipe: %q, want the whole text", errOut.String())
	}
}
