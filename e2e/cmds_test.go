package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/subosito/gotenv"
)

// scriptCommands are custom testscript commands by name.
type scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string)

// commands are every script's custom commands, put together where the
// scripts are run (TestScripts, TestFlakyServer) rather than in init().
func commands() scriptCommands {
	all := scriptCommands{}
	for _, group := range []scriptCommands{coreCommands, reliabilityCommands, unitCommands} {
		maps.Copy(all, group)
	}
	return all
}

// coreCommands run the processes and keep secrets out of every script.
var coreCommands = scriptCommands{
	"emulator":   cmdEmulator,
	"automation": cmdAutomation,
	"login":      cmdLogin,
	"exitcode":   cmdExitcode,
	"savesecret": cmdSaveSecret,
	"envfile":    cmdEnvFile,
	"prefixof":   cmdPrefixOf,
	"tokenenv":   cmdTokenEnv,
	"setfrom":    cmdSetFrom,
	"waitfor":    cmdWaitFor,
	"nosecrets":  cmdNoSecrets,
	"createkey":  cmdCreateKey,
}

// tokenPath is $WORK/token, the admin's management key, or with a first
// argument -member $WORK/member.token, the member's; it returns the other
// arguments.
func tokenPath(ts *testscript.TestScript, args []string) (string, []string) {
	if len(args) > 0 && args[0] == "-member" {
		return filepath.Join(ts.Getenv("WORK"), memberTokenFile), args[1:]
	}
	return filepath.Join(ts.Getenv("WORK"), "token"), args
}

// cmdLogin runs `plana auth login --with-token` with $WORK/token (-member:
// $WORK/member.token) on stdin: the token is in neither the script nor any
// argv. Extra args are passed on.
func cmdLogin(ts *testscript.TestScript, neg bool, args []string) {
	token, args := tokenPath(ts, args)
	// sh does the redirection so ts.Exec (the script's own environment and
	// captured output) can run it; only the file's path is in argv.
	argv := append([]string{"-c", `f=$1; shift; exec plana auth login --with-token "$@" <"$f"`, "sh", token}, args...)
	err := ts.Exec("sh", argv...)
	if neg && err == nil {
		ts.Fatalf("plana auth login unexpectedly succeeded")
	}
	if !neg && err != nil {
		ts.Fatalf("plana auth login: %v", err)
	}
}

// cmdExitcode: exitcode CODE PROGRAM [ARGS...] runs PROGRAM like exec and
// requires exactly that exit code (plana's codes carry meaning: 3 "gate not
// met yet", 4 "not authenticated").
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdSaveSecret: savesecret KEY FILE runs `plana keys secret KEY` with its
// stdout going straight to FILE (mode 0600), so the plaintext never passes
// through the script's captured output or the test log. nosecrets then
// knows it as a secret.
func cmdSaveSecret(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: savesecret KEY FILE")
	}
	err := ts.Exec("sh", "-c", `umask 077; exec plana keys secret "$1" >"$2"`, "sh", args[0], ts.MkAbs(args[1]))
	if neg && err == nil {
		ts.Fatalf("plana keys secret unexpectedly succeeded")
	}
	if !neg && err != nil {
		ts.Fatalf("plana keys secret: %v", err)
	}
}

var keyRe = regexp.MustCompile(`pa_(live|test)_[0-9A-Za-z]{46}`)

// cmdEnvFile: envfile FILE prints the env file with every key shown as its
// prefix, and after it the names of the *.secret files holding the same
// plaintext, e.g. "PLANA_KEY=pa_live_AB7K2XYZ… =new.secret".
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: envfile FILE")
	}
	knownSecrets(ts)
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	saved := savedSecrets(ts)
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		out := keyRe.ReplaceAllStringFunc(line, func(k string) string {
			s := client.PrefixOf(k) + "…"
			if s == "…" {
				s = "(malformed key)"
			}
			for _, f := range saved[k] {
				s += " =" + f
			}
			return s
		})
		fmt.Fprintln(ts.Stdout(), out)
	}
}

// savedSecrets maps each plaintext in $WORK/*.secret to its file names.
func savedSecrets(ts *testscript.TestScript) map[string][]string {
	files, _ := filepath.Glob(filepath.Join(ts.Getenv("WORK"), "*.secret"))
	out := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		ts.Check(err)
		if k := strings.TrimSpace(string(data)); k != "" {
			out[k] = append(out[k], filepath.Base(f))
		}
	}
	return out
}

