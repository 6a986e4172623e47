package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/subosito/gotenv"
)

// The reliability matrix's commands (issue 5): the invariant checker run at
// the end of every scenario, holds that stop a request part-way so a script
// can kill plana inside it, the fault counts, reruns for a flaky server and
// a probe that measures how soon a revoked key is refused.
var reliabilityCommands = scriptCommands{
	"invariants": cmdInvariants,
	"hold":       cmdHold,
	"held":       cmdHeld,
	"release":    cmdRelease,
	"faultcount": cmdFaultCount,
	"rerun":      cmdRerun,
	"probe":      cmdProbe,
}

// adminClient talks to the emulator with the management key of $WORK/token.
// It retries hard: the checks must see the server's truth even while the
// server injects faults.
func adminClient(ts *testscript.TestScript) *client.Client {
	st := state(ts)
	if st.emuURL == "" {
		ts.Fatalf("start the emulator first")
	}
	data, err := os.ReadFile(filepath.Join(st.work, "token"))
	ts.Check(err)
	c, err := client.New(st.emuURL, client.WithKeys(strings.TrimSpace(string(data))),
		client.WithUserAgent("e2e-invariants"), client.WithRetry(30, 2*time.Minute))
	ts.Check(err)
	return c
}

// devCall sends a request to the emulator's /_emulator/ endpoints.
func devCall(ts *testscript.TestScript, method, path string, body any) []byte {
	st := state(ts)
	if st.emuURL == "" {
		ts.Fatalf("start the emulator first")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		ts.Check(err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, st.emuURL+path, rd)
	ts.Check(err)
	// Dev endpoints answer only JSON requests, whatever the method.
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		ts.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	return data
}

// cmdHold: hold [-after] [-key PREFIX | -newkey] METHOD PATH holds the next
// request that matches (PATH may hold * as in path.Match) until its client
// goes away or release: on arrival, or with -after once the server has
// acted and its answer is ready. -key matches only requests presenting that
// key; -newkey only those presenting a key other than the management key of
// $WORK/token (plana checking its new key). The
// emulator logs "holding METHOD PATH: arrived" or ": handled" for waitfor.
func cmdHold(ts *testscript.TestScript, neg bool, args []string) {
	h := emulator.Hold{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-after":
			h.After = true
		case "-key":
			if len(args) < 2 {
				ts.Fatalf("hold: -key needs a prefix")
			}
			h.KeyPrefix, args = args[1], args[1:]
		case "-newkey":
			data, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), "token"))
			ts.Check(err)
			h.ExceptKeyPrefix = client.PrefixOf(strings.TrimSpace(string(data)))
		default:
			ts.Fatalf("hold: unknown flag %s", args[0])
		}
		args = args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: hold [-after] [-key PREFIX | -newkey] METHOD PATH")
	}
	h.Method, h.Path = args[0], args[1]
	st := state(ts)
	st.holdFrom = 0
	if info, err := os.Stat(filepath.Join(st.work, "emulator.log")); err == nil {
		st.holdFrom = info.Size()
	}
	devCall(ts, http.MethodPost, "/_emulator/holds", h)
}

var heldRe = regexp.MustCompile(`bos-emulator: holding (.*)`)

// cmdHeld: held waits until the emulator holds a request it was told to
// hold since the last hold command, and prints what it holds.
func cmdHeld(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: held")
	}
	st := state(ts)
	var line string
	ts.Check(waitUntil(startTimeout, "the emulator to hold a request", func() (bool, error) {
		data, err := os.ReadFile(filepath.Join(st.work, "emulator.log"))
		if err != nil || int64(len(data)) < st.holdFrom {
			return false, err
		}
		if m := heldRe.FindSubmatch(data[st.holdFrom:]); m != nil {
			line = string(m[1])
			return true, nil
		}
		return false, nil
	}))
	fmt.Fprintf(ts.Stdout(), "holding %s\n", line)
}

// cmdRelease: release lets every held request go on.
func cmdRelease(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: release")
	}
	devCall(ts, http.MethodDelete, "/_emulator/holds", nil)
}

