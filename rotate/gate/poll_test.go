package gate

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	ctx := context.Background()
	calls := 0
	if err := Poll(ctx, time.Millisecond, 4*time.Millisecond, 0, func() (bool, error) { calls++; return calls == 3, nil }); err != nil || calls != 3 {
		t.Errorf("poll until done: %v after %d calls", err, calls)
	}
	boom := errors.New("boom")
	if err := Poll(ctx, time.Millisecond, 0, 0, func() (bool, error) { return false, boom }); err != boom {
		t.Errorf("try's error came back as %v", err)
	}
	err := Poll(ctx, time.Millisecond, 0, 20*time.Millisecond, func() (bool, error) { return false, nil })
	if st, ok := errors.AsType[*Stopped](err); !ok || st.Cause != ErrDeadline {
		t.Errorf("past its deadline, poll returned %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	err = Poll(cctx, time.Hour, 0, 0, func() (bool, error) { cancel(); return false, nil })
	if st, ok := errors.AsType[*Stopped](err); !ok || !errors.Is(st, context.Canceled) {
		t.Errorf("with its context ended, poll returned %v", err)
	}
}
