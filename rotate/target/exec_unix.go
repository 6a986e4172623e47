//go:build !windows

package target

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownProcessGroup starts c in a process group of its own and has a
// cancelled or timed-out context kill that whole group: sh, and whatever it
// started in the foreground or the background.
func ownProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		err := syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