// cmdFaultCount: faultcount prints the /v1/ requests the emulator has seen
// since it started and the faults it injected, one "injected KIND N" line
// per kind, and "faults N" in all.
func cmdFaultCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: faultcount")
	}
	var fc emulator.FaultCounts
	ts.Check(json.Unmarshal(devCall(ts, http.MethodGet, "/_emulator/faults", nil), &fc))
	kinds := make([]string, 0, len(fc.Injected))
	var total int64
	for k, n := range fc.Injected {
		kinds = append(kinds, k)
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(ts.Stdout(), "requests %d\n", fc.Requests)
	for _, k := range kinds {
		fmt.Fprintf(ts.Stdout(), "injected %s %d\n", k, fc.Injected[k])
	}
	fmt.Fprintf(ts.Stdout(), "faults %d\n", total)
}

// cmdRerun: rerun N PROG [ARGS...] runs PROG until it exits 0, at most N
// times, the way a cron job keeps running `plana keys rotate` until it is
// done; it prints "runs K". Each run's stderr goes to the test log.
func cmdRerun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: rerun N PROG [ARGS...]")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		ts.Fatalf("rerun: N %q is not a positive number", args[0])
	}
	for i := 1; ; i++ {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil {
			fmt.Fprintf(ts.Stdout(), "runs %d\n", i)
			return
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || i == n {
			ts.Fatalf("%s: run %d of %d: %v\nstderr:\n%s", args[1], i, n, err, ts.ReadFile("stderr"))
		}
		ts.Logf("run %d: %v\n%s", i, err, client.Redact(ts.ReadFile("stderr")))
	}
}

// cmdInvariants: invariants [-rotated PREFIX...] checks what must hold after
// anything (a kill, a fault, a race): it reads the server's truth through
// the management API and plana's state and fails on any breach:
//
//   - every state file is whole (journals and lock files parse as JSON, the
//     rotation log line by line with its hash chain intact), private (files
//     0600, directories 0700) and no temporary file is left behind, there or
//     next to an env-file target;
//   - exactly one active successor per rotation: every active key that plana
//     created (issued by the management key's user during the script, named
//     as a successor of another key) is a journal's new key, or the pending
//     create of one, and every key a rotation abandoned is revoked;
//   - an old key is revoked only after the gate held (a "verified" journal
//     step or log entry, earlier than the server's revoked_at), or in an
//     emergency, or by --force as the rotation log records;
//   - the new key's plaintext is in the keyring (plana keys secret, never
//     printed) and is the one in the env-file target, or, without a keyring,
//     is in the target;
//   - nosecrets.
//
// Each -rotated PREFIX must name an old key whose rotation finished: revoked
// on the server, its successor active, "rotated" in the log. -killed checks
// the state a kill -9 just left: a write it cut off may leave its staged copy
// beside the file (the next write removes it), which is allowed while it
// holds no key. "! invariants" expects a breach and prints what broke.
func cmdInvariants(ts *testscript.TestScript, neg bool, args []string) {
	var rotated []string
	team, killed := false, false
	for len(args) > 0 {
		switch args[0] {
		case "-team":
			team, args = true, args[1:]
			continue
		case "-killed":
			killed, args = true, args[1:]
			continue
		}
		if len(args) < 2 || args[0] != "-rotated" {
			ts.Fatalf("usage: invariants [-team] [-killed] [-rotated PREFIX...]")
		}
		rotated, args = append(rotated, args[1]), args[2:]
	}
	inv := &invariantCheck{ts: ts, api: adminClient(ts), team: team, killed: killed}
	inv.run(rotated)
	if neg {
		// The problems name keys by prefix only: safe to print.
		if len(inv.problems) == 0 {
			ts.Fatalf("the invariants hold, but a breach was expected")
		}
		fmt.Fprintf(ts.Stdout(), "%s\n", strings.Join(inv.problems, "\n"))
		return
	}
	if len(inv.problems) > 0 {
		ts.Fatalf("invariants broken:\n%s", strings.Join(inv.problems, "\n"))
	}
	fmt.Fprintf(ts.Stdout(), "%s\n", strings.Join(inv.notes, "\n"))
	cmdNoSecrets(ts, false, nil)
}

