package sops_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/internal/storetest"
	"github.com/plana-cli/plana/rotate/target/sops"
)

// TestSopsSlots walks both slots through a rotation in a file of each
// format, with the real sops and age: the file stays encrypted with its
// own metadata, other values are kept, and no key is ever on disk in the
// clear, in a child's argv or in its environment.
func TestSopsSlots(t *testing.T) {
	st := storetest.SopsAge(t)
	t.Setenv("PLANA_TOKEN", storetest.NewKey(t))
	for _, tc := range []struct{ name, plain, other string }{
		{"stock.env", "DB_PASSWORD=hunter2hunter2\nPLANA_KEY=%s\n", "DB_PASSWORD=hunter2hunter2"},
		{"stock.yaml", "db:\n    password: hunter2hunter2\nPLANA_KEY: %s\n", "password: hunter2hunter2"},
		{"stock.json", "{\"db\": {\"password\": \"hunter2hunter2\"}, \"PLANA_KEY\": \"%s\"}\n", `"password": "hunter2hunter2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			oldKey, newKey := storetest.NewKey(t), storetest.NewKey(t)
			path := st.Encrypt(t, tc.name, strings.Replace(tc.plain, "%s", oldKey, 1))
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			spy := storetest.Spy(t, "sops")
			f, err := sops.New(path)
			if err != nil {
				t.Fatal(err)
			}
			onDisk := func() {
				t.Helper()
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(raw), oldKey[8:]) || strings.Contains(string(raw), newKey[8:]) {
					t.Error("a key is in the file in the clear")
				}
				if !strings.Contains(string(raw), st.Recipient) {
					t.Error("the file lost its age recipient")
				}
				entries, _ := os.ReadDir(filepath.Dir(path))
				for _, e := range entries {
					if strings.Contains(e.Name(), ".plana-") {
						t.Errorf("left %s behind", e.Name())
					}
				}
			}
			storetest.Rotation(t, f, "sops:"+path, oldKey, newKey, onDisk)
			onDisk()
			if plain := st.Decrypt(t, path); !strings.Contains(plain, tc.other) {
				t.Errorf("the other values changed: %q is gone", tc.other)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode is %v, want 0640 kept", fi.Mode().Perm())
			}
			// abort on a file without the new key: no error, no change.
			if err := f.Put(ctx, nil, "PLANA_KEY_NEW"); err != nil {
				t.Fatal(err)
			}
			storetest.WantSlots(t, f, map[string]string{"PLANA_KEY": newKey})
			storetest.AssertSpiedClean(t, spy)
		})
	}
}

// TestSopsRefusesUnencryptedName: a file whose rules would leave PLANA_KEY
// in the clear is refused before any key is written, and left as it was.
func TestSopsRefusesUnencryptedName(t *testing.T) {
	st := storetest.SopsAge(t)
	ctx := context.Background()
	path := st.Encrypt(t, "partial.yaml", "password: hunter2hunter2\n")
	// Re-encrypt with a rule that encrypts only "password".
	plain := st.Decrypt(t, path)
	os.Remove(path)
	if err := os.WriteFile(filepath.Join(st.Dir, ".sops.yaml"), []byte("creation_rules:\n  - age: "+st.Recipient+"\n    encrypted_regex: ^password$\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path = st.Encrypt(t, "partial.yaml", plain)
	before, _ := os.ReadFile(path)
	f, err := sops.New(path)
	if err != nil {
		t.Fatal(err)
	}
	key := storetest.NewKey(t)
	err = f.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil || !strings.Contains(err.Error(), "refuses to write a key there") {
		t.Fatalf("writing a name the rules leave in the clear: %v", err)
	}
	storetest.AssertNoKeys(t, "the error", err.Error())
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Error("the refused write changed the file")
	}
}

func TestSopsErrors(t *testing.T) {
	st := storetest.SopsAge(t)
	ctx := context.Background()
	missing, err := sops.New(filepath.Join(st.Dir, "missing.env"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Get(ctx, "PLANA_KEY"); err == nil || !strings.Contains(err.Error(), "sops encrypt") {
		t.Errorf("a missing file: %v", err)
	}
	if err := missing.Put(ctx, map[string]string{"PLANA_KEY": "x"}); err == nil {
		t.Error("wrote a missing file")
	}
	if _, err := sops.New(filepath.Join(st.Dir, "stock.ini")); err == nil || !strings.Contains(err.Error(), ".env, .yaml") {
		t.Errorf("an unknown extension: %v", err)
	}

	// A plaintext file is not a sops file: refused, and left alone.
	plain := filepath.Join(st.Dir, "plain.env")
	if err := os.WriteFile(plain, []byte("PLANA_KEY=old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := sops.New(plain)
	key := storetest.NewKey(t)
	err = f.Put(ctx, map[string]string{"PLANA_KEY_NEW": key})
	if err == nil {
		t.Fatal("wrote into a file sops did not encrypt")
	}
	storetest.AssertNoKeys(t, "the error", err.Error())
	if data, _ := os.ReadFile(plain); string(data) != "PLANA_KEY=old\n" {
		t.Error("the plaintext file changed")
	}

	// Without the age identity: the error says what to check.
	path := st.Encrypt(t, "lost.env", "PLANA_KEY=old\n")
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join(st.Dir, "nowhere"))
	f, _ = sops.New(path)
	if _, err := f.Get(ctx, "PLANA_KEY"); err == nil || !strings.Contains(err.Error(), "SOPS_AGE_KEY_FILE") {
		t.Errorf("without the key: %v", err)
	}

	// A symbolic link is refused, not followed.
	link := filepath.Join(st.Dir, "link.env")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	f, _ = sops.New(link)
	if _, err := f.Get(ctx, "PLANA_KEY"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symbolic link: %v", err)
	}
}
