package rotate

// The reliability matrix close to the code (issue 5): keyring faults,
// damaged local state and tricky last-used data, against a real emulator.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/internal/asnobody"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// hangingKeys answers the probe but blocks on storing a key, as a Secret
// Service does behind an unlock dialog nobody sees.
type hangingKeys struct {
	*secret.Memory
	release chan struct{}
}

func (h hangingKeys) Set(name, value string) error {
	if strings.HasPrefix(name, "key:") {
		<-h.release
	}
	return h.Memory.Set(name, value)
}

func TestKeyringHangs(t *testing.T) {
	t.Run("before anything is created", func(t *testing.T) {
		w := newWorld(t)
		m := secret.NewMemory()
		m.Hang = make(chan struct{})
		t.Cleanup(func() { close(m.Hang) })
		r := w.rotator()
		r.Secrets = secret.WithTimeout(m, 50*time.Millisecond)
		before := len(w.Keys(client.StatusAll))
		opts := fastOpts(w)
		opts.Targets = nil // with a target, plana goes on without a keyring (TestNoKeyringFailsClosed)
		_, err := r.Rotate(context.Background(), w.Old, opts)
		if !errors.Is(err, ErrNoKeyring) || !strings.Contains(err.Error(), "did not answer within") || !strings.Contains(err.Error(), "nothing was created") {
			t.Fatalf("want ErrNoKeyring saying the keyring timed out and nothing was created, got %v", err)
		}
		if after := len(w.Keys(client.StatusAll)); after != before {
			t.Fatalf("a hung keyring let %d keys be created", after-before)
		}
		if items, errs := Status(w.StateDir); len(items)+len(errs) != 0 {
			t.Errorf("a run that created nothing left a journal: %v %v", items, errs)
		}
	})
	t.Run("while storing the new key", func(t *testing.T) {
		w := newWorld(t)
		h := hangingKeys{Memory: w.Store, release: make(chan struct{})}
		t.Cleanup(func() { close(h.release) })
		r := w.rotator()
		r.Secrets = secret.WithTimeout(h, 50*time.Millisecond)
		_, err := r.Rotate(context.Background(), w.Old, fastOpts(w))
		if err == nil || !strings.Contains(err.Error(), "revoked at once") || !errors.Is(err, secret.ErrUnavailable) {
			t.Fatalf("want the store timeout reported and the key revoked, got %v", err)
		}
		if n := len(w.successors(client.StatusActive)); n != 0 {
			t.Fatalf("%d active successors whose plaintext was never stored", n)
		}
		// The keyring answers again: the next run finishes with one successor.
		stop := w.automation(t)
		defer stop()
		w.pushClock()
		opts := fastOpts(w)
		opts.Yes = true
		res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
		if err != nil || !res.Done {
			t.Fatalf("rotation after the keyring came back: %v", err)
		}
		assertOneSuccessor(t, w, res.New.ID)
		w.assertNoPlaintext()
	})
}

// assertOneSuccessor checks the invariant after every scenario: exactly one
// active successor, id, and every other successor revoked.
func assertOneSuccessor(t *testing.T, w *world, id string) {
	t.Helper()
	active := w.successors(client.StatusActive)
	if len(active) != 1 || active[0].ID != id {
		var ids []string
		for _, k := range active {
			ids = append(ids, k.ID)
		}
		t.Fatalf("want exactly one active successor %s, got %v", id, ids)
	}
	if err := w.rotator().Log().Verify(); err != nil {
		t.Error(err)
	}
}

