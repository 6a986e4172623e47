package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/ref"
)

// Each setting comes from the first layer that sets it: the flag, the
// key's rule (the first whose glob fits), for the cadence an override, then
// the profile. Targets come whole from one layer.
func TestResolveTakesEachSettingFromTheFirstLayerThatSetsIt(t *testing.T) {
	p := Policy{
		Rules: []Rule{
			{Match: "Nightly*", Targets: []string{"exec:nightly"}, QuietPeriod: 7 * time.Hour},
			{Match: "Nightly stock*", Targets: []string{"exec:never"}, QuietPeriod: time.Minute, Cadence: time.Hour},
			{Match: "CI *", Targets: []string{"stdout"}, Cadence: 90 * 24 * time.Hour},
		},
		Cadences: []Rule{{Match: "Nightly*", Cadence: 30 * 24 * time.Hour}, {Match: "*", Cadence: 180 * 24 * time.Hour}},
		Profile:  Settings{QuietPeriod: 2 * time.Hour, Cadence: 365 * 24 * time.Hour, PollInterval: 30 * time.Second},
	}
	day := 24 * time.Hour
	tests := []struct {
		name  string
		flags Settings
		want  Settings
	}{
		{"Nightly stock sync (2025)", Settings{},
			Settings{Targets: []string{"exec:nightly"}, QuietPeriod: 7 * time.Hour, Cadence: 30 * day, PollInterval: 30 * time.Second}},
		{"CI deploy", Settings{},
			Settings{Targets: []string{"stdout"}, QuietPeriod: 2 * time.Hour, Cadence: 90 * day, PollInterval: 30 * time.Second}},
		{"Webhook relay", Settings{},
			Settings{QuietPeriod: 2 * time.Hour, Cadence: 180 * day, PollInterval: 30 * time.Second}},
		{"Nightly stock sync (2025)", Settings{Targets: []string{"exec:mine"}, QuietPeriod: time.Minute, PollInterval: time.Second, ExecTimeout: time.Minute},
			Settings{Targets: []string{"exec:mine"}, QuietPeriod: time.Minute, Cadence: 30 * day, PollInterval: time.Second, ExecTimeout: time.Minute}},
	}
	for _, tt := range tests {
		if got := p.Resolve(tt.name, tt.flags); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s with flags %+v:\n got %+v\nwant %+v", tt.name, tt.flags, got, tt.want)
		}
	}
	if got := (Policy{}).Resolve("anything", Settings{}); !reflect.DeepEqual(got, Settings{}) {
		t.Errorf("nothing set anywhere: %+v; the quiet period is left to step 3's suggestion", got)
	}
}

