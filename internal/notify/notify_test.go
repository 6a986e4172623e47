package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyShape matches a full plaintext key.
var keyShape = regexp.MustCompile(`pa_(live|test)_[0-9A-Za-z]{46}`)

// A well-formed-looking key: the redaction goes by shape, not checksum.
var plain = "pa_live_AB7K2XYZ" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[:38]

type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) add(s string) { w.mu.Lock(); w.lines = append(w.lines, s); w.mu.Unlock() }
func (w *warnings) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a line that is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func event(k Kind) Event {
	return Event{Kind: k, Step: StepVerify, Key: Key{ID: "key_1", Name: "Nightly stock sync (2025)", Prefix: "pa_live_AB7K2XYZ"},
		Time: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Actor: "ana@example.com"}
}

func TestEveryHookGetsEveryEventInOrder(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	var w warnings
	n, err := New([]string{"exec:cat >> " + a, "exec:cat >> " + b}, Options{Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		n.Notify(event(k))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Close(ctx)
	for _, p := range []string{a, b} {
		got := readEvents(t, p)
		if len(got) != len(Kinds) {
			t.Fatalf("%s: %d events, want %d", p, len(got), len(Kinds))
		}
		for i, e := range got {
			if e["event"] != string(Kinds[i]) {
				t.Errorf("%s: event %d is %v, want %s", p, i, e["event"], Kinds[i])
			}
			key := e["key"].(map[string]any)
			if key["name"] != "Nightly stock sync (2025)" || key["prefix"] != "pa_live_AB7K2XYZ" ||
				e["step"] != "verify" || e["actor"] != "ana@example.com" || e["server_time"] != "2026-11-30T12:00:00Z" {
				t.Errorf("%s: event %d lacks its key, step, actor or time: %v", p, i, e)
			}
		}
	}
	if w.text() != "" {
		t.Errorf("unexpected warnings: %s", w.text())
	}
}

func TestNoKeyMaterialReachesAHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	n, err := New([]string{"exec:cat >> " + out}, Options{Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Kind: Failed, Step: StepDeploy,
		Key:     Key{ID: Text(plain), Name: Text("sync " + plain), Prefix: Text(plain)},
		New:     &Key{Name: Text(plain)},
		Actor:   Text(plain),
		Target:  Text("exec:deploy --key " + plain),
		Sources: []Source{{SourceIP: Text(plain), UserAgent: Text("ua/" + plain)}},
		Reason:  Text(plain),
		Error:   Text("the server said: bad key " + plain),
	}
	n.Notify(e)
	n.Close(context.Background())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if keyShape.Match(data) {
		t.Fatalf("a hook received key material: %s", data)
	}
	if !strings.Contains(string(data), "pa_live_AB7K2XYZ…") {
		t.Errorf("the redacted text should keep the prefix: %s", data)
	}
}

// TestEventFieldsAreTyped keeps Event free of plain strings: a field added
// later as a string would bypass Text's redaction.
func TestEventFieldsAreTyped(t *testing.T) {
	allowed := map[reflect.Type]bool{reflect.TypeFor[Text](): true, reflect.TypeFor[Kind](): true, reflect.TypeFor[Step](): true}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.String:
			if !allowed[ty] {
				t.Errorf("%s is a %s: text in an event must be notify.Text, which is redacted", path, ty)
			}
		case reflect.Pointer, reflect.Slice:
			walk(ty.Elem(), path+"[]")
		case reflect.Struct:
			if ty == reflect.TypeFor[time.Time]() {
				return
			}
			for i := range ty.NumField() {
				f := ty.Field(i)
				walk(f.Type, path+"."+f.Name)
			}
		case reflect.Int, reflect.Bool:
		default:
			t.Errorf("%s is a %s: not checked for key material", path, ty)
		}
	}
	walk(reflect.TypeFor[Event](), "Event")
}