func TestKeyringEntryDeletedBetweenSteps(t *testing.T) {
	tests := []struct {
		name     string
		crashAt  string
		targets  func(w *world) []string
		damage   func(w *world) // besides deleting the keyring entry
		wantWarn string
		wantErr  string
	}{
		{name: "before deploy", crashAt: "created", wantWarn: "gone from the keyring; revoking it and issuing another"},
		{name: "after deploy to an env file", crashAt: "deployed", wantWarn: "found it in "},
		// Step 4 runs an exec target again (PLANA_STEP=finalize) with the
		// key on its stdin: without the plaintext it stops, the old key
		// still active.
		{name: "after deploy by exec", crashAt: "deployed",
			targets: func(w *world) []string {
				return []string{"exec:cat > " + filepath.Join(filepath.Dir(w.EnvPath), "deployed")}
			},
			wantErr: "it is still where it was deployed (exec:"},
		// Every target is looked at, not the first only: the env file
		// after the exec: target gives the plaintext back.
		{name: "after deploy by exec and to an env file", crashAt: "deployed",
			targets: func(w *world) []string {
				return []string{"exec:cat > " + filepath.Join(filepath.Dir(w.EnvPath), "deployed"), "env-file:" + w.EnvPath}
			},
			wantWarn: "found it in env-file:"},
		{name: "gone from the env file too", crashAt: "deployed",
			damage: func(w *world) {
				if err := os.WriteFile(w.EnvPath, []byte("PLANA_KEY="+w.OldPlain+"\n"), 0o600); err != nil {
					w.T.Fatal(err)
				}
			},
			wantErr: "no longer holds it either: put it back under PLANA_KEY_NEW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			opts := fastOpts(w)
			opts.Yes = true
			if tt.targets != nil {
				opts.Targets = tt.targets(w)
			}
			r := w.rotator()
			r.hook = func(p string) error {
				if p == tt.crashAt {
					return errors.New("crash at " + p)
				}
				return nil
			}
			if _, err := r.Rotate(context.Background(), w.Old, opts); err == nil || !strings.Contains(err.Error(), "crash at") {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			first := w.successors(client.StatusActive)[0]
			firstPlain, err := w.Store.Get(secret.KeyName(first.ID))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Store.Delete(secret.KeyName(first.ID)); err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(w)
			}
			if tt.targets != nil || tt.damage != nil {
				// No automation reads what the target now holds: make the
				// call it would have made with the key it was handed.
				if err := w.Call("stock-sync/1.4", firstPlain); err != nil {
					t.Fatal(err)
				}
			} else {
				stop := w.automation(t)
				defer stop()
			}
			w.pushClock()
			res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--rebuild") || rotatetest.KeyShape.MatchString(err.Error()) {
					t.Fatalf("want %q and the way on, got %v", tt.wantErr, err)
				}
				if !w.Key(w.Old.ID).Active() {
					t.Fatal("the old key was revoked although the new one could not be finalized")
				}
				return
			}
			if err != nil || !res.Done {
				t.Fatalf("resume after the keyring entry vanished: %v\n%s", err, w.rep.Text())
			}
			if tt.wantWarn != "" && !strings.Contains(w.rep.Text(), tt.wantWarn) {
				t.Errorf("no warning %q in:\n%s", tt.wantWarn, w.rep.Text())
			}
			assertOneSuccessor(t, w, res.New.ID)
			if tt.crashAt == "created" && res.New.ID == first.ID {
				t.Error("a successor whose plaintext is gone must be replaced before anyone gets it")
			}
			if tt.crashAt == "deployed" && res.New.ID != first.ID {
				t.Error("a deployed successor must be kept: the automation already uses it")
			}
			if got, err := w.Store.Get(secret.KeyName(res.New.ID)); err != nil || client.PrefixOf(got) != res.New.Prefix {
				t.Errorf("the new key's plaintext is not back in the keyring: %v", err)
			}
			w.assertNoPlaintext()
		})
	}
}

// damageCases break a journal the ways a disk, an editor or a crash can.
var damageCases = []struct {
	name   string
	damage func(t *testing.T, path string)
	want   string
}{
	{"truncated", func(t *testing.T, p string) {
		// Cut just inside a string past the middle: a cut in a literal
		// (fa|lse) reads as another error than the end of the input.
		rewrite(t, p, func(b []byte) []byte { return b[:len(b)/2+bytes.IndexByte(b[len(b)/2:], '"')+1] })
		// Rewritten by a tool that leaves it readable by others.
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}, "is damaged (unexpected end of JSON input)"},
	{"garbage", func(t *testing.T, p string) { rewrite(t, p, func([]byte) []byte { return []byte("\x00\xffnot json") }) }, "is damaged (invalid character"},
	{"empty", func(t *testing.T, p string) { rewrite(t, p, func([]byte) []byte { return nil }) }, "is damaged (unexpected end of JSON input)"},
	{"unknown version", func(t *testing.T, p string) {
		rewrite(t, p, func(b []byte) []byte { return bytes.Replace(b, []byte(`"version": 1`), []byte(`"version": 7`), 1) })
	}, "unknown version 7"},
	{"unknown step", func(t *testing.T, p string) {
		rewrite(t, p, func(b []byte) []byte { return bytes.Replace(b, []byte(`"step": "`), []byte(`"step": "x`), 1) })
	}, "is damaged (unknown version 1, step \"x"},
	{"another key's journal", func(t *testing.T, p string) {
		rewrite(t, p, func(b []byte) []byte { return bytes.Replace(b, []byte(`"id": "key_`), []byte(`"id": "key_X`), 1) })
	}, `key "key_X`},
	{"a directory", func(t *testing.T, p string) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}, "cannot be read (is a directory)"},
	{"unreadable", func(t *testing.T, p string) {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}, "chmod 600"},
}

