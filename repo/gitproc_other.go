//go:build !linux

package repo

import "os/exec"

// isolate leaves cmd as it is: only Linux has a parent-death signal.
func isolate(cmd *exec.Cmd) {}
