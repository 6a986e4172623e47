// Package e2e runs the built binaries (plana, bos-emulator and the example
// automation) as real processes against each other, one testscript per
// scenario in testdata/. See README.md for the commands the scripts can use.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/rogpeppe/go-internal/testscript"
)

var (
	// binDir holds plana, bos-emulator and automation, built once.
	binDir string
	// examplesDir is the repository's examples/, which scripts run as a
	// user would ($EXAMPLES).
	examplesDir string
	// keyringErr is why no Secret Service answers, nil when one does.
	keyringErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "plana-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/plana", "./cmd/bos-emulator", "./examples/automation", "./e2e/internal/storekit")
	build.Dir = ".." // the module root: go test runs in the package directory
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries: %v\n", err)
		return 1
	}
	binDir = dir
	if examplesDir, err = filepath.Abs(filepath.Join("..", "examples")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keyringErr = secret.Probe(secret.NewKeyring(0))
	return m.Run()
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		Setup:               setup,
		Cmds:                commands(),
		Condition:           condition,
		RequireExplicitExec: true,
		Deadline:            deadline(t),
	})
}

// deadline leaves the harness time to stop the processes a script started
// (and to report why) before go test's own timeout kills everything.
func deadline(t *testing.T) time.Time {
	d, ok := t.Deadline()
	if !ok {
		return time.Time{}
	}
	return d.Add(-15 * time.Second)
}

// envPassThrough are variables of the test's environment that scripts keep.
// Everything else is dropped so a developer's PLANA_TOKEN or config can never
// leak into a run.
var envPassThrough = []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "GOCOVERDIR"}

var profileSafe = regexp.MustCompile(`[^a-z0-9_-]+`)

func setup(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, "home")
	env.Setenv("PATH", binDir+string(filepath.ListSeparator)+env.Getenv("PATH"))
	env.Setenv("HOME", home)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	env.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
	env.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
	env.Setenv("NO_COLOR", "1")
	env.Setenv("EXAMPLES", examplesDir)
	env.Setenv(runMarker, filepath.Base(env.WorkDir)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	for _, name := range envPassThrough {
		if v, ok := os.LookupEnv(name); ok {
			env.Setenv(name, v)
		}
	}
	// Scripts run in parallel against one keyring: a profile of their own
	// keeps one script's management token from replacing another's.
	// testscript names the work directory "script-NAME".
	name := strings.ToLower(strings.TrimPrefix(filepath.Base(env.WorkDir), "script-"))
	env.Setenv("PLANA_PROFILE", "e2e-"+strings.Trim(profileSafe.ReplaceAllString(name, "-"), "-"))

	st := &scriptState{work: env.WorkDir, autos: map[string]*proc{}}
	env.Values[stateKey{}] = st
	env.Defer(st.stopAll)
	return nil
}

// condition adds [keyring]: a Secret Service answers. Without one the
// scripts that need it skip, unless PLANA_REQUIRE_KEYRING=1 (CI), where a
// missing keyring must fail the run instead of quietly testing less. [root]
// is plana run as root (sudo, a root cron), which can give files to others.
func condition(cond string) (bool, error) {
	if cond == "root" {
		return os.Geteuid() == 0, nil
	}
	if cond != "keyring" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if keyringErr == nil {
		return true, nil
	}
	if os.Getenv("PLANA_REQUIRE_KEYRING") == "1" {
		return false, fmt.Errorf("PLANA_REQUIRE_KEYRING=1 but no keyring answers: %v", keyringErr)
	}
	return false, nil
}
