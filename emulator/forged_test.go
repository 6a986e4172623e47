package emulator

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// forge returns n keys with the public id of key, a valid checksum and
// random secrets: what an attacker who saw the prefix can make.
func forge(t *testing.T, key string, n int) []string {
	t.Helper()
	parsed, err := client.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = client.FormatKey("live", parsed.PublicID, randomBase62(client.SecretLen))
	}
	return out
}

// 64 forged keys for one key id, eight at a time, cost at most failBurst
// bcrypt comparisons: the rest are answered 429 with Retry-After, unlogged.
// The key they forge keeps working, warm or cold, and other ids are
// untouched.
func TestForgedKeysCostBoundedBcrypt(t *testing.T) {
	e := newEnv(t)
	warm, _ := e.mint(e.admin, "in use", "stock:read")
	e.want(e.do("GET", "/v1/stock-levels", warm, nil), 200, "")
	cold, coldKey := e.mint(e.admin, "not yet used", "stock:read")
	other, _ := e.mint(e.admin, "elsewhere", "stock:read")
	logs := e.count("execution_log")

	for _, target := range []string{warm, cold} {
		before := e.s.bcryptCalls.Load()
		forged := forge(t, target, 64)
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		work := make(chan string)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for key := range work {
					req, _ := http.NewRequest("GET", e.ts.URL+"/v1/stock-levels", nil)
					req.Header.Set("Authorization", "Bearer "+key)
					resp, err := e.ts.Client().Do(req)
					if err != nil {
						t.Error(err)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == 429 {
						if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > int(failRefill/time.Second) {
							t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
						}
					}
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		for _, k := range forged {
			work <- k
		}
		close(work)
		wg.Wait()
		got := e.s.bcryptCalls.Load() - before
		t.Logf("64 forged keys: %d bcrypt comparisons, answers %v", got, statuses)
		if got > failBurst || statuses[401] != int(got) || statuses[429] != 64-int(got) {
			t.Fatalf("64 forged keys cost %d bcrypt comparisons (answers %v), want at most %d and 429 for the rest", got, statuses, failBurst)
		}
	}

	// The warm key is answered from the verified cache: no bcrypt, no limit.
	e.want(e.do("GET", "/v1/stock-levels", warm, nil), 200, "")
	// Another id has its own budget.
	e.want(e.do("GET", "/v1/stock-levels", other, nil), 200, "")
	// The cold key of the attacked id waits out Retry-After like anyone,
	// then works; the emulator clock stands in for the wait.
	r := e.do("GET", "/v1/stock-levels", cold, nil)
	e.want(r, 429, client.CodeRateLimited)
	wait, _ := strconv.Atoi(r.header.Get("Retry-After"))
	e.s.Advance(time.Duration(wait) * time.Second)
	e.want(e.do("GET", "/v1/stock-levels", cold, nil), 200, "")
	if got := e.count("execution_log") - logs; got != 3 {
		t.Fatalf("%d new execution-log entries, want 3 (the legitimate calls only)", got)
	}
	if k := e.getKey(coldKey.ID); k.LastUsedAt == nil {
		t.Fatal("the cold key's call did not count")
	}
}

func TestFailLimiter(t *testing.T) {
	var l failLimiter
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := range failBurst {
		if ok, _ := l.take("AB7K2XYZ", now); !ok {
			t.Fatalf("take %d of the burst refused", i+1)
		}
	}
	ok, wait := l.take("AB7K2XYZ", now.Add(time.Second))
	if ok || wait != failRefill-time.Second {
		t.Fatalf("past the burst: ok %v, wait %v, want refused for %v", ok, wait, failRefill-time.Second)
	}
	if ok, _ := l.take("OTHERID1", now); !ok {
		t.Fatal("another id was refused")
	}
	// One token per refill period, never more than the burst.
	if ok, _ := l.take("AB7K2XYZ", now.Add(failRefill)); !ok {
		t.Fatal("no token after a refill period")
	}
	if ok, _ := l.take("AB7K2XYZ", now.Add(failRefill)); ok {
		t.Fatal("two tokens after one refill period")
	}
	// A success gives its token back; a full bucket is forgotten.
	l.give("AB7K2XYZ")
	if ok, _ := l.take("AB7K2XYZ", now.Add(failRefill)); !ok {
		t.Fatal("a given-back token was not there")
	}
	later := now.Add(time.Hour)
	for range failBurst {
		l.take("AB7K2XYZ", later)
		l.give("AB7K2XYZ")
	}
	if _, kept := l.buckets["AB7K2XYZ"]; kept {
		t.Fatal("a full bucket is still held")
	}
	// A clock moved back refills nothing and refuses nothing it should not.
	for range failBurst {
		l.take("BACKWARD", later)
	}
	if ok, wait := l.take("BACKWARD", now); ok || wait <= 0 || wait > failRefill {
		t.Fatalf("after the clock moved back: ok %v, wait %v", ok, wait)
	}
}
