package emulator

import (
	"testing"
)

// With TrustForwardedFor the log's source_ip is the client-most address of
// X-Forwarded-For (what a proxy in front of BOS reports); without it, or
// when the header holds no address, it is the connection's peer.
func TestForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		trust  bool
		header string
		want   string
	}{
		{true, "198.51.100.23", "198.51.100.23"},
		{true, "198.51.100.23, 10.0.0.1, 10.0.0.2", "198.51.100.23"},
		{true, " 2001:db8:5::23 ,10.0.0.1", "2001:db8:5::23"},
		{true, "::ffff:192.0.2.66", "192.0.2.66"},
		{true, "", "127.0.0.1"},
		{true, "unknown, 198.51.100.23", "127.0.0.1"},
		{false, "198.51.100.23", "127.0.0.1"},
	} {
		e := newEnv(t, func(c *Config) { c.TrustForwardedFor = tc.trust })
		tok, k := e.mint(e.member, "automation", "stock:read")
		var extra []string
		if tc.header != "" {
			extra = []string{"X-Forwarded-For", tc.header}
		}
		e.want(e.do("GET", "/v1/stock-levels", tok, nil, extra...), 200, "")
		entries := e.logEntries("?key_id=" + k.ID)
		if len(entries) != 1 || entries[0].SourceIP != tc.want {
			t.Errorf("trust %v, X-Forwarded-For %q: %+v, want source_ip %s", tc.trust, tc.header, entries, tc.want)
		}
		e.stop()
	}
}
