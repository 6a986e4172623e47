package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Sops is a directory set up as a team keeps secrets in git with sops and
// age: an age identity (SOPS_AGE_KEY_FILE, set for the test) and a
// .sops.yaml whose creation rule encrypts to it. The pinned sops build is
// first on PATH for the test.
type Sops struct {
	Dir       string // holds .sops.yaml; files to encrypt go here
	KeyFile   string // the age identity
	Recipient string // its public key
	bin       string
}

// SopsAge prepares Sops for the test.
func SopsAge(t testing.TB) *Sops {
	t.Helper()
	bin := built(t, "sops", "sops", "SOPS_VERSION", "sops")
	keygen := onPath(t, "sops", "age-keygen")
	dir := t.TempDir()
	s := &Sops{Dir: filepath.Join(dir, "repo"), KeyFile: filepath.Join(dir, "age.key"), bin: bin}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := run(context.Background(), baseEnv(), "", keygen, "-o", s.KeyFile); err != nil {
		t.Fatal(err)
	}
	pub, err := run(context.Background(), baseEnv(), "", keygen, "-y", s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s.Recipient = strings.TrimSpace(pub)
	writeFile(t, filepath.Join(s.Dir, ".sops.yaml"), fmt.Sprintf("creation_rules:\n  - age: %s\n", s.Recipient))
	t.Setenv("SOPS_AGE_KEY_FILE", s.KeyFile)
	t.Setenv("SOPS_AGE_KEY", "")
	PrependPath(t, filepath.Dir(bin))
	return s
}

// Encrypt writes name (in Dir) encrypted from plaintext, the way a user
// creates the file: `sops encrypt` with the .sops.yaml rule. The plaintext
// goes through stdin, never to disk.
func (s *Sops) Encrypt(t testing.TB, name, plaintext string) string {
	t.Helper()
	p := filepath.Join(s.Dir, name)
	// sops looks for .sops.yaml from its working directory up, as when a
	// user runs it in the repository.
	out, err := runIn(context.Background(), s.Dir, s.env(), plaintext, s.bin, "encrypt", "--filename-override", p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, out)
	return p
}

// Decrypt is the file's plaintext as sops gives it, for assertions.
func (s *Sops) Decrypt(t testing.TB, path string) string {
	t.Helper()
	out, err := run(context.Background(), s.env(), "", s.bin, "decrypt", path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *Sops) env() []string { return baseEnv("SOPS_AGE_KEY_FILE=" + s.KeyFile) }

// Pass is a password store for the test: a throwaway gpg key without a
// passphrase in a GNUPGHOME of its own, and a store initialised for it.
// GNUPGHOME and PASSWORD_STORE_DIR are set for the test; the gpg-agent the
// store starts is stopped when the test ends.
type Pass struct {
	GnupgHome string
	StoreDir  string
	bin       string
}

// PassStore prepares Pass for the test.
func PassStore(t testing.TB) *Pass {
	t.Helper()
	bin := onPath(t, "pass", "pass")
	gpg := onPath(t, "pass", "gpg")
	gpgconf := onPath(t, "pass", "gpgconf")
	p := &Pass{GnupgHome: ShortTempDir(t, "gpg"), bin: bin}
	p.StoreDir = filepath.Join(t.TempDir(), "password-store")
	if err := os.Chmod(p.GnupgHome, 0o700); err != nil {
		t.Fatal(err)
	}
	env := p.env()
	t.Cleanup(func() {
		// gpg-agent outlives gpg by design; this one must not outlive the test.
		// Its own GNUPGHOME, given explicitly: t.Setenv's are undone by now.
		kill := exec.Command(gpgconf, "--kill", "all")
		kill.Env = env
		_ = kill.Run()
	})
	t.Setenv("GNUPGHOME", p.GnupgHome)
	t.Setenv("PASSWORD_STORE_DIR", p.StoreDir)
	ctx := context.Background()
	if _, err := run(ctx, env, "", gpg, "--batch", "--passphrase", "", "--quick-generate-key",
		"plana test <plana-test@example.invalid>", "default", "default", "never"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, env, "", bin, "init", "plana-test@example.invalid"); err != nil {
		t.Fatal(err)
	}
	return p
}

// Show is an entry's whole plaintext, for assertions.
func (p *Pass) Show(t testing.TB, name string) string {
	t.Helper()
	out, err := run(context.Background(), p.env(), "", p.bin, "show", name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Insert writes an entry as a user would, from stdin.
func (p *Pass) Insert(t testing.TB, name, content string) {
	t.Helper()
	if _, err := run(context.Background(), p.env(), content, p.bin, "insert", "-m", "-f", name); err != nil {
		t.Fatal(err)
	}
}

func (p *Pass) env() []string {
	return baseEnv("GNUPGHOME="+p.GnupgHome, "PASSWORD_STORE_DIR="+p.StoreDir)
}
