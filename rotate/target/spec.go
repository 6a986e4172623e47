package target

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Kinds of deploy target.
const (
	KindNone    = ""
	KindEnvFile = "env-file"
	KindExec    = "exec"
	KindStdout  = "stdout"
)

// Spec is a --to value read: "env-file:PATH", "exec:CMD" or "stdout".
type Spec struct {
	Kind string
	Arg  string
}

func (t Spec) String() string {
	if t.Arg == "" {
		return t.Kind
	}
	return t.Kind + ":" + t.Arg
}

// Parse reads a --to value; "" is no target (the user deploys by hand).
func Parse(s string) (Spec, error) {
	switch {
	case s == "":
		return Spec{}, nil
	case s == KindStdout:
		return Spec{Kind: KindStdout}, nil
	case strings.HasPrefix(s, KindEnvFile+":") && len(s) > len(KindEnvFile)+1:
		return Spec{Kind: KindEnvFile, Arg: s[len(KindEnvFile)+1:]}, nil
	case strings.HasPrefix(s, KindExec+":") && strings.TrimSpace(s[len(KindExec)+1:]) != "":
		return Spec{Kind: KindExec, Arg: s[len(KindExec)+1:]}, nil
	}
	return Spec{}, fmt.Errorf("unknown deploy target %q: use env-file:PATH, exec:CMD or stdout", s)
}

// Resolve makes an env-file target's path absolute against this run's
// working directory, so the journal names the file whichever directory the
// next run starts from (cron starts from $HOME).
func Resolve(s string) (string, error) {
	t, err := Parse(s)
	if err != nil || t.Kind != KindEnvFile || filepath.IsAbs(t.Arg) {
		return s, err
	}
	if t.Arg, err = filepath.Abs(t.Arg); err != nil {
		return "", fmt.Errorf("resolving the deploy target %s: %w", s, err)
	}
	return t.String(), nil
}
