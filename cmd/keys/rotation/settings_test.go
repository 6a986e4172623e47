package rotation_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/fleet"
)

// agreeTargets gives the demo's webhook key a rule of its own (a 90-day
// cadence, a 7h quiet period) and the reporting key one that sets neither
// quiet period nor target, so the profile's 2h quiet period and its rule's
// 7-day cadence count there. The profile's cadence is the default 365 days:
// by it neither key (122 and 9 days old) is due.
const agreeTargets = `[{match: "Webhook*", to: ["exec:cat >/dev/null"], cadence: 90d, quiet_period: 7h},
 {match: "Reporting*", to: ["exec:cat >/dev/null"], cadence: 7d}]`

// agreeWorld is a fresh demo workspace whose profile says 2h and whose
// rules say otherwise for some keys.
func agreeWorld(t *testing.T) *cmdtest.Env {
	e := cmdtest.New(t)
	e.Setenv("PLANA_ROTATION_QUIET_PERIOD", "2h")
	e.Setenv("PLANA_ROTATION_TARGETS", agreeTargets)
	return e
}

// KEY, --due and --issued-by decide a key's settings the same way: its
// rule's quiet period over the profile's, its rule's cadence over the
// profile's. Each stops at the gate (--no-wait) and says which quiet period
// it holds the old key to.
func TestEntryPointsAgreeOnARulesSettings(t *testing.T) {
	t.Parallel()
	want := map[string]string{"Webhook relay": "7h", "Reporting export (2026)": "2h"}
	modes := []struct {
		name string
		args []string
		keys []string // the keys the run rotates
	}{
		{"KEY", []string{"Webhook relay"}, []string{"Webhook relay"}},
		{"--due", []string{"--due"}, []string{"Webhook relay", "Reporting export (2026)"}},
		{"--issued-by", []string{"--issued-by", "ben@example.com"}, []string{"Webhook relay", "Reporting export (2026)"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			e := agreeWorld(t)
			args := append([]string{"keys", "rotate"}, m.args...)
			if code := run(e, append(args, "--no-wait", "--yes", "-o", "json")...); code != cmdutil.ExitPending {
				t.Fatalf("exit %d, want 3 (at the gate):\n%s", code, e.ErrOut)
			}
			got := map[string]string{}
			if m.name == "KEY" {
				var res rotate.Result
				if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
					t.Fatalf("-o json: %v\n%s", err, e.Out)
				}
				got[res.Old.Name] = quietOf(t, e.Out.Bytes())
			} else {
				var res struct {
					Items []struct {
						Old    struct{ Name string } `json:"old"`
						State  fleet.State           `json:"state"`
						Result json.RawMessage       `json:"result"`
					} `json:"items"`
				}
				if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
					t.Fatalf("-o json: %v\n%s", err, e.Out)
				}
				for _, it := range res.Items {
					if it.State == fleet.Skipped {
						continue
					}
					got[it.Old.Name] = quietOf(t, it.Result)
				}
			}
			if len(got) != len(m.keys) {
				t.Errorf("rotated %v, want %v", got, m.keys)
			}
			for _, k := range m.keys {
				if got[k] != want[k] {
					t.Errorf("%s: quiet period %q, want %q (its rule's, else the profile's)", k, got[k], want[k])
				}
			}
		})
	}

	// The cadence: keys due and --due's choice both follow each key's rule.
	e := agreeWorld(t)
	if code := run(e, "keys", "due", "-o", "json"); code != cmdutil.ExitDue {
		t.Fatalf("keys due: exit %d, want 5:\n%s", code, e.ErrOut)
	}
	for _, k := range []string{"Webhook relay", "Reporting export (2026)"} {
		if !strings.Contains(e.Out.String(), `"`+k+`"`) {
			t.Errorf("keys due does not list %s, due by its rule's cadence:\n%s", k, e.Out)
		}
	}
}

// quietOf is the quiet period a rotation's JSON result names.
func quietOf(t *testing.T, data []byte) string {
	t.Helper()
	var r struct {
		QuietPeriod string `json:"quiet_period"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("result: %v\n%s", err, data)
	}
	return r.QuietPeriod
}

// --issued-by lists the person's keys once: its warning about the
// management key in use is said once. A key without a target refuses the
// run with exit 2 before anything is created.
func TestIssuedByListsTheKeysOnce(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	e.Setenv("PLANA_ROTATION_TARGETS", `[{match: "*", to: ["exec:cat >/dev/null"]}]`)
	if code := run(e, "keys", "rotate", "--issued-by", "ana@example.com", "--dry-run"); code != cmdutil.ExitOK {
		t.Fatalf("exit %d:\n%s", code, e.ErrOut)
	}
	if n := strings.Count(e.ErrOut.String(), "it is the management key plana is using"); n != 1 {
		t.Errorf("the warning about the management key is said %d times, want once:\n%s", n, e.ErrOut)
	}

	// ben's reporting key has no target: the run is refused as a whole.
	e = cmdtest.New(t)
	e.Setenv("PLANA_ROTATION_TARGETS", `[{match: "Webhook*", to: ["exec:cat >/dev/null"]}]`)
	before := keyCount(t, e)
	if code := run(e, "keys", "rotate", "--issued-by", "ben@example.com", "--yes", "--no-wait"); code != cmdutil.ExitUsage {
		t.Fatalf("exit %d, want 2:\n%s", code, e.ErrOut)
	}
	if !strings.Contains(e.ErrOut.String(), "1 of the 2 keys issued by ben@example.com have no deploy target: Reporting export (2026)") {
		t.Errorf("the refusal must name the key without a target:\n%s", e.ErrOut)
	}
	if keyCount(t, e) != before {
		t.Error("a refused run created keys")
	}
}
