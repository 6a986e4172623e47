//go:build !windows

package secret

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownProcessGroup has a cancelled context kill the whole process group:
// pass is a shell script, and the gpg it runs must go with it.
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
