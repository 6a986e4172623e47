package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Fleet settings: short enough for a bench, long enough that every
// rotation really waits on the gate.
const (
	fleetQuiet    = "3s"
	fleetPoll     = "500ms"
	fleetEvery    = time.Second // each automation's call interval
	fleetOwner    = "fleet@example.com"
	fleetCost     = 4 // bcrypt: the fleet measures plana, not hashing
	fleetParallel = "8"
)

// fleetRun is one plana command over a fleet: what it took.
type fleetRun struct {
	what     string
	keys     int
	wall     time.Duration
	requests int
	perPoll  float64 // median requests of one gate round
	minPoll  int     // the fewest: every rotation under way only waiting
	maxPoll  int
	polls    int
	maxRSS   int64 // KiB, plana's peak
	failed   int64 // the automations' failed calls
	exit     int
}

// fleet rotates 100 keys with one command (--issued-by --emergency, then
// --due), beside one key alone and the same keys one command at a time.
// plana runs as the user would run it, with a throwaway Secret Service
// (scripts/with-keyring.sh), a config file holding each key's target, and
// one automation per key calling with PLANA_KEY_NEW, then PLANA_KEY.
func (b *bench) fleet(ctx context.Context) error {
	const sec = "fleet"
	bus, stop, err := b.keyringSession()
	if err != nil {
		return err
	}
	defer stop()
	n := b.n(100, 10)
	var runs []fleetRun
	for _, sc := range []struct {
		what string
		keys int
		args func(names []string) [][]string
	}{
		{"--issued-by --emergency, 1 key", 1, issuedBy},
		{fmt.Sprintf("--issued-by --emergency, %d keys", n), n, issuedBy},
		{"--due, 1 key", 1, due},
		{fmt.Sprintf("--due, %d keys", n), n, due},
		{fmt.Sprintf("one rotation at a time, %d keys", n), n, oneByOne},
		{fmt.Sprintf("keys rotate KEY --emergency, 1 of %d keys", n), n, firstOf("--emergency", "departed")},
		{fmt.Sprintf("keys rotate KEY, 1 of %d keys", n), n, firstOf()},
	} {
		r, err := b.fleetScenario(ctx, bus, sc.what, sc.keys, sc.args)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.what, err)
		}
		runs = append(runs, r)
	}
	var rows []string
	for _, r := range runs {
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %.0f (%d–%d over %d rounds) | %s | %d |",
			r.what, ms(r.wall), r.requests, r.perPoll, r.minPoll, r.maxPoll, r.polls, mib(r.maxRSS), r.failed))
	}
	for i, kind := range []string{"--issued-by --emergency", "--due"} {
		one, many, oneOfMany := runs[2*i], runs[2*i+1], runs[len(runs)-2+i]
		perPoll := many.perPoll / max(one.perPoll, 1)
		wall := float64(many.wall) / float64(one.wall)
		mem := float64(many.maxRSS) / float64(oneOfMany.maxRSS)
		b.rep.goal(sec, fmt.Sprintf("%s: requests per poll, %d keys ÷ 1", kind, many.keys),
			fmt.Sprintf("%.1f ÷ %.1f = %.1fx", many.perPoll, one.perPoll, perPoll), "≤ 3x", perPoll <= 3,
			"A round holds, besides the one shared read of the log and the keys, the read of the old key's look-back "+
				"of each rotation reaching its gate in that round (its successor's calls and the keys' state come with "+
				"the shared read); with 100 keys reaching their gates over many rounds, the median round has several. "+
				"The fewest in a round, when every rotation under way only waits, is in the table.")
		b.rep.goal(sec, fmt.Sprintf("%s: wall time, %d keys ÷ 1", kind, many.keys),
			fmt.Sprintf("%s ÷ %s = %.1fx", ms(many.wall), ms(one.wall), wall), "≤ 10x", wall <= 10,
			"Creating and deploying, --parallel at a time, took longer than the waits it overlaps (a rotation waiting "+
				"after its create or at its gate holds no slot).")
		b.rep.goal(sec, fmt.Sprintf("%s: plana's peak RSS, %d keys ÷ 1 of them", kind, many.keys),
			fmt.Sprintf("%s ÷ %s = %.2fx", mib(many.maxRSS), mib(oneOfMany.maxRSS), mem), "flat (≤ 1.5x)", mem <= 1.5,
			fmt.Sprintf("Against one key rotated alone in the same workspace (row %q), so that only the number of rotations "+
				"under way differs: the workspace's size (the keys listed, the automations' calls read from the log) costs one "+
				"rotation there too. Against one key in a workspace of one (%s), the fleet's peak is %.2fx. A rotation waiting "+
				"after its create or at its gate holds a goroutine, but no slot.",
				oneOfMany.what, mib(one.maxRSS), float64(many.maxRSS)/float64(one.maxRSS)))
		b.rep.goal(sec, kind+": the automations' failed calls", fmt.Sprint(many.failed), "0 (gated)", kind != "--due" || many.failed == 0,
			"An automation failed a call during a gated rotation.")
	}
	b.rep.block(sec, fmt.Sprintf(`Each row is a fresh emulator (bcrypt cost %d: the figures are plana's, not hashing's) whose
keys were issued by %s more than a year ago, so all are due. Each key has its own env file and
its own automation calling every %s with PLANA_KEY_NEW, then PLANA_KEY; the config file maps each
key's name to its env file (`+"`rotation.targets`"+`), with a quiet period of %s and a poll interval of
%s. plana runs as a user runs it, against a throwaway Secret Service, through a counting proxy;
--parallel %s. A gate round is the gate's reads (execution log, keys) from one read of the whole log (the
one read per poll every rotation waiting shares) to the next, including the look-back reads of the
rotations that reach their gate in that round; the figure is the median round. Peak RSS is plana's own
(VmHWM, read from /proc while it runs), the emergency rows count the automations' calls refused between the revoke and the
deploy, which an emergency accepts. The last two rows rotate the first key alone, in the same workspace of %d keys and
automations: the memory goal compares the fleet with them, so that only the number of rotations under way differs.

| run | wall time | API requests | requests per poll: median (fewest–most) | plana peak RSS | failed automation calls |
|---|---|---|---|---|---|
%s`, fleetCost, fleetOwner, fleetEvery, fleetQuiet, fleetPoll, fleetParallel, n, strings.Join(rows, "\n")))
	return nil
}

