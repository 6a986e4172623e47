package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/target"
)

// stepScript is an exec target that records, per run, its step, the keys'
// names and prefixes from its environment and the prefix of the key on its
// stdin; it fails while the file fail exists.
func stepScript(dir string) (target, record string) {
	record = filepath.Join(dir, "steps.log")
	script := filepath.Join(dir, "deploy.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
read key
if [ -e "`+dir+`/fail" ]; then echo "vault sealed" >&2; exit 2; fi
printf '%s %s %s %s %s\n' "$PLANA_STEP" "$PLANA_KEY_PREFIX" "$PLANA_OLD_KEY_PREFIX" "$(printf %s "$key" | cut -c1-16)" "$PLANA_KEY_NAME" >> "`+record+`"
env | grep -cE 'pa_(live|test)_[0-9A-Za-z]{46}' >> "`+dir+`/env-keys" || true
`), 0o700)
	return "exec:" + script, record
}

func TestSeveralTargetsAFailedOneIsRetriedAlone(t *testing.T) {
	w := newWorld(t)
	dir := filepath.Dir(w.EnvPath)
	execTarget, record := stepScript(dir)
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceValues(w.automation(t))
	defer stop()
	opts := fastOpts(w)
	opts.Targets, opts.Yes = []string{"env-file:" + w.EnvPath, execTarget}, true
	w.pushClock()

	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "1 of 2 targets done") {
		t.Fatalf("want the exec target's failure and what is left, got %v", err)
	}
	if res.State != Checked || len(res.Targets) != 2 || !res.Targets[0].Deployed || res.Targets[1].Deployed || !strings.Contains(res.Targets[1].Error, "exit status 2") {
		t.Fatalf("the rotation must stay at step 2 with each target's state: %+v", res)
	}
	if !strings.Contains(w.rep.Text(), "| vault sealed") || strings.Contains(err.Error()+res.Targets[1].Error, "vault sealed") {
		t.Fatalf("the command's stderr goes to the terminal alone: error %v, target %q, terminal:\n%s", err, res.Targets[1].Error, w.rep.Text())
	}
	if data, _ := os.ReadFile(w.EnvPath); !strings.Contains(string(data), target.NewKeySlot+"=") {
		t.Fatal("the first target was not deployed")
	}

	// The next run deploys only to the target left, then finalizes both.
	os.Remove(filepath.Join(dir, "fail"))
	w.rep.Reset()
	res, err = w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.Done {
		t.Fatalf("the second run: %v\n%s", err, w.rep.Text())
	}
	if strings.Contains(w.rep.Text(), "deployed to env-file") {
		t.Errorf("the env file was deployed to again:\n%s", w.rep.Text())
	}
	for _, st := range res.Targets {
		if !st.Deployed || !st.Finalized || st.Error != "" {
			t.Errorf("target %+v", st)
		}
	}
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	newP, oldP := res.New.Prefix, w.Old.Prefix
	want := "deploy " + newP + " " + oldP + " " + newP + " Nightly stock sync (2026)\n" +
		"finalize " + newP + " " + oldP + " " + newP + " Nightly stock sync (2026)\n"
	if string(data) != want {
		t.Errorf("the exec target ran:\n%s\nwant:\n%s", data, want)
	}
	if n, _ := os.ReadFile(filepath.Join(dir, "env-keys")); strings.TrimSpace(strings.ReplaceAll(string(n), "\n", " ")) != "0 0" {
		t.Errorf("a key was in the exec target's environment (counts %q): only its prefix may be", n)
	}
	if data, _ := os.ReadFile(w.EnvPath); strings.Contains(string(data), target.NewKeySlot) {
		t.Errorf("step 4 left PLANA_KEY_NEW in the env file:\n%s", data)
	}
	if _, failed := stop(); failed != 0 {
		t.Errorf("the automation failed %d calls", failed)
	}
}

// Journals written by earlier versions resume: one written when a rotation
// had one target at most (no "targets"), and one as the version before
// State wrote it (testdata/journal-before-state.json: "target",
// "targets", "deployed", "old_revoked" and the step as a string). Each
// resumes with its one target, deployed, and step 4 finalizes it.
func TestJournalsOfEarlierVersionsResume(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(raw map[string]any)
		target bool // the journal still lists "targets"
	}{
		{"one target, before several", func(raw map[string]any) { delete(raw, "targets") }, false},
		{"several targets, before State", func(map[string]any) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			stop := w.automation(t)
			defer stop()
			opts := fastOpts(w)
			opts.NoWait = true
			res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
			if !errors.Is(err, ErrPending) {
				t.Fatalf("want a rotation waiting at the gate: %v", err)
			}
			path := w.rotator().journals().path(w.Old.ID)
			now, err := w.rotator().journals().load(w.Old.ID)
			if err != nil {
				t.Fatal(err)
			}
			data := earlierJournal(t, map[string]string{"OLD_ID": w.Old.ID, "OLD_PREFIX": w.Old.Prefix, "NEW_ID": res.New.ID, "NEW_PREFIX": res.New.Prefix,
				"NEW_CREATED_AT": now.NewCreatedAt.Format(time.RFC3339Nano), "OWN_CALL": now.OwnCalls[0], "TARGET": "env-file:" + w.EnvPath, "OLD_REVOKED": "false"})
			var raw map[string]any
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			tc.edit(raw)
			data, _ = json.Marshal(raw)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			w.pushClock()
			opts = fastOpts(w)
			opts.Targets, opts.Yes = nil, true
			res, err = w.rotator().Rotate(context.Background(), w.Old, opts)
			if err != nil || !res.Done || len(res.Targets) != 1 || !res.Targets[0].Finalized {
				t.Fatalf("resume from an earlier journal: %v %+v", err, res)
			}
			if data, _ := os.ReadFile(w.EnvPath); strings.Contains(string(data), target.NewKeySlot) {
				t.Errorf("step 4 did not finalize the journal's one target:\n%s", data)
			}
		})
	}
}

// earlierJournal is testdata/journal-before-state.json with its
// placeholders filled in.
func earlierJournal(t *testing.T, vals map[string]string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "journal-before-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vals {
		data = bytes.ReplaceAll(data, []byte("{{"+k+"}}"), []byte(v))
	}
	return data
}

// An emergency's journal of the version before State said the old key was
// revoked in a field of its own: it loads as revoked, at step 2 still.
func TestJournalBeforeStateKeepsTheRevoke(t *testing.T) {
	dir := t.TempDir()
	js := journalsOf(dir)
	if err := os.MkdirAll(js.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data := earlierJournal(t, map[string]string{"OLD_ID": "key_old1", "OLD_PREFIX": "pa_live_OLD11111", "NEW_ID": "key_new1", "NEW_PREFIX": "pa_live_NEW11111",
		"NEW_CREATED_AT": "2026-12-04T19:24:10Z", "OWN_CALL": "exe_1", "TARGET": "env-file:/srv/app.env", "OLD_REVOKED": "true"})
	if err := os.WriteFile(js.path("key_old1"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := js.load("key_old1")
	if err != nil {
		t.Fatal(err)
	}
	if !j.oldRevoked() || j.State != Deployed || !j.deployed() || !j.Emergency || len(j.Targets) != 1 {
		t.Fatalf("loaded as %+v", j)
	}
	if got := waitingOn(j); got != "the first use of the new key" {
		t.Errorf("waiting on %q, want the first use of the new key", got)
	}
	if err := js.save(j); err != nil {
		t.Fatal(err)
	}
	var again map[string]any
	if data, err := os.ReadFile(js.path("key_old1")); err != nil || json.Unmarshal(data, &again) != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"target", "deployed", "old_revoked"} {
		if _, ok := again[gone]; ok {
			t.Errorf("saved again, the journal still writes %q", gone)
		}
	}
	if j2, err := js.load("key_old1"); err != nil || !j2.oldRevoked() {
		t.Errorf("saved and loaded again, the revoke is lost: %v %+v", err, j2)
	}
}

func TestNotifyHearsEveryStepWithoutKeyMaterial(t *testing.T) {
	w := newWorld(t)
	out := filepath.Join(t.TempDir(), "events")
	n, err := notify.New([]string{"exec:cat >> " + out}, notify.Options{Warn: func(s string) { t.Error(s) }})
	if err != nil {
		t.Fatal(err)
	}
	stop := w.automation(t)
	defer stop()
	r := w.rotator()
	r.Notify = n
	w.pushClock()
	opts := fastOpts(w)
	opts.Yes = true
	res, err := r.Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.Done {
		t.Fatal(err)
	}
	n.Close(context.Background())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if rotatetest.KeyShape.Match(data) {
		t.Fatal("a notify event carries key material")
	}
	newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
	if newPlain != "" && strings.Contains(string(data), newPlain[16:]) {
		t.Fatal("a notify event carries part of the new key's secret")
	}
	var kinds []string
	for line := range strings.Lines(string(data)) {
		var e struct {
			Event  string `json:"event"`
			Step   string `json:"step"`
			Target string `json:"target"`
			Actor  string `json:"actor"`
			Key    struct{ Prefix string }
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Key.Prefix != w.Old.Prefix || e.Actor != "ana@example.com" || e.Step == "" {
			t.Errorf("event without its key, actor or step: %s", line)
		}
		if e.Event == "deployed" && e.Target != "env-file:"+w.EnvPath {
			t.Errorf("deployed without its target: %s", line)
		}
		if len(kinds) == 0 || kinds[len(kinds)-1] != e.Event {
			kinds = append(kinds, e.Event)
		}
	}
	got := strings.Join(kinds, " ")
	for _, want := range []string{"started created deployed", "verified finalized revoked refused-after-revoke"} {
		if !strings.Contains(got, want) {
			t.Errorf("events %q lack %q", got, want)
		}
	}
}

// Calling a rotation off runs an exec: target with PLANA_STEP=abort (one
// script serves deploy, finalize and abort) and tells the notify hooks.
func TestAbortRunsExecTargetsAndNotifies(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	steps, events := filepath.Join(dir, "steps"), filepath.Join(dir, "events")
	n, err := notify.New([]string{"exec:cat >> " + events}, notify.Options{Warn: func(s string) { t.Error(s) }})
	if err != nil {
		t.Fatal(err)
	}
	r := w.rotator()
	r.Notify = n
	// The script records the step and the prefix it was told, never the key.
	target := "exec:read k; [ -n \"$k\" ] && echo \"$PLANA_STEP $PLANA_KEY_PREFIX\" >> " + steps
	opts := fastOpts(w)
	opts.Targets, opts.NoWait = []string{target}, true
	res, err := r.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("rotate: %v", err)
	}
	nw := *res.New
	if _, err := r.Abort(context.Background(), w.Old, Options{Targets: []string{target}, Reason: "wrong scopes"}); err != nil {
		t.Fatal(err)
	}
	n.Close(context.Background())
	data, _ := os.ReadFile(steps)
	if want := "deploy " + nw.Prefix + "\nabort " + nw.Prefix + "\n"; string(data) != want {
		t.Errorf("the exec target heard %q, want %q", data, want)
	}
	if w.Key(nw.ID).Active() || !w.Key(w.Old.ID).Active() {
		t.Error("want the new key revoked and the old one active")
	}
	ev, _ := os.ReadFile(events)
	if !strings.Contains(string(ev), `"event":"aborted"`) || rotatetest.KeyShape.Match(ev) {
		t.Errorf("notify events lack an aborted event, or carry a key:\n%s", ev)
	}
	for line := range strings.Lines(string(ev)) {
		var e struct{ Event, Reason string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Event == "aborted" && e.Reason != "wrong scopes" {
			t.Errorf("the aborted event carries the reason %q, want the one given, %q", e.Reason, "wrong scopes")
		}
	}
}
