package client

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Date has whole seconds, so every answer within one server second carries
// the same Date: the estimate must not step back to it at each answer.
func TestServerNowDoesNotStepBackWithinADateSecond(t *testing.T) {
	serverClock := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	_, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
		w.Header().Set("Date", serverClock.Format(http.TimeFormat))
		writeJSON(w, http.StatusOK, sampleMe("key_1"))
	})
	c := fastClient(t, srv.URL)
	c.Me(context.Background())
	var before time.Time
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if before, _ = c.ServerNow(); before.Sub(serverClock) >= 50*time.Millisecond {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if before.Sub(serverClock) < 50*time.Millisecond {
		t.Skip("the estimate did not advance 50ms within 5s")
	}
	c.Me(context.Background())
	after, _ := c.ServerNow()
	if after.Before(before) {
		t.Fatalf("ServerNow went back from %v to %v on an answer with the same Date", before, after)
	}
	// A Date outside the running estimate's second wins: the server's clock moved.
	serverClock = serverClock.Add(time.Hour)
	c.Me(context.Background())
	if now, _ := c.ServerNow(); now.Before(serverClock) || now.After(serverClock.Add(time.Second)) {
		t.Fatalf("after the server's clock moved an hour: ServerNow = %v, want about %v", now, serverClock)
	}
}
