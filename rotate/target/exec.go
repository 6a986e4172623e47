package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// defaultExecTimeout is how long an exec: target may run when no
// --exec-timeout is given.
const defaultExecTimeout = 2 * time.Minute

// execTarget is exec:CMD: CMD is run for each step with the new key on its
// stdin and the step in PLANA_STEP. It cannot be read back.
type execTarget struct {
	spec    Spec
	timeout time.Duration
	warn    func(string) // where CMD's stderr is shown when it fails
}

func (t execTarget) String() string { return t.spec.String() }

// Readable is false: what CMD did with the key is its own.
func (execTarget) Readable() bool { return false }

// Check has nothing to check before CMD runs.
func (execTarget) Check(context.Context, Keys) error { return nil }

// Read cannot serve: a command's destination is not read back.
func (execTarget) Read(context.Context) (Held, error) { return Held{}, ErrWriteOnly }

// Deploy runs CMD with PLANA_STEP=deploy.
func (t execTarget) Deploy(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "deploy", true); err != nil {
		return "", err
	}
	return "deployed to " + t.String(), nil
}

// Finalize runs CMD with PLANA_STEP=finalize.
func (t execTarget) Finalize(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "finalize", true); err != nil {
		return "", err
	}
	return fmt.Sprintf("ran %s with PLANA_STEP=finalize", t), nil
}

// Abort runs CMD with PLANA_STEP=abort: the key on its stdin when this
// machine holds it, else nothing, and its prefix in PLANA_KEY_PREFIX either
// way.
func (t execTarget) Abort(ctx context.Context, k Keys) (string, error) {
	if err := t.run(ctx, k, "abort", false); err != nil {
		return "", err
	}
	return fmt.Sprintf("ran %s with PLANA_STEP=abort", t), nil
}

// run runs CMD for step; needKey makes a plaintext this machine does not
// hold an error.
func (t execTarget) run(ctx context.Context, k Keys, step string, needKey bool) error {
	key, err := k.Plaintext(ctx)
	if err != nil && needKey {
		return err
	}
	return runExec(ctx, t.spec.Arg, key, t.timeout, stepEnv(k, step), t.warn)
}

// stepEnv is what an exec: target learns of the rotation from its
// environment (the plaintext goes on its stdin only): which step it is run
// for, and the keys' names and public prefixes.
func stepEnv(k Keys, step string) []string {
	name := k.Old.Name
	env := []string{"PLANA_STEP=" + step, "PLANA_OLD_KEY_PREFIX=" + k.Old.Prefix}
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
func runExec(ctx context.Context, cmd, key string, timeout time.Duration, env []string, warn func(string)) error {
	if timeout <= 0 {
		timeout = defaultExecTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(runCtx, "sh", "-c", cmd)
	c.Stdin = strings.NewReader(key + "\n")
	c.Stdout = io.Discard
	var tail tailBuffer
	c.Stderr = &tail
	c.Env = append(secret.ChildEnv(), env...)
	c.WaitDelay = 5 * time.Second
	ownProcessGroup(c)
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