// cmdPrefixOf: prefixof VAR FILE NAME sets $VAR to the prefix of the key
// that the env file FILE holds under NAME, so scripts can name keys that the
// emulator minted at random.
func cmdPrefixOf(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: prefixof VAR ENVFILE NAME")
	}
	knownSecrets(ts)
	env, err := gotenv.Read(ts.MkAbs(args[1]))
	ts.Check(err)
	p := client.PrefixOf(env[args[2]])
	if p == "" {
		ts.Fatalf("%s has no well-formed key under %s", args[1], args[2])
	}
	ts.Setenv(args[0], p)
}

// cmdSetFrom: setfrom VAR stdout|stderr|FILE REGEXP sets $VAR to the first
// group of REGEXP's first match, e.g. the new key's prefix from -o json.
func cmdSetFrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: setfrom VAR stdout|stderr|FILE REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	if re.NumSubexp() < 1 {
		ts.Fatalf("setfrom: REGEXP needs a group: the part to keep")
	}
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	if m == nil {
		ts.Fatalf("setfrom: no match for %#q in %s", args[2], args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdTokenEnv: tokenenv [-member | -env ENVFILE] sets PLANA_TOKEN from
// $WORK/token (or the member's, or the PLANA_KEY of an env file createkey
// wrote: another management key), the way a cron job or CI gets its
// management key, without the token in the script.
func cmdTokenEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: tokenenv [-member | -env ENVFILE]")
	}
	if len(args) == 2 && args[0] == "-env" {
		env, err := gotenv.Read(ts.MkAbs(args[1]))
		ts.Check(err)
		if env["PLANA_KEY"] == "" {
			ts.Fatalf("%s holds no PLANA_KEY", args[1])
		}
		ts.Setenv("PLANA_TOKEN", env["PLANA_KEY"])
		return
	}
	path, args := tokenPath(ts, args)
	if len(args) != 0 {
		ts.Fatalf("usage: tokenenv [-member | -env ENVFILE]")
	}
	data, err := os.ReadFile(path)
	ts.Check(err)
	ts.Setenv("PLANA_TOKEN", strings.TrimSpace(string(data)))
}

// cmdCreateKey: createkey [-member] NAME SCOPES DESCRIPTION ENVFILE creates
// a key straight through the API with the admin's management key (-member:
// the member's), as anyone who may create keys can, with any description
// (a forged lineage, say), and writes its plaintext to ENVFILE under
// PLANA_KEY (mode 0600), where an automation can use it and nosecrets knows
// it. SCOPES are comma-separated. It prints "prefix P" and "id ID".
func cmdCreateKey(ts *testscript.TestScript, neg bool, args []string) {
	token, args := tokenPath(ts, args)
	if len(args) != 4 {
		ts.Fatalf("usage: createkey [-member] NAME SCOPES DESCRIPTION ENVFILE")
	}
	st := state(ts)
	if st.emuURL == "" {
		ts.Fatalf("start the emulator first")
	}
	data, err := os.ReadFile(token)
	ts.Check(err)
	c, err := client.New(st.emuURL, client.WithKeys(strings.TrimSpace(string(data))), client.WithUserAgent("e2e-createkey"))
	ts.Check(err)
	ck, err := c.CreateKey(context.Background(), client.CreateKeyRequest{Name: args[0], Scopes: strings.Split(args[1], ","), Description: args[2]}, client.NewIdempotencyKey())
	if neg {
		if err == nil {
			ts.Fatalf("createkey unexpectedly succeeded: %s", ck.APIKey.Prefix)
		}
		fmt.Fprintln(ts.Stderr(), err)
		return
	}
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), []byte("PLANA_KEY="+ck.Plaintext+"\n"), 0o600))
	knownSecrets(ts)
	fmt.Fprintf(ts.Stdout(), "prefix %s\nid %s\n", ck.APIKey.Prefix, ck.APIKey.ID)
}

