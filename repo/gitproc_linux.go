package repo

import (
	"os/exec"
	"syscall"
)

// isolate puts git and the children it spawns (pack-objects) in their own
// process group, killed as a whole when the context ends, and has the
// kernel kill git if this process dies, so no repack outlives the daemon
// to race with the next start's Recover.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
