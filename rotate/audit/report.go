package audit

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// Report is one audit's outcome. Its JSON field names are a contract
// (`plana keys audit -o json`).
type Report struct {
	BaselineSince time.Time     `json:"baseline_since"`
	Since         time.Time     `json:"since"`
	Until         time.Time     `json:"until"`
	Window        duration.JSON `json:"window"`
	Baseline      duration.JSON `json:"baseline"`
	// KeysAudited counts every key audited; Keys lists those called in the
	// audited window (or all of them, with Options.ReportQuiet).
	KeysAudited      int         `json:"keys_audited"`
	Flagged          int         `json:"flagged"`
	Clean            int         `json:"clean"`
	TooLittleHistory int         `json:"too_little_history"`
	Findings         int         `json:"findings"`
	Log              LogRead     `json:"log"`
	Keys             []KeyReport `json:"keys"`
}

// LogRead is what the pass read: every page once, for every key.
type LogRead struct {
	Pages   int `json:"pages"`
	Entries int `json:"entries"`
	// PlanaReads are plana's own reads (who am I, the key list, the log),
	// which are no key's usage source and are passed over.
	PlanaReads int `json:"plana_reads"`
}

// KeyRef names a key by what is public about it.
type KeyRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	Status string `json:"status"`
}

// KeyReport is one key's verdict.
type KeyReport struct {
	Key     KeyRef `json:"key"`
	Verdict string `json:"verdict"`
	// Calls in the audited window, plana's own reads left out; Allowed of
	// them matched audit.allow.
	Calls    int       `json:"calls"`
	Allowed  int       `json:"allowed_calls"`
	Baseline Profile   `json:"baseline"`
	Findings []Finding `json:"findings"`
	// Note says why a key has too little history to judge; Callers are
	// then its calls, for a person to look at.
	Note    string      `json:"note,omitempty"`
	Callers []CallGroup `json:"callers,omitempty"`
}