func TestAFailingHookWarnsAndTheNextEventStillGoes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	var w warnings
	// The hook fails on the first event and records the second.
	script := `if [ -e ` + out + `.seen ]; then cat >> ` + out + `; else touch ` + out + `.seen; echo "refused ` + plain + `" >&2; exit 7; fi`
	n, err := New([]string{"exec:" + script}, Options{Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(event(Started))
	n.Notify(event(Created))
	n.Close(context.Background())
	got := readEvents(t, out)
	if len(got) != 1 || got[0]["event"] != "created" {
		t.Fatalf("events after a failed run: %v", got)
	}
	warn := w.text()
	if !strings.Contains(warn, "started event") || !strings.Contains(warn, "exit status 7") || !strings.Contains(warn, "the rotation goes on") {
		t.Errorf("warning does not say which event failed and how: %q", warn)
	}
	if keyShape.MatchString(warn) {
		t.Errorf("the warning carries key material: %q", warn)
	}
}

func TestAHangingHookIsStoppedAfterItsTimeout(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	var w warnings
	n, err := New([]string{"exec:read line; case \"$line\" in *started*) exec sleep 600;; esac; echo \"$line\" >> " + out},
		Options{Warn: w.add, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(event(Started))
	n.Notify(event(Revoked))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n.Close(ctx)
	if ctx.Err() != nil {
		t.Fatal("Close waited for the hanging hook past its timeout")
	}
	got := readEvents(t, out)
	if len(got) != 1 || got[0]["event"] != "revoked" {
		t.Fatalf("the event after a hung one was not delivered: %v", got)
	}
	if !strings.Contains(w.text(), "timed out after 200ms") {
		t.Errorf("no timeout warning: %q", w.text())
	}
}

func TestCloseGivesUpAtItsDeadline(t *testing.T) {
	var w warnings
	n, err := New([]string{"exec:exec sleep 600"}, Options{Warn: w.add, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(event(Started))
	n.Notify(event(Created))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(ctx)
	if !strings.Contains(w.text(), "not delivered") {
		t.Errorf("no warning of undelivered events: %q", w.text())
	}
	n.Notify(event(Revoked)) // after Close: ignored, not a panic
}

func TestHooksDoNotSeeTheManagementKey(t *testing.T) {
	t.Setenv("PLANA_TOKEN", plain)
	out := filepath.Join(t.TempDir(), "env")
	n, err := New([]string{"exec:env > " + out}, Options{Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(event(Started))
	n.Close(context.Background())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "PLANA_TOKEN") {
		t.Error("a hook inherited PLANA_TOKEN")
	}
}

func TestParseHook(t *testing.T) {
	for _, s := range []string{"", "exec:", "exec:   ", "slack:https://x", "curl"} {
		if _, err := New([]string{s}, Options{}); err == nil || !strings.Contains(err.Error(), "use exec:CMD") {
			t.Errorf("New(%q) = %v, want an error saying what to use", s, err)
		}
	}
	if cmd, err := ParseHook("exec:./post.sh --quiet"); err != nil || cmd != "./post.sh --quiet" {
		t.Errorf("ParseHook = %q, %v", cmd, err)
	}
	var n *Notifier
	n.Notify(event(Started)) // a nil Notifier does nothing
	n.Close(context.Background())
	if n, err := New(nil, Options{}); n != nil || err != nil {
		t.Errorf("New(nil) = %v, %v; want nil, nil", n, err)
	}
}

// A hook named twice (in the profile and on the command line) runs once
// per event; another command, however alike, runs too.
func TestAHookNamedTwiceRunsOnce(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	n, err := New([]string{"exec:cat >> " + a, "exec:cat >> " + b, "exec:cat >> " + a}, Options{Warn: func(s string) { t.Error(s) }})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(event(Started))
	n.Notify(event(Created))
	n.Close(context.Background())
	for _, p := range []string{a, b} {
		if got := readEvents(t, p); len(got) != 2 {
			t.Errorf("%s heard %d events, want 2", filepath.Base(p), len(got))
		}
	}
}
