package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/plana-cli/plana/internal/atomicfile"
)

// envLines splits content into lines that keep their own terminator ("\n",
// "\r\n" or none for a last line without one), so joining them again gives
// back the input byte for byte.
func envLines(content []byte) [][]byte {
	var lines [][]byte
	for len(content) > 0 {
		i := bytes.IndexByte(content, '\n')
		if i < 0 {
			lines = append(lines, content)
			break
		}
		lines = append(lines, content[:i+1])
		content = content[i+1:]
	}
	return lines
}

// assignment reports whether line assigns name ("NAME=…", "export NAME=…",
// leading blanks allowed) and where its value starts and ends.
func assignment(line []byte, name string) (valStart, valEnd int, ok bool) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if bytes.HasPrefix(line[i:], []byte("export ")) {
		i += len("export ")
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
	}
	if !bytes.HasPrefix(line[i:], []byte(name)) {
		return 0, 0, false
	}
	i += len(name)
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i >= len(line) || line[i] != '=' {
		return 0, 0, false
	}
	end := len(line)
	if end > 0 && line[end-1] == '\n' {
		end--
		if end > i && line[end-1] == '\r' {
			end--
		}
	}
	return i + 1, end, true
}

func terminator(line []byte) []byte {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return []byte("\r\n")
	case bytes.HasSuffix(line, []byte("\n")):
		return []byte("\n")
	}
	return nil
}

// LookupEnv returns the value assigned to name in an env file's content
// (the last assignment wins, as in shells and dotenv loaders), without
// surrounding quotes.
func LookupEnv(content []byte, name string) (string, bool) {
	var val string
	found := false
	for _, l := range envLines(content) {
		if s, e, ok := assignment(l, name); ok {
			v := bytes.TrimSpace(l[s:e])
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				v = v[1 : len(v)-1]
			}
			val, found = string(v), true
		}
	}
	return val, found
}

// SetEnv returns content with name assigned value. The first assignment of
// name is rewritten in place (keeping its indentation, "export " and line
// ending) and later duplicates are dropped; with none, a line is added after
// the line assigning after (when given and present) or at the end, using the
// file's own line ending. Every other line is kept byte for byte. value must
// not contain a line break.
func SetEnv(content []byte, name, value, after string) []byte {
	lines := envLines(content)
	var out [][]byte
	done := false
	for _, l := range lines {
		s, e, ok := assignment(l, name)
		if !ok {
			out = append(out, l)
			continue
		}
		if done {
			continue
		}
		nl := append(append(append([]byte{}, l[:s]...), value...), l[e:]...)
		out = append(out, nl)
		done = true
	}
	if !done {
		out = insertLine(out, []byte(name+"="+value), after)
	}
	return bytes.Join(out, nil)
}

// insertLine adds line after the assignment of after, or at the end.
func insertLine(lines [][]byte, line []byte, after string) [][]byte {
	eol := []byte("\n")
	if len(lines) > 0 {
		if t := terminator(lines[0]); t != nil {
			eol = t
		}
	}
	at := len(lines)
	if after != "" {
		for i, l := range lines {
			if _, _, ok := assignment(l, after); ok {
				at = i + 1
			}
		}
	}
	if at == len(lines) {
		// The file may end without a newline: keep it that way, the new line
		// becomes the unterminated one.
		if at > 0 && terminator(lines[at-1]) == nil {
			lines[at-1] = terminate(lines[at-1], eol)
			return append(lines, line)
		}
		return append(lines, append(line, eol...))
	}
	if terminator(lines[at-1]) == nil {
		lines[at-1] = terminate(lines[at-1], eol)
	}
	out := append([][]byte{}, lines[:at]...)
	out = append(out, append(line, eol...))
	return append(out, lines[at:]...)
}

// terminate ends an unterminated line. A line already ending in "\r" gets a
// full "\r\n", so UnsetEnv, which strips a whole terminator, restores it.
func terminate(line, eol []byte) []byte {
	if bytes.HasSuffix(line, []byte("\r")) {
		eol = []byte("\r\n")
	}
	return append(append([]byte{}, line...), eol...)
}

// UnsetEnv returns content without any assignment of name; every other line
// is kept byte for byte (a file that ended without a newline still does).
func UnsetEnv(content []byte, name string) []byte {
	lines := envLines(content)
	var out [][]byte
	for i, l := range lines {
		if _, _, ok := assignment(l, name); !ok {
			out = append(out, l)
			continue
		}
		if i == len(lines)-1 && terminator(l) == nil && len(out) > 0 {
			// The removed line was the unterminated last one: its
			// predecessor becomes last, without the newline it got when
			// the removed line was appended.
			last := out[len(out)-1]
			out[len(out)-1] = last[:len(last)-len(terminator(last))]
		}
	}
	return bytes.Join(out, nil)
}

// envFile is an env file as a Store: PLANA_KEY_NEW is added next to
// PLANA_KEY (step 2), then finalize leaves the new key alone under
// PLANA_KEY (step 4). Writes are atomic and keep the file's owner, group
// and mode: a service that reads it through its group still can.
type envFile struct{ path string }

// envFileTarget is the target of env-file:PATH.
func envFileTarget(sp Spec) Slots {
	return Slots{Spec: sp, Store: envFile{path: sp.Arg}, Where: sp.Arg}
}

// read returns the file's content, refusing what an atomic rewrite would
// silently break: a symlink (the rename would replace the link, not its
// target), a file we may not write, or one whose owner, group or mode the
// rewrite could not keep.
func (f envFile) read() ([]byte, error) {
	fi, err := os.Lstat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("env file %s does not exist: create it (touch %s) or fix the path given to --to", f.path, f.path)
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(f.path)
		if err != nil {
			real, _ = os.Readlink(f.path)
		}
		return nil, fmt.Errorf("env file %s is a symlink (to %s): plana replaces files atomically and would replace the link itself; pass the real file: --to env-file:%s", f.path, real, real)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("env file %s is not a regular file", f.path)
	}
	w, err := os.OpenFile(f.path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("env file %s is not writable (%v): fix its permissions or run as its owner", f.path, errors.Unwrap(err))
	}
	w.Close()
	if err := atomicfile.CheckReplace(f.path); err != nil {
		return nil, fmt.Errorf("env file %s: plana keeps its owner, group and mode so that the automation can still read it, but %w", f.path, err)
	}
	return os.ReadFile(f.path)
}

// Get reads the file's assignments of names.
func (f envFile) Get(_ context.Context, names ...string) (map[string]string, error) {
	data, err := f.read()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		if v, ok := LookupEnv(data, n); ok {
			out[n] = v
		}
	}
	return out, nil
}

// Put rewrites the file with set assigned and unset gone, every other line
// kept byte for byte; a new PLANA_KEY_NEW goes right after PLANA_KEY.
func (f envFile) Put(_ context.Context, set map[string]string, unset ...string) error {
	data, err := f.read()
	if err != nil {
		return err
	}
	for _, n := range slices.Sorted(maps.Keys(set)) {
		after := ""
		if n == NewKeySlot {
			after = KeySlot
		}
		data = SetEnv(data, n, set[n], after)
	}
	for _, n := range unset {
		data = UnsetEnv(data, n)
	}
	if err := atomicfile.Replace(f.path, data, 0o600); err != nil {
		return fmt.Errorf("writing env file %s: %w", f.path, err)
	}
	return nil
}
