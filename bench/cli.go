package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/plana-cli/plana/emulator"
)

// timing is one command's wall time over several runs.
type timing struct {
	mean, median  time.Duration
	min           time.Duration
	runs          int
	exitCodes     []int
	measuredByHyp bool
}

// hyperfine returns its path, installing it from Debian's packages when it
// is missing and we are root; "" when it cannot be had.
func hyperfine() string {
	if p, err := exec.LookPath("hyperfine"); err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			fmt.Fprintln(os.Stderr, "bench: installing hyperfine (apt-get install -y hyperfine)")
			cmd := exec.Command("apt-get", "install", "-y", "-q", "hyperfine")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if cmd.Run() != nil {
				exec.Command("apt-get", "update", "-q").Run()
				cmd = exec.Command("apt-get", "install", "-y", "-q", "hyperfine")
				cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
				cmd.Run()
			}
			if p, err := exec.LookPath("hyperfine"); err == nil {
				return p
			}
		}
	}
	return ""
}

// timeCommands times each command (argv, no shell) with hyperfine, or with
// a plain loop of fork-exec-wait when hyperfine cannot be had.
func (b *bench) timeCommands(env []string, warmup, runs int, cmds ...[]string) ([]timing, error) {
	if hf := hyperfine(); hf != "" {
		out := filepath.Join(b.dir, "hyperfine.json")
		args := []string{"-N", "-i", "--style", "none", "--warmup", fmt.Sprint(warmup), "--runs", fmt.Sprint(runs), "--export-json", out}
		for _, c := range cmds {
			args = append(args, strings.Join(c, " "))
		}
		cmd := exec.Command(hf, args...)
		cmd.Env = env
		cmd.Dir = b.dir
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("hyperfine: %v: %s", err, tail(o))
		}
		var res struct {
			Results []struct {
				Mean      float64   `json:"mean"`
				Median    float64   `json:"median"`
				Min       float64   `json:"min"`
				Times     []float64 `json:"times"`
				ExitCodes []int     `json:"exit_codes"`
			} `json:"results"`
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("hyperfine's JSON: %w", err)
		}
		var ts []timing
		for _, r := range res.Results {
			sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
			ts = append(ts, timing{mean: sec(r.Mean), median: sec(r.Median), min: sec(r.Min),
				runs: len(r.Times), exitCodes: r.ExitCodes, measuredByHyp: true})
		}
		return ts, nil
	}
	var ts []timing
	for _, c := range cmds {
		var d []time.Duration
		t := timing{runs: runs}
		for i := range warmup + runs {
			cmd := exec.Command(c[0], c[1:]...)
			cmd.Env = env
			cmd.Dir = b.dir
			start := time.Now()
			err := cmd.Run()
			el := time.Since(start)
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return nil, err
			}
			if i >= warmup {
				d = append(d, el)
				t.exitCodes = append(t.exitCodes, cmd.ProcessState.ExitCode())
			}
		}
		slices.Sort(d)
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		t.mean, t.median, t.min = sum/time.Duration(len(d)), d[len(d)/2], d[0]
		ts = append(ts, t)
	}
	return ts, nil
}

func timingTool(ts []timing) string {
	if len(ts) > 0 && ts[0].measuredByHyp {
		return "hyperfine"
	}
	return "a fork-exec-wait loop (hyperfine could not be installed)"
}

// peakRSS runs argv once, discarding stdout but counting its bytes, and
// returns the child's peak resident set from getrusage.
func peakRSS(env []string, dir string, argv ...string) (int64, int64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cw := &countWriter{}
	cmd.Stdout = cw
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			return 0, 0, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, tail(stderr.Bytes()))
		}
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, cw.n, errors.New("no rusage on this platform")
	}
	return ru.Maxrss, cw.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// seedDB makes a database holding the demo workspace plus a bulk seed, and
// returns the admin's management key.
func seedDB(ctx context.Context, path string, keys, entries int) (string, time.Duration, error) {
	start := time.Now()
	s, err := emulator.New(emulator.Config{DBPath: path, BcryptCost: 12})
	if err != nil {
		return "", 0, err
	}
	res, err := s.SeedDemo(ctx)
	if err == nil {
		_, err = s.SeedBulk(ctx, keys, entries)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("seeding %d keys and %d entries: %w", keys, entries, err)
	}
	return res.AdminToken, time.Since(start), nil
}

