// Package audit finds the calls "you didn't make": it learns each key's
// usual sources from the execution log over a baseline window (source IP
// ranges, user-agent products, method and path shapes, hours of the day,
// volume) and flags what the audited window that follows shows beyond them.
//
// It owns the analysis only: one pass over the log for every audited key,
// aggregated as the pages stream by (no entry is kept, so memory grows with
// the distinct sources, not with the log), and a Report. It knows nothing
// of cobra, terminals, config files or rotations; the command layer reads
// the settings, prints the report and runs the emergency rotations.
package audit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// Kind is what a finding is about.
type Kind string

// The findings, in the order a report lists them.
const (
	// RevokedKeyPresented: refused calls (401) presenting a revoked key from
	// a source it was never used from: someone trying a leaked key.
	RevokedKeyPresented Kind = "revoked-key-presented"
	// IdleKeyUsed: a key with no call in the whole baseline is used.
	IdleKeyUsed Kind = "idle-key-used"
	// NewSource: calls from an IP range never seen in the baseline.
	NewSource Kind = "new-source"
	// NewUserAgent: calls from a user-agent product never seen.
	NewUserAgent Kind = "new-user-agent"
	// NewPath: a method and path shape the key never called.
	NewPath Kind = "new-path"
	// Burst: an hour far busier than the busiest hour of the baseline.
	Burst Kind = "burst"
)

// Kinds lists every kind of finding, in report order.
var Kinds = []Kind{RevokedKeyPresented, IdleKeyUsed, NewSource, NewUserAgent, NewPath, Burst}

// Verdicts of one key.
const (
	Flagged          = "flagged"
	Clean            = "clean"
	TooLittleHistory = "too-little-history"
)

// The thresholds. Below MinBaselineCalls calls, or MinHistory of history
// (the baseline's length when shorter), a key's baseline is too thin to
// tell a stranger from a rare caller: it is reported as such, never passed
// as clean. An hour is a burst above BurstFactor times the busiest baseline
// hour and at least BurstMargin calls more: a nightly job's two calls an
// hour do not make a dozen retries an attack.
const (
	MinBaselineCalls = 10
	MinHistory       = 7 * 24 * time.Hour
	BurstFactor      = 5
	BurstMargin      = 50
)

// PageSize is how many entries one read of the log asks for: the API's most.
const PageSize = 1000

// Options are one audit's windows and exceptions.
type Options struct {
	// Now is the server's time (its Date header): the audited window ends
	// here. A laptop's clock plays no part.
	Now time.Time
	// Since is the audited window's length, Baseline the baseline's, which
	// ends where the audited window starts.
	Since, Baseline time.Duration
	// Allow are the expected changes (a new region, a new client): calls
	// they match are not flagged.
	Allow []Allow
	// ReportQuiet lists keys with no call in the audited window too (the
	// keys named on the command line); otherwise only called keys are.
	ReportQuiet bool
}

// Allow is one entry of audit.allow: the calls of keys whose name matches
// Match, from SourceIP (any when not valid) with a user agent matching
// UserAgent (any when empty), are expected.
type Allow struct {
	Match     string
	SourceIP  netip.Prefix
	UserAgent string
	ua        *regexp.Regexp
}

// NewAllow checks and builds an Allow: match is a glob on the key's name
// (as rotation.targets' match), sourceIP a CIDR or one address, userAgent a
// glob whose * matches anything, slashes included. One of the two must be
// given: allowing every call of a key is not auditing it.
func NewAllow(match, sourceIP, userAgent string) (Allow, error) {
	a := Allow{Match: match, UserAgent: userAgent}
	if match == "" {
		return a, errors.New("no match: give a glob on the key's name")
	}
	if _, err := path.Match(match, ""); err != nil {
		return a, fmt.Errorf("bad glob %q: %v", match, err)
	}
	if sourceIP == "" && userAgent == "" {
		return a, fmt.Errorf("match %q: give source_ip or user_agent (or both); to stop auditing a key, leave it out of the audit", match)
	}
	if sourceIP != "" {
		p, err := parsePrefix(sourceIP)
		if err != nil {
			return a, err
		}
		a.SourceIP = p
	}
	if userAgent != "" {
		re, err := globRegexp(userAgent)
		if err != nil {
			return a, fmt.Errorf("bad user_agent glob %q: %v", userAgent, err)
		}
		a.ua = re
	}
	return a, nil
}

