package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	_ "modernc.org/sqlite"
)

// automationPath is what examples/automation calls.
const automationPath = "/v1/stock-levels"

// startEmulator starts bos-emulator the way the bench needs it: production
// bcrypt cost, the demo seed with its keys written to files, counters on.
func (b *bench) startEmulator(name, db string, seed bool) (*server, error) {
	args := []string{"--listen", "127.0.0.1:0", "--db", db, "--bcrypt-cost", "12", "--dev-endpoints", "--quiet"}
	if seed {
		args = append(args, "--seed", "demo",
			"--token-file", filepath.Join(b.dir, name+".token"),
			"--automation-env-file", filepath.Join(b.dir, name+".env"))
	}
	return startServer(name, b.bin["bos-emulator"], filepath.Join(b.dir, name+".log"), args...)
}

func (b *bench) seededKeys(name string) (admin, automation string, err error) {
	if admin, err = readKeyFile(filepath.Join(b.dir, name+".token")); err != nil {
		return "", "", err
	}
	automation, err = readKeyFile(filepath.Join(b.dir, name+".env"))
	return admin, automation, err
}

// devGet reads a dev endpoint, which answers only JSON requests.
func devGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

func stats(url string) (emulator.Stats, error) {
	var st emulator.Stats
	resp, err := devGet(url + "/_emulator/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /_emulator/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// mintKeys creates n keys through the API, two at a time (bcrypt cost 12
// each), and returns their plaintexts and records.
func mintKeys(ctx context.Context, api *client.Client, prefix string, n int) ([]string, []client.APIKey, error) {
	plain := make([]string, n)
	keys := make([]client.APIKey, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ck, err := api.CreateKey(ctx, client.CreateKeyRequest{
				Name: fmt.Sprintf("%s %03d", prefix, i), Scopes: []string{"stock:read"},
			}, client.NewIdempotencyKey())
			if err != nil {
				errs[i] = err
				return
			}
			plain[i], keys[i] = ck.Plaintext, ck.APIKey
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, fmt.Errorf("creating keys: %w", err)
		}
	}
	return plain, keys, nil
}

func (b *bench) throughput(ctx context.Context) error {
	const sec = "throughput"
	emu, err := b.startEmulator("tp", filepath.Join(b.dir, "tp.db"), true)
	if err != nil {
		return err
	}
	defer emu.stop()
	bare, err := startServer("bare", b.bin["bare"], filepath.Join(b.dir, "bare.log"))
	if err != nil {
		return err
	}
	defer bare.stop()
	admin, auto, err := b.seededKeys("tp")
	if err != nil {
		return err
	}
	api, err := client.New(emu.url, client.WithKeys(admin))
	if err != nil {
		return err
	}

	// Warm keys: the automation's key, already verified by the warm-up.
	d := b.dur(5*time.Second, 500*time.Millisecond)
	hc := newLoadClient(b.conc)
	emuReq := getWithKey(emu.url+automationPath, auto)
	bareReq := getWithKey(bare.url+automationPath, auto)
	runLoad(ctx, hc, b.conc, b.dur(time.Second, 200*time.Millisecond), emuReq)
	runLoad(ctx, hc, b.conc, b.dur(time.Second, 200*time.Millisecond), bareReq)
	st0, err := stats(emu.url)
	if err != nil {
		return err
	}
	rss0 := emu.rssKiB()
	prof := make(chan string, 1)
	go func() { prof <- b.profile(emu, d) }()
	warm := runLoad(ctx, hc, b.conc, d, emuReq)
	top := <-prof
	if top != "" {
		b.rep.block(sec, "Where the emulator's CPU went during the warm run (`go tool pprof -top -cum` of /_emulator/pprof/profile):\n\n```\n"+top+"```")
	}
	st1, err := stats(emu.url)
	if err != nil {
		return err
	}
	rss1 := emu.rssKiB()
	base := runLoad(ctx, hc, b.conc, d, bareReq)
	if warm.ok() != len(warm.samples) || base.ok() != len(base.samples) {
		return fmt.Errorf("non-200 answers under load: emulator %v, bare %v", warm.statuses, base.statuses)
	}
	// Group commit shares one fsync among the requests waiting for it, so
	// the emulator's share of the bare handler's rate grows with concurrency.
	hi := b.conc * 4
	hhc := newLoadClient(hi)
	dHi := b.dur(3*time.Second, 300*time.Millisecond)
	stHi0, err := stats(emu.url)
	if err != nil {
		return err
	}
	warmHi := runLoad(ctx, hhc, hi, dHi, emuReq)
	stHi1, err := stats(emu.url)
	if err != nil {
		return err
	}
	baseHi := runLoad(ctx, hhc, hi, dHi, bareReq)
	batchHi := float64(stHi1.LogEntries-stHi0.LogEntries) / float64(max(1, stHi1.LogCommits-stHi0.LogCommits))
	hiBlock := fmt.Sprintf(`The same comparison at %d connections, %s per side: the emulator's batches grow to %.1f
entries per commit, so its share of the bare handler's rate grows.

| %d connections | requests | req/s | p50 | p99 |
|---|---|---|---|---|
| bos-emulator (warm key) | %d | %.0f | %s | %s |
| bare net/http | %d | %.0f | %s | %s |
`, hi, dHi, batchHi, hi, len(warmHi.samples), warmHi.rps(), ms(warmHi.percentile(50)), ms(warmHi.percentile(99)),
		len(baseHi.samples), baseHi.rps(), ms(baseHi.percentile(50)), ms(baseHi.percentile(99)))

	entries, commits := st1.LogEntries-st0.LogEntries, st1.LogCommits-st0.LogCommits
	ratio := warm.rps() / base.rps()
	b.rep.goal(sec, "warm key req/s, emulator ÷ bare handler", fmt.Sprintf("%.0f ÷ %.0f = %s", warm.rps(), base.rps(), pct(ratio)),
		"≥ 50%", ratio >= 0.5, fmt.Sprintf(`Short by %.0f points. The emulator answers a request only once its execution-log entry is committed and fsynced
(synchronous=FULL), and the load generator, the server and SQLite share 2 cores. At %d connections
the waiting requests made %.1f entries per commit, one commit every %s; %s. At %d connections
the batches grow to %.1f and the emulator reaches %s of the bare handler: group commit works, and
the remaining cost is SQLite's insert and the fsync per batch. Durability is the requirement, so
the fsync stays; BenchmarkLogWriter shows what synchronous=NORMAL would save.`,
			(0.5-ratio)*100, b.conc, float64(entries)/float64(max(1, commits)), ms(d/time.Duration(max(1, commits))),
			writerShare(top), hi, batchHi, pct(warmHi.rps()/baseHi.rps())))
	b.rep.info(sec, fmt.Sprintf("at %d connections: emulator ÷ bare", hi), fmt.Sprintf("%.0f ÷ %.0f = %s (%.1f entries per commit)",
		warmHi.rps(), baseHi.rps(), pct(warmHi.rps()/baseHi.rps()), batchHi))
	b.rep.info(sec, "warm p50 / p99, emulator", ms(warm.percentile(50))+" / "+ms(warm.percentile(99)))
	b.rep.info(sec, "warm p50 / p99, bare handler", ms(base.percentile(50))+" / "+ms(base.percentile(99)))
	b.rep.goal(sec, "bcrypt calls during the warm run", fmt.Sprintf("%d for %d requests", st1.BcryptCalls-st0.BcryptCalls, len(warm.samples)),
		"0", st1.BcryptCalls == st0.BcryptCalls, "A warm key should be served from the verified-key cache.")
	if commits > 0 {
		b.rep.info(sec, "log entries per commit (fsync) under load", fmt.Sprintf("%.1f (%d entries, %d commits)", float64(entries)/float64(commits), entries, commits))
	}
	b.rep.info(sec, "emulator RSS as the log grew by the warm run", fmt.Sprintf("%s → %s (+%d entries)", mib(rss0), mib(rss1), entries))
	b.rep.block(sec, fmt.Sprintf(`Load generator: the bench's own closed loop (bench/load.go), %d connections kept alive, each
sending its next request when the previous one is answered, for %s per side; the same
client, machine and run for both. Latencies are exact percentiles over every request.
Emulator: bos-emulator, bcrypt cost 12, SQLite in WAL mode with synchronous=FULL, `+"`GET %s`"+`
with the demo automation's key. Baseline: bench/bare, a net/http handler answering the same
JSON with no authentication, database or log.

| | requests | req/s | p50 | p99 |
|---|---|---|---|---|
| bos-emulator (warm key) | %d | %.0f | %s | %s |
| bare net/http | %d | %.0f | %s | %s |
`, b.conc, d, automationPath, len(warm.samples), warm.rps(), ms(warm.percentile(50)), ms(warm.percentile(99)),
		len(base.samples), base.rps(), ms(base.percentile(50)), ms(base.percentile(99))))
	b.rep.block(sec, hiBlock)

	if err := b.coldKeys(ctx, emu, api); err != nil {
		return err
	}
	if err := b.revocation(ctx, emu, api, auto); err != nil {
		return err
	}
	return b.crash(ctx, emu, api)
}

// coldKeys sends the first requests of many fresh keys at once and counts
// the bcrypt comparisons the emulator ran for them.
func (b *bench) coldKeys(ctx context.Context, emu *server, api *client.Client) error {
	const sec = "throughput"
	n, per := b.n(12, 3), b.n(20, 4)
	plain, _, err := mintKeys(ctx, api, "cold", n)
	if err != nil {
		return err
	}
	st0, err := stats(emu.url)
	if err != nil {
		return err
	}
	// Interleaved, so each key's requests arrive together and race for the
	// first verification.
	var mks []requestFunc
	for range per {
		for _, p := range plain {
			mks = append(mks, getWithKey(emu.url+automationPath, p))
		}
	}
	res := burst(ctx, newLoadClient(len(mks)), mks)
	st1, err := stats(emu.url)
	if err != nil {
		return err
	}
	if res.ok() != len(mks) {
		return fmt.Errorf("cold burst: %v", res.statuses)
	}
	calls := st1.BcryptCalls - st0.BcryptCalls
	b.rep.goal(sec, "cold keys: bcrypt calls", fmt.Sprintf("%d for %d keys × %d concurrent first requests", calls, n, per),
		"1 per key", calls == int64(n), "The verified-key cache or singleflight let a concurrent first use run bcrypt twice.")
	b.rep.info(sec, "cold burst: time, p50 / p99", fmt.Sprintf("%s for %d requests; %s / %s", ms(res.elapsed), len(mks), ms(res.percentile(50)), ms(res.percentile(99))))
	b.rep.block(sec, fmt.Sprintf(`Cold keys: %d keys created through the API (bcrypt cost 12), then %d requests at once, %d
per key, interleaved, over %d connections: bcrypt ran %d times. The burst took %s: about
%s of bcrypt per key on %d cores, so cold keys cost one hash each and then run warm.`,
		n, len(mks), per, b.conc, calls, ms(res.elapsed), ms(res.elapsed*time.Duration(numCPU())/time.Duration(max(n, 1))), numCPU()))
	return nil
}

// revocation revokes a key that is being used while the warm load runs, and
// times the first 401 against the revoke's answer.
func (b *bench) revocation(ctx context.Context, emu *server, api *client.Client, auto string) error {
	const sec = "throughput"
	trials := b.n(3, 1)
	plain, keys, err := mintKeys(ctx, api, "victim", trials)
	if err != nil {
		return err
	}
	// Each victim is warm (verified and cached) before its trial, as a key
	// in use is: the trial times the revoke, not a first bcrypt.
	warmHC := newLoadClient(1)
	for _, p := range plain {
		res := burst(ctx, warmHC, []requestFunc{getWithKey(emu.url+automationPath, p)})
		if res.ok() != 1 {
			return fmt.Errorf("warming a victim key: %v", res.statuses)
		}
	}
	worst := time.Duration(math.MinInt64)
	var sentAfter, doneAfter, victimReqs int
	var rows []string
	for i := range trials {
		loadCtx, cancel := context.WithCancel(ctx)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			runLoad(loadCtx, newLoadClient(b.conc), b.conc, time.Minute, getWithKey(emu.url+automationPath, auto))
		}()
		const victimWorkers = 4
		vhc := newLoadClient(victimWorkers)
		per := make([][]sample, victimWorkers)
		for w := range victimWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				per[w] = worker(loadCtx, vhc, start, getWithKey(emu.url+automationPath, plain[i]))
			}()
		}
		time.Sleep(b.dur(time.Second, 200*time.Millisecond)) // let the load settle before revoking
		if _, err := api.RevokeKey(ctx, keys[i].ID); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("revoking under load: %w", err)
		}
		answered := time.Since(start)
		time.Sleep(b.dur(time.Second, 200*time.Millisecond))
		cancel()
		wg.Wait()

		first401 := time.Duration(-1)
		for _, ss := range per {
			for _, s := range ss {
				victimReqs++
				switch {
				case s.status == http.StatusUnauthorized && (first401 < 0 || s.done < first401):
					first401 = s.done
				case s.status == http.StatusOK && s.sent > answered:
					sentAfter++
				}
				if s.status == http.StatusOK && s.done > answered {
					doneAfter++
				}
			}
		}
		if first401 < 0 {
			return fmt.Errorf("trial %d: no 401 for the revoked key", i+1)
		}
		delay := first401 - answered
		worst = max(worst, delay)
		rows = append(rows, fmt.Sprintf("| %d | %s |", i+1, signedMs(delay)))
	}
	b.rep.goal(sec, "revocation: revoke answer → first 401 (worst of trials)", signedMs(worst), "< 1 s", worst < time.Second,
		"The revoked key was still accepted after the revoke answered.")
	b.rep.goal(sec, "revocation: requests accepted after the revoke answer", fmt.Sprintf("%d sent after; %d answered after", sentAfter, doneAfter), "0",
		sentAfter == 0 && doneAfter == 0, "A request authenticated before the revoke was committed was answered after it.")
	b.rep.block(sec, fmt.Sprintf(`Revocation under load: while %d connections run the warm load, 4 more use a victim key;
the management key revokes it; the bench times the first 401 for the victim against the
moment the revoke's answer arrived (negative: the 401 came first), and counts 200s for
the victim sent after that moment, and answered after it. %d trials, %d victim requests.

| trial | first 401 after the revoke answer |
|---|---|
%s`, b.conc, trials, victimReqs, strings.Join(rows, "\n")))
	return nil
}

