package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
)

// scaleRun is one workspace size: what plana took on it and what the
// emulator's memory did.
type scaleRun struct {
	keys, entries      int
	seed               time.Duration
	list, due, gate    time.Duration
	rssStart, rssEnd   int64
	hwm                int64
	gateCalls, gateLog int
}

func (b *bench) scale(ctx context.Context) error {
	const sec = "scale"
	keys := b.n(100000, 2000)
	sizes := []int{b.n(10000, 1000), b.n(1000000, 20000)}
	runs, err := bySize(sizes, func(entries int) (scaleRun, error) { return b.scaleOne(ctx, keys, entries) })
	if err != nil {
		return err
	}
	small, big := runs[0], runs[1]
	growth := float64(big.gate) / float64(small.gate)
	b.rep.info(sec, fmt.Sprintf("`plana keys list -o json`, %d keys", keys), ms(big.list))
	b.rep.info(sec, fmt.Sprintf("`plana keys due`, %d keys", keys), ms(big.due))
	b.rep.goal(sec, fmt.Sprintf("one gate evaluation, log of %d vs %d entries", big.entries, small.entries),
		fmt.Sprintf("%s vs %s (%.2fx)", ms(big.gate), ms(small.gate), growth), "flat (≤ 1.5x)", growth <= 1.5,
		"The gate's reads grew with the log: an index is not used.")
	rssGrowth := float64(big.hwm) / float64(small.hwm)
	b.rep.goal(sec, fmt.Sprintf("emulator peak RSS, log of %d vs %d entries", big.entries, small.entries),
		fmt.Sprintf("%s vs %s", mib(big.hwm), mib(small.hwm)), "flat (≤ 1.5x)", rssGrowth <= 1.5,
		"The emulator's memory grew with the log.")
	var rows []string
	for _, r := range runs {
		rows = append(rows, fmt.Sprintf("| %d | %d | %s | %s | %s | %s | %d requests, %d entries | %s → %s (peak %s) |",
			r.keys, r.entries, ms(r.seed), ms(r.list), ms(r.due), ms(r.gate), r.gateCalls, r.gateLog, mib(r.rssStart), mib(r.rssEnd), mib(r.hwm)))
	}
	b.rep.block(sec, fmt.Sprintf(`Two workspaces of %d keys, one with a log of %d entries and one with %d, made by
emulator.SeedBulk: direct inserts in one transaction. The bulk keys share one bcrypt hash of a
thrown-away secret at bcrypt's minimum cost (hashing 100,000 keys at cost 12 would take hours),
so none of them can authenticate; the demo workspace's keys are hashed at cost 12 as usual.
Bulk entries are spread over the last 30 days, round robin over the bulk keys. Times are the
median of several runs (hyperfine, or the gate's own loop); the gate is one evaluation of step 3
(rotate.Rotator.Verify with --no-wait) for the demo automation's key with a 7-day quiet period,
as `+"`plana keys verify KEY --no-wait`"+` runs it. RSS is bos-emulator's, read from /proc.

| keys | log entries | seed | keys list -o json | keys due | gate | gate's reads | emulator RSS |
|---|---|---|---|---|---|---|---|
%s`, keys, sizes[0], sizes[1], strings.Join(rows, "\n")))
	return nil
}

func (b *bench) scaleOne(ctx context.Context, keys, entries int) (scaleRun, error) {
	r := scaleRun{keys: keys, entries: entries}
	name := fmt.Sprintf("scale%d", entries)
	db := filepath.Join(b.dir, name+".db")
	admin, took, err := seedDB(ctx, db, keys, entries)
	if err != nil {
		return r, err
	}
	r.seed = took
	// Before the emulator starts: it holds the database exclusively.
	if err := b.explain(db, entries); err != nil {
		return r, err
	}
	emu, err := b.startEmulator(name, db, false)
	if err != nil {
		return r, err
	}
	defer emu.stop()
	r.rssStart = emu.rssKiB()
	env := b.cliEnv(emu.url, admin)
	ts, err := b.timeCommands(env, 1, b.n(3, 1),
		[]string{b.bin["plana"], "keys", "list", "-o", "json"},
		[]string{b.bin["plana"], "keys", "due"})
	if err != nil {
		return r, err
	}
	r.list, r.due = ts[0].median, ts[1].median
	for _, c := range ts[1].exitCodes {
		if c != 0 && c != 5 {
			return r, fmt.Errorf("plana keys due exited %d", c)
		}
	}
	if r.gate, r.gateCalls, r.gateLog, err = b.gateTime(ctx, emu.url, admin); err != nil {
		return r, err
	}
	r.rssEnd, r.hwm = emu.rssKiB(), emu.hwmKiB()
	return r, nil
}