// cmdWaitFor: waitfor [-timeout D] PATH REGEXP polls until PATH (a file, or
// any file under a directory) matches REGEXP. Default timeout 60s.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 60 * time.Second
	if len(args) == 4 && args[0] == "-timeout" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor [-timeout D] PATH REGEXP")
	}
	root := ts.MkAbs(args[0])
	re, err := regexp.Compile(`(?m)` + args[1])
	ts.Check(err)
	err = waitUntil(timeout, "a match", func() (bool, error) {
		found := false
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || found {
				// A file may vanish mid-walk (atomic renames): look again next time.
				return nil
			}
			data, err := os.ReadFile(p)
			found = err == nil && re.Match(data)
			return nil
		})
		return found, err
	})
	if err != nil {
		ts.Fatalf("waitfor %s %q: %v", args[0], args[1], err)
	}
}

// cmdNoSecrets: nosecrets [PATH...] fails if a plaintext appears where it
// must not. Known plaintexts are $WORK/token, $WORK/member.token, the keys of $WORK/*.env and
// $WORK/*.secret, now or whenever the harness read them before; each must not appear in the PATHs given, in any file under
// XDG_CONFIG_HOME or XDG_STATE_HOME, in the processes' logs ($WORK/*.log),
// in the last command's stdout and stderr, or in the argv of any running
// process. In the files and the output, anything shaped like a key fails
// too, known or not: a key plana minted and leaked is still a leak.
func cmdNoSecrets(ts *testscript.TestScript, neg bool, args []string) {
	work := ts.Getenv("WORK")
	known := knownSecrets(ts)
	if len(known) == 0 {
		ts.Fatalf("nosecrets: no known plaintexts (no $WORK/token): start the emulator first")
	}
	var leaks []string
	check := func(where, text string, shapeToo bool) {
		for _, k := range known {
			if strings.Contains(text, k) {
				leaks = append(leaks, fmt.Sprintf("%s holds the plaintext of %s", where, client.PrefixOf(k)))
			}
		}
		if shapeToo {
			for _, k := range keyRe.FindAllString(text, -1) {
				if !slices.Contains(known, k) {
					leaks = append(leaks, fmt.Sprintf("%s holds a plaintext key %s", where, client.PrefixOf(k)))
				}
			}
		}
	}
	paths := append([]string{ts.Getenv("XDG_CONFIG_HOME"), ts.Getenv("XDG_STATE_HOME")}, args...)
	logs, _ := filepath.Glob(filepath.Join(work, "*.log"))
	paths = append(paths, logs...)
	for _, root := range paths {
		root = ts.MkAbs(root)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil // not created (yet): nothing to leak
			}
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(work, p)
			check(rel, string(data), true)
			return nil
		})
		ts.Check(err)
	}
	check("stdout", ts.ReadFile("stdout"), true)
	check("stderr", ts.ReadFile("stderr"), true)

	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the process ended meanwhile
		}
		argv := strings.ReplaceAll(string(data), "\x00", " ")
		check(fmt.Sprintf("argv of pid %s (%.60s)", filepath.Base(filepath.Dir(f)), client.Redact(argv)), argv, false)
	}
	sort.Strings(leaks)
	switch {
	case len(leaks) > 0 && !neg:
		ts.Fatalf("plaintext leaked:\n%s", strings.Join(leaks, "\n"))
	case len(leaks) == 0 && neg:
		ts.Fatalf("no plaintext found, but one was expected")
	}
	// Leaks are described by prefix only, so printing them is safe.
	fmt.Fprintf(ts.Stdout(), "checked %d plaintexts\n%s", len(known), strings.Join(append(leaks, ""), "\n"))
}

// knownSecrets returns every plaintext the script's files hold now or held
// when looked at before: once finalized, the env file no longer has the old
// key, but it must stay a secret.
func knownSecrets(ts *testscript.TestScript) []string {
	st := state(ts)
	work := ts.Getenv("WORK")
	add := func(text string) { st.known = append(st.known, keyRe.FindAllString(text, -1)...) }
	for _, f := range []string{"token", memberTokenFile} {
		if data, err := os.ReadFile(filepath.Join(work, f)); err == nil {
			add(string(data))
		}
	}
	files, _ := filepath.Glob(filepath.Join(work, "*.env"))
	secrets, _ := filepath.Glob(filepath.Join(work, "*.secret"))
	for _, f := range append(files, secrets...) {
		data, err := os.ReadFile(f)
		ts.Check(err)
		add(string(data))
	}
	slices.Sort(st.known)
	st.known = slices.Compact(st.known)
	return st.known
}
