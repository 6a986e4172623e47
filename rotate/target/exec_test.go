//go:build linux

package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// A failing deploy command that echoes the key has its stderr redacted
// before the tail is cut: wherever the cut falls in the key, and whatever
// part of the key is echoed, no run of 8 of its secret characters is left in
// what the terminal is shown.
func TestExecStderrRedactedBeforeTheCut(t *testing.T) {
	key := client.FormatKey("live", "AB7K2XYZ", "q7Xw2LmN9pRt4VbZ8cDe1FgH3jKs6YuQ")
	pub := len(client.PrefixOf(key))
	for _, tail := range []int{1, 8, 20, 46, 53, 60} {
		t.Run(fmt.Sprintf("%d chars of the key inside the window", tail), func(t *testing.T) {
			// The key, then enough dots that only its last tail characters
			// fall inside the last stderrTail bytes.
			cmd := fmt.Sprintf(`read k; printf '%%s' "$k" >&2; head -c %d /dev/zero | tr '\0' . >&2; exit 3`, stderrTail-tail)
			shown := failExec(t, cmd, key)
			assertNoKeyRun(t, shown, key, pub)
			if !strings.Contains(shown, "....") {
				t.Errorf("the tail of stderr is gone: %v", shown)
			}
		})
	}
	t.Run("a part of the key", func(t *testing.T) {
		shown := failExec(t, `read k; echo "$k" | cut -c 21-40 >&2; exit 3`, key)
		assertNoKeyRun(t, shown, key, pub)
		if !strings.Contains(shown, "…") {
			t.Errorf("want the part marked as redacted: %v", shown)
		}
	})
	t.Run("the whole key after a long stream", func(t *testing.T) {
		shown := failExec(t, `read k; head -c 100000 /dev/zero | tr '\0' a >&2; echo >&2; echo "bad key $k" >&2; exit 3`, key)
		assertNoKeyRun(t, shown, key, pub)
		if !strings.Contains(shown, "bad key "+client.PrefixOf(key)+"…") {
			t.Errorf("want the key shown by its prefix: %v", shown)
		}
	})
}

// failExec runs cmd, which must fail, and returns what the terminal was
// shown. The error holds nothing cmd wrote: only its exit status.
func failExec(t *testing.T, cmd, key string) string {
	t.Helper()
	var shown []string
	err := runExec(context.Background(), cmd, key, 30*time.Second, nil, func(s string) { shown = append(shown, s) }, nil)
	if err == nil {
		t.Fatal("the failing command succeeded")
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("the error does not say how the command ended: %v", err)
	}
	for _, s := range []string{"....", "…", client.PrefixOf(key)} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error holds what the command wrote (%q): %v", s, err)
		}
	}
	return strings.Join(shown, "\n")
}

func assertNoKeyRun(t *testing.T, shown, key string, pub int) {
	t.Helper()
	for i := 0; i+minKeyRun <= len(key); i++ {
		if run := key[i : i+minKeyRun]; i+minKeyRun > pub && strings.Contains(shown, run) {
			t.Fatalf("the terminal was shown %q, characters %d to %d of the key: %v", run, i+1, i+minKeyRun, shown)
		}
	}
}

// The exec timeout kills the command's whole process group: a background
// child of sh is dead too, not left running with the key on its stdin.
func TestExecTimeoutKillsGrandchildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidFile)
	err := runExec(context.Background(), `sleep 300 & echo $! > "$PIDFILE"; wait`, "pa_live_x", 300*time.Millisecond, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("want the timeout, got %v", err)
	}
	data, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	if rerr != nil || perr != nil {
		t.Fatalf("the command did not record its child: %v %v", rerr, perr)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the grandchild sleep (pid %d) still runs after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs: a zombie, killed but not reaped by an init
// that does not reap, counts as dead.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