func issuedBy([]string) [][]string {
	return [][]string{{"keys", "rotate", "--issued-by", fleetOwner, "--emergency", "departed", "--parallel", fleetParallel}}
}

func due([]string) [][]string {
	return [][]string{{"keys", "rotate", "--due", "--parallel", fleetParallel}}
}

// firstOf rotates the first key alone, with flags.
func firstOf(flags ...string) func([]string) [][]string {
	return func(names []string) [][]string {
		return [][]string{append([]string{"keys", "rotate", names[0]}, flags...)}
	}
}

func oneByOne(names []string) [][]string {
	var out [][]string
	for _, n := range names {
		out = append(out, []string{"keys", "rotate", n})
	}
	return out
}

// fleetScenario seeds n due keys with their env files and automations,
// runs the commands args gives, and measures them.
func (b *bench) fleetScenario(ctx context.Context, bus, what string, n int, args func([]string) [][]string) (fleetRun, error) {
	r := fleetRun{what: what, keys: n}
	fe, err := b.setupFleet(ctx, bus, n, fleetQuiet)
	if err != nil {
		return r, err
	}
	defer fe.stop()
	env, names, proxy, failed := fe.env, fe.names, fe.proxy, fe.failed

	start := time.Now()
	for _, a := range args(names) {
		for try := 0; ; try++ {
			code, rss, out, err := runPlana(ctx, b.bin["plana"], env, a)
			if err != nil {
				return r, err
			}
			r.maxRSS = max(r.maxRSS, rss)
			r.exit = code
			if code == 0 {
				break
			}
			// 3 is "pending": a cron job runs the command again.
			if code != 3 || try > 100 {
				return r, fmt.Errorf("plana %s exited %d: %s", strings.Join(a, " "), code, failures(out))
			}
		}
	}
	r.wall = time.Since(start)
	r.failed = failed.Load()

	proxy.mu.Lock()
	calls := slices.Clone(proxy.calls)
	proxy.mu.Unlock()
	r.requests = len(calls)
	var rounds []int
	for _, c := range calls {
		if c.logKey == "every" {
			rounds = append(rounds, 0)
		}
		// The gate's reads: the log and the keys, shared or a rotation's
		// own catch-up when it reaches its gate.
		if len(rounds) > 0 && (c.endpoint == "GET /v1/execution-log" || strings.HasPrefix(c.endpoint, "GET /v1/api-keys")) {
			rounds[len(rounds)-1]++
		}
	}
	r.polls = len(rounds)
	if len(rounds) > 0 {
		slices.Sort(rounds)
		r.perPoll = float64(rounds[len(rounds)/2])
		r.minPoll, r.maxPoll = rounds[0], rounds[len(rounds)-1]
	}
	return r, nil
}