// bySize runs one on a workspace with each of the log sizes, in order.
func bySize[R any](sizes []int, one func(entries int) (R, error)) ([]R, error) {
	var runs []R
	for _, entries := range sizes {
		r, err := one(entries)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func (b *bench) cli(ctx context.Context) error {
	const sec = "cli"
	env := b.cliEnv("", "")
	if err := os.MkdirAll(filepath.Join(b.dir, "home"), 0o700); err != nil {
		return err
	}
	ts, err := b.timeCommands(env, b.n(10, 2), b.n(100, 5), []string{b.bin["plana"], "version"}, []string{b.bin["hello"]})
	if err != nil {
		return err
	}
	// Medians: on a shared machine a few runs wait for a core, and the mean
	// would report the neighbours.
	ratio := float64(ts[0].median) / float64(ts[1].median)
	pv, _ := os.Stat(b.bin["plana"])
	hv, _ := os.Stat(b.bin["hello"])
	pf, hf := minorFaults(env, b.dir, b.bin["plana"], "version"), minorFaults(env, b.dir, b.bin["hello"])
	trace, initMS, traceErr := initTrace(b.bin["plana"], env)
	b.rep.goal(sec, "`plana version` ÷ hello world (median)", fmt.Sprintf("%s ÷ %s = %.2fx", ms(ts[0].median), ms(ts[1].median), ratio),
		"≤ 2x", ratio <= 2, fmt.Sprintf(`Over by %.0f%%. A hello world is %.1f MiB and touches %d pages at start; plana links
net/http, crypto/tls, D-Bus, viper, YAML, iCalendar and tablewriter into %.1f MiB, touches %d pages
(the kernel's page-fault time is most of the difference) and spends %.1f ms in package
initialisers, tablewriter's width tables and runewidth the largest (see the trace below). plana
version itself does no I/O beyond printing: config, keyring and client are built lazily.`,
			(ratio-2)/2*100, float64(hv.Size())/(1<<20), hf, float64(pv.Size())/(1<<20), pf, initMS))
	b.rep.info(sec, "page faults at start, plana version / hello", fmt.Sprintf("%d / %d", pf, hf))
	mods, err := exec.Command("go", "version", "-m", b.bin["plana"]).Output()
	if err != nil {
		return fmt.Errorf("go version -m plana: %w", err)
	}
	linked := strings.Contains(string(mods), "getkin/kin-openapi")
	b.rep.goal(sec, "kin-openapi linked into plana", map[bool]string{true: "yes", false: "no"}[linked], "no", !linked,
		"A test-only library reached the binary through a non-test import.")
	b.rep.block(sec, fmt.Sprintf(`Start-up, timed with %s, %d runs after warm-up, both built with CGO_ENABLED=0 -trimpath
-ldflags '-s -w' (plana %.1f MiB, hello %.1f MiB):

| command | mean | median | min |
|---|---|---|---|
| plana version | %s | %s | %s |
| hello (bench/hello) | %s | %s | %s |`, timingTool(ts), ts[0].runs, float64(pv.Size())/(1<<20), float64(hv.Size())/(1<<20),
		ms(ts[0].mean), ms(ts[0].median), ms(ts[0].min), ms(ts[1].mean), ms(ts[1].median), ms(ts[1].min)))
	if traceErr == nil {
		b.rep.block(sec, "Heaviest package initialisers of `plana version` (`GODEBUG=inittrace=1`):\n\n```\n"+trace+"```")
	}

	// keys list over 10,000 active keys: the demo's 4 plus 9,996 bulk ones.
	nkeys := b.n(10000, 300)
	db := filepath.Join(b.dir, "list.db")
	admin, _, err := seedDB(ctx, db, nkeys-4, 1000)
	if err != nil {
		return err
	}
	emu, err := b.startEmulator("list", db, false)
	if err != nil {
		return err
	}
	defer emu.stop()
	hdr := filepath.Join(b.dir, "auth.header")
	if err := os.WriteFile(hdr, []byte("Authorization: Bearer "+admin+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(hdr)
	env = b.cliEnv(emu.url, admin)
	rss, n, err := peakRSS(env, b.dir, b.bin["plana"], "keys", "list", "-o", "json")
	if err != nil {
		return err
	}
	got, err := countListed(env, b.dir, b.bin["plana"])
	if err != nil {
		return err
	}
	if got != nkeys {
		return fmt.Errorf("plana keys list -o json listed %d keys, want %d", got, nkeys)
	}
	script := filepath.Join(b.root, "bench", "curl-list.sh")
	ts, err = b.timeCommands(env, b.n(2, 1), b.n(10, 2),
		[]string{b.bin["plana"], "keys", "list", "-o", "json"},
		[]string{"sh", script, emu.url, hdr})
	if err != nil {
		return err
	}
	ratio = float64(ts[0].median) / float64(ts[1].median)
	b.rep.goal(sec, fmt.Sprintf("`plana keys list -o json` ÷ curl, %d keys (median)", nkeys), fmt.Sprintf("%s ÷ %s = %.2fx", ms(ts[0].median), ms(ts[1].median), ratio),
		"≤ 1.5x", ratio <= 1.5, "plana decodes every page and re-encodes each key as a record with its rotation due date; curl only moves bytes.")
	b.rep.info(sec, fmt.Sprintf("plana peak RSS, keys list -o json over %d keys", nkeys), fmt.Sprintf("%s (%.1f MiB of JSON out)", mib(rss), float64(n)/(1<<20)))
	b.rep.block(sec, fmt.Sprintf(`keys list: %d active keys, pages of 1000 for both; curl runs bench/curl-list.sh, which follows
next_page_token with curl and sed (the Authorization header comes from a 0600 file, not argv).
Timed with %s, %d runs.

| command | mean | median | min |
|---|---|---|---|
| plana keys list -o json | %s | %s | %s |
| curl over the same pages | %s | %s | %s |

plana's peak RSS for it (getrusage): %s.`, nkeys, timingTool(ts), ts[0].runs, ms(ts[0].mean), ms(ts[0].median), ms(ts[0].min),
		ms(ts[1].mean), ms(ts[1].median), ms(ts[1].min), mib(rss)))
	return nil
}

// countListed decodes plana's JSON output as a stream and counts the keys.
func countListed(env []string, dir, plana string) (int, error) {
	cmd := exec.Command(plana, "keys", "list", "-o", "json")
	cmd.Env = env
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	dec := json.NewDecoder(out)
	n := 0
	if _, err := dec.Token(); err != nil {
		cmd.Wait()
		return 0, err
	}
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			cmd.Wait()
			return 0, err
		}
		n++
	}
	io.Copy(io.Discard, out)
	return n, cmd.Wait()
}

// initTrace runs plana version with GODEBUG=inittrace=1 and returns the ten
// most expensive package initialisers and the time of all of them, in ms.
func initTrace(plana string, env []string) (string, float64, error) {
	cmd := exec.Command(plana, "version")
	cmd.Env = append(slices.Clone(env), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", 0, err
	}
	type line struct {
		ms   float64
		text string
	}
	var ls []line
	var total float64
	for _, l := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(l)
		// init PKG @T ms, D ms clock, B bytes, A allocs
		if len(f) >= 6 && f[0] == "init" {
			var d float64
			fmt.Sscan(f[4], &d)
			total += d
			ls = append(ls, line{d, l})
		}
	}
	slices.SortFunc(ls, func(a, b line) int {
		switch {
		case a.ms > b.ms:
			return -1
		case a.ms < b.ms:
			return 1
		}
		return 0
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d packages, %.3f ms of init in all; the heaviest:\n", len(ls), total)
	for i, l := range ls {
		if i == 10 {
			break
		}
		sb.WriteString(l.text + "\n")
	}
	return sb.String(), total, nil
}

// minorFaults runs argv once and returns the page faults it took.
func minorFaults(env []string, dir string, argv ...string) int64 {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	if cmd.Run() != nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Minflt
	}
	return 0
}
