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
//
// What plana reads, checks and rewrites is one file: it is opened without
// following a symlink, its owner, group and mode are taken from the open
// descriptor, and the rewrite is refused when the path names another file
// by the time of the rename. A file in a directory that any user can write
// (without the sticky bit), here or above, is refused: anyone could swap it
// for a world-readable file of their own between two runs.
type envFile struct {
	path string
	warn func(string)
}

// envFileTarget is the target of env-file:PATH.
func envFileTarget(sp Spec, c Config) Slots {
	return Slots{Spec: sp, Store: envFile{path: sp.Arg, warn: c.Warn}, Where: sp.Arg, Warn: c.Warn}
}

// beforeWrite, set by tests, runs between the read of the file a write
// starts from and its rename.
var beforeWrite func(path string)

// open opens the file for a read or a rewrite, refusing what an atomic
// rewrite would silently break or what others could have swapped: a
// symlink (the rename would replace the link, not its target), a file in a
// directory anyone can write, a file we may not write.
func (f envFile) open() (*atomicfile.File, error) {
	af, err := atomicfile.Open(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("env file %s does not exist: create it (touch %s) or fix the path given to --to", f.path, f.path)
	case errors.Is(err, atomicfile.ErrSymlink):
		real, err := filepath.EvalSymlinks(f.path)
		if err != nil {
			real, _ = os.Readlink(f.path)
		}
		return nil, fmt.Errorf("env file %s is a symlink (to %s): plana replaces files atomically and would replace the link itself; pass the real file: --to env-file:%s", f.path, real, real)
	case errors.Is(err, atomicfile.ErrNotRegular):
		return nil, fmt.Errorf("env file %s is not a regular file", f.path)
	case err != nil:
		return nil, fmt.Errorf("env file %s cannot be read (%v): fix its permissions or run as its owner", f.path, errors.Unwrap(err))
	}
	if err := f.checkDir(); err != nil {
		af.Close()
		return nil, err
	}
	w, err := os.OpenFile(f.path, os.O_WRONLY, 0)
	if err != nil {
		af.Close()
		return nil, fmt.Errorf("env file %s is not writable (%v): fix its permissions or run as its owner", f.path, errors.Unwrap(err))
	}
	w.Close()
	return af, nil
}

// checkDir refuses a file that any user could swap: one whose directory, or
// a directory above it, every user may write and has no sticky bit.
func (f envFile) checkDir() error {
	dir, mode, err := atomicfile.ExposedDir(f.path)
	if err != nil {
		return fmt.Errorf("env file %s: checking who can write its directories: %w", f.path, err)
	}
	if dir == "" {
		return nil
	}
	return fmt.Errorf("env file %s is in %s (%v), which every user may write and which has no sticky bit: anyone could put a file of their own in its place between two runs, and plana would write the new key into it. "+
		"Move the file to a directory only its owner can write, or fix the directory (chmod o-w %s, or chmod +t %s); nothing was created",
		f.path, dir, mode, dir, dir)
}

// Check refuses, before anything is created, a file a rewrite would fail
// on: one whose owner, group or mode the new version could not keep. It
// warns of a file every user may read.
func (f envFile) Check(context.Context) error {
	af, err := f.open()
	if err != nil {
		return err
	}
	defer af.Close()
	if err := af.CheckReplace(); err != nil {
		return fmt.Errorf("env file %s: plana keeps its owner, group and mode so that the automation can still read it, but %w", f.path, err)
	}
	if m := af.Mode(); m&0o004 != 0 && f.warn != nil {
		f.warn(fmt.Sprintf("env file %s is readable by every user (mode %04o): anyone on this machine can read the keys in it. plana keeps the mode as found; if the automation reads it as its owner or group, restrict it: chmod o-r %s", f.path, m, f.path))
	}
	return nil
}

// Get reads the file's assignments of names.
func (f envFile) Get(_ context.Context, names ...string) (map[string]string, error) {
	af, err := f.open()
	if err != nil {
		return nil, err
	}
	defer af.Close()
	data, err := af.Read()
	if err != nil {
		return nil, fmt.Errorf("reading env file %s: %w", f.path, err)
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
// kept byte for byte; a new PLANA_KEY_NEW goes right after PLANA_KEY. The
// file read is the file replaced, or nothing is written.
func (f envFile) Put(_ context.Context, set map[string]string, unset ...string) error {
	af, err := f.open()
	if err != nil {
		return err
	}
	defer af.Close()
	data, err := af.Read()
	if err != nil {
		return fmt.Errorf("reading env file %s: %w", f.path, err)
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
	if beforeWrite != nil {
		beforeWrite(f.path)
	}
	err = af.Replace(data)
	switch {
	case errors.Is(err, atomicfile.ErrReplaced):
		return fmt.Errorf("env file %s was replaced by another file while plana was writing it: nothing was written. Someone else can change %s: check what the file holds now and who can write there, then run the same command again", f.path, filepath.Dir(f.path))
	case err != nil:
		return fmt.Errorf("writing env file %s: plana keeps its owner, group and mode so that the automation can still read it, but %w", f.path, err)
	}
	return nil
}
