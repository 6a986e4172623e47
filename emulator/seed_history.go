package emulator

import (
	"net/http"
	"time"

	"github.com/plana-cli/plana/client"
)

// The demo's usual callers besides the nightly job, so that `plana keys
// audit` has weeks of each key's own sources to judge against: the webhook
// relay hourly from its server, and the admin running plana on this machine
// (loopback, where the demo's own plana runs) on weekday mornings. Other
// addresses are from the documentation ranges (RFC 5737).
const (
	webhookIP, webhookUA = "198.51.100.23", "webhook-relay/2.0"
	adminIP, adminUA     = "127.0.0.1", "plana/0.9.0 (linux; ana-laptop)"
	webhookWeeks         = 4
	adminDays            = 20 // the admin key is 21 days old
)

// demoHistory is the seed's older entries: the webhook relay's hourly calls
// before the last two days (which SeedDemo writes), and the admin's plana:
// reads every weekday morning, and a rotation's create and revoke.
func demoHistory(now time.Time, admin, webhook client.APIKey) []client.ExecutionLogEntry {
	var out []client.ExecutionLogEntry
	call := func(k client.APIKey, at time.Time, method, path, ip, ua string) {
		out = append(out, client.ExecutionLogEntry{
			ID: newID("exe_", at), At: at, KeyID: k.ID, KeyPrefix: k.Prefix,
			Method: method, Path: path, Status: http.StatusOK, SourceIP: ip, UserAgent: ua,
		})
	}
	top := now.Truncate(time.Hour)
	for h := 49; h < webhookWeeks*7*24; h++ {
		call(webhook, top.Add(-time.Duration(h)*time.Hour+17*time.Second), "POST", "/v1/orders/webhooks", webhookIP, webhookUA)
	}
	today := now.Truncate(24 * time.Hour)
	for d := adminDays; d >= 2; d-- {
		at := today.Add(-time.Duration(d)*24*time.Hour + 9*time.Hour + 12*time.Minute)
		if wd := at.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		created := newID("key_", at)
		call(admin, at, "GET", "/v1/me", adminIP, adminUA)
		call(admin, at.Add(time.Second), "GET", "/v1/api-keys", adminIP, adminUA)
		call(admin, at.Add(2*time.Second), "POST", "/v1/api-keys", adminIP, adminUA)
		call(admin, at.Add(5*time.Minute), "GET", "/v1/execution-log", adminIP, adminUA)
		call(admin, at.Add(6*time.Minute), "POST", "/v1/api-keys/"+created+"/revoke", adminIP, adminUA)
	}
	return out
}