type invariantCheck struct {
	ts *testscript.TestScript
	// team: other state directories (machines) share the server, so a
	// successor another machine's journal names is not an orphan here.
	team bool
	// killed: the state a kill -9 just left, whose cut-off write may have
	// left a staged copy behind.
	killed   bool
	api      *client.Client
	problems []string
	notes    []string
}

func (c *invariantCheck) fail(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

func (c *invariantCheck) note(format string, a ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, a...))
}

// journal is a rotation journal and whether it is finished (under done/).
type journal struct {
	rotate.Journal
	path string
	done bool
}

func (c *invariantCheck) run(rotated []string) {
	ts := c.ts
	ctx := context.Background()
	stateDir := filepath.Join(ts.Getenv("XDG_STATE_HOME"), "plana")
	configDir := filepath.Join(ts.Getenv("XDG_CONFIG_HOME"), "plana")
	files := c.checkFiles(stateDir) + c.checkFiles(configDir)

	var journals []journal
	for _, pattern := range []string{"rotations/*.json", "rotations/done/*.json"} {
		paths, _ := filepath.Glob(filepath.Join(stateDir, pattern))
		for _, p := range paths {
			data, err := os.ReadFile(p)
			ts.Check(err)
			var j journal
			if err := json.Unmarshal(data, &j.Journal); err != nil {
				continue // checkFiles reported it
			}
			j.path, j.done = p, strings.Contains(pattern, "done")
			journals = append(journals, j)
		}
	}
	// The keyring plana ran with holds the key of the log's chain.
	rlog := rotate.OpenLog(stateDir, secret.NewKeyring(0), nil)
	if err := rlog.Verify(); err != nil {
		c.fail("%v", err)
	}
	entries, err := rlog.Entries()
	if err != nil {
		c.fail("reading the rotation log: %v", err)
	}

	me, err := c.api.Me(ctx)
	ts.Check(err)
	keys, err := c.api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	ts.Check(err)
	byID := map[string]client.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}

	rotatedOn := map[string]bool{} // keys that are the old key of a rotation
	for _, j := range journals {
		rotatedOn[j.Old.ID] = true
	}
	// Orphans: active keys plana created that no journal names as its new
	// key. A key counts as plana's when the management key's user issued it
	// during the script, under a successor's name of another key: that
	// holds even when the journal that should name it is lost.
	started := state(ts).started
	// The server's own truth, whichever machines took part: each key has at
	// most one active successor by lineage the admin believes (the race
	// rule's winner); a claimant plana ignores is not one.
	winners := map[string]bool{}
	for _, old := range keys {
		var active []string
		succ, _ := lineage.Successors(old, keys, me.User)
		for _, k := range succ {
			if k.Active() {
				active = append(active, k.Prefix)
			}
		}
		if len(active) > 1 {
			c.fail("%s has %d active successors: %s", old.Prefix, len(active), strings.Join(active, ", "))
		}
		if w, ok := lineage.Winner(succ); ok {
			winners[w.ID] = true
		}
	}
	for _, k := range keys {
		if !k.Active() || k.CreatedBy.ID != me.User.ID || k.CreatedAt.Before(started) || isNewOfSome(journals, k.ID) || rotatedOn[k.ID] {
			continue
		}
		if !slices.ContainsFunc(keys, func(o client.APIKey) bool { return o.ID != k.ID && isSuccessor(o.Name, k.Name) }) {
			continue
		}
		if slices.ContainsFunc(journals, func(j journal) bool { return j.Pending != nil && j.Pending.Name == k.Name }) {
			// A create whose answer was lost: the next run finds it by its
			// Idempotency-Key and revokes it.
			c.note("pending create %s: awaiting recovery by the next run", k.Prefix)
			continue
		}
		if _, ok := lineage.Parse(k.Description); ok && winners[k.ID] && c.team {
			// Another machine's rotation, found by its lineage: its own
			// state directory names it.
			c.note("successor %s: another machine's (lineage in its description)", k.Prefix)
			continue
		}
		c.fail("orphan: active key %s (%q), created by plana's user as a successor, is known to no rotation", k.Prefix, k.Name)
	}

	for _, j := range journals {
		c.checkJournal(j, byID, entries, rotatedOn)
	}
	for _, p := range rotated {
		c.checkRotated(p, journals, keys, entries)
	}
	c.note("state files %d: whole and private", files)
	c.note("rotations %d, rotation log entries %d", len(journals), len(entries))
}