// parsePrefix reads a CIDR (203.0.113.0/24, 2001:db8::/48) or one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("source_ip %q is not a CIDR such as 203.0.113.0/24", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("source_ip %q is not an address or a CIDR such as 203.0.113.0/24", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (a Allow) allows(name, ip, ua string) bool {
	if ok, _ := path.Match(a.Match, name); !ok {
		return false
	}
	if a.SourceIP.IsValid() {
		addr, err := netip.ParseAddr(ip)
		if err != nil || !a.SourceIP.Contains(addr.Unmap().WithZone("")) {
			return false
		}
	}
	return a.ua == nil || a.ua.MatchString(ua)
}

// Auditor is one pass over the execution log: Add each page as it comes,
// then Report.
type Auditor struct {
	opts                    Options
	baseSince, since, until time.Time
	keys                    map[string]*keyState
	order                   []string
	entries, pages, plana   int
}

// New starts an audit of keys; a key given twice is audited once.
func New(keys []client.APIKey, opts Options) (*Auditor, error) {
	switch {
	case opts.Now.IsZero():
		return nil, errors.New("audit: no server time")
	case opts.Since <= 0 || opts.Baseline <= 0:
		return nil, errors.New("audit: the audited window and the baseline must be positive")
	}
	a := &Auditor{opts: opts, until: opts.Now, keys: map[string]*keyState{}}
	a.since = a.until.Add(-opts.Since)
	a.baseSince = a.since.Add(-opts.Baseline)
	for _, k := range keys {
		if _, dup := a.keys[k.ID]; dup {
			continue
		}
		a.keys[k.ID] = &keyState{key: k}
		a.order = append(a.order, k.ID)
	}
	return a, nil
}

// AddPage takes the next page of the log, newest entries first as the API
// gives them (each key's busiest hour is counted as its entries stream by);
// entries of other keys or outside the windows are passed over.
func (a *Auditor) AddPage(entries []client.ExecutionLogEntry) {
	a.pages++
	for _, e := range entries {
		a.entries++
		k := a.keys[e.KeyID]
		switch {
		case k == nil, e.At.Before(a.baseSince), !e.At.Before(a.until):
		case planaRead(e):
			a.plana++
		case e.At.Before(a.since):
			k.learn(e)
		default:
			k.observe(e)
		}
	}
}

// Now is where an audit's window ends, from the server's answers so far:
// its Date header has whole seconds, so its clock may be up to a second
// past the client's estimate (client.ServerNow), and the window ends that
// second later to take in every call made before the audit began. The
// audit's own calls in that second are plana's reads, which pass over.
func Now(api *client.Client) (time.Time, error) {
	now, ok := api.ServerNow()
	if !ok {
		return time.Time{}, errors.New("the server sent no Date header: plana will not judge the log by this machine's clock")
	}
	return now.Add(time.Second), nil
}

// Run audits keys with one pass over the log from the baseline's start to
// now, page by page: every page serves every key.
func Run(ctx context.Context, api *client.Client, keys []client.APIKey, opts Options) (*Report, error) {
	a, err := New(keys, opts)
	if err != nil {
		return nil, err
	}
	lo := client.ExecutionLogOptions{Since: a.baseSince, Until: a.until, PageSize: PageSize}
	if len(a.order) == 1 {
		lo.KeyID = a.order[0]
	}
	err = api.ExecutionLogPages(ctx, lo, func(page []client.ExecutionLogEntry) error {
		a.AddPage(page)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the execution log: %w", err)
	}
	return a.Report(), nil
}

// SpanWords says a window's length the way a person would: "30 days",
// "1 hour", else as a flag takes it ("90m").
func SpanWords(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	}
	return duration.Format(d)
}
