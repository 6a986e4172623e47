package audit

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// ipRange is the network a source address belongs to: its /24 for IPv4 and
// its /64 for IPv6, the size one site or one customer line gets, so a
// worker that moves to the next address of its network is not a stranger.
// Text that is not an address stands for itself.
func ipRange(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// product is a user agent's product without its version, lower-cased:
// "stock-sync/1.4" and "Stock-Sync/1.5" are one caller, "curl/8.5.0"
// another. A client's upgrade is not a stranger; a new program is.
func product(ua string) string {
	tok, _, _ := strings.Cut(strings.TrimSpace(ua), " ")
	name, _, _ := strings.Cut(tok, "/")
	return strings.ToLower(name)
}

// noUserAgent is how a call that sent none is shown.
const noUserAgent = "(no user agent)"

func productLabel(p string) string {
	if p == "" {
		return noUserAgent
	}
	return p
}

// pathShape is a path with its ids collapsed, so that /v1/orders/8812 and
// /v1/orders/8813 are one thing a key does.
func pathShape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if isID(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

var (
	// prefixedID is an id with a type prefix, as BOS and Stripe write them:
	// key_01J…, exe_…, usr_….
	prefixedID = regexp.MustCompile(`^[a-z]{2,8}_[0-9A-Za-z]{6,}$`)
	uuid       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// token is a long run of letters and digits (a hash, a base62 id).
	token = regexp.MustCompile(`^[0-9A-Za-z_-]{16,}$`)
)

// isID says whether a path segment names one thing rather than a kind of
// thing: a number, a UUID, a prefixed id, or a long token mixing letters
// and digits.
func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, letters := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		}
	}
	switch {
	case digits == len(s):
		return true
	case uuid.MatchString(s), prefixedID.MatchString(s):
		return true
	}
	return digits > 0 && letters > 0 && token.MatchString(s)
}

// planaRead is one of plana's own reads: who am I, the key list, one key,
// the execution log. They change nothing, and they come from wherever plana
// runs (a laptop, a CI runner with a new address every hour, this very
// audit): plana's own requests are not a usage source of a key. plana's
// writes (create, revoke) are audited like any caller's.
func planaRead(e client.ExecutionLogEntry) bool {
	if e.Method != http.MethodGet || product(e.UserAgent) != "plana" {
		return false
	}
	p := e.Path
	if rest, ok := strings.CutPrefix(p, "/v1/api-keys/"); ok {
		return rest != "" && !strings.Contains(rest, "/")
	}
	return p == "/v1/me" || p == "/v1/api-keys" || p == "/v1/execution-log"
}

// hourOf numbers the clock hour t falls in (UTC), for counting calls per
// hour.
func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// hourStart is the start of the clock hour numbered h.
func hourStart(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// globRegexp compiles a glob in which * matches any run of characters,
// slashes included (a user agent's version follows one: "stock-sync/*"),
// and ? any one character.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