func rewrite(t *testing.T, p string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedJournalRecovery(t *testing.T) {
	for _, dc := range damageCases {
		for _, at := range []string{"deployed", "create-answered"} {
			t.Run(dc.name+"/at "+at, func(t *testing.T) {
				if dc.name == "unreadable" && asnobody.Rerun(t) {
					return
				}
				w := newWorld(t)
				ctx := context.Background()
				opts := fastOpts(w)
				opts.Yes = true
				r := w.rotator()
				r.hook = func(p string) error {
					if p == at {
						return errors.New("crash at " + p)
					}
					return nil
				}
				if _, err := r.Rotate(ctx, w.Old, opts); err == nil || !strings.Contains(err.Error(), "crash at") {
					t.Fatalf("want the simulated crash, got %v", err)
				}
				js := w.rotator().journals()
				path := js.path(w.Old.ID)
				dc.damage(t, path)
				before := len(w.Keys(client.StatusAll))

				_, err := w.rotator().Rotate(ctx, w.Old, opts)
				var je *JournalError
				if !errors.As(err, &je) {
					t.Fatalf("want a JournalError, got %v", err)
				}
				for _, s := range []string{path, dc.want, "plana keys rotate " + w.Old.ID + " --rebuild"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("the error does not say %q: %v", s, err)
					}
				}
				if _, errs := Status(w.StateDir); len(errs) != 1 || !errors.As(errs[0], &je) {
					t.Errorf("status must report the damaged journal, got %v", errs)
				}
				if after := len(w.Keys(client.StatusAll)); after != before {
					t.Fatal("a run on a damaged journal created a key")
				}

				// The recovery: rebuild from what the server says, then finish.
				rb, err := w.rotator().Rebuild(ctx, w.Old, opts)
				if err != nil {
					t.Fatalf("rebuild: %v", err)
				}
				if fi, err := os.Stat(path + ".damaged"); err != nil {
					t.Error("the damaged journal must be kept aside as evidence")
				} else if fi.Mode().IsRegular() && fi.Mode().Perm() != 0o600 {
					t.Errorf("the damaged journal kept aside is mode %v, want 0600", fi.Mode().Perm())
				}
				if at == "create-answered" && rb.New != nil {
					t.Errorf("a successor whose plaintext never reached the keyring was adopted: %+v", rb.New)
				}
				stop := w.automation(t)
				defer stop()
				w.pushClock()
				res, err := w.rotator().Rotate(ctx, w.Old, opts)
				if err != nil || !res.Done {
					t.Fatalf("after rebuild: %v\n%s", err, w.rep.Text())
				}
				if rb.New != nil && rb.New.ID != res.New.ID {
					t.Errorf("rebuild adopted %s, the rotation finished with %s", rb.New.ID, res.New.ID)
				}
				assertOneSuccessor(t, w, res.New.ID)
				w.assertNoPlaintext()
			})
		}
	}
}

func TestStateFilesStayPrivate(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := w.rotator().Rotate(ctx, w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want pending, got %v", err)
	}
	journal := w.rotator().journals().path(w.Old.ID)
	logPath := w.rotator().Log().Path
	for _, p := range []string{journal, logPath, w.EnvPath} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newPlain, _ := w.Store.Get(secret.KeyName(w.successors(client.StatusActive)[0].ID))
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	w.Srv.Advance(2 * time.Hour)
	opts.Yes = true
	if _, err := w.rotator().Rotate(ctx, w.Old, opts); err != nil {
		t.Fatal(err)
	}
	done, _ := filepath.Glob(filepath.Join(filepath.Dir(journal), "done", "*.json"))
	// The env file is the automation's, not plana's: it keeps the mode its
	// owner gave it (envfile_owner_test.go).
	if fi, _ := os.Stat(w.EnvPath); fi.Mode().Perm() != 0o644 {
		t.Errorf("the env file is %v after the rotation, want its own 0644 kept", fi.Mode().Perm())
	}
	for _, p := range append(done, logPath) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v after a rotation wrote it: state files are never readable by others", p, fi.Mode().Perm())
		}
	}
	if len(done) != 1 {
		t.Errorf("want one finished journal, got %v", done)
	}
}