func isNewOfSome(js []journal, id string) bool {
	return slices.ContainsFunc(js, func(j journal) bool { return j.New != nil && j.New.ID == id })
}

// yearSuffix is the " (2025)" or " (2025-2)" a successor's name ends with.
var yearSuffix = regexp.MustCompile(`^(.*?)\s*\(\d{4}(?:-\d+)?\)\s*$`)

// isSuccessor reports whether name is how plana names a successor of old.
func isSuccessor(old, name string) bool {
	base := strings.TrimSpace(old)
	if m := yearSuffix.FindStringSubmatch(base); m != nil {
		base = m[1]
	}
	m := yearSuffix.FindStringSubmatch(name)
	return m != nil && m[1] == base
}

func (c *invariantCheck) checkJournal(j journal, byID map[string]client.APIKey, entries []rotlog.Entry, rotatedOn map[string]bool) {
	old, ok := byID[j.Old.ID]
	if !ok {
		c.fail("%s: the old key %s is not on the server", j.path, j.Old.Prefix)
		return
	}
	for _, a := range j.Abandoned {
		if k, ok := byID[a.ID]; !ok || k.Active() {
			c.fail("%s: the abandoned key %s is still active: an orphan", j.path, a.Prefix)
		} else {
			c.note("abandoned %s: revoked", a.Prefix)
		}
	}
	if j.New != nil {
		nk, ok := byID[j.New.ID]
		switch {
		case !ok:
			c.fail("%s: the new key %s is not on the server", j.path, j.New.Prefix)
		case !nk.Active() && !rotatedOn[nk.ID]:
			c.fail("%s: the new key %s is revoked: the rotation lost its successor", j.path, j.New.Prefix)
		case nk.Active():
			c.note("successor %s of %s: active", j.New.Prefix, j.Old.Prefix)
			c.checkPlaintext(j)
		}
	}

	// The gate before the revoke, unless in an emergency.
	if old.Active() {
		if !j.Times[rotate.Revoked].IsZero() || j.State.Reached(rotate.Revoked) {
			c.fail("%s: the journal says the old key %s is revoked, the server says active", j.path, j.Old.Prefix)
		}
		return
	}
	emergency, forced := j.Emergency, false
	var verifiedAt time.Time
	if t, ok := j.Times[rotate.Verified]; ok {
		verifiedAt = t
	}
	for _, e := range entries {
		if e.Old.ID != j.Old.ID {
			continue
		}
		switch e.Event {
		case rotlog.EventVerified:
			if verifiedAt.IsZero() || e.Time.Before(verifiedAt) {
				verifiedAt = e.Time
			}
		case rotlog.EventRevoked:
			emergency = emergency || e.Detail == "emergency"
			forced = forced || strings.HasPrefix(e.Detail, "forced")
		}
	}
	revokedHere := slices.ContainsFunc(entries, func(e rotlog.Entry) bool { return e.Old.ID == j.Old.ID && e.Event == rotlog.EventRevoked })
	elsewhere := slices.ContainsFunc(entries, func(e rotlog.Entry) bool {
		return e.Old.ID == j.Old.ID && e.Event == rotlog.EventRotated && strings.HasPrefix(e.Detail, "finished elsewhere")
	})
	switch {
	case !revokedHere && elsewhere:
		// The machine that revoked it checked its own gate.
		c.note("old %s: revoked from another machine", j.Old.Prefix)
	case emergency:
		c.note("old %s: revoked in an emergency", j.Old.Prefix)
	case forced:
		c.note("old %s: revoked by --force, as the rotation log says", j.Old.Prefix)
	case verifiedAt.IsZero():
		c.fail("%s: the old key %s was revoked although the gate never held", j.path, j.Old.Prefix)
	case old.RevokedAt == nil || old.RevokedAt.Before(verifiedAt):
		c.fail("%s: the old key %s was revoked at %v, before the gate held at %v", j.path, j.Old.Prefix, old.RevokedAt, verifiedAt)
	default:
		c.note("old %s: revoked after the gate held", j.Old.Prefix)
	}
}