// Finding is one thing a key's log shows that its baseline does not.
type Finding struct {
	Kind Kind `json:"kind"`
	// Subject is what is new: the IP range, the user-agent product, the
	// method and path shape, the hour of a burst.
	Subject   string      `json:"subject"`
	Count     int         `json:"count"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	Why       string      `json:"why"`
	Calls     []CallGroup `json:"calls"`
}

// CallGroup is the calls of one caller: one source IP, user agent, method,
// path shape and status.
type CallGroup struct {
	SourceIP  string    `json:"source_ip"`
	UserAgent string    `json:"user_agent"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	Count     int       `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Profile is a key's baseline as the audit learnt it.
type Profile struct {
	Calls            int        `json:"calls"`
	FirstCall        *time.Time `json:"first_call,omitempty"`
	IPRanges         []Known    `json:"ip_ranges"`
	UserAgents       []Known    `json:"user_agents"`
	Paths            []Known    `json:"paths"`
	HoursUTC         []int      `json:"hours_utc"`
	BusiestHourCalls int        `json:"busiest_hour_calls"`
}

// Known is one usual source and how often it called; an IP range names the
// user-agent products seen from it.
type Known struct {
	Value      string   `json:"value"`
	Calls      int      `json:"calls"`
	UserAgents []string `json:"user_agents,omitempty"`
}

// Report judges every key from what the pass learnt.
func (a *Auditor) Report() *Report {
	r := &Report{BaselineSince: a.baseSince, Since: a.since, Until: a.until,
		Window: duration.JSON(a.opts.Since), Baseline: duration.JSON(a.opts.Baseline),
		KeysAudited: len(a.order), Log: LogRead{Pages: a.pages, Entries: a.entries, PlanaReads: a.plana}, Keys: []KeyReport{}}
	for _, id := range a.order {
		k := a.keys[id]
		kr := a.judge(k)
		switch kr.Verdict {
		case Flagged:
			r.Flagged++
			r.Findings += len(kr.Findings)
		case TooLittleHistory:
			r.TooLittleHistory++
		default:
			r.Clean++
		}
		if kr.Calls > 0 || kr.Verdict != Clean || a.opts.ReportQuiet {
			r.Keys = append(r.Keys, kr)
		}
	}
	rank := map[string]int{Flagged: 0, TooLittleHistory: 1, Clean: 2}
	slices.SortStableFunc(r.Keys, func(x, y KeyReport) int {
		return cmp.Or(cmp.Compare(rank[x.Verdict], rank[y.Verdict]), cmp.Compare(x.Key.Name, y.Key.Name), cmp.Compare(x.Key.ID, y.Key.ID))
	})
	return r
}

func (a *Auditor) allowed(name string, c call) bool {
	for _, al := range a.opts.Allow {
		if al.allows(name, c.ip, c.ua) {
			return true
		}
	}
	return false
}

// judge is one key's verdict: its audited calls against its baseline.
func (a *Auditor) judge(k *keyState) KeyReport {
	kr := KeyReport{Key: KeyRef{ID: k.key.ID, Name: k.key.Name, Prefix: k.key.Prefix, Status: k.key.Status},
		Baseline: k.base.profile(), Findings: []Finding{}}
	fs := newCollector()
	calls := k.calls()
	// refused: a revoked key presented and turned away; judged by where it
	// came from alone, since nothing of the key's own use says who may
	// still hold it (the place that forgot to move on, or a stranger).
	refused := func(c call) bool { return c.status == http.StatusUnauthorized && k.key.Status == client.StatusRevoked }
	perHour := map[int64]int{}
	var live []call
	for _, c := range calls {
		kr.Calls += c.calls
		if !refused(c) {
			perHour[c.hour] += c.calls
		}
		switch {
		case a.allowed(k.key.Name, c):
			kr.Allowed += c.calls
		case refused(c):
			if k.base.ranges[ipRange(c.ip)] == nil {
				fs.add(RevokedKeyPresented, ipRange(c.ip), c)
			}
		default:
			live = append(live, c)
		}
	}
	idle := k.base.calls == 0 && !k.key.CreatedAt.After(a.baseSince)
	thin := a.thin(k)
	switch {
	case len(live) == 0:
	case idle:
		for _, c := range live {
			fs.add(IdleKeyUsed, "", c)
		}
	case thin != "":
		kr.Note = thin
		kr.Callers = merge(live)
	default:
		for _, c := range live {
			if k.base.ranges[ipRange(c.ip)] == nil {
				fs.add(NewSource, ipRange(c.ip), c)
			}
			if _, ok := k.base.products[product(c.ua)]; !ok {
				fs.add(NewUserAgent, productLabel(product(c.ua)), c)
			}
			if _, ok := k.base.shapes[c.method+" "+c.shape]; !ok {
				fs.add(NewPath, c.method+" "+c.shape, c)
			}
		}
	}
	if !idle && thin == "" {
		busiest := k.base.busiest()
		limit := max(BurstFactor*busiest, busiest+BurstMargin)
		for _, c := range calls {
			if perHour[c.hour] > limit && !refused(c) {
				fs.add(Burst, hourStart(c.hour).Format(time.RFC3339), c)
			}
		}
	}
	kr.Findings = fs.finish(a, k)
	switch {
	case len(kr.Findings) > 0:
		kr.Verdict = Flagged
	case kr.Note != "":
		kr.Verdict = TooLittleHistory
	default:
		kr.Verdict = Clean
	}
	return kr
}

// thin says why a key's history is too short or too sparse to judge; ""
// when it is enough.
func (a *Auditor) thin(k *keyState) string {
	from := a.baseSince
	if k.key.CreatedAt.After(from) {
		from = k.key.CreatedAt
	}
	history := a.since.Sub(from)
	need := min(MinHistory, a.opts.Baseline)
	created := k.key.CreatedAt.UTC().Format("2006-01-02 15:04 UTC")
	switch {
	case history <= 0:
		return "created " + created + ", inside the audited window: no history to judge its calls by"
	case history < need:
		return "created " + created + ", " + roughSpan(history) + " before the audited window: too little history to judge (" +
			SpanWords(need) + " needed)"
	case k.base.calls < MinBaselineCalls:
		return pluralCalls(k.base.calls) + " in the " + SpanWords(a.opts.Baseline) + " before the audited window: too little history to judge (" +
			pluralCalls(MinBaselineCalls) + " needed)"
	}
	return ""
}

func (b *baseline) profile() Profile {
	p := Profile{Calls: b.calls, BusiestHourCalls: b.busiest(), IPRanges: []Known{}, UserAgents: []Known{}, Paths: []Known{}, HoursUTC: []int{}}
	if b.calls > 0 {
		first := b.first
		p.FirstCall = &first
	}
	for v, r := range b.ranges {
		uas := make([]string, len(r.products))
		for i, pr := range r.products {
			uas[i] = productLabel(pr)
		}
		p.IPRanges = append(p.IPRanges, Known{Value: v, Calls: r.calls, UserAgents: uas})
	}
	for v, n := range b.products {
		p.UserAgents = append(p.UserAgents, Known{Value: productLabel(v), Calls: n})
	}
	for v, n := range b.shapes {
		p.Paths = append(p.Paths, Known{Value: v, Calls: n})
	}
	for _, ks := range [][]Known{p.IPRanges, p.UserAgents, p.Paths} {
		slices.SortFunc(ks, func(x, y Known) int { return cmp.Or(cmp.Compare(y.Calls, x.Calls), cmp.Compare(x.Value, y.Value)) })
	}
	for h, n := range b.hours {
		if n > 0 {
			p.HoursUTC = append(p.HoursUTC, h)
		}
	}
	return p
}

// merge sums calls over the hours, one CallGroup per caller, busiest
// first.
func merge(calls []call) []CallGroup {
	type id struct {
		ip, ua, method, shape string
		status                int
	}
	idx := map[id]int{}
	var out []CallGroup
	for _, c := range calls {
		k := id{c.ip, c.ua, c.method, c.shape, c.status}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, CallGroup{SourceIP: c.ip, UserAgent: c.ua, Method: c.method, Path: c.path, Status: c.status, FirstSeen: c.first, LastSeen: c.last})
		}
		g := &out[i]
		g.Count += c.calls
		if c.first.Before(g.FirstSeen) {
			g.FirstSeen = c.first
		}
		if c.last.After(g.LastSeen) {
			g.LastSeen = c.last
		}
	}
	slices.SortStableFunc(out, func(x, y CallGroup) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), x.FirstSeen.Compare(y.FirstSeen))
	})
	return out
}