// gateTime creates the successor of the demo automation's key and times
// one evaluation of the gate, the median of several.
func (b *bench) gateTime(ctx context.Context, url, admin string) (time.Duration, int, int, error) {
	proxy, err := newCountingProxy(url)
	if err != nil {
		return 0, 0, 0, err
	}
	defer proxy.srv.Close()
	proxy.keys[admin] = "management"
	api, err := client.New(proxy.srv.URL, client.WithKeys(admin))
	if err != nil {
		return 0, 0, 0, err
	}
	var old client.APIKey
	err = api.ListKeysPages(ctx, client.ListKeysOptions{PageSize: 1000}, func(ks []client.APIKey) error {
		for _, k := range ks {
			if k.Name == "Nightly stock sync (2025)" {
				old = k
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if old.ID == "" {
		return 0, 0, 0, errors.New("no nightly key in the scale workspace")
	}
	proxy.keyIDs[old.ID] = "old"
	r := &rotate.Rotator{
		API: api,
		ClientFor: func(keys ...string) (*client.Client, error) {
			return client.New(proxy.srv.URL, client.WithKeys(keys...))
		},
		Secrets:    secret.NewMemory(),
		StateDir:   filepath.Join(b.dir, "scale-state-"+old.ID),
		LocalActor: "bench@localhost",
	}
	opts := rotate.Options{QuietPeriod: 7 * 24 * time.Hour, NoWait: true}
	if _, err := r.Create(ctx, old, opts); err != nil {
		return 0, 0, 0, fmt.Errorf("creating the successor: %w", err)
	}
	var ds []time.Duration
	var calls, entries int
	for i := range b.n(7, 2) {
		proxy.mu.Lock()
		n0 := len(proxy.calls)
		proxy.mu.Unlock()
		start := time.Now()
		_, err := r.Verify(ctx, old, opts)
		ds = append(ds, time.Since(start))
		var ge *rotate.GateError
		if err != nil && !errors.As(err, &ge) {
			return 0, 0, 0, fmt.Errorf("verify: %w", err)
		}
		if i == 0 {
			proxy.mu.Lock()
			for _, c := range proxy.calls[n0:] {
				calls++
				entries += c.entries
			}
			proxy.mu.Unlock()
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2], calls, entries, nil
}

// explain records SQLite's plan for the queries the gate and the list make.
func (b *bench) explain(db string, entries int) error {
	conn, err := sql.Open("sqlite", db+"?mode=ro")
	if err != nil {
		return err
	}
	defer conn.Close()
	queries := []struct{ what, q string }{
		{"the gate's log read (one key, since a time)", `SELECT seq, id, at, key_id, key_prefix, method, path, status, source_ip, user_agent
			FROM execution_log WHERE key_id = 'k' AND at >= 0 ORDER BY at DESC, seq DESC LIMIT 1001`},
		{"the log's next page", `SELECT seq FROM execution_log WHERE key_id = 'k' AND at >= 0 AND at <= 5 AND (at < 5 OR seq < 9) ORDER BY at DESC, seq DESC LIMIT 1001`},
		{"keys list, a page", `SELECT k.id FROM api_keys k JOIN users cu ON cu.id = k.created_by LEFT JOIN users ru ON ru.id = k.revoked_by
			WHERE k.revoked_at IS NULL AND (k.created_at > 0 OR (k.created_at = 0 AND k.id > 'x')) ORDER BY k.created_at, k.id LIMIT 1001`},
		{"authentication of a key not yet cached", `SELECT k.id FROM api_keys k JOIN users u ON u.id = k.created_by WHERE k.public_id = 'p'`},
	}
	var sb strings.Builder
	for _, q := range queries {
		rows, err := conn.Query("EXPLAIN QUERY PLAN " + q.q)
		if err != nil {
			return fmt.Errorf("explain: %w", err)
		}
		fmt.Fprintf(&sb, "%s:\n", q.what)
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				rows.Close()
				return err
			}
			fmt.Fprintf(&sb, "  %s\n", detail)
		}
		rows.Close()
	}
	b.rep.block("scale", fmt.Sprintf("`EXPLAIN QUERY PLAN` on the database with %d log entries:\n\n```\n%s```", entries, sb.String()))
	return nil
}