// checkPlaintext proves the new key's plaintext is where it must be, without
// presenting it to the server (a call with it would count as the automation
// using it, and open the gate).
func (c *invariantCheck) checkPlaintext(j journal) {
	ts := c.ts
	var plain string
	if j.PlaintextStored {
		cmd := exec.Command(filepath.Join(binDir, "plana"), "keys", "secret", j.New.ID)
		cmd.Env = scriptEnv(ts)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			c.fail("%s: the new key %s is not in the keyring: %v: %s", j.path, j.New.Prefix, err, client.Redact(errb.String()))
			return
		}
		plain = strings.TrimSpace(out.String())
		st := state(ts)
		st.known = append(st.known, plain)
		if client.PrefixOf(plain) != j.New.Prefix {
			c.fail("%s: the keyring holds a plaintext for %s that is not a well-formed key with that prefix", j.path, j.New.Prefix)
			return
		}
	}
	var files []string
	for _, st := range j.Targets {
		if t, err := target.Parse(st.Target); err == nil && t.Kind == target.KindEnvFile && st.Deployed {
			files = append(files, t.Arg)
		}
	}
	if len(files) == 0 {
		if plain == "" && j.Adopted {
			// Carried on from the server: its issuer's keyring holds it.
			c.note("new %s: created by %s, whose keyring holds it", j.New.Prefix, j.NewCreatedBy)
			return
		}
		if plain == "" {
			c.fail("%s: the new key %s is neither in the keyring nor deployed: its plaintext is lost", j.path, j.New.Prefix)
		} else {
			c.note("new %s: plaintext in the keyring", j.New.Prefix)
		}
		return
	}
	for _, f := range files {
		c.checkEnvFile(j, f, plain)
	}
}

// checkEnvFile proves the env file f, a target of j, holds the new key
// (plain, when the keyring gave it) where the journal says it must.
func (c *invariantCheck) checkEnvFile(j journal, f, plain string) {
	ts := c.ts
	info, err := os.Stat(f)
	if err != nil {
		c.fail("%s: the env-file target: %v", j.path, err)
		return
	}
	// plana keeps the mode the file's owner gave it (a service may read it
	// through its group); the scripts give theirs none for others.
	if info.Mode().Perm()&0o007 != 0 {
		c.fail("%s: the env-file target %s is mode %v: readable by others", j.path, f, info.Mode().Perm())
	}
	c.checkTemps(filepath.Dir(f), filepath.Base(f))
	env, err := gotenv.Read(f)
	if err != nil {
		c.fail("%s: reading the env-file target: %v", j.path, err)
		return
	}
	st := state(ts)
	for _, v := range env {
		if keyRe.MatchString(v) {
			st.known = append(st.known, v)
		}
	}
	name := target.NewKeySlot
	// Times, not State: a journal written before a revoke finalized its
	// target first may have ended the rotation without step 4.
	if _, finalized := j.Times[rotate.Finalized]; finalized {
		name = target.KeySlot
		if _, ok := env[target.NewKeySlot]; ok {
			c.fail("%s: finalized, but %s still has %s", j.path, f, target.NewKeySlot)
		}
	}
	got := env[name]
	switch {
	case plain != "" && got != plain:
		c.fail("%s: %s in %s is not the new key %s the keyring holds", j.path, name, f, j.New.Prefix)
	case plain == "" && client.PrefixOf(got) != j.New.Prefix:
		c.fail("%s: %s in %s is not the new key %s, and the keyring does not have it: lost", j.path, name, f, j.New.Prefix)
	default:
		where := "the env file"
		if plain != "" {
			where = "the keyring = the env file"
		}
		c.note("new %s: plaintext in %s under %s", j.New.Prefix, where, name)
	}
}

