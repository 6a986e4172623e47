package target

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
)

func TestParseTheStoreForms(t *testing.T) {
	for _, s := range []string{
		"k8s:stock/stock-sync-key", "k8s:prod@stock/stock-sync-key?rollout=deployment/stock-sync",
		"aws-sm:prod/stock-sync", "aws-sm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/stock-sync-AbCdEf",
		"aws-ssm:/prod/stock-sync", "sops:secrets/stock.env", "sops:/srv/stock.yaml", "pass:ci/stock-sync",
		"exec-ab:sh plana-gh-secret-ab.sh STOCK_SYNC_KEY", "exec:a:b:c",
	} {
		sp, err := Parse(s)
		if err != nil || sp.String() != s {
			t.Errorf("Parse(%q) = %v, %v", s, sp, err)
		}
		if _, err := Open(s, Config{}); err != nil {
			t.Errorf("Open(%q): %v (opening must touch nothing)", s, err)
		}
	}
	for s, want := range map[string]string{
		"k8s:stock":                       "the namespace is missing",
		"k8s:stock/x?rollout=pod/x":       "k8s:",
		"aws-ssm:prod/stock":              "begins with /",
		"sops:secrets/stock.txt":          ".env, .yaml, .yml or .json",
		"pass:/ci/stock":                  "without a leading /",
		"exec-ab: ":                       `names nothing after "exec-ab:"`,
		"aws-sm:":                         `names nothing after "aws-sm:"`,
		"vault:secret/stock":              "unknown deploy target",
		"K8S:stock/x":                     "unknown deploy target",
		"env-file":                        "unknown deploy target",
		"stdout:x":                        "unknown deploy target",
		"exec-ab":                         "unknown deploy target",
		"k8s:stock/x?rollout=deployment/": "k8s:",
	} {
		if _, err := Parse(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", s, err, want)
		}
	}
}

func TestResolveMakesFilesAbsolute(t *testing.T) {
	wd, _ := os.Getwd()
	for in, want := range map[string]string{
		"sops:secrets/stock.env": "sops:" + filepath.Join(wd, "secrets/stock.env"),
		"env-file:.env":          "env-file:" + filepath.Join(wd, ".env"),
		"sops:/srv/stock.yaml":   "sops:/srv/stock.yaml",
		"pass:ci/stock":          "pass:ci/stock",
		"k8s:stock/key":          "k8s:stock/key",
		"aws-ssm:/prod/stock":    "aws-ssm:/prod/stock",
	} {
		if got, err := Resolve(in); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// interfering is a store with another writer: after each of plana's
// writes, it writes too.
type interfering struct {
	Store
	after func(context.Context) error
}

func (s interfering) Put(ctx context.Context, set map[string]string, unset ...string) error {
	if err := s.Store.Put(ctx, set, unset...); err != nil {
		return err
	}
	return s.after(ctx)
}

// Every write is read back: a store that gives back another key than the
// step wrote fails that step, naming keys by prefix only.
func TestSlotsReadBackEveryWrite(t *testing.T) {
	ctx := context.Background()
	oldK := client.FormatKey("live", "OLD00000", strings.Repeat("o", 32))
	newK := client.FormatKey("live", "NEW00000", strings.Repeat("n", 32))
	other := client.FormatKey("live", "OTHER000", strings.Repeat("x", 32))
	k := keysWith(newK)
	setup := func(t *testing.T, content string, after func(ef envFile) func(context.Context) error) Slots {
		p := filepath.Join(t.TempDir(), "app.env")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		ef := envFile{path: p}
		return Slots{Spec: Spec{Kind: KindEnvFile, Arg: p}, Store: interfering{Store: ef, after: after(ef)}}
	}
	put := func(set map[string]string, unset ...string) func(ef envFile) func(context.Context) error {
		return func(ef envFile) func(context.Context) error {
			return func(ctx context.Context) error { return ef.Put(ctx, set, unset...) }
		}
	}
	check := func(t *testing.T, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want an error saying %q, got %v", want, err)
		}
		for _, v := range []string{oldK, newK, other} {
			if strings.Contains(err.Error(), v) {
				t.Fatal("the error holds a key")
			}
		}
	}
	t.Run("deploy", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\n", put(map[string]string{NewKeySlot: other}))
		_, err := s.Deploy(ctx, k)
		check(t, err, "read back after the deploy, PLANA_KEY_NEW holds the key pa_live_OTHER000 instead of the new key pa_live_NEW00000")
	})
	t.Run("deploy dropped", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\n", put(nil, NewKeySlot))
		_, err := s.Deploy(ctx, k)
		check(t, err, "PLANA_KEY_NEW is empty instead of holding the new key pa_live_NEW00000")
	})
	t.Run("finalize", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\nPLANA_KEY_NEW="+newK+"\n", put(map[string]string{NewKeySlot: other}))
		_, err := s.Finalize(ctx, k)
		check(t, err, "read back after the finalize, PLANA_KEY_NEW still holds the key pa_live_OTHER000")
	})
	t.Run("finalize overwritten", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\nPLANA_KEY_NEW="+newK+"\n", put(map[string]string{KeySlot: "garbage"}))
		_, err := s.Finalize(ctx, k)
		check(t, err, "PLANA_KEY holds a value that is not a BOS key instead of the new key")
	})
	t.Run("abort", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\nPLANA_KEY_NEW="+newK+"\n", put(map[string]string{NewKeySlot: newK}))
		_, err := s.Abort(ctx, k)
		check(t, err, "read back after the abort, PLANA_KEY_NEW still holds the new key pa_live_NEW00000")
	})
	t.Run("nothing interferes", func(t *testing.T) {
		s := setup(t, "PLANA_KEY="+oldK+"\n", func(envFile) func(context.Context) error {
			return func(context.Context) error { return nil }
		})
		for _, step := range []func(context.Context, Keys) (string, error){s.Deploy, s.Finalize} {
			if _, err := step(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if held, err := s.Holds(ctx, k.New.Prefix); err != nil || !held {
			t.Fatalf("Holds the new key: %v %v", held, err)
		}
		if held, err := s.Holds(ctx, k.Old.Prefix); err != nil || held {
			t.Fatalf("Holds the old key after finalize: %v %v", held, err)
		}
	})
}
