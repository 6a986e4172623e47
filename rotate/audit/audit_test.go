package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// The audits here run on synthetic log entries: the analysis is pure. The
// pass over a real emulator's log is in run_test.go.

var now = time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)

const day = 24 * time.Hour

func key(id, name string, age time.Duration, status string) client.APIKey {
	k := client.APIKey{ID: id, Name: name, Prefix: "pa_live_" + strings.ToUpper(id[4:]), Status: status, CreatedAt: now.Add(-age)}
	if status == client.StatusRevoked {
		at := now.Add(-2 * time.Hour)
		k.RevokedAt = &at
	}
	return k
}

var (
	nightly = key("key_nightly1", "Nightly stock sync (2025)", 400*day, client.StatusActive)
	young   = key("key_young001", "Reporting export (2026)", 3*day, client.StatusActive)
	idle    = key("key_idle0001", "Legacy export", 90*day, client.StatusActive)
	sparse  = key("key_sparse01", "Quarterly report", 200*day, client.StatusActive)
	revoked = key("key_revoked1", "Nightly stock sync (2024)", 700*day, client.StatusRevoked)
)

func entry(k client.APIKey, at time.Time, method, path, ip, ua string, status int) client.ExecutionLogEntry {
	return client.ExecutionLogEntry{ID: fmt.Sprintf("exe_%d_%s", at.UnixNano(), ip), At: at, KeyID: k.ID, KeyPrefix: k.Prefix,
		Method: method, Path: path, Status: status, SourceIP: ip, UserAgent: ua}
}

// nightlyRuns is k's job at 02:00 UTC on each of the days back from first
// to last (days before now): a GET and a PUT from one server.
func nightlyRuns(k client.APIKey, first, last int, ip string, status int) []client.ExecutionLogEntry {
	var out []client.ExecutionLogEntry
	for d := first; d >= last; d-- {
		run := now.Truncate(day).Add(-time.Duration(d)*day + 2*time.Hour)
		out = append(out, entry(k, run.Add(3*time.Second), "GET", "/v1/stock-levels", ip, "stock-sync/1.4", status),
			entry(k, run.Add(9*time.Second), "PUT", "/v1/stock-levels", ip, "stock-sync/1.4", status))
	}
	return out
}

// history is every key's baseline: the nightly jobs' month, the sparse
// key's five calls, nothing for the idle and young keys.
func history() []client.ExecutionLogEntry {
	es := nightlyRuns(nightly, 30, 2, "203.0.113.7", 200)
	es = append(es, nightlyRuns(revoked, 30, 2, "203.0.113.9", 200)...)
	for d := 5; d <= 25; d += 5 {
		es = append(es, entry(sparse, now.Add(-time.Duration(d)*day), "GET", "/v1/reports", "192.0.2.10", "reports/2.0", 200))
	}
	return es
}

// audit runs the analysis over entries, newest first as the API gives them,
// three pages of any size.
func audit(t *testing.T, entries []client.ExecutionLogEntry, opts Options, keys ...client.APIKey) *Report {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = now
	}
	if opts.Since == 0 {
		opts.Since = day
	}
	if opts.Baseline == 0 {
		opts.Baseline = 30 * day
	}
	opts.ReportQuiet = true
	a, err := New(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	es := slices.Clone(entries)
	slices.SortStableFunc(es, func(x, y client.ExecutionLogEntry) int { return y.At.Compare(x.At) })
	third := len(es)/3 + 1
	for len(es) > 0 {
		n := min(third, len(es))
		a.AddPage(es[:n])
		es = es[n:]
	}
	return a.Report()
}

func keyReport(t *testing.T, r *Report, id string) KeyReport {
	t.Helper()
	for _, kr := range r.Keys {
		if kr.Key.ID == id {
			return kr
		}
	}
	t.Fatalf("no report for %s in %+v", id, r.Keys)
	return KeyReport{}
}

// findings sums a key's findings up as "kind subject ×count", in order.
func findings(kr KeyReport) []string {
	var out []string
	for _, f := range kr.Findings {
		out = append(out, fmt.Sprintf("%s %s ×%d", f.Kind, f.Subject, f.Count))
	}
	return out
}

func at(hour, min int) time.Time {
	return now.Truncate(day).Add(time.Duration(hour)*time.Hour + time.Duration(min)*time.Minute)
}