func signedMs(d time.Duration) string {
	if d < 0 {
		return "−" + ms(-d)
	}
	return ms(d)
}

// crash kills the emulator with SIGKILL under load and checks that every
// request it answered 200 has its execution-log entry in the database.
func (b *bench) crash(ctx context.Context, emu *server, api *client.Client) error {
	const sec = "throughput"
	plain, keys, err := mintKeys(ctx, api, "crash", 1)
	if err != nil {
		return err
	}
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan loadResult, 1)
	go func() {
		done <- runLoad(loadCtx, newLoadClient(b.conc), b.conc, time.Minute, getWithKey(emu.url+automationPath, plain[0]))
	}()
	time.Sleep(b.dur(1500*time.Millisecond, 300*time.Millisecond))
	emu.kill()
	time.Sleep(100 * time.Millisecond)
	cancel()
	res := <-done

	db, err := sql.Open("sqlite", filepath.Join(b.dir, "tp.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	var logged int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM execution_log WHERE key_id = ?`, keys[0].ID).Scan(&logged); err != nil {
		return fmt.Errorf("reading the log after the crash: %w", err)
	}
	ok := res.ok()
	b.rep.goal(sec, "kill -9 under load: answered 200s with their log entry", fmt.Sprintf("%d of %d (%d entries in the log)", min(ok, logged), ok, logged),
		"all", logged >= ok, "The emulator answered before the entry was durable.")
	b.rep.block(sec, fmt.Sprintf(`Durability: the emulator answers only after the group commit holding the request's entry has
committed (synchronous=FULL, so fsynced). Under load, %d requests were answered 200, then the
emulator was killed with SIGKILL; the log on disk holds %d entries for that key (entries
committed whose answers were lost in the kill may exceed the answers).`, ok, logged))
	return nil
}