func (c *invariantCheck) checkRotated(prefix string, journals []journal, keys []client.APIKey, entries []rotlog.Entry) {
	var j *journal
	for i := range journals {
		if journals[i].Old.Prefix == prefix && journals[i].done {
			j = &journals[i]
		}
	}
	if j == nil {
		c.fail("-rotated %s: no finished rotation of that key", prefix)
		return
	}
	if j.New == nil {
		c.fail("-rotated %s: the finished rotation has no new key", prefix)
		return
	}
	successors := 0
	for _, k := range keys {
		if k.Prefix == prefix && k.Active() {
			c.fail("-rotated %s: still active on the server", prefix)
		}
		// A successor carried on from another machine is older than this
		// journal.
		if k.Active() && isSuccessor(j.Old.Name, k.Name) && (k.ID == j.New.ID || !k.CreatedAt.Before(j.StartedAt.Add(-time.Second))) {
			successors++
		}
	}
	if successors != 1 {
		c.fail("-rotated %s: %d active successors, want exactly 1", prefix, successors)
	}
	var events []string
	for _, e := range entries {
		if e.Old.ID == j.Old.ID {
			events = append(events, e.Event)
		}
	}
	if !slices.Contains(events, rotlog.EventRotated) {
		c.fail("-rotated %s: the rotation log has no %q entry (%v)", prefix, rotlog.EventRotated, events)
	}
	c.note("rotated %s → %s: log %s", prefix, j.New.Prefix, strings.Join(events, " "))
}

// checkFiles walks a plana directory: every file whole and private, no
// temporary file left. It returns how many files it checked.
func (c *invariantCheck) checkFiles(root string) int {
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.ts.Getenv("WORK"), p)
		if info.Mode().Perm()&0o077 != 0 {
			c.fail("%s is mode %v: readable by others", rel, info.Mode().Perm())
		}
		if d.IsDir() {
			return nil
		}
		n++
		if strings.HasPrefix(d.Name(), ".") {
			data, _ := os.ReadFile(p)
			if c.killed && !keyRe.Match(data) {
				c.note("%s: staged by a write the kill cut off; it holds no key", rel)
				return nil
			}
			c.fail("%s: a temporary file left behind", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".jsonl"):
			for i, line := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
				if len(data) > 0 && !json.Valid(line) {
					c.fail("%s line %d is not whole JSON", rel, i+1)
				}
			}
			if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
				c.fail("%s: the last line is cut short", rel)
			}
		case strings.HasSuffix(p, ".json"):
			if !json.Valid(data) {
				c.fail("%s is not whole JSON", rel)
			}
		case strings.HasSuffix(p, ".lock"):
			// Empty while only locked; the holder's JSON once written.
			if len(data) > 0 && !json.Valid(data) {
				c.fail("%s is neither empty nor whole JSON", rel)
			}
		}
		return nil
	})
	c.ts.Check(err)
	return n
}

// checkTemps fails on a temporary file an atomic write of base left in dir
// (renameio names them .BASE followed by digits): it would hold a plaintext.
func (c *invariantCheck) checkTemps(dir, base string) {
	ents, err := os.ReadDir(dir)
	c.ts.Check(err)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+base) {
			c.fail("%s: a temporary copy of %s left behind", e.Name(), base)
		}
	}
}

// prober presents one key over and over from several goroutines and notes
// when each request was sent and what came back, while another goroutine
// watches the key's status through the management API.
type prober struct {
	keyID    string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	results  []probeResult
	revoked  time.Time // when the watcher first saw the key revoked
	watchErr error
}

type probeResult struct {
	sent, answered time.Time
	status         int // 0: no answer
}

// probeWorkers is how many goroutines present the key at once.
const probeWorkers = 8

