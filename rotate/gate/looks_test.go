package gate

import (
	"testing"
	"time"
)

// The gate passes on two looks that both see it hold, at least one poll
// interval apart in real time; a look that does not see it starts over.
func TestLooksDecideOnTwo(t *testing.T) {
	const iv = 30 * time.Second
	t0 := time.Now()
	srv := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	l := looks{interval: iv}
	if l.confirms(t0) {
		t.Fatal("a first look confirms nothing")
	}
	if passed, since := l.record(true, false, t0, srv); passed || !since.Equal(srv) {
		t.Fatalf("one look decided: %v %v", passed, since)
	}
	// Sooner than one interval on this process's clock, whatever BOS's
	// clock says meanwhile (it stepped 400 days on).
	soon := t0.Add(iv - time.Millisecond)
	if l.confirms(soon) {
		t.Fatal("a look less than one poll interval later confirmed")
	}
	if passed, _ := l.record(true, false, soon, srv.Add(400*24*time.Hour)); passed {
		t.Fatal("two looks less than one poll interval apart passed the gate")
	}
	later := t0.Add(iv)
	if !l.confirms(later) {
		t.Fatal("a look one poll interval after the first does not confirm")
	}
	if passed, since := l.record(true, true, later, srv.Add(time.Minute)); !passed || !since.Equal(srv) {
		t.Fatalf("two looks an interval apart: %v, held since %v", passed, since)
	}
	// A look that sees it not hold: the next holding look is a first again.
	l.record(false, true, later.Add(iv), srv.Add(2*time.Minute))
	if l.confirms(later.Add(3 * iv)) {
		t.Fatal("a look after one that did not hold confirmed")
	}
}
