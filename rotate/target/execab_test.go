package target

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// slotStore is a store that plana cannot read back, as GitHub's secrets:
// the slots A and B in $STORE, each with its key's prefix beside it, and
// the stdin of each step kept for the test.
const slotStore = `set -eu
cd "$STORE"
pa=$(cat A.prefix 2>/dev/null || true); pb=$(cat B.prefix 2>/dev/null || true)
cat > "stdin.$PLANA_STEP"
case $PLANA_STEP in
list) for p in $pa $pb; do echo "$p"; done ;;
deploy)
  if [ "$pa" = "$PLANA_KEY_PREFIX" ] || [ "$pb" = "$PLANA_OLD_KEY_PREFIX" ]; then s=A; else s=B; fi
  head -n 1 "stdin.deploy" > "$s"; printf '%s\n' "$PLANA_KEY_PREFIX" > "$s.prefix" ;;
finalize)
  if [ "$pa" = "$PLANA_KEY_PREFIX" ]; then s=B; else s=A; fi
  rm -f "$s" "$s.prefix" ;;
abort)
  for s in A B; do if [ "$(cat $s.prefix 2>/dev/null)" = "$PLANA_KEY_PREFIX" ]; then rm -f "$s" "$s.prefix"; fi; done ;;
esac
`

func newSlotStore(t *testing.T, oldK string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "A"), []byte(oldK+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "A.prefix"), []byte(client.PrefixOf(oldK)+"\n"), 0o600)
	script := filepath.Join(dir, "store.sh")
	os.WriteFile(script, []byte(slotStore), 0o700)
	t.Setenv("STORE", dir)
	return script
}

// exec-ab: only deploy gets the key; finalize and abort work where no
// plaintext is, and every step is checked by the prefixes the command
// lists.
func TestExecABNeedsTheKeyOnlyToDeploy(t *testing.T) {
	ctx := context.Background()
	oldK := client.FormatKey("live", "OLD00000", strings.Repeat("o", 32))
	newK := client.FormatKey("live", "NEW00000", strings.Repeat("n", 32))
	script := newSlotStore(t, oldK)
	dir := filepath.Dir(script)
	tg := mustOpen(t, "exec-ab:sh "+script)
	if tg.Readable() || tg.KeyToFinalize() {
		t.Fatalf("exec-ab: readable %v, key to finalize %v; want neither", tg.Readable(), tg.KeyToFinalize())
	}
	if tg := mustOpen(t, "exec:sh "+script); !tg.KeyToFinalize() {
		t.Fatal("exec: finalize needs the key")
	}
	k := keysWith(newK)
	if err := tg.Check(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Deploy(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "B")); string(got) != newK+"\n" {
		t.Fatal("deploy did not put the new key in the free slot B")
	}
	if held, err := tg.Holds(ctx, k.New.Prefix); err != nil || !held {
		t.Fatalf("Holds(new) = %v, %v", held, err)
	}
	// Another machine: no plaintext anywhere.
	elsewhere := k
	elsewhere.Plaintext = func(context.Context) (string, error) { return "", errors.New("not on this machine") }
	if _, err := tg.Finalize(ctx, elsewhere); err != nil {
		t.Fatalf("finalize without the plaintext: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "A")); !os.IsNotExist(err) {
		t.Fatal("finalize left the old key's slot A")
	}
	for _, step := range []string{"finalize", "list"} {
		if got, _ := os.ReadFile(filepath.Join(dir, "stdin."+step)); strings.Contains(string(got), "pa_live_") {
			t.Errorf("PLANA_STEP=%s got the key on its stdin", step)
		}
	}
	// The next rotation goes to slot A; its abort empties A again.
	next := keysWith(client.FormatKey("live", "NEXT0000", strings.Repeat("z", 32)))
	next.Old = ref.Key{Prefix: k.New.Prefix, Name: "new"}
	if _, err := tg.Deploy(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "A.prefix")); strings.TrimSpace(string(got)) != "pa_live_NEXT0000" {
		t.Fatalf("the next rotation's key went elsewhere than slot A: %q", got)
	}
	next.Plaintext = elsewhere.Plaintext
	if _, err := tg.Abort(ctx, next); err != nil {
		t.Fatal(err)
	}
	if held, err := tg.Holds(ctx, "pa_live_NEXT0000"); err != nil || held {
		t.Fatalf("after abort, Holds(next) = %v, %v", held, err)
	}
}

func TestExecABChecksWhatItLists(t *testing.T) {
	ctx := context.Background()
	oldK := client.FormatKey("live", "OLD00000", strings.Repeat("o", 32))
	newK := client.FormatKey("live", "NEW00000", strings.Repeat("n", 32))
	k := keysWith(newK)
	for name, tc := range map[string]struct{ cmd, want string }{
		"a deploy that records nothing": {`cat >/dev/null`, "PLANA_STEP=list does not name the new key pa_live_NEW00000 (it names none)"},
		"a finalize that leaves the old key": {`cat >/dev/null; [ "$PLANA_STEP" != list ] || printf '%s\n%s\n' "$PLANA_OLD_KEY_PREFIX" "$PLANA_KEY_PREFIX"`,
			"after the finalize, PLANA_STEP=list still names pa_live_OLD00000"},
		"a list that prints the key": {`read k; if [ "$PLANA_STEP" = deploy ]; then echo "$k" > "$STORE/k"; fi; [ "$PLANA_STEP" != list ] || cat "$STORE/k"`,
			"line 1 of what PLANA_STEP=list printed is not a key prefix"},
		"a list that fails": {`[ "$PLANA_STEP" != list ] || { echo "gh: not logged in" >&2; exit 4; }`, "checking the deploy: deploy command"},
	} {
		t.Run(name, func(t *testing.T) {
			newSlotStore(t, oldK)
			tg := mustOpen(t, "exec-ab:"+tc.cmd)
			_, err := tg.Deploy(ctx, k)
			if name == "a finalize that leaves the old key" {
				if err != nil {
					t.Fatal(err)
				}
				_, err = tg.Finalize(ctx, k)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), newK) {
				t.Fatal("the error holds the key")
			}
		})
	}
	// Check runs the list: a command that cannot reach its store is
	// refused before anything is created.
	var shown []string
	tg, _ := Open(`exec-ab:printf '%s\n' "$GH_ERROR" >&2; exit 4`, Config{ExecTimeout: 5 * time.Second, Warn: func(s string) { shown = append(shown, s) }})
	t.Setenv("GH_ERROR", "gh: not logged in")
	if err := tg.Check(ctx, k); err == nil || !strings.Contains(err.Error(), "failed (exit status 4)") {
		t.Fatalf("Check: %v", err)
	}
	if !strings.Contains(strings.Join(shown, "\n"), "gh: not logged in") {
		t.Fatalf("Check did not show the command's stderr: %q", shown)
	}
}
