package audit

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// collector gathers the calls of each finding (a kind and a subject) as the
// judging meets them.
type collector struct {
	drafts map[[2]string]*draft
}

type draft struct {
	kind    Kind
	subject string
	calls   []call
}

func newCollector() *collector { return &collector{drafts: map[[2]string]*draft{}} }

func (c *collector) add(kind Kind, subject string, cl call) {
	k := [2]string{string(kind), subject}
	d := c.drafts[k]
	if d == nil {
		d = &draft{kind: kind, subject: subject}
		c.drafts[k] = d
	}
	d.calls = append(d.calls, cl)
}

// finish writes each finding out with its calls and why it is unusual, in
// report order: by kind, then the first call.
func (c *collector) finish(a *Auditor, k *keyState) []Finding {
	out := []Finding{}
	for _, d := range c.drafts {
		f := Finding{Kind: d.kind, Subject: d.subject, Calls: merge(d.calls)}
		for i, g := range f.Calls {
			f.Count += g.Count
			if i == 0 || g.FirstSeen.Before(f.FirstSeen) {
				f.FirstSeen = g.FirstSeen
			}
			if g.LastSeen.After(f.LastSeen) {
				f.LastSeen = g.LastSeen
			}
		}
		f.Why = a.why(k, d, f)
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(slices.Index(Kinds, x.Kind), slices.Index(Kinds, y.Kind)),
			x.FirstSeen.Compare(y.FirstSeen), cmp.Compare(x.Subject, y.Subject))
	})
	return out
}

// why says, in one line, what makes a finding unusual against the key's
// baseline: "198.51.100.23 never seen in 30 days; known: 203.0.113.0/24
// (stock-sync)".
func (a *Auditor) why(k *keyState, d *draft, f Finding) string {
	b := &k.base
	in := SpanWords(a.opts.Baseline)
	switch d.kind {
	case NewSource:
		return sourcesWords(f, d.subject) + " never seen in " + in + "; known: " + b.knownRanges() + b.hoursWords(d.calls)
	case NewUserAgent:
		return f.Calls[0].UserAgent + " never seen in " + in + "; known: " + b.knownProducts() + b.hoursWords(d.calls)
	case NewPath:
		return d.subject + " never called in " + in + "; known: " + b.knownShapes() + b.hoursWords(d.calls)
	case Burst:
		return fmt.Sprintf("%s in the hour from %s; the busiest hour of the %s before had %s",
			pluralCalls(f.Count), hourStart(d.calls[0].hour).Format("15:04 UTC"), in, pluralCalls(b.busiest()))
	case IdleKeyUsed:
		return fmt.Sprintf("no call in the %s before, though the key is %s old; then %s", in,
			roughSpan(a.until.Sub(k.key.CreatedAt)), pluralCalls(f.Count))
	case RevokedKeyPresented:
		revoked := "revoked"
		if k.key.RevokedAt != nil {
			revoked = "revoked on " + k.key.RevokedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		return fmt.Sprintf("%s, then presented and refused (401) from %s, never seen in %s; known: %s",
			revoked, sourcesWords(f, d.subject), in, b.knownRanges())
	}
	return ""
}

// sourcesWords names the addresses of a finding: the one address, or how
// many in the range.
func sourcesWords(f Finding, rng string) string {
	ips := map[string]bool{}
	for _, g := range f.Calls {
		ips[g.SourceIP] = true
	}
	if len(ips) == 1 {
		return f.Calls[0].SourceIP
	}
	return fmt.Sprintf("%d addresses in %s", len(ips), rng)
}

// listWords lists up to max items, then how many more.
func listWords(items []string, limit int) string {
	if len(items) == 0 {
		return "none"
	}
	if len(items) <= limit {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:limit], ", "), len(items)-limit)
}

func (b *baseline) knownRanges() string {
	var items []string
	for _, k := range b.profile().IPRanges {
		items = append(items, k.Value+" ("+strings.Join(k.UserAgents, ", ")+")")
	}
	return listWords(items, 3)
}

func (b *baseline) knownProducts() string {
	var items []string
	for _, k := range b.profile().UserAgents {
		items = append(items, k.Value)
	}
	return listWords(items, 5)
}

func (b *baseline) knownShapes() string {
	var items []string
	for _, k := range b.profile().Paths {
		items = append(items, k.Value)
	}
	return listWords(items, 5)
}

// hoursWords adds when the calls came if the key is never used at those
// hours: a stranger's working day is rarely the automation's schedule.
func (b *baseline) hoursWords(calls []call) string {
	if b.calls == 0 {
		return ""
	}
	seen := map[int]bool{}
	for _, c := range calls {
		h := hourStart(c.hour).Hour()
		if b.hours[h] > 0 {
			return ""
		}
		seen[h] = true
	}
	var at, usual []string
	for h := range 24 {
		if seen[h] {
			at = append(at, fmt.Sprintf("%02d:00", h))
		}
		if b.hours[h] > 0 {
			usual = append(usual, fmt.Sprintf("%02d:00", h))
		}
	}
	return "; at " + listWords(at, 3) + " UTC, outside its usual hours (" + listWords(usual, 6) + " UTC)"
}

func pluralCalls(n int) string {
	if n == 1 {
		return "1 call"
	}
	return fmt.Sprintf("%d calls", n)
}

// roughSpan is a duration as a person says it: "395 days", "5 hours".
func roughSpan(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return "moments"
}
