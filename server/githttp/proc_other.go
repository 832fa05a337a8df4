//go:build !unix

package githttp

import "os/exec"

// killGroup is a no-op where process groups do not exist: cancelling the
// context kills upload-pack itself (exec.CommandContext's default).
func killGroup(cmd *exec.Cmd) {}
