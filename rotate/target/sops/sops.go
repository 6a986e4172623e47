// Package sops keeps the keys of a rotation in a SOPS-encrypted dotenv,
// YAML or JSON file, as top-level PLANA_KEY and PLANA_KEY_NEW, for teams
// that keep their secrets in git.
//
// It runs the sops binary, so the file stays encrypted with its own
// metadata (age, PGP, KMS, Vault, its own rules) and the user's own
// credentials for them. Nothing decrypted is ever written to disk: values
// go to `sops set --value-stdin`, and plaintext comes back only through
// sops's stdout into memory. sops rewrites a file in place, which a crash
// could cut short, so plana has sops edit an encrypted copy beside the file
// and renames the copy over it once every change is made, keeping the
// file's owner, group and mode.
package sops

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plana-cli/plana/internal/atomicfile"
	"github.com/plana-cli/plana/internal/secret"
)

// File is one SOPS-encrypted file.
type File struct {
	path   string // absolute
	format string // sops's name for it: dotenv, yaml or json
	tool   secret.Tool
}

// New checks path (the part after "sops:"): its extension names its
// format. It finds sops on PATH.
func New(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("sops: needs the file's path, as in sops:secrets/stock-sync.env")
	}
	format, err := Format(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	tool, err := secret.FindTool("sops", "install sops 3.9 or newer (it has `sops set --value-stdin`)")
	if err != nil {
		return nil, err
	}
	// sops finds .sops.yaml (and its stores' settings) from its working
	// directory up: from the file's directory, it finds the file's own,
	// wherever plana runs.
	tool.Dir = filepath.Dir(abs)
	return &File{path: abs, format: format, tool: tool}, nil
}

// Format is sops's name for the format of the file at path, from its
// extension: dotenv, yaml or json.
func Format(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".env":
		return "dotenv", nil
	case ".yaml", ".yml":
		return "yaml", nil
	case ".json":
		return "json", nil
	}
	return "", fmt.Errorf("sops:%s: plana reads the format from the extension, which must be .env, .yaml, .yml or .json", path)
}

func (f *File) String() string { return "sops:" + f.path }

// check refuses a path that is missing or not a regular file.
func (f *File) check() error {
	fi, err := os.Lstat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist: create it encrypted first (`sops encrypt --output %s FILE`, with a .sops.yaml rule or --age), then run again", f, f.path)
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: name the file it points to", f)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", f)
	}
	return nil
}

func (f *File) types() []string {
	return []string{"--input-type", f.format, "--output-type", f.format}
}

// hint says what to do about a sops failure.
func (f *File) hint(err error) error {
	return fmt.Errorf("%w: check that `sops decrypt %s` works on this machine (the key it is encrypted for, e.g. SOPS_AGE_KEY_FILE)", err, f.path)
}

// Get decrypts the file into memory and returns the named top-level
// values; an absent name is absent from the map.
func (f *File) Get(ctx context.Context, names ...string) (map[string]string, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	out, err := f.tool.Run(ctx, nil, "decrypt", "--input-type", f.format, "--output-type", "json", f.path)
	if err != nil {
		return nil, f.hint(fmt.Errorf("reading %s: %w", f, err))
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("%s does not decrypt to a mapping of names to values", f)
	}
	got := map[string]string{}
	for _, n := range names {
		v, ok := doc[n]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s holds %s, but not as a string", f, n)
		}
		got[n] = s
	}
	return got, nil
}

// Put sets and unsets top-level values, all in one replacement of the
// file.
func (f *File) Put(ctx context.Context, set map[string]string, unset ...string) error {
	if err := f.check(); err != nil {
		return err
	}
	orig, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	if err := atomicfile.CheckReplace(f.path); err != nil {
		return err
	}
	// The copy is named after the file, so sops finds the same .sops.yaml
	// beside it, and hidden, as editors do.
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".plana-*")
	if err != nil {
		return fmt.Errorf("plana edits a copy beside %s and cannot create one: %w", f, err)
	}
	copyPath := tmp.Name()
	defer os.Remove(copyPath)
	_, err = tmp.Write(orig)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	names := slices.Sorted(maps.Keys(set))
	if err := f.probe(ctx, copyPath, names); err != nil {
		return err
	}
	for _, n := range names {
		if err := f.set(ctx, copyPath, n, set[n]); err != nil {
			return err
		}
	}
	for _, n := range unset {
		if _, err := f.tool.Run(ctx, nil, append(append([]string{"unset"}, f.types()...), "--idempotent", copyPath, treePath(n))...); err != nil {
			return f.hint(fmt.Errorf("removing %s from %s: %w", n, f, err))
		}
	}
	updated, err := os.ReadFile(copyPath)
	if err != nil {
		return err
	}
	for _, n := range names {
		if bytes.Contains(updated, []byte(set[n])) {
			return fmt.Errorf("%s would hold %s unencrypted; nothing was written", f, n)
		}
	}
	now, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	if !bytes.Equal(now, orig) {
		return fmt.Errorf("%s changed while plana was updating it; nothing was written: run again", f)
	}
	return atomicfile.Replace(f.path, updated, 0o600)
}

// probe sets each name to a random non-secret value in the copy first and
// looks for it in the clear: a file whose rules (encrypted_regex,
// unencrypted_suffix and the like) leave that name unencrypted is refused
// before a key is ever written into it.
func (f *File) probe(ctx context.Context, copyPath string, names []string) error {
	for _, n := range names {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		marker := "plana-probe-" + hex.EncodeToString(b)
		if err := f.set(ctx, copyPath, n, marker); err != nil {
			return err
		}
		data, err := os.ReadFile(copyPath)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(marker)) {
			return fmt.Errorf("%s's sops rules (encrypted_regex, unencrypted_suffix or the like in its metadata) leave %s unencrypted: plana refuses to write a key there; encrypt the file again with rules that cover %s, or use another file", f, n, n)
		}
	}
	return nil
}

// set has sops set the top-level name to value in the copy, the value
// going to sops on stdin only.
func (f *File) set(ctx context.Context, copyPath, name, value string) error {
	val, err := json.Marshal(value)
	if err != nil {
		return err
	}
	if _, err := f.tool.Run(ctx, val, append(append([]string{"set"}, f.types()...), "--value-stdin", copyPath, treePath(name))...); err != nil {
		return f.hint(fmt.Errorf("writing %s into %s: %w", name, f, err))
	}
	return nil
}

// treePath is sops's index of a top-level name.
func treePath(name string) string {
	q, _ := json.Marshal(name)
	return "[" + string(q) + "]"
}
