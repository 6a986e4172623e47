package audit

import (
	"cmp"
	"slices"
	"time"
	"unique"

	"github.com/plana-cli/plana/client"
)

// keyState is what the pass has learnt of one key: its baseline, and its
// calls in the audited window grouped by caller and hour.
type keyState struct {
	key    client.APIKey
	base   baseline
	groups map[groupKey]*group
}

// baseline is a key's usual sources, counted.
type baseline struct {
	calls    int
	first    time.Time
	ranges   map[string]*rangeSeen
	products map[string]int
	shapes   map[string]int // "GET /v1/orders/{id}"
	hours    [24]int        // calls per hour of the day, UTC
	// The busiest clock hour, counted as the entries stream by: the log
	// comes newest first, so each key's entries of one hour are adjacent.
	hour           int64
	hourCalls, top int
}

// rangeSeen is one IP range of the baseline and the products seen from it
// (a few, to name it in a finding).
type rangeSeen struct {
	calls    int
	products []string
}

// maxProductsPerRange bounds what a range remembers of who called from it.
const maxProductsPerRange = 3

func (b *baseline) learn(e client.ExecutionLogEntry) {
	if b.ranges == nil {
		b.ranges, b.products, b.shapes = map[string]*rangeSeen{}, map[string]int{}, map[string]int{}
	}
	b.calls++
	if b.first.IsZero() || e.At.Before(b.first) {
		b.first = e.At
	}
	r := b.ranges[ipRange(e.SourceIP)]
	if r == nil {
		r = &rangeSeen{}
		b.ranges[ipRange(e.SourceIP)] = r
	}
	r.calls++
	p := product(e.UserAgent)
	if !slices.Contains(r.products, p) && len(r.products) < maxProductsPerRange {
		r.products = append(r.products, p)
	}
	b.products[p]++
	b.shapes[e.Method+" "+pathShape(e.Path)]++
	b.hours[e.At.UTC().Hour()]++
	if h := hourOf(e.At); h == b.hour && b.hourCalls > 0 {
		b.hourCalls++
	} else {
		b.top = max(b.top, b.hourCalls)
		b.hour, b.hourCalls = h, 1
	}
}

// busiest is the most calls the baseline saw in one clock hour.
func (b *baseline) busiest() int { return max(b.top, b.hourCalls) }

// groupKey is one caller in one clock hour of the audited window.
type groupKey struct {
	ip, ua, method, shape string
	status                int
	hour                  int64
}

type group struct {
	path        string // the first path seen, to show
	calls       int
	first, last time.Time
}

func (k *keyState) learn(e client.ExecutionLogEntry) { k.base.learn(e) }

func (k *keyState) observe(e client.ExecutionLogEntry) {
	if k.groups == nil {
		k.groups = map[groupKey]*group{}
	}
	gk := groupKey{ip: e.SourceIP, ua: e.UserAgent, method: e.Method, shape: pathShape(e.Path), status: e.Status, hour: hourOf(e.At)}
	g := k.groups[gk]
	if g == nil {
		// A caller is a group in each hour it calls: its text is kept once
		// for them all (and for every key), not once per hour.
		gk.ip, gk.ua, gk.method, gk.shape = intern(gk.ip), intern(gk.ua), intern(gk.method), intern(gk.shape)
		g = &group{path: intern(e.Path), first: e.At, last: e.At}
		k.groups[gk] = g
	}
	g.calls++
	if e.At.Before(g.first) {
		g.first = e.At
	}
	if e.At.After(g.last) {
		g.last = e.At
	}
}

func intern(s string) string { return unique.Make(s).Value() }

// call is one group with its key, as the judging reads them.
type call struct {
	groupKey
	*group
}

// calls are the key's groups, oldest first, in one order however the
// pages came.
func (k *keyState) calls() []call {
	out := make([]call, 0, len(k.groups))
	for gk, g := range k.groups {
		out = append(out, call{gk, g})
	}
	slices.SortFunc(out, func(a, b call) int {
		return cmp.Or(a.first.Compare(b.first), cmp.Compare(a.ip, b.ip), cmp.Compare(a.ua, b.ua),
			cmp.Compare(a.method, b.method), cmp.Compare(a.shape, b.shape), cmp.Compare(a.status, b.status), cmp.Compare(a.hour, b.hour))
	})
	return out
}
