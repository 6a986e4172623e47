package emulator

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// The demo seed gives its keys weeks of usual calls, so an audit has a
// baseline: the webhook relay hourly for four weeks from its one server;
// the admin's plana from loopback, with writes (creates, revokes) as well as
// reads, none in the last day (the audited window of a default audit).
func TestSeedDemoHistory(t *testing.T) {
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "bos.db"), log: &syncBuffer{}}
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})
	res, err := e.s.SeedDemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.adminToken = res.AdminToken
	now := e.s.Now()
	byName := map[string]client.APIKey{}
	for _, k := range decode[client.ListKeysResponse](t, e.do("GET", "/v1/api-keys?status=all", res.AdminToken, nil)).APIKeys {
		byName[k.Name] = k
	}

	webhook := e.logEntries("?page_size=1000&key_id=" + byName["Webhook relay"].ID)
	if oldest := webhook[len(webhook)-1].At; now.Sub(oldest) < 27*24*time.Hour {
		t.Errorf("the webhook relay's oldest call is %v old, want weeks", now.Sub(oldest))
	}
	hours := map[int64]bool{}
	for _, en := range webhook {
		if en.SourceIP != webhookIP || en.UserAgent != webhookUA || en.Path != "/v1/orders/webhooks" {
			t.Fatalf("webhook entry %+v", en)
		}
		hours[en.At.Unix()/3600] = true
	}
	if len(hours) != len(webhook) || len(webhook) < 26*24 {
		t.Errorf("%d webhook calls in %d distinct hours, want one an hour for weeks", len(webhook), len(hours))
	}

	// Until now: this test's own reads with the admin key come after.
	until := "&until=" + url.QueryEscape(now.Format(time.RFC3339Nano))
	admin := e.logEntries("?page_size=1000&key_id=" + byName["plana admin (2026)"].ID + until)
	writes := 0
	for _, en := range admin {
		if en.SourceIP != adminIP || en.UserAgent != adminUA {
			t.Fatalf("admin entry %+v", en)
		}
		if now.Sub(en.At) < 24*time.Hour {
			t.Errorf("an admin call %v ago: the seed must leave the last day to the demo", now.Sub(en.At))
		}
		if en.Method == "POST" {
			writes++
		}
	}
	if writes < 20 {
		t.Errorf("%d admin writes, want a rotation most weekdays", writes)
	}
}
