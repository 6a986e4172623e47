package rotate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/ref"
)

// blip is a front for the world's emulator that stops answering while down
// is above zero, one request less each time: half the requests have their
// connection dropped, half get a 503.
type blip struct {
	down  atomic.Int64
	faced atomic.Int64 // requests that met the outage
}

func (w *world) blipFront(t *testing.T) (*blip, string) {
	b := &blip{}
	inner := w.Srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if b.down.Add(-1) < 0 {
			b.down.Store(0)
			inner.ServeHTTP(rw, r)
			return
		}
		if b.faced.Add(1)%2 == 0 {
			http.Error(rw, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return
		}
		conn, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(ts.Close)
	return b, ts.URL
}

// throughFront is the world's rotator talking to BOS through url.
func (w *world) throughFront(url string) *Rotator {
	r := w.rotator()
	saved := w.URL
	w.URL = url
	r.API = w.ClientFor("plana-test", w.Mgmt)
	w.URL = saved
	return r
}

// deployed runs steps 1 and 2 and returns the new key's plaintext.
func (w *world) deployed(opts Options) (*Result, string) {
	w.T.Helper()
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		w.T.Fatalf("steps 1 and 2: %v", err)
	}
	p, err := w.Store.Get(secret.KeyName(res.New.ID))
	if err != nil {
		w.T.Fatal(err)
	}
	return res, p
}

// BOS not answering in the middle of step 3's wait does not end it: the
// wait warns once, carries on when BOS is back, and finishes.
func TestWaitRidesOutAnOutage(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	_, newPlain := w.deployed(opts)
	b, url := w.blipFront(t)
	var once atomic.Bool
	w.rep.OnWait = func() {
		if once.CompareAndSwap(false, true) {
			// The automation moves to the new key, an hour passes, and BOS
			// goes away for forty requests.
			if err := w.Call("stock-sync/1.4", newPlain); err != nil {
				t.Error(err)
			}
			w.Srv.Advance(2 * time.Hour)
			b.down.Store(40)
		}
	}
	opts.Yes = true
	res, err := w.throughFront(url).Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.Done {
		t.Fatalf("the wait did not ride out the outage: %v\n%s", err, w.rep.Text())
	}
	if b.faced.Load() < 40 {
		t.Fatalf("only %d requests met the outage", b.faced.Load())
	}
	text := w.rep.Text()
	if n := strings.Count(text, "BOS does not answer"); n != 1 {
		t.Errorf("warned %d times of one outage, want once:\n%s", n, text)
	}
	if !strings.Contains(text, "BOS answers again") {
		t.Errorf("no word that BOS is back:\n%s", text)
	}
}

// An outage that outlasts --timeout is work pending (exit 3), with the
// command that resumes the rotation.
func TestOutageAtTimeoutIsPending(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	w.deployed(opts)
	b, url := w.blipFront(t)
	w.rep.OnWait = func() { b.down.Store(1 << 40) }
	opts.Timeout = 300 * time.Millisecond
	_, err := w.throughFront(url).Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "Resume with: plana keys rotate "+w.Old.ID) {
		t.Fatalf("want ErrPending with the command that resumes, got %v", err)
	}
	if j, _ := w.rotator().journals().load(w.Old.ID); j == nil || j.State != Deployed {
		t.Errorf("the rotation is not kept at step 2: %+v", j)
	}
}

