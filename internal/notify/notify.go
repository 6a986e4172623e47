package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// Defaults of a Notifier.
const (
	// DefaultTimeout bounds one run of a hook: a hook that hangs costs a
	// rotation nothing but a warning after this long.
	DefaultTimeout = 10 * time.Second
	// queueLen is how many events may wait for a slow hook before further
	// ones are dropped (with a warning) rather than slow the rotation down.
	queueLen  = 1024
	errorTail = 512
)

// Options configure a Notifier.
type Options struct {
	Timeout time.Duration // one run of a hook; 0: DefaultTimeout
	// Warn is told of a hook that failed, timed out or fell behind; nil:
	// stderr.
	Warn func(string)
}

// Notifier hands events to hooks. Each hook is run once per event, with the
// event's JSON line on its stdin, by a goroutine of its own that takes
// events in order; Notify never waits for a hook. One run per event (rather
// than one long-lived child reading many lines) keeps a hook that crashes or
// hangs from losing any event but its own, needs nothing of the hook but to
// read one line (`curl -d @-` will do), and leaves no child behind when
// plana stops. A nil *Notifier is valid and does nothing.
type Notifier struct {
	hooks []*hook
	opts  Options
}

type hook struct {
	cmd   string
	name  string // cmd as warnings show it: redacted
	queue chan Event
	done  chan struct{}
	// stop ends the run in progress and every one after it: Close's
	// deadline has passed.
	stop   context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

// ParseHook reads a --notify value: exec:CMD.
func ParseHook(s string) (string, error) {
	cmd, ok := strings.CutPrefix(s, "exec:")
	if !ok || strings.TrimSpace(cmd) == "" {
		return "", fmt.Errorf("unknown notify hook %q: use exec:CMD (CMD gets one JSON event per run on its stdin)", s)
	}
	return cmd, nil
}

// New starts a Notifier for the hooks specs (each exec:CMD). A command
// given twice (in the profile and on the command line) runs once per event.
// With no specs it returns nil, which does nothing.
func New(specs []string, opts Options) (*Notifier, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Warn == nil {
		opts.Warn = func(s string) { fmt.Fprintln(os.Stderr, "warning: "+s) }
	}
	n := &Notifier{opts: opts}
	seen := map[string]bool{}
	for _, s := range specs {
		cmd, err := ParseHook(s)
		if err != nil {
			return nil, err
		}
		if seen[cmd] {
			continue
		}
		seen[cmd] = true
		ctx, cancel := context.WithCancel(context.Background())
		h := &hook{cmd: cmd, name: client.Redact(cmd), queue: make(chan Event, queueLen), done: make(chan struct{}), stop: ctx, cancel: cancel}
		n.hooks = append(n.hooks, h)
		go n.serve(h)
	}
	return n, nil
}

// Notify queues e for every hook and returns at once.
func (n *Notifier) Notify(e Event) {
	if n == nil {
		return
	}
	for _, h := range n.hooks {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			continue
		}
		select {
		case h.queue <- e:
		default:
			n.opts.Warn(fmt.Sprintf("notify hook %q is falling behind: dropped the %s event of %s", h.name, e.Kind, client.Redact(string(e.Key.Prefix))))
		}
		h.mu.Unlock()
	}
}

// Close lets every hook finish the events queued so far, until ctx is done;
// then it stops them and warns of what was not delivered.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	for _, h := range n.hooks {
		h.mu.Lock()
		if !h.closed {
			h.closed = true
			close(h.queue)
		}
		h.mu.Unlock()
	}
	for _, h := range n.hooks {
		select {
		case <-h.done:
		case <-ctx.Done():
			left := len(h.queue)
			h.cancel()
			<-h.done
			if left > 0 {
				n.opts.Warn(fmt.Sprintf("notify hook %q: %d events not delivered before plana stopped", h.name, left))
			}
		}
	}
}

func (n *Notifier) serve(h *hook) {
	defer close(h.done)
	defer h.cancel()
	for e := range h.queue {
		if h.stop.Err() != nil {
			continue
		}
		if err := n.run(h, e); err != nil {
			n.opts.Warn(fmt.Sprintf("notify hook %q, %s event of %s: %v (the rotation goes on)", h.name, e.Kind, client.Redact(string(e.Key.Prefix)), err))
		}
	}
}

func (n *Notifier) run(h *hook, e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(h.stop, n.opts.Timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", h.cmd)
	c.Stdin = strings.NewReader(string(line) + "\n")
	c.Stdout = io.Discard
	var tail tailBuffer
	c.Stderr = &tail
	c.Env = secret.ChildEnv()
	// A child of the hook's shell may keep its output open after the shell
	// is killed; stop waiting for it soon after.
	c.WaitDelay = time.Second
	err = c.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", n.opts.Timeout)
	}
	if msg := strings.TrimSpace(client.Redact(string(tail.b))); msg != "" {
		return fmt.Errorf("%v: %s", err, msg)
	}
	return err
}

// tailBuffer keeps the last errorTail bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > errorTail {
		t.b = append([]byte(nil), t.b[len(t.b)-errorTail:]...)
	}
	return len(p), nil
}
