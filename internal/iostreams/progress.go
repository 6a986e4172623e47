package iostreams

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-runewidth"
)

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const spinnerInterval = 120 * time.Millisecond

// Progress reports what a long wait is waiting for. On a terminal it is a
// spinner redrawing one line of ErrOut; otherwise it prints one line each time
// the text changes, so a log of a cron run shows every state once.
type Progress struct {
	s    *IOStreams
	mu   sync.Mutex
	text string
	done chan struct{}
	wg   sync.WaitGroup
	stop sync.Once
}

// StartProgress shows text until Stop.
func (s *IOStreams) StartProgress(text string) *Progress {
	p := &Progress{s: s, done: make(chan struct{})}
	if !s.stderrTTY {
		p.Update(text)
		return p
	}
	p.text = text
	p.wg.Add(1)
	go p.spin()
	return p
}

// Update changes the text; on a non-terminal an unchanged text prints nothing.
func (p *Progress) Update(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if text == p.text {
		return
	}
	p.text = text
	if !p.s.stderrTTY {
		fmt.Fprintln(p.s.ErrOut, text)
	}
}

func (p *Progress) spin() {
	defer p.wg.Done()
	t := time.NewTicker(spinnerInterval)
	defer t.Stop()
	for i := 0; ; i++ {
		p.mu.Lock()
		fmt.Fprintf(p.s.ErrOut, "\r\x1b[K%s", fitLine(spinnerFrames[i%len(spinnerFrames)]+" "+p.text, p.s.StderrWidth()))
		p.mu.Unlock()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// Stop removes the spinner line. It is safe to call more than once.
func (p *Progress) Stop() {
	p.stop.Do(func() {
		close(p.done)
		p.wg.Wait()
		if p.s.stderrTTY {
			p.mu.Lock()
			fmt.Fprint(p.s.ErrOut, "\r\x1b[K")
			p.mu.Unlock()
		}
	})
}

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")

// fitLine makes line one terminal line of at most width-1 cells, cut with
// "…": a line that wraps leaves a copy of itself above the spinner at every
// redraw, since "\r\x1b[K" clears only the row the cursor is on. The last
// column stays free because some terminals wrap as soon as it is written.
// A width of 0 (unknown) leaves the line's length alone.
func fitLine(line string, width int) string {
	line = oneLine.Replace(line)
	if width <= 1 {
		return line
	}
	return runewidth.Truncate(line, width-1, "…")
}