// profile takes a CPU profile of the emulator over most of a run of d and
// returns pprof's top functions by cumulative time, or "" if it failed.
func (b *bench) profile(emu *server, d time.Duration) string {
	sec := max(1, int((d-time.Second)/time.Second))
	resp, err := devGet(fmt.Sprintf("%s/_emulator/pprof/profile?seconds=%d", emu.url, sec))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	path := filepath.Join(b.dir, "emulator.pprof")
	f, err := os.Create(path)
	if err != nil {
		return ""
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount", "30", b.bin["bos-emulator"], path).Output()
	if err != nil {
		return ""
	}
	// Keep the summary and the table, not the file and build lines.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// writerShare reads from pprof's -top -cum table the share of the
// emulator's CPU samples spent in the execution-log writer.
func writerShare(top string) string {
	core := ""
	for _, l := range strings.Split(top, "\n") {
		if strings.HasPrefix(l, "Duration:") {
			if _, after, ok := strings.Cut(l, "Total samples = "); ok {
				core = strings.Trim(strings.Join(strings.Fields(after)[1:], " "), "()")
			}
		}
		if strings.Contains(l, "(*logWriter).run") {
			if f := strings.Fields(l); len(f) >= 5 {
				return fmt.Sprintf("the profile below puts %s of the emulator's CPU in the log writer (SQLite and its write and fsync calls), and the emulator used %s of one core", f[4], core)
			}
		}
	}
	return "the profile below shows where the rest went"
}