func TestDamagedRotationLog(t *testing.T) {
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	tests := []struct {
		name       string
		damage     func(lines [][]byte) []byte
		line       func(lines [][]byte) int
		why        string
		appendFail bool // Append cannot chain onto the last line
	}{
		{"truncated last line", func(ls [][]byte) []byte {
			last := ls[len(ls)-1]
			return join(join(ls[:len(ls)-1]...), last[:len(last)/2])
		}, func(ls [][]byte) int { return len(ls) }, "is not a log entry", true},
		{"garbage line", func(ls [][]byte) []byte { return join(join(ls[:2]...), []byte("\x00\x01garbage\n"), join(ls[2:]...)) },
			func([][]byte) int { return 3 }, "is not a log entry", false},
		{"edited line", func(ls [][]byte) []byte {
			return join(ls[0], bytes.Replace(ls[1], []byte(`"reason":"scheduled"`), []byte(`"reason":"compromise"`), 1), join(ls[2:]...))
		}, func([][]byte) int { return 2 }, "does not match its hash", false},
		{"deleted line", func(ls [][]byte) []byte { return join(ls[0], join(ls[2:]...)) },
			func([][]byte) int { return 2 }, "does not follow the line before it", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A finished rotation leaves a log of several chained lines.
			w := newWorld(t)
			stop := w.automation(t)
			w.pushClock()
			opts := fastOpts(w)
			opts.Yes = true
			if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); err != nil {
				t.Fatal(err)
			}
			stop()
			l := w.rotator().Log()
			good, err := os.ReadFile(l.Path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(bytes.TrimRight(good, "\n"), []byte("\n"))
			lines[len(lines)-1] = append(lines[len(lines)-1], '\n')
			if len(lines) < 4 {
				t.Fatalf("want at least 4 log lines, got %d", len(lines))
			}
			bad := tt.damage(lines)
			if bytes.Equal(bad, good) {
				t.Fatal("the damage changed nothing")
			}
			if err := os.WriteFile(l.Path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			err = l.Verify()
			var ce *rotlog.ChainError
			if !errors.As(err, &ce) || ce.Line != tt.line(lines) || ce.Why != tt.why {
				t.Fatalf("want line %d %q, got %v", tt.line(lines), tt.why, err)
			}
			for _, s := range []string{l.Path, "mv " + l.Path + " " + l.Path + ".damaged"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not say %q: %v", s, err)
				}
			}
			_, aerr := l.Append(rotlog.Entry{Time: time.Now(), Event: rotlog.EventCreated, Old: ref.Of(w.Old)})
			if tt.appendFail != (aerr != nil) {
				t.Fatalf("append on a %s: %v", tt.name, aerr)
			}
			if aerr != nil && (!strings.Contains(aerr.Error(), l.Path) || !strings.Contains(aerr.Error(), "move the file aside")) {
				t.Errorf("the append error does not name the file and the fix: %v", aerr)
			}
			// The recovery the message gives: move the log and its head
			// aside, and a new log starts.
			for _, p := range []string{l.Path, l.HeadPath()} {
				if !strings.Contains(err.Error(), "mv "+p+" "+p+".damaged") {
					t.Errorf("the error does not say to move %s aside: %v", p, err)
				}
				if err := os.Rename(p, p+".damaged"); err != nil {
					t.Fatal(err)
				}
			}
			// A copy that still holds the last entry written is evidence
			// kept; one whose last entry was cut is a loss the keyring
			// remembers, and the new log begins by saying so.
			err = l.Verify()
			switch {
			case tt.appendFail && (err == nil || !strings.Contains(err.Error(), "no copy moved aside holds them")):
				t.Fatalf("with a log whose last entry was cut moved aside: want the loss reported, got %v", err)
			case !tt.appendFail && err != nil:
				t.Fatalf("with the damaged log moved aside: %v", err)
			}
			if _, err := l.Append(rotlog.Entry{Time: time.Now(), Event: rotlog.EventCreated, Old: ref.Of(w.Old)}); err != nil {
				t.Fatal(err)
			}
			c, err := l.Check()
			if err != nil {
				t.Fatalf("a new log after moving the damaged one aside: %v", err)
			}
			if restarted := len(c.Restarted) == 1 && c.Entries[0].Event == rotlog.EventRestarted; restarted != tt.appendFail {
				t.Errorf("the new log begins %q; want a log-restarted line only after a loss", c.Entries[0].Event)
			}
		})
	}
}