func TestAudit(t *testing.T) {
	many := func(n int, k client.APIKey, start time.Time, ip, ua string) []client.ExecutionLogEntry {
		var out []client.ExecutionLogEntry
		for i := range n {
			out = append(out, entry(k, start.Add(time.Duration(i)*time.Second), "GET", "/v1/stock-levels", ip, ua, 200))
		}
		return out
	}
	tests := []struct {
		name    string
		key     client.APIKey
		window  []client.ExecutionLogEntry
		opts    Options
		verdict string
		want    []string // findings, "kind subject ×count"
		why     string   // the first finding's why, or the note
	}{
		{name: "the usual job is clean", key: nightly, window: nightlyRuns(nightly, 0, 0, "203.0.113.7", 200), verdict: Clean},
		{name: "a neighbour address and a new version are the same caller", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 0), "GET", "/v1/stock-levels", "203.0.113.99", "Stock-Sync/1.5 (linux)", 200)},
			verdict: Clean},
		{name: "a new address", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(14, 2), "GET", "/v1/stock-levels", "198.51.100.23", "stock-sync/1.4", 200)},
			verdict: Flagged, want: []string{"new-source 198.51.100.0/24 ×1"},
			why: "198.51.100.23 never seen in 30 days; known: 203.0.113.0/24 (stock-sync); at 14:00 UTC, outside its usual hours (02:00 UTC)"},
		{name: "many addresses of one new range", key: nightly,
			window: []client.ExecutionLogEntry{entry(nightly, at(2, 1), "GET", "/v1/stock-levels", "198.51.100.23", "stock-sync/1.4", 200),
				entry(nightly, at(2, 2), "GET", "/v1/stock-levels", "198.51.100.24", "stock-sync/1.4", 200)},
			verdict: Flagged, want: []string{"new-source 198.51.100.0/24 ×2"},
			why: "2 addresses in 198.51.100.0/24 never seen in 30 days; known: 203.0.113.0/24 (stock-sync)"},
		{name: "a new user agent", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 5), "GET", "/v1/stock-levels", "203.0.113.7", "curl/8.5.0", 200)},
			verdict: Flagged, want: []string{"new-user-agent curl ×1"}, why: "curl/8.5.0 never seen in 30 days; known: stock-sync"},
		{name: "no user agent at all", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 5), "GET", "/v1/stock-levels", "203.0.113.7", "", 200)},
			verdict: Flagged, want: []string{"new-user-agent (no user agent) ×1"}},
		{name: "an automation key calling the key management API", key: nightly,
			window: []client.ExecutionLogEntry{entry(nightly, at(2, 5), "GET", "/v1/api-keys", "203.0.113.7", "stock-sync/1.4", 403),
				entry(nightly, at(2, 6), "POST", "/v1/api-keys/key_01JABCDEFG/revoke", "203.0.113.7", "stock-sync/1.4", 403)},
			verdict: Flagged, want: []string{"new-path GET /v1/api-keys ×1", "new-path POST /v1/api-keys/{id}/revoke ×1"},
			why: "GET /v1/api-keys never called in 30 days; known: GET /v1/stock-levels, PUT /v1/stock-levels"},
		{name: "a known path with another id is no new path", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 5), "PUT", "/v1/stock-levels", "203.0.113.7", "stock-sync/1.4", 200)},
			verdict: Clean},
		{name: "a stranger is new on every count", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(14, 5), "GET", "/v1/api-keys", "192.0.2.66", "curl/8.5.0", 403)},
			verdict: Flagged, want: []string{"new-source 192.0.2.0/24 ×1", "new-user-agent curl ×1", "new-path GET /v1/api-keys ×1"}},
		{name: "a burst from the usual caller", key: nightly, window: many(60, nightly, at(3, 0), "203.0.113.7", "stock-sync/1.4"),
			verdict: Flagged, want: []string{"burst " + at(3, 0).Format(time.RFC3339) + " ×60"},
			why: "60 calls in the hour from 03:00 UTC; the busiest hour of the 30 days before had 2 calls"},
		{name: "fifty more than the busiest hour is not yet a burst", key: nightly, window: many(52, nightly, at(3, 0), "203.0.113.7", "stock-sync/1.4"),
			verdict: Clean},
		{name: "an idle key used", key: idle,
			window:  []client.ExecutionLogEntry{entry(idle, at(9, 0), "GET", "/v1/exports", "203.0.113.7", "exporter/1.0", 200)},
			verdict: Flagged, want: []string{"idle-key-used  ×1"}, why: "no call in the 30 days before, though the key is 90 days old; then 1 call"},
		{name: "a young key has too little history", key: young,
			window:  []client.ExecutionLogEntry{entry(young, at(9, 0), "GET", "/v1/reports", "192.0.2.80", "reports/1.0", 200)},
			verdict: TooLittleHistory,
			why:     "created 2026-11-28 14:30 UTC, 2 days before the audited window: too little history to judge (7 days needed)"},
		{name: "a sparse key has too little history", key: sparse,
			window:  []client.ExecutionLogEntry{entry(sparse, at(9, 0), "GET", "/v1/reports", "198.51.100.1", "curl/8.5.0", 200)},
			verdict: TooLittleHistory, why: "5 calls in the 30 days before the audited window: too little history to judge (10 calls needed)"},
		{name: "a key created inside the window", key: key("key_brandnew", "New", time.Hour, client.StatusActive),
			window:  []client.ExecutionLogEntry{entry(key("key_brandnew", "New", time.Hour, client.StatusActive), at(14, 0), "GET", "/v1/x", "192.0.2.1", "x/1", 200)},
			verdict: TooLittleHistory, why: "created 2026-12-01 13:30 UTC, inside the audited window: no history to judge its calls by"},
		{name: "a revoked key tried from elsewhere", key: revoked,
			window:  []client.ExecutionLogEntry{entry(revoked, at(13, 0), "GET", "/v1/stock-levels", "192.0.2.66", "curl/8.5.0", 401)},
			verdict: Flagged, want: []string{"revoked-key-presented 192.0.2.0/24 ×1"},
			why: "revoked on 2026-12-01 12:30 UTC, then presented and refused (401) from 192.0.2.66, never seen in 30 days; known: 203.0.113.0/24 (stock-sync)"},
		{name: "a revoked key still configured at its usual place is no stranger", key: revoked,
			window: nightlyRuns(revoked, 0, 0, "203.0.113.9", 401), verdict: Clean},
		{name: "an allowed source", key: nightly,
			window: []client.ExecutionLogEntry{entry(nightly, at(2, 0), "GET", "/v1/stock-levels", "198.51.100.23", "stock-sync/1.4", 200)},
			opts:   Options{Allow: []Allow{mustAllow(t, "Nightly stock sync*", "198.51.100.0/24", "")}}, verdict: Clean},
		{name: "an allowed user agent", key: nightly,
			window: []client.ExecutionLogEntry{entry(nightly, at(2, 0), "GET", "/v1/stock-levels", "203.0.113.7", "stock-sync-go/2.0", 200)},
			opts:   Options{Allow: []Allow{mustAllow(t, "*", "", "stock-sync-go/*")}}, verdict: Clean},
		{name: "an allow rule for other keys allows nothing here", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 0), "GET", "/v1/stock-levels", "198.51.100.23", "stock-sync/1.4", 200)},
			opts:    Options{Allow: []Allow{mustAllow(t, "Webhook*", "198.51.100.0/24", "")}},
			verdict: Flagged, want: []string{"new-source 198.51.100.0/24 ×1"}},
		{name: "an allow rule needs both its address and its user agent", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(2, 0), "GET", "/v1/stock-levels", "198.51.100.23", "curl/8.5.0", 200)},
			opts:    Options{Allow: []Allow{mustAllow(t, "Nightly*", "198.51.100.23", "stock-sync/*")}},
			verdict: Flagged, want: []string{"new-source 198.51.100.0/24 ×1", "new-user-agent curl ×1"}},
		{name: "plana's own reads are no usage", key: nightly,
			window: []client.ExecutionLogEntry{entry(nightly, at(14, 0), "GET", "/v1/me", "192.0.2.200", "plana/1.2.0 (linux; ci)", 200),
				entry(nightly, at(14, 0), "GET", "/v1/api-keys/key_01JABCDEFG", "192.0.2.200", "plana/1.2.0", 200)},
			verdict: Clean},
		{name: "plana's writes are audited like anyone's", key: nightly,
			window:  []client.ExecutionLogEntry{entry(nightly, at(14, 0), "POST", "/v1/api-keys", "192.0.2.200", "plana/1.2.0", 403)},
			verdict: Flagged, want: []string{"new-source 192.0.2.0/24 ×1", "new-user-agent plana ×1", "new-path POST /v1/api-keys ×1"}},
		{name: "a shorter baseline can leave too little", key: nightly, window: nightlyRuns(nightly, 0, 0, "198.51.100.23", 200),
			opts: Options{Baseline: 2 * day}, verdict: TooLittleHistory,
			why: "2 calls in the 2 days before the audited window: too little history to judge (10 calls needed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := audit(t, append(history(), tt.window...), tt.opts, tt.key)
			kr := keyReport(t, r, tt.key.ID)
			if kr.Verdict != tt.verdict || !slices.Equal(findings(kr), tt.want) {
				t.Fatalf("verdict %s, findings %q; want %s, %q", kr.Verdict, findings(kr), tt.verdict, tt.want)
			}
			got := kr.Note
			if len(kr.Findings) > 0 {
				got = kr.Findings[0].Why
			}
			if tt.why != "" && got != tt.why {
				t.Errorf("why:\n got %q\nwant %q", got, tt.why)
			}
			if tt.verdict == TooLittleHistory && len(kr.Callers) == 0 {
				t.Error("too little history, but the calls are not shown")
			}
		})
	}
}

