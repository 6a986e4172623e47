package target

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// stdoutTarget is stdout: the new key printed once, for a pipe into the
// user's own secrets manager.
type stdoutTarget struct{ out io.Writer }

func (stdoutTarget) String() string { return KindStdout }

// Readable is false: what read the pipe is not plana's to read.
func (stdoutTarget) Readable() bool { return false }

// KeyToFinalize is false: finalize only tells the person what is left.
func (stdoutTarget) KeyToFinalize() bool { return false }

// Holds cannot tell: a printed key is gone.
func (stdoutTarget) Holds(context.Context, string) (bool, error) { return false, ErrWriteOnly }

// Check has nothing to check before the key is printed.
func (stdoutTarget) Check(context.Context, Keys) error { return nil }

// Read cannot serve: a printed key is gone.
func (stdoutTarget) Read(context.Context) (Held, error) { return Held{}, ErrWriteOnly }

// Deploy prints the new key once.
func (t stdoutTarget) Deploy(ctx context.Context, k Keys) (string, error) {
	key, err := k.Plaintext(ctx)
	if err != nil {
		return "", err
	}
	if t.out == nil {
		return "", errors.New("no output to print the key to")
	}
	if _, err := io.WriteString(t.out, key+"\n"); err != nil {
		return "", err
	}
	return "deployed to " + KindStdout, nil
}

// Finalize leaves the removal of the old key to the person: plana only
// printed the new one.
func (stdoutTarget) Finalize(context.Context, Keys) (string, error) {
	return "remove the old key from where the printed key went yourself: plana only printed the new one", nil
}

// Abort leaves the new key's removal to the person: plana only printed it.
func (stdoutTarget) Abort(_ context.Context, k Keys) (string, error) {
	return fmt.Sprintf("remove the new key %s from stdout yourself: plana only adds keys there", k.New.Prefix), nil
}
