//go:build !windows

package secret

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// OwnProcessGroup starts c in a process group of its own and has a
// cancelled or timed-out context kill that whole group, not only c: a
// deploy command's sh and whatever it started in the foreground or the
// background, pass (a shell script) and the gpg it runs. Whatever outlived
// c would keep the key it was handed on stdin.
func OwnProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		err := syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
