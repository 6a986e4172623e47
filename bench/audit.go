package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// auditRun is `plana keys audit --all` over one log size.
type auditRun struct {
	keys, entries int
	seed          time.Duration
	took          time.Duration // median of the runs
	hwm           int64         // plana's peak RSS, the largest of the runs
	cpu, emuCPU   time.Duration // plana's and the emulator's CPU time, one run
	read, pages   int           // entries and pages the report says it read
	requests      int           // execution-log requests the emulator answered, one run
	findings      int
}

func (b *bench) audit(ctx context.Context) error {
	const sec = "audit"
	keys := b.n(1000, 50)
	sizes := []int{b.n(100000, 2000), b.n(1000000, 20000)}
	runs, err := bySize(sizes, func(entries int) (auditRun, error) { return b.auditOne(ctx, keys, entries) })
	if err != nil {
		return err
	}
	small, big := runs[0], runs[1]
	b.rep.info(sec, fmt.Sprintf("`plana keys audit --all`, log of %d entries, %d keys", big.entries, big.keys+5),
		fmt.Sprintf("%s (%.0f entries/s; CPU: plana %s, emulator %s)", ms(big.took), float64(big.read)/big.took.Seconds(), ms(big.cpu), ms(big.emuCPU)))
	rss := float64(big.hwm) / float64(small.hwm)
	b.rep.goal(sec, fmt.Sprintf("plana's peak RSS, keys audit over %d vs %d entries", big.entries, small.entries),
		fmt.Sprintf("%s vs %s (%.2fx)", mib(big.hwm), mib(small.hwm), rss), "flat (≤ 1.5x)", rss <= 1.5,
		"plana's memory grew with the log: the audit holds entries instead of aggregating them.")
	perEntry := (float64(big.took) / float64(big.read)) / (float64(small.took) / float64(small.read))
	b.rep.goal(sec, fmt.Sprintf("keys audit time per entry, log of %d vs %d entries", big.entries, small.entries),
		fmt.Sprintf("%.1f µs vs %.1f µs (%.2fx)", float64(big.took)/float64(big.read)/1e3, float64(small.took)/float64(small.read)/1e3, perEntry),
		"flat (≤ 1.5x)", perEntry <= 1.5,
		"Each page of the log cost more than the last: the emulator's page query scans from the range's end rather than from the cursor.")
	pages := (big.read + 999) / 1000
	b.rep.goal(sec, fmt.Sprintf("execution-log requests for %d entries, every key", big.read),
		fmt.Sprintf("%d for %d pages of 1000", big.requests, pages), "one per page", big.requests == pages && big.pages == pages,
		"The audit read a page more than once, or read the log once per key.")
	var rows []string
	for _, r := range runs {
		rows = append(rows, fmt.Sprintf("| %d | %d | %s | %s | %.0f | %s | %s | %d requests, %d pages | %s | %d |",
			r.entries, r.keys+5, ms(r.seed), ms(r.took), float64(r.read)/r.took.Seconds(), ms(r.cpu), ms(r.emuCPU), r.requests, r.pages, mib(r.hwm), r.findings))
	}
	b.rep.block(sec, fmt.Sprintf(`Two workspaces made like those of section 5 (emulator.SeedBulk after the demo seed), with %d bulk keys
and a log of %d and of %d entries spread over the last 30 days, round robin over the bulk keys, all from one
source. `+"`plana keys audit --all -o json`"+` reads the log once from the baseline's start (31 days back) to now,
1000 entries a page for every key at once, and judges each key's last day against its 30 days before. The
time is the median of %d runs; the peak RSS is plana's (VmHWM, read from /proc while it runs), the largest of
them; the requests are the execution-log reads that crossed a counting proxy during the first run, and the CPU
times (user and system) are plana's and the emulator's during it. plana keeps no entry: its memory follows the
callers it has seen in each hour of the audited day, not the entries, and the larger log has more of them (each
bulk key calls in every hour of the audited day there, in a few of them in the smaller log).

| log entries | keys | seed | keys audit --all | entries/s | plana CPU | emulator CPU | log reads | plana peak RSS | findings |
|---|---|---|---|---|---|---|---|---|---|
%s`, keys, sizes[0], sizes[1], b.n(3, 1), strings.Join(rows, "\n")))
	return nil
}

func (b *bench) auditOne(ctx context.Context, keys, entries int) (auditRun, error) {
	r := auditRun{keys: keys, entries: entries}
	name := fmt.Sprintf("audit%d", entries)
	db := filepath.Join(b.dir, name+".db")
	admin, took, err := seedDB(ctx, db, keys, entries)
	if err != nil {
		return r, err
	}
	r.seed = took
	emu, err := b.startEmulator(name, db, false)
	if err != nil {
		return r, err
	}
	defer emu.stop()
	reads, err := newLogReadCounter(emu.url)
	if err != nil {
		return r, err
	}
	defer reads.srv.Close()
	env := b.cliEnv(reads.srv.URL, admin)
	var ds []time.Duration
	for i := range b.n(3, 1) {
		before := reads.n.Load()
		var out, errOut bytes.Buffer
		emuBefore := procCPU(emu.cmd.Process.Pid)
		start := time.Now()
		code, hwm, cpu, err := runMeasured(ctx, b.bin["plana"], env, []string{"keys", "audit", "--all", "-o", "json"}, &out, &errOut)
		ds = append(ds, time.Since(start))
		emuCPU := procCPU(emu.cmd.Process.Pid) - emuBefore
		if err != nil {
			return r, err
		}
		if code != 0 && code != 6 {
			return r, fmt.Errorf("plana keys audit --all exited %d: %s", code, tail(errOut.Bytes()))
		}
		r.hwm = max(r.hwm, hwm)
		var rep struct {
			Findings int `json:"findings"`
			Log      struct {
				Pages   int `json:"pages"`
				Entries int `json:"entries"`
			} `json:"log"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			return r, fmt.Errorf("keys audit -o json: %v", err)
		}
		// The first run's figures: each run's own reads of the log are in
		// the log the next one reads.
		if i == 0 {
			r.read, r.pages, r.findings = rep.Log.Entries, rep.Log.Pages, rep.Findings
			r.cpu, r.emuCPU = cpu, emuCPU
			r.requests = int(reads.n.Load() - before)
		}
	}
	slices.Sort(ds)
	r.took = ds[len(ds)/2]
	return r, nil
}

// procCPU is the CPU time (user and system) a process has used, from
// /proc/PID/stat, whose clock ticks are 1/100 s on Linux.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// logReadCounter forwards to the emulator and counts the execution-log
// reads that cross it, bodies untouched.
type logReadCounter struct {
	n   atomic.Int64
	srv *httptest.Server
}

func newLogReadCounter(target string) (*logReadCounter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	c := &logReadCounter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/execution-log" {
			c.n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	return c, nil
}
