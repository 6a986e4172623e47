package cmdutil_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/secret"
)

var originTestToken = client.FormatKey("live", "ORIGIN00", strings.Repeat("s", client.SecretLen))

// loadConfig loads the config with PLANA_API_URL set to envURL (unset when
// ""), and a config file whose api_url is fileURL (no file when "").
func loadConfig(t *testing.T, envURL, fileURL string) *config.Config {
	t.Helper()
	t.Setenv("PLANA_API_URL", envURL)
	t.Setenv("PLANA_PROFILE", "")
	p := filepath.Join(t.TempDir(), "config.yaml")
	if fileURL != "" {
		if err := os.WriteFile(p, []byte("profiles:\n  default:\n    api_url: "+fileURL+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(config.Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func keyringToken() cmdutil.Token {
	return cmdutil.NewToken(originTestToken, cmdutil.TokenFromKeyring, "default")
}

func TestTokenBoundToItsOrigin(t *testing.T) {
	store := secret.NewMemory()
	if err := cmdutil.SaveToken(store, "default", originTestToken, "https://bos.example.com/"); err != nil {
		t.Fatal(err)
	}
	var notes bytes.Buffer
	for _, same := range []string{"https://bos.example.com", "https://BOS.example.com:443"} {
		if err := cmdutil.CheckTokenOrigin(keyringToken(), loadConfig(t, same, ""), store, &notes); err != nil {
			t.Errorf("%s: %v", same, err)
		}
	}
	for _, other := range []string{"https://evil.example", "https://bos.example.com:8443", "http://127.0.0.1:8787"} {
		err := cmdutil.CheckTokenOrigin(keyringToken(), loadConfig(t, other, ""), store, &notes)
		var ae *cmdutil.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: err = %v, want an AuthError", other, err)
		}
		for _, w := range []string{"was saved for https://bos.example.com:443", "run `plana auth login` for " + config.Origin(other), "env PLANA_API_URL"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", other, err, w)
			}
		}
		if strings.Contains(err.Error(), originTestToken) {
			t.Error("the error carries the token")
		}
	}
	// PLANA_TOKEN comes with the URL it is meant for: not bound.
	env := cmdutil.NewToken(originTestToken, cmdutil.TokenFromEnv, "default")
	if err := cmdutil.CheckTokenOrigin(env, loadConfig(t, "https://evil.example", ""), store, &notes); err != nil {
		t.Errorf("PLANA_TOKEN: %v", err)
	}
	if notes.Len() != 0 {
		t.Errorf("notes for a bound token: %q", notes.String())
	}
}

// A token stored before origins were recorded is bound on first use, to an
// api_url from the config file or the default only, and says so once.
func TestLegacyTokenIsBoundOnFirstUse(t *testing.T) {
	store := secret.NewMemory()
	if err := store.Set(secret.TokenName("default"), originTestToken); err != nil {
		t.Fatal(err)
	}

	// From the environment (a direnv file can set it): refused, nothing bound.
	err := cmdutil.CheckTokenOrigin(keyringToken(), loadConfig(t, "https://evil.example", ""), store, &bytes.Buffer{})
	var ae *cmdutil.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "no API origin recorded") || !strings.Contains(err.Error(), "plana auth login") {
		t.Fatalf("legacy token with an env URL: err = %v", err)
	}
	if len(store.Names()) != 1 {
		t.Fatalf("entries %v: a refused binding was recorded", store.Names())
	}

	// From the file: bound, with a note.
	var notes bytes.Buffer
	cfg := loadConfig(t, "", "https://bos.example.com")
	if err := cmdutil.CheckTokenOrigin(keyringToken(), cfg, store, &notes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes.String(), "now bound to https://bos.example.com:443") {
		t.Errorf("note = %q", notes.String())
	}
	notes.Reset()
	if err := cmdutil.CheckTokenOrigin(keyringToken(), cfg, store, &notes); err != nil || notes.Len() != 0 {
		t.Errorf("second use: err %v, note %q; want neither", err, notes.String())
	}
	if err := cmdutil.CheckTokenOrigin(keyringToken(), loadConfig(t, "https://evil.example", ""), store, &notes); !errors.As(err, &ae) {
		t.Errorf("after binding, another origin: err = %v, want an AuthError", err)
	}
}

func TestDamagedOriginRecordIsRefused(t *testing.T) {
	store := secret.NewMemory()
	if err := cmdutil.SaveToken(store, "default", originTestToken, "https://bos.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, name := range store.Names() {
		if name != secret.TokenName("default") {
			_ = store.Set(name, "{not json")
		}
	}
	err := cmdutil.CheckTokenOrigin(keyringToken(), loadConfig(t, "", "https://bos.example.com"), store, &bytes.Buffer{})
	var ae *cmdutil.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("err = %v, want an AuthError saying the record is damaged", err)
	}
}

// failSecond fails its second Set: the binding, written after the token.
type failSecond struct {
	*secret.Memory
	sets int
}

func (f *failSecond) Set(name, value string) error {
	f.sets++
	if f.sets == 2 {
		return secret.ErrUnavailable
	}
	return f.Memory.Set(name, value)
}

func TestSaveTokenLeavesNoUnboundToken(t *testing.T) {
	mem := secret.NewMemory()
	if err := cmdutil.SaveToken(mem, "default", originTestToken, "https://old.example.com"); err != nil {
		t.Fatal(err)
	}
	store := &failSecond{Memory: mem}
	if err := cmdutil.SaveToken(store, "default", originTestToken, "https://new.example.com"); !errors.Is(err, secret.ErrUnavailable) {
		t.Fatalf("err = %v, want the failed Set's", err)
	}
	if names := mem.Names(); len(names) != 0 {
		t.Errorf("entries left: %v; want none (no token without its binding, no stale binding)", names)
	}

	if err := cmdutil.SaveToken(mem, "default", originTestToken, "https://bos.example.com"); err != nil {
		t.Fatal(err)
	}
	tok, err := cmdutil.ForgetToken(mem, "default")
	if err != nil || tok != originTestToken {
		t.Fatalf("ForgetToken: %v", err)
	}
	if names := mem.Names(); len(names) != 0 {
		t.Errorf("entries left after ForgetToken: %v", names)
	}
}
