package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/plana-cli/plana/client"
)

// runMarker is the variable setup gives each script a value of its own in:
// every process the script starts, and every process those start (a
// dbus-daemon from dbus-launch, say), inherits it.
const runMarker = "PLANA_E2E_RUN"

// cmdLeftovers: leftovers fails if a process this script started, other
// than the harness's own (the emulator, the automations), is still
// running: found by runMarker in its environment. It also fails if any
// process's environment holds a known plaintext (PLANA_TOKEN handed on).
// Each process found is killed by its pid once reported.
func cmdLeftovers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: leftovers")
	}
	st := state(ts)
	own := []int{os.Getpid()}
	if st.emu != nil {
		own = append(own, st.emu.cmd.Process.Pid)
	}
	for _, p := range st.autos {
		own = append(own, p.cmd.Process.Pid)
	}
	marker := []byte(runMarker + "=" + ts.Getenv(runMarker) + "\x00")
	known := knownSecrets(ts)
	var found []string
	var strays []int
	environs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range environs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		data, err := os.ReadFile(f)
		if err != nil || slices.Contains(own, pid) {
			continue // ended meanwhile, or another user's
		}
		data = append(data, 0)
		comm, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "comm"))
		what := fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
		stray := false
		if bytes.Contains(data, marker) {
			found = append(found, what+" outlived the plana that started it")
			stray = true
		}
		for _, k := range known {
			if bytes.Contains(data, []byte(k)) {
				found = append(found, fmt.Sprintf("%s holds the plaintext of %s in its environment", what, client.PrefixOf(k)))
				stray = true
			}
		}
		if stray {
			strays = append(strays, pid)
		}
	}
	for _, pid := range strays {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(found) > 0 {
		ts.Fatalf("processes left behind:\n%s", strings.Join(found, "\n"))
	}
}
