package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// sample is one request as the load generator saw it. Times are monotonic
// offsets from the run's start so that runs compare without wall clocks.
type sample struct {
	sent, done time.Duration
	status     int // 0: transport error
}

// loadResult is a closed-loop run: conc workers, each sending its next
// request as soon as the previous one is answered.
type loadResult struct {
	elapsed  time.Duration
	samples  []sample
	statuses map[int]int
}

func (r loadResult) ok() int { return r.statuses[http.StatusOK] }

func (r loadResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.samples)) / r.elapsed.Seconds()
}

// percentile is exact: every latency is kept and sorted (a few hundred
// thousand at most), so no histogram bucketing error.
func (r loadResult) percentile(p float64) time.Duration {
	lat := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		if s.status != 0 {
			lat = append(lat, s.done-s.sent)
		}
	}
	return percentileOf(lat, p)
}

func percentileOf(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(p/100*float64(len(lat))+0.5) - 1
	i = max(0, min(i, len(lat)-1))
	return lat[i]
}

// newLoadClient keeps one connection per worker alive for the whole run, so
// both sides of a comparison pay the same (no) connection set-up.
func newLoadClient(conc int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conc * 2
	t.MaxIdleConnsPerHost = conc * 2
	t.MaxConnsPerHost = conc
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// request builds one request; it is called by each worker for each request.
type requestFunc func(ctx context.Context) (*http.Request, error)

func getWithKey(url, key string) requestFunc {
	return func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		return req, nil
	}
}

// runLoad drives conc workers for d (or until ctx ends) and keeps every sample.
func runLoad(ctx context.Context, hc *http.Client, conc int, d time.Duration, mk requestFunc) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	per := make([][]sample, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per[w] = worker(ctx, hc, start, mk)
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), statuses: map[int]int{}}
	for _, ss := range per {
		for _, s := range ss {
			res.samples = append(res.samples, s)
			res.statuses[s.status]++
		}
	}
	return res
}

func worker(ctx context.Context, hc *http.Client, start time.Time, mk requestFunc) []sample {
	out := make([]sample, 0, 4096)
	for ctx.Err() == nil {
		req, err := mk(ctx)
		if err != nil {
			return out
		}
		s := sample{sent: time.Since(start)}
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s.status = resp.StatusCode
		} else if ctx.Err() != nil {
			// Cut off by the end of the run, not an answer.
			return out
		}
		s.done = time.Since(start)
		out = append(out, s)
	}
	return out
}

// burst sends every request at once (up to the client's connection limit)
// and waits for all of them: the first use of many keys together.
func burst(ctx context.Context, hc *http.Client, mks []requestFunc) loadResult {
	start := time.Now()
	out := make([]sample, len(mks))
	var wg sync.WaitGroup
	for i, mk := range mks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := mk(ctx)
			if err != nil {
				return
			}
			s := sample{sent: time.Since(start)}
			if resp, err := hc.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.status = resp.StatusCode
			}
			s.done = time.Since(start)
			out[i] = s
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), samples: out, statuses: map[int]int{}}
	for _, s := range out {
		res.statuses[s.status]++
	}
	return res
}
