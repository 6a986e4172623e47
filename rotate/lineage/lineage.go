// Package lineage owns what a successor's description says about the
// rotation that made it: the sentence written there (Claim), reading it
// back, which keys succeed which (the description, else the name rule), the
// race rule among several, the successor's name, and the family that links
// every key of a workspace to the key it replaced.
package lineage

import (
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate/ref"
)

// maxDescription is the longest description the contract accepts, in
// characters (runes).
const maxDescription = 500

// Claim is what a successor's description says about the rotation that
// made it. It is written where the whole workspace sees it (BOS → Settings →
// API keys), so any machine with a management key can find a rotation under
// way without the journal of the machine that started it.
type Claim struct {
	OldPrefix string    `json:"old_prefix" yaml:"old_prefix"` // the key it replaces
	OldName   string    `json:"old_name" yaml:"old_name"`     // that key's name, possibly cut short to fit
	By        string    `json:"by" yaml:"by"`                 // email of the user who started the rotation
	On        time.Time `json:"on" yaml:"on"`                 // the day it started, UTC midnight
	// Host is the machine whose keyring received the plaintext (its
	// machine_name): what a lost laptop's rotation selects keys by. ""
	// in a description written before plana named it.
	Host   string `json:"host,omitempty" yaml:"host,omitempty"`
	Reason string `json:"reason" yaml:"reason"`
	// Emergency: the rotation revoked the old key at once, passing over
	// any successor already there (written "emergency: " before the
	// reason). Once the old key is revoked, the revoker's emergency
	// successor is the one kept (Family.Kept).
	Emergency bool `json:"emergency,omitempty" yaml:"emergency,omitempty"`
}

// emergencyMark starts the reason of an emergency's claim.
const emergencyMark = "emergency: "

const lineageDate = "2006-01-02"

// lineageRe reads a description written by Description. The name is matched
// lazily, up to the first ") by ": Description never leaves one in a name,
// while the reason (free text after the last fixed part) may hold anything.
// The host (" on HOST" after the date) is optional: descriptions written
// before plana named the machine have none.
var lineageRe = regexp.MustCompile(`^Rotation of (pa_(?:live|test)_[0-9A-Za-z]{8}) \((.*?)\) by (\S*) on (\d{4}-\d{2}-\d{2})(?: on ([A-Za-z0-9][A-Za-z0-9._-]{0,63}))?: (.*)$`)

// Description is the successor's description: "Rotation of pa_live_AB7K2XYZ
// (Nightly stock sync (2025)) by ana@example.com on 2026-11-30 on
// ana-laptop: scheduled", or "...: emergency: compromise". It never exceeds maxDescription characters: the
// old name gives way first (cut at a character boundary and ended with
// "…"), then the reason. The host is bounded (textsafe.HostName) and never cut.
func (l Claim) Description() string {
	name, by, reason := lineageName(l.OldName), strings.Join(strings.Fields(oneLine(l.By)), ""), oneLine(l.Reason)
	mark := ""
	if l.Emergency {
		// Apart from the reason, so shortening never cuts it.
		mark = emergencyMark
	}
	on := l.On.UTC().Format(lineageDate)
	if h := textsafe.HostName(l.Host); h != "" {
		on += " on " + h
	}
	build := func(name, reason string) string {
		return "Rotation of " + l.OldPrefix + " (" + name + ") by " + by + " on " + on + ": " + mark + reason
	}
	d := build(name, reason)
	over := utf8.RuneCountInString(d) - maxDescription
	if over <= 0 {
		return d
	}
	name, over = shorten(name, over)
	if over > 0 {
		reason, over = shorten(reason, over)
	}
	if over > 0 {
		// Only an email far past RFC 5321's 254 characters gets here.
		by, _ = shorten(by, over)
	}
	return build(name, reason)
}

// shorten cuts s by at least over characters (counting the "…" it ends
// with), at a character boundary; it returns how many characters are still
// over when s alone cannot give enough.
func shorten(s string, over int) (string, int) {
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return s, over
	}
	keep := n - over - 1 // room for "…"
	if keep <= 0 {
		return "", over - n
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:keep]), unicode.IsSpace) + "…", 0
}

// lineageName is a key's name as a description carries it: on one line, and
// with the space of any ") by " in it made a no-break space, so the name's
// end stays unambiguous to Parse.
func lineageName(s string) string {
	return strings.ReplaceAll(oneLine(s), ") by ", ") by\u00a0")
}

// oneLine keeps a description on one line: control characters (a newline
// in a reason typed on the command line) become spaces.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

// Parse reads a description written by Description. Anything else (a
// description typed by hand, one edited since, an empty one) is no claim:
// ok is false, and the key falls back to the year-suffix rule.
func Parse(desc string) (Claim, bool) {
	m := lineageRe.FindStringSubmatch(desc)
	if m == nil {
		return Claim{}, false
	}
	on, err := time.Parse(lineageDate, m[4])
	if err != nil {
		return Claim{}, false
	}
	// A planned rotation whose reason starts with the mark reads as an
	// emergency: the reason is its creator's words, and only a believed
	// creator's claim counts.
	reason, emergency := strings.CutPrefix(m[6], emergencyMark)
	return Claim{OldPrefix: m[1], OldName: m[2], By: m[3], On: on, Host: m[5], Reason: reason, Emergency: emergency}, true
}

// Successors are the keys among keys that replace old, as caller (the user
// plana runs as) believes them, in the order the race rule ranks them: the
// winner first. Claimants are the keys that claim to replace old and are not
// believed (see judge), oldest first.
func Successors(old client.APIKey, keys []client.APIKey, caller client.User) (succ []client.APIKey, claimants []Claimant) {
	for _, k := range keys {
		switch v, l, d := judge(old, k, caller); v {
		case believed:
			succ = append(succ, k)
		case doubted:
			claimants = append(claimants, Claimant{Key: k, Old: ref.Of(old), Claim: l, Doubts: d})
		}
	}
	slices.SortFunc(succ, raceOrder)
	slices.SortFunc(claimants, func(a, b Claimant) int { return raceOrder(a.Key, b.Key) })
	return succ, claimants
}

// raceOrder is the rule every machine applies the same way when several
// started the same rotation at once: the earliest created_at (the server's
// clock, so every machine sees the same order) wins, then the smallest id.
func raceOrder(a, b client.APIKey) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Winner is the one successor among cands that the rotation carries on: the
// first active one by the race rule. ok is false when none is active.
func Winner(cands []client.APIKey) (client.APIKey, bool) {
	var best client.APIKey
	found := false
	for _, k := range cands {
		if k.Active() && (!found || raceOrder(k, best) < 0) {
			best, found = k, true
		}
	}
	return best, found
}
