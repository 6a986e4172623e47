package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
)

// looks decides the gate on two looks, never on one. One look can be fooled:
// BOS's clock stepping forward while the log is read (an NTP correction)
// makes a key called a moment ago look quiet for days, and a call whose
// entry is committed after the read is not in it. So the gate passes only
// when two looks, at least one poll interval apart in real time, both see
// it hold, and the second reads the old key's calls over the whole quiet
// window again. Real time is this process's monotonic clock: neither the
// server's clock nor the local wall clock can shorten the interval. Nothing
// of it is kept across runs, so each run decides on its own two looks.
type looks struct {
	interval time.Duration
	// heldEnded is when (monotonic) the read of the first look of those in
	// a row that saw the gate hold ended, zero while the last look did not;
	// heldNow is that look's server time.
	heldEnded time.Time
	heldNow   time.Time
}

// confirms says a look whose read began at began (monotonic) is a second
// look: one poll interval after the first that saw the gate hold.
func (l *looks) confirms(began time.Time) bool {
	return !l.heldEnded.IsZero() && began.Sub(l.heldEnded) >= l.interval
}

// record takes a look in: whether it saw the gate hold, whether it could
// confirm (confirms, before it read), when its read ended (monotonic), and
// its server time. It says whether the gate passed, and the server time of
// the first look of those in a row that saw it hold.
func (l *looks) record(holds, confirming bool, ended, now time.Time) (passed bool, heldSince time.Time) {
	switch {
	case !holds:
		l.heldEnded, l.heldNow = time.Time{}, time.Time{}
		return false, time.Time{}
	case l.heldEnded.IsZero():
		l.heldEnded, l.heldNow = ended, now
		return false, now
	}
	return confirming, l.heldNow
}

// reread is the second look's own read of the old key's calls over the
// whole quiet window, from the server's present when the look began: a
// call committed after an earlier read had gone past its stamp (a late
// entry; the shared feed's cursor moved on by other keys' calls) is seen
// now. Calls seen before are told apart by id in Eval.
func (g *Gate) reread(ctx context.Context, in *reading) error {
	if !g.requireOldQuiet || !in.oldKey.Active() {
		return nil
	}
	err := g.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: g.old.ID, Since: in.now.Add(-g.quiet), PageSize: pageSize},
		func(es []client.ExecutionLogEntry) error {
			in.old = append(in.old, es...)
			return nil
		})
	if err != nil {
		return fmt.Errorf("reading the old key's execution log again: %w", err)
	}
	// A call made during this read is not from BOS's future.
	if n, ok := g.api.ServerNow(); ok && n.After(in.end) {
		in.end = n
	}
	return nil
}
