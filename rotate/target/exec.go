package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// defaultExecTimeout is how long an exec: target may run when no
// --exec-timeout is given.
const defaultExecTimeout = 2 * time.Minute

// execTarget is exec:CMD: CMD is run for each step with the new key on its
// stdin and the step in PLANA_STEP. It cannot be read back, and its
// finalize needs the key.
//
// With ab set it is exec-ab:CMD, a store that cannot be read back either
// (GitHub Actions secrets) but whose automation reads two slots, A and B,
// newest first: deploy puts the new key in the slot the old key is not in,
// finalize empties the old key's slot, abort the new key's. Only deploy
// gets the key; the other steps need none, so any machine can finish the
// rotation. PLANA_STEP=list prints the prefixes of the keys the slots hold
// (public, kept beside the secrets), which is how every write is checked
// and how another machine learns that the key was deployed.
type execTarget struct {
	spec    Spec
	timeout time.Duration
	warn    func(string) // where CMD's stderr is shown when it fails
	ab      bool
}

func (t execTarget) String() string { return t.spec.String() }

// Readable is false: what CMD did with the key is its own.
func (execTarget) Readable() bool { return false }

// KeyToFinalize is true for exec:, whose finalize moves the key into
// place, and false for exec-ab:, whose finalize only empties a slot.
func (t execTarget) KeyToFinalize() bool { return !t.ab }

// Check runs exec-ab's CMD with PLANA_STEP=list, so that a command that
// cannot reach its store is refused before anything is created; exec's has
// nothing to check before CMD runs.
func (t execTarget) Check(ctx context.Context, k Keys) error {
	if !t.ab {
		return nil
	}
	_, err := t.list(ctx, k)
	return err
}

// Read cannot serve: a command's destination is not read back.
func (execTarget) Read(context.Context) (Held, error) { return Held{}, ErrWriteOnly }

// Holds asks exec-ab's CMD which prefixes it holds; exec's cannot tell.
func (t execTarget) Holds(ctx context.Context, prefix string) (bool, error) {
	if !t.ab {
		return false, ErrWriteOnly
	}
	held, err := t.list(ctx, Keys{})
	return slices.Contains(held, prefix), err
}

// Deploy runs CMD with PLANA_STEP=deploy.
func (t execTarget) Deploy(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "deploy", true); err != nil {
		return "", err
	}
	if err := t.listed(ctx, k, "deploy", k.New.Prefix, ""); err != nil {
		return "", err
	}
	return "deployed to " + t.String(), nil
}

// Finalize runs CMD with PLANA_STEP=finalize.
func (t execTarget) Finalize(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "finalize", !t.ab); err != nil {
		return "", err
	}
	if err := t.listed(ctx, k, "finalize", k.New.Prefix, k.Old.Prefix); err != nil {
		return "", err
	}
	return fmt.Sprintf("ran %s with PLANA_STEP=finalize", t), nil
}

// Abort runs CMD with PLANA_STEP=abort: the key on its stdin when this
// machine holds it (never for exec-ab), else nothing, and its prefix in
// PLANA_KEY_PREFIX either way.
func (t execTarget) Abort(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "abort", false); err != nil {
		return "", err
	}
	if err := t.listed(ctx, k, "abort", "", k.New.Prefix); err != nil {
		return "", err
	}
	return fmt.Sprintf("ran %s with PLANA_STEP=abort", t), nil
}

// run runs CMD for step; needKey makes a plaintext this machine does not
// hold an error. exec-ab gets the key at deploy only.
func (t execTarget) run(ctx context.Context, k Keys, step string, needKey bool) error {
	var key string
	if !t.ab || step == "deploy" {
		var err error
		if key, err = k.Plaintext(ctx); err != nil && needKey {
			return err
		}
	}
	return runExec(ctx, t.spec.Arg, key, t.timeout, stepEnv(k, step), t.warn, nil)
}

// listed checks, for exec-ab, what PLANA_STEP=list says after step: the
// slots must hold the key with prefix want (unless "") and not the one
// with prefix gone (unless "").
func (t execTarget) listed(ctx context.Context, k Keys, step, want, gone string) error {
	if !t.ab {
		return nil
	}
	held, err := t.list(ctx, k)
	if err != nil {
		return fmt.Errorf("%s: checking the %s: %w", t, step, err)
	}
	switch {
	case want != "" && !slices.Contains(held, want):
		return fmt.Errorf("%s: after the %s, PLANA_STEP=list does not name the new key %s (it names %s): the command must record the prefix of each key it stores and print them for PLANA_STEP=list (docs/targets.md)",
			t, step, want, listNames(held))
	case gone != "" && slices.Contains(held, gone):
		return fmt.Errorf("%s: after the %s, PLANA_STEP=list still names %s: the command must empty that key's slot", t, step, gone)
	}
	return nil
}

