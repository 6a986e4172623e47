// Package target owns where a rotation hands the new key: the --to forms
// (env-file:PATH, exec:CMD, exec-ab:CMD, stdout, and the secret stores
// k8s:, aws-sm:, aws-ssm:, sops:, pass:), and the five things a rotation
// asks of every target. Deploy adds the new key beside the old; Finalize
// leaves only the new key; Abort takes the new key out again; Read gives
// back what a readable target holds, so that another machine can recover
// the plaintext, and Find reads it back to compare prefixes (verify).
//
// A store of named secrets (an env file, and any store that keeps the two
// slots PLANA_KEY and PLANA_KEY_NEW) is a Store: Slots makes it a target,
// with every step's rules written once, each write read back.
package target

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// The two slots every readable target keeps, as in the procedure's step 2:
// the key in use, and the new key beside it until finalize.
const (
	KeySlot    = "PLANA_KEY"
	NewKeySlot = "PLANA_KEY_NEW"
)

// Target is one place a rotation hands the new key to. Each operation
// returns what it did in words for the person running it ("" when it
// changed nothing worth a line).
type Target interface {
	// String is the target as --to names it.
	String() string
	// Readable says whether Read can give back what the target holds.
	Readable() bool
	// KeyToFinalize says whether Finalize needs the new key's plaintext.
	// A target that needs it and cannot give it back (exec:) can be
	// finalized only where the plaintext is: in the keyring of the machine
	// that created the key, or in another target that gives it back.
	KeyToFinalize() bool
	// Check refuses, before anything is created, a target that deploy or
	// finalize would fail on.
	Check(ctx context.Context, k Keys) error
	// Deploy adds the new key beside the old one.
	Deploy(ctx context.Context, k Keys) (string, error)
	// Finalize leaves only the new key.
	Finalize(ctx context.Context, k Keys) (string, error)
	// Abort takes the new key out, leaving the old one.
	Abort(ctx context.Context, k Keys) (string, error)
	// Read returns what the target holds; ErrWriteOnly when it cannot be
	// read back.
	Read(ctx context.Context) (Held, error)
	// Holds says whether the target holds the key with prefix, in either
	// slot; ErrWriteOnly when it cannot tell.
	Holds(ctx context.Context, prefix string) (bool, error)
}

// Keys is what a target is told of the rotation: the two keys by name and
// prefix, and how to get the new key's plaintext, asked only by the
// operations that write it.
type Keys struct {
	Old, New  ref.Key
	Plaintext func(context.Context) (string, error)
	// Log is the rotation's line ("rotated OLD to NEW on DATE by WHO"),
	// which a store that keeps notes beside its keys (pass:) adds under the
	// key at finalize; "": none.
	Log string
}

// Held is what a readable target holds in its two slots, "" where a slot
// is empty.
type Held struct{ Key, New string }

// ErrWriteOnly is Read on a target that cannot be read back.
var ErrWriteOnly = errors.New("this target cannot be read back")

// Config is how a run's targets behave.
type Config struct {
	Out         io.Writer     // where stdout prints
	ExecTimeout time.Duration // how long exec: may run; 0: 2m
	// Warn is where a target's words for the person at the terminal go,
	// and only there: warnings, and what a failed command wrote to its
	// stderr (redacted). They are never stored or put into JSON: redaction
	// cannot catch a key that is base64-encoded, split or reversed. nil:
	// nowhere.
	Warn func(string)
}

// Open returns the target a --to value names. Nothing is read or run yet:
// a store's client is made by the first operation that needs it.
func Open(s string, c Config) (Target, error) {
	sp, err := Parse(s)
	if err != nil {
		return nil, err
	}
	switch sp.Kind {
	case KindEnvFile:
		return envFileTarget(sp, c), nil
	case KindExec, KindExecAB:
		return execTarget{spec: sp, timeout: c.ExecTimeout, warn: c.Warn, ab: sp.Kind == KindExecAB}, nil
	case KindStdout:
		return stdoutTarget{out: c.Out}, nil
	case KindK8s, KindAWSSM, KindAWSSSM, KindSops, KindPass:
		return storeTarget(sp), nil
	}
	return nil, errors.New("no deploy target")
}

// Find reads t back for the key with prefix, in either slot: its plaintext
// and true when t holds it. A target that cannot be read back holds
// nothing that Find can see.
func Find(ctx context.Context, t Target, prefix string) (string, bool, error) {
	if !t.Readable() {
		return "", false, nil
	}
	h, err := t.Read(ctx)
	if err != nil {
		return "", false, err
	}
	for _, v := range []string{h.New, h.Key} {
		if v != "" && client.PrefixOf(v) == prefix {
			return v, true, nil
		}
	}
	return "", false, nil
}
