package emulator

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// Fault kinds accepted in the kinds= list of --faults.
const (
	fault500        = "500"
	fault429        = "429"
	fault429Date    = "429date"
	fault429Bad     = "429bad"
	faultReset      = "reset"
	faultResetAfter = "reset-after"
	faultSlow       = "slow"
)

var faultKinds = []string{fault500, fault429, fault429Date, fault429Bad, faultReset, faultResetAfter, faultSlow}

// DefaultSlow is how long a "slow" fault delays an answer unless slow= says.
const DefaultSlow = 2 * time.Second

// FaultConfig says which failures to inject into /v1/ requests. The zero
// value injects nothing.
type FaultConfig struct {
	Rate  float64       // probability that a request is faulted, 0..1
	Kinds []string      // drawn uniformly for each faulted request
	Slow  time.Duration // delay of the "slow" kind
	Seed  int64         // seeds the draw so runs repeat
}

// ParseFaults parses --faults, e.g. "rate=0.2,kinds=500+429+reset+slow,slow=2s".
// Kinds: 500, 429 (Retry-After in seconds), 429date (Retry-After as an HTTP
// date), 429bad (unparseable Retry-After), reset (connection dropped before
// handling), reset-after (handled, then dropped unanswered), slow. An empty
// spec disables faults.
func ParseFaults(spec string, seed int64) (FaultConfig, error) {
	cfg := FaultConfig{Slow: DefaultSlow, Seed: seed}
	if strings.TrimSpace(spec) == "" {
		return cfg, nil
	}
	rateSet := false
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return FaultConfig{}, fmt.Errorf("faults: %q is not name=value", part)
		}
		switch name {
		case "rate":
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || r < 0 || r > 1 {
				return FaultConfig{}, fmt.Errorf("faults: rate %q must be a number from 0 to 1", val)
			}
			cfg.Rate, rateSet = r, true
		case "kinds":
			cfg.Kinds = nil
			for _, k := range strings.Split(val, "+") {
				if !validFaultKind(k) {
					return FaultConfig{}, fmt.Errorf("faults: unknown kind %q (want %s)", k, strings.Join(faultKinds, ", "))
				}
				cfg.Kinds = append(cfg.Kinds, k)
			}
		case "slow":
			d, err := duration.Parse(val)
			if err != nil || d < 0 {
				return FaultConfig{}, fmt.Errorf("faults: slow %q must be a duration such as 2s", val)
			}
			cfg.Slow = d
		default:
			return FaultConfig{}, fmt.Errorf("faults: unknown option %q (want rate, kinds, slow)", name)
		}
	}
	if !rateSet {
		return FaultConfig{}, fmt.Errorf("faults: rate= is required")
	}
	if len(cfg.Kinds) == 0 {
		return FaultConfig{}, fmt.Errorf("faults: kinds= is required")
	}
	return cfg, nil
}

func validFaultKind(k string) bool {
	for _, v := range faultKinds {
		if k == v {
			return true
		}
	}
	return false
}

type faultInjector struct {
	cfg      FaultConfig
	mu       sync.Mutex
	rng      *rand.Rand
	requests int64
	injected map[string]int64
}

func newFaultInjector(cfg FaultConfig) *faultInjector {
	if cfg.Slow == 0 {
		cfg.Slow = DefaultSlow
	}
	seed := uint64(cfg.Seed)
	return &faultInjector{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[string]int64{}}
}

// draw returns the fault for the next request, or "". One draw per request
// in arrival order, so a seed replays the same sequence.
func (f *faultInjector) draw() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.cfg.Rate <= 0 || len(f.cfg.Kinds) == 0 || f.rng.Float64() >= f.cfg.Rate {
		return ""
	}
	k := f.cfg.Kinds[f.rng.IntN(len(f.cfg.Kinds))]
	f.injected[k]++
	return k
}

func (f *faultInjector) counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := FaultCounts{Requests: f.requests, Injected: map[string]int64{}}
	for k, n := range f.injected {
		c.Injected[k] = n
	}
	return c
}

// injectFault answers a request that is refused before handling.
func (s *Server) injectFault(w http.ResponseWriter, kind string) {
	switch kind {
	case fault500:
		writeError(w, http.StatusInternalServerError, client.CodeInternal, "injected fault: internal error")
		return
	case fault429:
		w.Header().Set("Retry-After", "1")
	case fault429Date:
		// Rounded up to the next whole second so the date, which has no
		// fraction, is at least a second ahead.
		at := s.Now().Add(time.Second)
		if t := at.Truncate(time.Second); !t.Equal(at) {
			at = t.Add(time.Second)
		}
		w.Header().Set("Retry-After", at.Format(http.TimeFormat))
	case fault429Bad:
		w.Header().Set("Retry-After", "soon")
	}
	writeError(w, http.StatusTooManyRequests, client.CodeRateLimited, "injected fault: rate limited")
}