func listNames(held []string) string {
	if len(held) == 0 {
		return "none"
	}
	return strings.Join(held, ", ")
}

// maxList is the most output PLANA_STEP=list may print.
const maxList = 64 << 10

// list runs CMD with PLANA_STEP=list and reads the key prefixes it prints,
// one a line. Anything else it prints is refused without being repeated,
// since it could be a key.
func (t execTarget) list(ctx context.Context, k Keys) ([]string, error) {
	var out limitedBuffer
	out.max = maxList
	if err := runExec(ctx, t.spec.Arg, "", t.timeout, stepEnv(k, "list"), t.warn, &out); err != nil {
		return nil, err
	}
	if out.over {
		return nil, fmt.Errorf("%s: PLANA_STEP=list printed more than %d bytes: it prints one key prefix a line", t, maxList)
	}
	var held []string
	for i, line := range strings.Split(out.b.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !client.IsPrefix(line) {
			return nil, fmt.Errorf("%s: line %d of what PLANA_STEP=list printed is not a key prefix (pa_live_ or pa_test_ and 8 characters): it prints the prefixes of the keys it holds, never a key", t, i+1)
		}
		held = append(held, line)
	}
	return held, nil
}

// limitedBuffer keeps what is written to it up to max bytes and notes
// whether more came.
type limitedBuffer struct {
	b    strings.Builder
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); len(p) > room {
		l.over = true
		p = p[:max(room, 0)]
	}
	l.b.Write(p)
	return len(p), nil
}

// stepEnv is what an exec: target learns of the rotation from its
// environment (the plaintext goes on its stdin only): which step it is run
// for, and the keys' names and public prefixes.
func stepEnv(k Keys, step string) []string {
	name := k.Old.Name
	env := []string{"PLANA_STEP=" + step}
	if k.Old.Prefix != "" {
		env = append(env, "PLANA_OLD_KEY_PREFIX="+k.Old.Prefix)
	}
	if k.New.ID != "" {
		name = k.New.Name
		env = append(env, "PLANA_KEY_PREFIX="+k.New.Prefix)
	}
	return append(env, "PLANA_KEY_NAME="+name)
}

// runExec runs cmd through sh with key on its stdin only: never in argv or
// in the environment, where other processes of the machine could read it.
// cmd runs in its own process group, and a timeout kills the whole group:
// killing sh alone left what it had started running.
//
// What cmd writes to stderr goes to warn alone, redacted, when it fails:
// the error (which the journal, -o json and notify hooks keep) holds only
// the exit status and plana's words. Redaction cannot catch a key a failing
// command printed base64-encoded (kubectl -o yaml), split or reversed, so
// nothing cmd wrote is ever stored.
//
// stdout, when not nil, gets what cmd prints (exec-ab's list); else it is
// dropped.
func runExec(ctx context.Context, cmd, key string, timeout time.Duration, env []string, warn func(string), stdout io.Writer) error {
	if timeout <= 0 {
		timeout = defaultExecTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(runCtx, "sh", "-c", cmd)
	c.Stdin = strings.NewReader(key + "\n")
	c.Stdout = io.Discard
	if stdout != nil {
		c.Stdout = stdout
	}
	var tail tailBuffer
	c.Stderr = &tail
	c.Env = append(secret.ChildEnv(), env...)
	c.WaitDelay = 5 * time.Second
	secret.OwnProcessGroup(c)
	err := c.Run()
	if err == nil {
		return nil
	}
	name := client.Redact(cmd)
	shown := ""
	if msg := tail.text(key); msg != "" && warn != nil {
		warn(fmt.Sprintf("deploy command %q failed; what it wrote to stderr, shown here only and never stored:", name))
		for _, l := range strings.Split(msg, "\n") {
			warn("  | " + l)
		}
		shown = "; its stderr is shown above, and kept nowhere"
	}
	switch {
	case ctx.Err() != nil:
		// Ctrl-C or the rotation's own deadline: the caller's reason.
		return fmt.Errorf("deploy command %q stopped: %w", name, ctx.Err())
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return fmt.Errorf("deploy command %q failed (%v)%s", name, err, shown)
}