func TestDamagedLogDoesNotBlockRotation(t *testing.T) {
	w := newWorld(t)
	l := w.rotator().Log()
	if err := os.MkdirAll(w.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path, []byte(`{"time":"2026-01-01T00:00:00Z","event":"crea`), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := w.automation(t)
	defer stop()
	w.pushClock()
	opts := fastOpts(w)
	opts.Yes = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.Done {
		t.Fatalf("a damaged audit log must not stop a rotation: %v", err)
	}
	if !strings.Contains(w.rep.Text(), "warn: could not append to the rotation log: the last line of the rotation log "+l.Path+" is damaged") {
		t.Errorf("every lost log entry must be warned about, naming the file:\n%s", w.rep.Text())
	}
}

// gateOnce evaluates the gate of the rotation under way once, as a cron run
// would: a new run, a new gate, the journal's state.
func gateOnce(t *testing.T, w *world, q time.Duration) gate.Report {
	t.Helper()
	// A look that sees the gate hold is confirmed by a second one a poll
	// interval later: a millisecond here.
	opts := Options{QuietPeriod: q, NoWait: true, PollInterval: time.Millisecond}
	res, err := w.rotator().Verify(context.Background(), w.Old, opts)
	var ge *GateError
	switch {
	case err == nil:
		return *res.Gate
	case errors.As(err, &ge):
		return ge.Report
	}
	t.Fatalf("verify: %v", err)
	return gate.Report{}
}

// startRotation creates and deploys the successor (no target) and lets the
// automation call once with it; it returns the new key's plaintext.
func startRotation(t *testing.T, w *world, q time.Duration) string {
	t.Helper()
	opts := Options{QuietPeriod: q, NoWait: true, PollInterval: time.Millisecond}
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("want a rotation waiting at the gate, got %v", err)
	}
	newPlain, err := w.Store.Get(secret.KeyName(res.New.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	return newPlain
}

func TestGateOldKeyNeverUsed(t *testing.T) {
	w := newWorld(t)
	if lu := w.Key(w.Old.ID).LastUsedAt; lu != nil {
		t.Fatalf("the old key was used at %s", lu)
	}
	startRotation(t, w, 24*time.Hour)
	rep := gateOnce(t, w, 24*time.Hour)
	if !rep.Passed || !rep.OldQuiet || !rep.OldLastUse.IsZero() || !rep.QuietUntil.IsZero() {
		t.Fatalf("a key never used (last_used_at null, empty log) is quiet: %+v", rep)
	}
}

// plana's own check that a key answers (the GET /v1/me it made when the key
// was new, or any machine's since) is no use of the key: as the old key of
// a rotation it neither holds the gate (its log entry, its last_used_at)
// nor shows as a source that has to move.
func TestGatePlanaProbeIsNoUsageSource(t *testing.T) {
	const q = 24 * time.Hour
	w := newWorld(t)
	startRotation(t, w, q)
	probe := w.ClientFor("plana/1.4.0 (linux; laptop-7)", w.OldPlain)
	if _, err := probe.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.Key(w.Old.ID).LastUsedAt == nil {
		t.Fatal("the probe did not reach BOS")
	}
	rep := gateOnce(t, w, q)
	for _, s := range rep.Sources {
		if strings.HasPrefix(s.UserAgent, "plana") {
			t.Errorf("plana's probe is listed as a source: %+v", s)
		}
	}
	for _, m := range rep.Migration {
		if strings.HasPrefix(m.UserAgent, "plana") {
			t.Errorf("plana's probe is a source that has to move: %+v", m)
		}
	}
	if !rep.Passed || !rep.OldQuiet {
		t.Fatalf("an old key called only by plana's probe is quiet: %s", rep.Summary())
	}
	// The automation's own call still holds it (a gate of its own: the
	// rotation passed step 3 above).
	w.MustCall("stock-sync/1.4", w.OldPlain)
	j, err := w.rotator().journals().load(w.Old.ID)
	if err != nil || j == nil {
		t.Fatalf("journal: %v", err)
	}
	rep, err = gate.New(w.API, j.gateConfig(q, true)).Eval(context.Background())
	if err != nil || rep.Holds || rep.OldQuiet {
		t.Fatalf("a call by the automation must hold the gate: %v %s", err, rep.Summary())
	}
}

func TestGateFutureLastUse(t *testing.T) {
	const q = time.Hour
	w := newWorld(t)
	// BOS stamps a call 3h ahead of its own present: its clock was ahead,
	// then stepped back.
	w.Srv.Advance(3 * time.Hour)
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	w.Srv.Advance(-3 * time.Hour)
	if lu := w.Key(w.Old.ID).LastUsedAt; lu == nil || !lu.After(w.Srv.Now().Add(2*time.Hour)) {
		t.Fatalf("the scenario needs a last_used_at in the future, got %v", lu)
	}
	startRotation(t, w, q)

	rep := gateOnce(t, w, q)
	if rep.Passed || rep.OldQuiet || rep.FutureUse.IsZero() || !strings.Contains(rep.Summary(), "after its own clock's present") {
		t.Fatalf("a use stamped in the future must hold the gate and be named: %+v", rep)
	}
	firstSeen, stamp := rep.Now, rep.FutureUse
	w.Srv.Advance(50 * time.Minute)
	if rep := gateOnce(t, w, q); rep.Passed {
		t.Fatalf("50m after plana first saw a future use, a 1h quiet period has not passed: %+v", rep)
	}
	w.Srv.Advance(15 * time.Minute)
	rep = gateOnce(t, w, q)
	if !rep.Passed {
		t.Fatalf("one quiet period after plana first saw it (and 1h55m before its stamp), a future use must stop counting: %s", rep.Summary())
	}
	if rep.Now.Sub(firstSeen) < q || !rep.Now.Before(stamp) {
		t.Errorf("the gate passed at %s: want one quiet period after %s, before the stamp %s", rep.Now, firstSeen, stamp)
	}
}

// A future stamp must not make the gate's incremental read skip the calls
// made after it.
func TestGateFutureStampKeepsReadingNewCalls(t *testing.T) {
	const q = time.Hour
	w := newWorld(t)
	ctx := context.Background()
	w.Srv.Advance(3 * time.Hour)
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	w.Srv.Advance(-3 * time.Hour)
	g := gate.New(w.API, gate.Config{Old: ref.Of(w.Old), Quiet: q, OldQuiet: true})
	rep, err := g.Eval(ctx)
	if err != nil || rep.Passed {
		t.Fatalf("first look: %v %+v", err, rep)
	}
	w.Srv.Advance(10 * time.Minute)
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil { // a real call, stamped now
		t.Fatal(err)
	}
	w.Srv.Advance(55 * time.Minute) // 65m after the first look, 55m after the real call
	if rep, err = g.Eval(ctx); err != nil || rep.Passed {
		t.Fatalf("the call made 55m ago must hold a 1h gate: %v %s", err, rep.Summary())
	}
	w.Srv.Advance(6 * time.Minute)
	if rep, err = g.Eval(ctx); err != nil || !rep.Holds {
		t.Fatalf("61m after the last real call the gate holds: %v %s", err, rep.Summary())
	}
	if rep, err = g.Eval(ctx); err != nil || !rep.Passed {
		t.Fatalf("a second look confirms it: %v %s", err, rep.Summary())
	}
}

func TestGateCoarseLastUsed(t *testing.T) {
	const q = time.Hour
	w := newWorldConfig(t, emulator.Config{LastUsedGranularity: time.Hour})
	// Put the server's clock at half past an hour, so the truncated
	// last_used_at is 30 minutes older than the call.
	now := w.Srv.Now()
	at := now.Truncate(time.Hour).Add(30 * time.Minute)
	if at.Before(now) {
		at = at.Add(time.Hour)
	}
	w.Srv.Advance(at.Sub(now))
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	lu := w.Key(w.Old.ID).LastUsedAt
	if lu == nil || !lu.Equal(at.Truncate(time.Hour)) {
		t.Fatalf("the scenario needs last_used_at truncated to %s, got %v", at.Truncate(time.Hour), lu)
	}
	startRotation(t, w, q)
	// 50 minutes after the call, last_used_at says 80: a gate reading it
	// alone would pass inside the reporting lag.
	w.Srv.Advance(50 * time.Minute)
	rep := gateOnce(t, w, q)
	if rep.Passed || rep.OldQuiet {
		t.Fatalf("the gate passed inside the reporting lag of a coarse last_used_at: %+v", rep)
	}
	if rep.OldLastUse.Sub(at).Abs() > time.Minute {
		t.Errorf("the old key's last use is %s, want the call's exact time %s from the execution log", rep.OldLastUse, at)
	}
	w.Srv.Advance(12 * time.Minute)
	if rep := gateOnce(t, w, q); !rep.Passed {
		t.Fatalf("62 minutes after the last call a 1h gate holds: %s", rep.Summary())
	}
}

// The gate runs on the server's clock: a local clock off by two hours either
// way (here: the server's clock moved the other way) changes no decision.
func TestGateIgnoresLocalClockSkew(t *testing.T) {
	const q = time.Hour
	decisions := map[time.Duration][]bool{}
	for _, skew := range []time.Duration{-2 * time.Hour, 0, 2 * time.Hour} {
		w := newWorld(t)
		w.Srv.Advance(skew)
		if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
			t.Fatal(err)
		}
		startRotation(t, w, q)
		var got []bool
		moved := skew
		for _, step := range []time.Duration{0, 30 * time.Minute, 25 * time.Minute, 6 * time.Minute} {
			w.Srv.Advance(step)
			moved += step
			rep := gateOnce(t, w, q)
			if d := rep.Now.Sub(time.Now().Add(moved)).Abs(); d > time.Minute {
				t.Fatalf("server clock %+v from local: the gate's now %s is not the server's", skew, rep.Now)
			}
			got = append(got, rep.Passed)
		}
		decisions[skew] = got
	}
	want := []bool{false, false, false, true}
	for skew, got := range decisions {
		if len(got) != len(want) {
			t.Fatalf("skew %s: %v", skew, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("server clock %+v from local: decisions %v, want %v", skew, got, want)
				break
			}
		}
	}
}

// A deploy command that hangs is stopped by the exec timeout; the key
// created before it is kept in the keyring, and the next run deploys that
// same key.
func TestExecTargetHangs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.Targets, opts.ExecTimeout, opts.NoWait = []string{"exec:exec sleep 30"}, 100*time.Millisecond, true
	_, err := w.rotator().Rotate(ctx, w.Old, opts)
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") || !strings.Contains(err.Error(), "safe in the keyring and not deployed yet") {
		t.Fatalf("want the timeout and the way on, got %v", err)
	}
	created := w.successors(client.StatusActive)
	if len(created) != 1 {
		t.Fatalf("want the one new key kept, got %d", len(created))
	}
	if p, err := w.Store.Get(secret.KeyName(created[0].ID)); err != nil || client.PrefixOf(p) != created[0].Prefix {
		t.Fatalf("the new key is not in the keyring: %v", err)
	}
	// The command fixed: another --to is refused as it is, taken on purpose
	// with ResetSettings, since the hung target never got the key.
	out := filepath.Join(t.TempDir(), "deployed")
	opts.Targets = []string{"exec:cat > " + out}
	if _, err := w.rotator().Rotate(ctx, w.Old, opts); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "--reset-settings") {
		t.Fatalf("a --to other than the one recorded must be refused, saying how to change it: %v", err)
	}
	opts.ResetSettings = true
	res, err := w.rotator().Rotate(ctx, w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New.ID != created[0].ID {
		t.Fatalf("the next run must deploy the same key and wait at the gate: %v", err)
	}
	if got, _ := os.ReadFile(out); client.PrefixOf(strings.TrimSpace(string(got))) != created[0].Prefix {
		t.Error("the fixed deploy command did not get the new key")
	}
	assertOneSuccessor(t, w, created[0].ID)
}