// What a rotation recorded when it began wins over a rule or a profile
// that changed since; a flag that differs from it is refused for the whole
// procedure, and wins for a single step; --reset-settings decides them
// again, but never leaves the new key behind at a target.
func TestSettingsOfARotationUnderWay(t *testing.T) {
	policy := Policy{Rules: []Rule{{Match: "*", Targets: []string{"exec:now"}}}, Profile: Settings{QuietPeriod: 30 * time.Minute}}
	journal := func() *Journal {
		return &Journal{Old: ref.Key{ID: "key_1", Prefix: "pa_live_AB7K2XYZ", Name: "Nightly stock sync (2025)"}, State: Deployed, QuietSeconds: 60,
			Targets: []TargetState{{Target: "exec:eu", Deployed: true}, {Target: "exec:us", Deployed: true}}}
	}
	recorded := Settings{Targets: []string{"exec:eu", "exec:us"}, QuietPeriod: time.Minute}
	tests := []struct {
		name    string
		j       *Journal
		o       Options
		want    Settings
		notes   int
		wantErr string
	}{
		{name: "a new rotation", o: Options{Policy: policy}, want: Settings{Targets: []string{"exec:now"}, QuietPeriod: 30 * time.Minute}},
		{name: "recorded over the config", j: journal(), o: Options{Policy: policy, hold: true}, want: recorded, notes: 2},
		{name: "the same flags, in any order", j: journal(), o: Options{Policy: policy, hold: true, Targets: []string{"exec:us", "exec:eu"}, QuietPeriod: time.Minute},
			want: recorded},
		{name: "another --to", j: journal(), o: Options{Policy: policy, hold: true, Targets: []string{"exec:eu"}},
			wantErr: "deploys to exec:eu, exec:us, as it recorded when it began; this run's --to resolves to exec:eu"},
		{name: "another --quiet-period", j: journal(), o: Options{Policy: policy, hold: true, QuietPeriod: 30 * time.Minute},
			wantErr: "quiet period of 1m, as it recorded; this run's --quiet-period is 30m"},
		{name: "a step's flag", j: journal(), o: Options{Policy: policy, Targets: []string{"exec:eu"}, QuietPeriod: 2 * time.Hour},
			want: Settings{Targets: []string{"exec:eu"}, QuietPeriod: 2 * time.Hour}},
		{name: "reset, leaving a target that holds the new key", j: journal(), o: Options{Policy: policy, hold: true, ResetSettings: true},
			wantErr: "exec:eu already holds the new key"},
		{name: "reset, keeping every target that holds it", j: journal(), o: Options{Policy: policy, hold: true, ResetSettings: true, Targets: []string{"exec:eu", "exec:us", "exec:ap"}},
			want: Settings{Targets: []string{"exec:eu", "exec:us", "exec:ap"}, QuietPeriod: 30 * time.Minute}},
		{name: "reset past step 4", j: func() *Journal { j := journal(); j.State = Finalized; return j }(), o: Options{Policy: policy, hold: true, ResetSettings: true, Targets: []string{"exec:eu", "exec:us"}},
			wantErr: "past step 4"},
		{name: "a flag over plana's suggestion", j: func() *Journal { j := journal(); j.QuietSuggested = true; return j }(), o: Options{Policy: policy, hold: true, QuietPeriod: time.Hour},
			want: Settings{Targets: []string{"exec:eu", "exec:us"}, QuietPeriod: time.Hour}, notes: 1},
		{name: "nothing recorded yet", j: &Journal{Old: ref.Key{ID: "key_1", Prefix: "pa_live_AB7K2XYZ", Name: "Nightly stock sync (2025)"}, State: Checked}, o: Options{Policy: policy, hold: true, QuietPeriod: time.Hour},
			want: Settings{Targets: []string{"exec:now"}, QuietPeriod: time.Hour}},
	}
	for _, tt := range tests {
		got, notes, err := settingsOf("Nightly stock sync (2025)", tt.j, tt.o)
		switch {
		case tt.wantErr != "":
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: want a usage error saying %q, got %v", tt.name, tt.wantErr, err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !reflect.DeepEqual(got, tt.want) || len(notes) != tt.notes:
			t.Errorf("%s:\n got %+v, notes %q\nwant %+v, %d notes", tt.name, got, notes, tt.want, tt.notes)
		}
	}
	_, _, err := settingsOf("x", journal(), Options{hold: true, QuietPeriod: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "--reset-settings") || !strings.Contains(err.Error(), "--abort") {
		t.Errorf("the refusal must say how to change the settings on purpose: %v", err)
	}
}

// A rotation run again without flags keeps the two targets and the 1m quiet
// period it began with, though the profile now gives one target and 30m:
// both targets are finalized (issue 19, G17). A --quiet-period that differs
// is refused and changes nothing.
func TestAResumedRotationKeepsItsSettings(t *testing.T) {
	w := newWorld(t)
	dir := filepath.Dir(w.EnvPath)
	execTarget, record := stepScript(dir)
	stop := sync.OnceValues(w.automation(t))
	defer stop()
	ctx := context.Background()

	first := fastOpts(w)
	first.Targets, first.QuietPeriod, first.NoWait = []string{"env-file:" + w.EnvPath, execTarget}, time.Minute, true
	res, err := w.rotator().Rotate(ctx, w.Old, first)
	if !errors.Is(err, ErrPending) || len(res.Targets) != 2 {
		t.Fatalf("first run: want both targets deployed and a wait at the gate, got %v %+v", err, res)
	}

	// The configuration changed since: one target, 30m.
	again := Options{PollInterval: first.PollInterval, Timeout: first.Timeout, NoWait: true,
		Policy: Policy{Rules: []Rule{{Match: "*", Targets: []string{"env-file:" + w.EnvPath}}}, Profile: Settings{QuietPeriod: 30 * time.Minute}}}
	refused := again
	refused.QuietPeriod = 30 * time.Minute
	if _, err := w.rotator().Rotate(ctx, w.Old, refused); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "quiet period of 1m") {
		t.Fatalf("a --quiet-period other than the recorded one must be refused: %v", err)
	}
	w.rep.Reset()
	res, err = w.rotator().Rotate(ctx, w.Old, again)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("second run: %v", err)
	}
	if len(res.Targets) != 2 || time.Duration(res.QuietPeriod) != time.Minute {
		t.Errorf("the resumed rotation has targets %+v and quiet period %s, want its own two and 1m", res.Targets, time.Duration(res.QuietPeriod))
	}
	if out := w.rep.Text(); !strings.Contains(out, "keeps the targets it recorded") || !strings.Contains(out, "keeps the quiet period it recorded, 1m, not the 30m") {
		t.Errorf("the run must say it keeps the recorded settings over the configuration's:\n%s", out)
	}

	rotatetest.Eventually(t, "the automation to use the new key", func() bool { return w.Key(res.New.ID).LastUsedAt != nil })
	w.pushClock()
	finish := again
	finish.NoWait, finish.Yes = false, true
	if res, err = w.rotator().Rotate(ctx, w.Old, finish); err != nil || !res.Done {
		t.Fatalf("finishing: %v %+v\n%s", err, res, w.rep.Text())
	}
	data, _ := os.ReadFile(record)
	if !strings.Contains(string(data), "finalize ") {
		t.Errorf("the exec target the first run recorded never got finalize:\n%s", data)
	}
}