// cmdProbe: probe start ENVFILE NAME | probe stop.
//
// start presents the key ENVFILE holds under NAME, non-stop, and waits until
// the server has accepted it. stop waits until the key is refused (after a
// revoke), stops, and fails if any request sent after the key was seen
// revoked was accepted. It prints the counts, how many requests sent after
// the server's revoked_at (the revoke's arrival) were still accepted, in
// flight with it, and the time from revoked_at to the first 401 (figures
// only: no timing is asserted).
func cmdProbe(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: probe start ENVFILE NAME | probe stop")
	}
	switch args[0] {
	case "start":
		if len(args) != 3 {
			ts.Fatalf("usage: probe start ENVFILE NAME")
		}
		if st.probe != nil {
			ts.Fatalf("probe already started")
		}
		knownSecrets(ts)
		env, err := gotenv.Read(ts.MkAbs(args[1]))
		ts.Check(err)
		key := env[args[2]]
		api := adminClient(ts)
		ctx := context.Background()
		keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
		ts.Check(err)
		i := slices.IndexFunc(keys, func(k client.APIKey) bool { return k.Prefix == client.PrefixOf(key) })
		if i < 0 {
			ts.Fatalf("probe: %s holds no key of this workspace under %s", args[1], args[2])
		}
		p := &prober{keyID: keys[i].ID}
		st.probe = p
		p.start(st.emuURL, key, api)
		ts.Check(waitUntil(startTimeout, "the probe's first accepted request", func() (bool, error) {
			ok, _, _ := p.counts()
			return ok > 0, nil
		}))
	case "stop":
		p := st.probe
		if p == nil || len(args) != 1 {
			ts.Fatalf("usage: probe stop (after probe start)")
		}
		// The server refuses the key from the moment the revoke marks it,
		// before the database (and so the watcher) says revoked: wait for both.
		err := waitUntil(startTimeout, "the probed key to be refused and seen revoked", func() (bool, error) {
			_, refused, _ := p.counts()
			p.mu.Lock()
			seen := !p.revoked.IsZero() || p.watchErr != nil
			p.mu.Unlock()
			return refused > 0 && seen, nil
		})
		p.stop()
		st.probe = nil
		ts.Check(err)
		ts.Check(p.watchErr)
		k, err := adminClient(ts).GetKey(context.Background(), p.keyID)
		ts.Check(err)
		p.report(ts, k)
	default:
		ts.Fatalf("unknown probe subcommand %q", args[0])
	}
}

func (p *prober) start(url, key string, api *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	// One attempt per request: a retry would hide when the refusal began.
	c, _ := client.New(url, client.WithKeys(key), client.WithUserAgent("e2e-probe"), client.WithRetry(1, 0))
	for range probeWorkers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				r := probeResult{sent: time.Now()}
				resp, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil)
				r.answered = time.Now()
				var apiErr *client.APIError
				switch {
				case err == nil:
					r.status = resp.StatusCode
				case errors.As(err, &apiErr):
					r.status = apiErr.StatusCode
				case ctx.Err() != nil:
					return
				}
				p.mu.Lock()
				p.results = append(p.results, r)
				p.mu.Unlock()
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for ctx.Err() == nil {
			k, err := api.GetKey(ctx, p.keyID)
			if err != nil {
				if ctx.Err() == nil {
					p.mu.Lock()
					p.watchErr = err
					p.mu.Unlock()
				}
				return
			}
			if !k.Active() {
				p.mu.Lock()
				p.revoked = time.Now()
				p.mu.Unlock()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

func (p *prober) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *prober) counts() (ok, refused, other int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.results {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
			refused++
		default:
			other++
		}
	}
	return ok, refused, other
}

func (p *prober) report(ts *testscript.TestScript, k *client.APIKey) {
	if k.RevokedAt == nil {
		ts.Fatalf("probe: the key is refused but not revoked")
	}
	var first401 time.Time
	acceptedAfter, sentAfterRevokedAt := 0, 0
	for _, r := range p.results {
		if !p.revoked.IsZero() && r.sent.After(p.revoked) && r.status == http.StatusOK {
			acceptedAfter++
		}
		if r.sent.After(*k.RevokedAt) && r.status == http.StatusOK {
			sentAfterRevokedAt++
		}
		if r.status == http.StatusUnauthorized && (first401.IsZero() || r.answered.Before(first401)) {
			first401 = r.answered
		}
	}
	ok, refused, other := p.counts()
	if p.revoked.IsZero() {
		ts.Fatalf("probe: the watcher never saw the key revoked")
	}
	if acceptedAfter > 0 {
		ts.Fatalf("probe: %d requests sent after the key was seen revoked were accepted", acceptedAfter)
	}
	// The emulator's clock is the local clock when it was never moved: the
	// scripts that probe do not move it.
	fmt.Fprintf(ts.Stdout(), "probe requests %d\naccepted %d\nrefused %d\nother %d\naccepted_after_revoke_seen %d\n"+
		"accepted_in_flight_at_revoke %d\nrevoked_at_to_first_401 %s\n",
		len(p.results), ok, refused, other, acceptedAfter, sentAfterRevokedAt,
		first401.Sub(*k.RevokedAt).Round(time.Millisecond))
}