func mustAllow(t *testing.T, match, ip, ua string) Allow {
	t.Helper()
	a, err := NewAllow(match, ip, ua)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestShapes(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7": "203.0.113.0/24", "203.0.113.255": "203.0.113.0/24", "::ffff:203.0.113.7": "203.0.113.0/24",
		"2001:db8:1:2::5": "2001:db8:1:2::/64", "2001:db8:1:2:ffff::1": "2001:db8:1:2::/64", "2001:db8:1:3::1": "2001:db8:1:3::/64",
		"fe80::1%eth0": "fe80::/64", "not an address": "not an address",
	} {
		if got := ipRange(in); got != want {
			t.Errorf("ipRange(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"stock-sync/1.4": "stock-sync", "Stock-Sync/1.5 (linux; amd64)": "stock-sync", "curl/8.5.0": "curl",
		"Mozilla/5.0 (X11; Linux x86_64)": "mozilla", "plana/1.2.0 (linux; ana-laptop)": "plana", "python-requests": "python-requests", "": "",
	} {
		if got := product(in); got != want {
			t.Errorf("product(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/v1/stock-levels":                               "/v1/stock-levels",
		"/v1/orders/8812":                                "/v1/orders/{id}",
		"/v1/api-keys/key_01JABCDEFGH/revoke":            "/v1/api-keys/{id}/revoke",
		"/v1/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301": "/v1/items/{id}",
		"/v1/blobs/9b74c9897bac770ffc029102a200c5de":     "/v1/blobs/{id}",
		"/v1/orders/webhooks":                            "/v1/orders/webhooks",
		"/v2/reports/quarterly-summary-export":           "/v2/reports/quarterly-summary-export",
		"/":                                              "/",
	} {
		if got := pathShape(in); got != want {
			t.Errorf("pathShape(%q) = %q, want %q", in, got, want)
		}
	}
	read := func(method, path, ua string) bool {
		return planaRead(client.ExecutionLogEntry{Method: method, Path: path, UserAgent: ua})
	}
	if !read("GET", "/v1/me", "plana/1.0") || !read("GET", "/v1/execution-log", "plana/dev (linux; ci)") || !read("GET", "/v1/api-keys/key_01", "plana/1") {
		t.Error("plana's reads are not recognised")
	}
	if read("POST", "/v1/api-keys", "plana/1.0") || read("GET", "/v1/me", "curl/8") || read("GET", "/v1/stock-levels", "plana/1.0") ||
		read("POST", "/v1/api-keys/key_01/revoke", "plana/1.0") || read("GET", "/v1/me", "planar/1.0") {
		t.Error("a write, another program or another path passed for plana's read")
	}
}

func TestNewAllow(t *testing.T) {
	for _, tc := range []struct{ match, ip, ua, want string }{
		{"", "192.0.2.0/24", "", "no match"},
		{"[", "192.0.2.0/24", "", "bad glob"},
		{"Nightly*", "", "", "give source_ip or user_agent"},
		{"Nightly*", "192.0.2.0/33", "", "not a CIDR"},
		{"Nightly*", "192.0.2", "", "not an address or a CIDR"},
	} {
		if _, err := NewAllow(tc.match, tc.ip, tc.ua); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewAllow(%q, %q, %q): %v, want %q", tc.match, tc.ip, tc.ua, err, tc.want)
		}
	}
	a := mustAllow(t, "Nightly*", "192.0.2.7", "")
	if !a.allows("Nightly", "192.0.2.7", "x") || a.allows("Nightly", "192.0.2.8", "x") {
		t.Error("one address allows exactly that address")
	}
	a = mustAllow(t, "*", "2001:db8::/32", "stock-sync/*")
	if !a.allows("any", "2001:db8:5::1", "stock-sync/2.0 (linux)") || a.allows("any", "2001:db9::1", "stock-sync/2.0") ||
		a.allows("any", "2001:db8::1", "stock-sync") || a.allows("any", "not-an-ip", "stock-sync/2") {
		t.Error("a CIDR and a user-agent glob")
	}
}

// One pass audits every key: each gets its own verdict, the called ones are
// listed (flagged first), the quiet ones only counted; entries outside the
// windows play no part.
func TestAuditManyKeys(t *testing.T) {
	window := []client.ExecutionLogEntry{
		entry(nightly, at(14, 0), "GET", "/v1/stock-levels", "192.0.2.66", "stock-sync/1.4", 200),
		entry(young, at(9, 0), "GET", "/v1/reports", "192.0.2.80", "reports/1.0", 200),
		// Outside both windows: before the baseline, at or after now.
		entry(idle, now.Add(-32*day), "GET", "/v1/exports", "192.0.2.1", "x/1", 200),
		entry(idle, now, "GET", "/v1/exports", "192.0.2.1", "x/1", 200),
		// Another key's, not audited.
		entry(key("key_other001", "Other", 400*day, client.StatusActive), at(9, 0), "GET", "/v1/x", "192.0.2.1", "x/1", 200),
	}
	a, err := New([]client.APIKey{idle, young, nightly, revoked, nightly}, Options{Now: now, Since: day, Baseline: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	es := append(history(), window...)
	slices.SortStableFunc(es, func(x, y client.ExecutionLogEntry) int { return y.At.Compare(x.At) })
	a.AddPage(es)
	r := a.Report()
	var listed []string
	for _, kr := range r.Keys {
		listed = append(listed, kr.Key.Name+" "+kr.Verdict)
	}
	want := []string{"Nightly stock sync (2025) flagged", "Reporting export (2026) too-little-history"}
	if !slices.Equal(listed, want) {
		t.Errorf("listed %q, want %q", listed, want)
	}
	if r.KeysAudited != 4 || r.Flagged != 1 || r.TooLittleHistory != 1 || r.Clean != 2 || r.Findings != 1 {
		t.Errorf("counts %+v", r)
	}
	if r.Log.Pages != 1 || r.Log.Entries != len(es) {
		t.Errorf("log read %+v, want 1 page of %d", r.Log, len(es))
	}
	if !r.Since.Equal(now.Add(-day)) || !r.BaselineSince.Equal(now.Add(-31*day)) || !r.Until.Equal(now) {
		t.Errorf("windows %v %v %v", r.BaselineSince, r.Since, r.Until)
	}
}

// Memory follows the callers, not the calls: ten thousand calls of one
// caller in one hour are one group.
func TestAuditAggregates(t *testing.T) {
	a, err := New([]client.APIKey{nightly}, Options{Now: now, Since: day, Baseline: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	start := at(3, 0)
	for p := range 10 {
		page := make([]client.ExecutionLogEntry, 1000)
		for i := range page {
			page[i] = entry(nightly, start.Add(time.Duration(10000-p*1000-i)*300*time.Millisecond), "GET", "/v1/stock-levels", "203.0.113.7", "stock-sync/1.4", 200)
		}
		a.AddPage(page)
	}
	hist := history()
	slices.SortStableFunc(hist, func(x, y client.ExecutionLogEntry) int { return y.At.Compare(x.At) })
	a.AddPage(hist)
	if n := len(a.keys[nightly.ID].groups); n != 1 {
		t.Fatalf("%d groups for one caller in one hour", n)
	}
	kr := keyReport(t, a.Report(), nightly.ID)
	if kr.Calls != 10000 || len(kr.Findings) != 1 || kr.Findings[0].Kind != Burst {
		t.Errorf("calls %d, findings %q", kr.Calls, findings(kr))
	}
}

// A key named twice (by its id and by its name, say) is audited once: the
// command passes its arguments' keys on as they resolve.
func TestAKeyNamedTwiceIsAuditedOnce(t *testing.T) {
	rep := audit(t, history(), Options{}, nightly, sparse, nightly)
	if rep.KeysAudited != 2 || len(rep.Keys) != 2 || rep.Keys[0].Key.ID != nightly.ID || rep.Keys[1].Key.ID != sparse.ID {
		t.Fatalf("audited %d keys, reported %+v", rep.KeysAudited, rep.Keys)
	}
}
