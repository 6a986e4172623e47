package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// Kinds of deploy target.
const (
	TargetNone    = ""
	TargetEnvFile = "env-file"
	TargetExec    = "exec"
	TargetStdout  = "stdout"
)

// Target is where step 2 hands the new key: "env-file:PATH", "exec:CMD" or
// "stdout".
type Target struct {
	Kind string
	Arg  string
}

func (t Target) String() string {
	if t.Arg == "" {
		return t.Kind
	}
	return t.Kind + ":" + t.Arg
}

// ParseTarget reads a --to value; "" is no target (the user deploys by hand).
func ParseTarget(s string) (Target, error) {
	switch {
	case s == "":
		return Target{}, nil
	case s == TargetStdout:
		return Target{Kind: TargetStdout}, nil
	case strings.HasPrefix(s, TargetEnvFile+":") && len(s) > len(TargetEnvFile)+1:
		return Target{Kind: TargetEnvFile, Arg: s[len(TargetEnvFile)+1:]}, nil
	case strings.HasPrefix(s, TargetExec+":") && strings.TrimSpace(s[len(TargetExec)+1:]) != "":
		return Target{Kind: TargetExec, Arg: s[len(TargetExec)+1:]}, nil
	}
	return Target{}, fmt.Errorf("unknown deploy target %q: use env-file:PATH, exec:CMD or stdout", s)
}

const (
	defaultExecTimeout = 2 * time.Minute
	stderrTail         = 2048
)

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > stderrTail {
		t.b = append([]byte(nil), t.b[len(t.b)-stderrTail:]...)
	}
	return len(p), nil
}

// runExec runs cmd through sh with key on its stdin only: never in argv or
// in the environment, where other processes of the machine could read it.
func runExec(ctx context.Context, cmd, key string, timeout time.Duration, env []string) error {
	if timeout <= 0 {
		timeout = defaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdin = strings.NewReader(key + "\n")
	c.Stdout = io.Discard
	var tail tailBuffer
	c.Stderr = &tail
	c.Env = append(execEnv(), env...)
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(client.Redact(strings.ReplaceAll(string(tail.b), key, client.PrefixOf(key)+"…")))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("deploy command %q failed (%v)%s", cmd, err, msg)
}

// execEnv is our environment minus the management key, which a deploy
// command has no business with.
func execEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PLANA_TOKEN=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// deployTo hands key to t. It reports whether anything changed.
// env is added to an exec: target's environment.
func deployTo(ctx context.Context, t Target, key string, out io.Writer, execTimeout time.Duration, env []string) (bool, error) {
	switch t.Kind {
	case TargetEnvFile:
		return EnvFile{Path: t.Arg}.Deploy(key)
	case TargetExec:
		return true, runExec(ctx, t.Arg, key, execTimeout, env)
	case TargetStdout:
		if out == nil {
			return false, errors.New("no output to print the key to")
		}
		_, err := io.Copy(out, bytes.NewBufferString(key+"\n"))
		return true, err
	}
	return false, nil
}
