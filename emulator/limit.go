package emulator

import (
	"fmt"
	"sync"
	"time"
)

// A forged key needs only a public prefix (which the UI and the log show)
// and a valid checksum, yet without a limit each one costs a full bcrypt:
// 64 of them took 8.4 s of both cores. failLimiter bounds that work per
// public id: failBurst failed verifications at once, then one per
// failRefill. Legitimate failures hardly exist (a mistyped key fails its
// checksum before any lookup), and a key already proven is answered from
// the verified cache, so the limit stops only forgeries and cold keys of an
// id under attack, which get 429 with Retry-After.
const (
	failBurst  = 5
	failRefill = 10 * time.Second
)

// errRateLimited is a presentation refused without bcrypt because its public
// id has used up its failures.
type errRateLimited struct{ retryAfter time.Duration }

func (e *errRateLimited) Error() string {
	return fmt.Sprintf("too many failed verifications for this key id; retry after %v", e.retryAfter)
}

// failLimiter holds a token bucket per public id. A verification takes a
// token before its bcrypt and gives it back when the secret proves right,
// so concurrent forgeries cannot overrun the budget and a success costs
// nothing. Only ids that exist get a bucket, and a full bucket is dropped,
// so memory stays bounded by the keys under attack.
type failLimiter struct {
	mu      sync.Mutex
	buckets map[string]*failBucket
}

type failBucket struct {
	tokens int
	at     time.Time // when tokens was last topped up
}

// take reports whether id may run a verification at now, or how long until
// it may.
func (l *failLimiter) take(id string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*failBucket{}
	}
	b, ok := l.buckets[id]
	if !ok {
		b = &failBucket{tokens: failBurst, at: now}
		l.buckets[id] = b
	}
	switch {
	case now.Before(b.at): // the emulator clock was moved back
		b.at = now
	case b.tokens < failBurst:
		if n := int(now.Sub(b.at) / failRefill); n > 0 {
			b.tokens = min(failBurst, b.tokens+n)
			b.at = b.at.Add(time.Duration(n) * failRefill)
		}
	}
	if b.tokens == 0 {
		return false, b.at.Add(failRefill).Sub(now)
	}
	if b.tokens == failBurst {
		b.at = now
	}
	b.tokens--
	return true, 0
}

// give returns the token of a verification that succeeded.
func (l *failLimiter) give(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[id]
	if !ok {
		return
	}
	if b.tokens++; b.tokens >= failBurst {
		delete(l.buckets, id)
	}
}
