package target

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Kinds of deploy target.
const (
	KindEnvFile = "env-file"
	KindExec    = "exec"
	KindExecAB  = "exec-ab"
	KindStdout  = "stdout"
	KindK8s     = "k8s"
	KindAWSSM   = "aws-sm"
	KindAWSSSM  = "aws-ssm"
	KindSops    = "sops"
	KindPass    = "pass"
)

// Forms lists the --to forms, for usage messages.
const Forms = "env-file:PATH, exec:CMD, exec-ab:CMD, stdout, k8s:[CONTEXT@]NAMESPACE/NAME[?rollout=KIND/NAME], " +
	"aws-sm:SECRET_ID, aws-ssm:PATH, sops:PATH or pass:PATH"

// Spec is a --to value read: its kind, and what follows the kind's colon.
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

// argKinds are the kinds written KIND:ARG, ARG not empty.
var argKinds = []string{KindEnvFile, KindExec, KindExecAB, KindK8s, KindAWSSM, KindAWSSSM, KindSops, KindPass}

// Parse reads a --to value; "" is no target (the user deploys by hand).
// What follows the colon is checked as far as it can be without the store:
// a malformed k8s: or pass: path is a usage error, not a failed deploy.
func Parse(s string) (Spec, error) {
	switch {
	case s == "":
		return Spec{}, nil
	case s == KindStdout:
		return Spec{Kind: KindStdout}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || !slices.Contains(argKinds, kind) {
		return Spec{}, fmt.Errorf("unknown deploy target %q: use %s", s, Forms)
	}
	if strings.TrimSpace(arg) == "" {
		return Spec{}, fmt.Errorf("deploy target %q names nothing after %q: use %s", s, kind+":", Forms)
	}
	sp := Spec{Kind: kind, Arg: arg}
	if err := checkStore(sp); err != nil {
		return Spec{}, err
	}
	return sp, nil
}

// Resolve makes a target that names a file (env-file:, sops:) absolute
// against this run's working directory, so the journal names the file
// whichever directory the next run starts from (cron starts from $HOME).
// Every other target is kept as given.
func Resolve(s string) (string, error) {
	t, err := Parse(s)
	if err != nil || (t.Kind != KindEnvFile && t.Kind != KindSops) || filepath.IsAbs(t.Arg) {
		return s, err
	}
	if t.Arg, err = filepath.Abs(t.Arg); err != nil {
		return "", fmt.Errorf("resolving the deploy target %s: %w", s, err)
	}
	return t.String(), nil
}
