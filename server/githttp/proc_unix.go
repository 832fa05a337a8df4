//go:build unix

package githttp

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd run in its own process group and makes cancelling
// its context kill the whole group, so upload-pack's pack-objects child
// dies with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