// Ctrl-C during the wait says which step it stopped at and the command
// that resumes it.
func TestCancelDuringWaitSaysWhere(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	w.deployed(opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.rep.OnWait = cancel
	_, err := w.rotator().Rotate(ctx, w.Old, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the cancellation, got %v", err)
	}
	for _, want := range []string{"stopped at step 3 (verify)", "resume it with: plana keys rotate " + w.Old.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

// A wait on a pipe writes a line when something changes, not one per poll:
// polls that change nothing but the old key's age give one line.
func TestWaitWritesALinePerChange(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	w.deployed(opts)
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	// Every poll the old key's last use is a second older: its summary
	// changes, what it waits for does not. Thirty polls, then Ctrl-C.
	const polls = 30
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	checks := 0
	w.rep.OnWait = func() {
		if checks++; checks == polls {
			cancel()
		}
		w.Srv.Advance(time.Second)
	}
	w.rep.Reset()
	_, err := w.rotator().Verify(ctx, w.Old, Options{QuietPeriod: time.Hour, PollInterval: time.Millisecond})
	if !errors.Is(err, context.Canceled) || checks != polls {
		t.Fatalf("after %d polls: %v", checks, err)
	}
	if lines := strings.Count("\n"+w.rep.Text(), "\nwaiting: "); lines != 1 {
		t.Errorf("%d polls gave %d lines, want 1:\n%s", polls, lines, w.rep.Text())
	}
}

// The rule itself on a fake clock: a 48 h wait at 30 s polls with nothing
// new writes its first line and a heartbeat every 10 minutes at most; a new
// source and the new key's first use each get their line at once.
func TestWaitNewsHeartbeat(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	src := gate.Source{SourceIP: "203.0.113.7", UserAgent: "stock-sync/1.4", Path: "/v1/stock-levels"}
	rep := func(i int, srcs ...gate.Source) gate.Report {
		return gate.Report{Now: t0.Add(time.Duration(i) * 30 * time.Second), OldLastUse: t0, Sources: srcs,
			New: &ref.Key{Prefix: "pa_live_NEW00000"}, Old: ref.Key{Prefix: "pa_live_OLD00000"}}
	}
	var n waitNews
	polls, lines := 48*120, 0
	for i := range polls {
		if n.line(rep(i, src), t0.Add(time.Duration(i)*30*time.Second)) != "" {
			lines++
		}
	}
	if max := 1 + polls*30/600; lines > max || lines < 2 {
		t.Errorf("%d polls without change wrote %d lines, want at most %d (1 + a heartbeat per 10 minutes)", polls, lines, max)
	}
	at := t0.Add(time.Duration(polls) * 30 * time.Second)
	other := gate.Source{SourceIP: "198.51.100.9", UserAgent: "legacy-cron/0.9", Path: "/v1/stock-levels"}
	if l := n.line(rep(polls, src, other), at); !strings.Contains(l, "legacy-cron/0.9") {
		t.Errorf("a new source gave %q", l)
	}
	used := rep(polls+1, src, other)
	used.NewUsed = true
	if l := n.line(used, at.Add(time.Second)); l == "" {
		t.Error("the new key's first use gave no line")
	}
	if l := n.line(used, at.Add(2*time.Second)); l != "" {
		t.Errorf("nothing new gave %q", l)
	}
}

// The outage warning says how long the wait goes on as a duration on this
// process's clock (what --timeout measures), never as a time of day: the
// lines around it are in BOS's time, which is not this machine's (here, 400
// days ahead of it).
func TestOutageWarningNamesItsClock(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	w.deployed(opts)
	w.Srv.Advance(400 * 24 * time.Hour)
	b, url := w.blipFront(t)
	w.rep.OnWait = func() { b.down.Store(1 << 40) }
	opts.Timeout = 90 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := w.throughFront(url)
	done := make(chan error, 1)
	go func() { _, err := r.Rotate(ctx, w.Old, opts); done <- err }()
	rotatetest.Eventually(t, "the outage warning", func() bool { return strings.Contains(w.rep.Text(), "BOS does not answer") })
	cancel()
	<-done
	var line string
	for l := range strings.Lines(w.rep.Text()) {
		if strings.Contains(l, "BOS does not answer") {
			line = l
		}
	}
	if regexp.MustCompile(`\d\d:\d\d`).MatchString(line) {
		t.Errorf("the outage warning shows a time of day, in no clock it names:\n%s", line)
	}
	if !regexp.MustCompile(`for up to 1h(29|30)m more \(--timeout 1h30m\)`).MatchString(line) {
		t.Errorf("the outage warning does not say how long it waits, as a duration of --timeout:\n%s", line)
	}
}
