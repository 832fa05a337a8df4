package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoBuildOutputTracked fails when git tracks a binary (ELF, Mach-O,
// PE) or any file over 2 MiB: build output never belongs in the
// repository.
func TestNoBuildOutputTracked(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	require.NoError(t, err)
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	require.NotEmpty(t, files)
	magic := [][]byte{{0x7f, 'E', 'L', 'F'}, {0xcf, 0xfa, 0xed, 0xfe}, {0xfe, 0xed, 0xfa, 0xcf}, {'M', 'Z'}}
	for _, f := range files {
		path := filepath.Join(root, f)
		st, err := os.Lstat(path)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		assert.LessOrEqual(t, st.Size(), int64(2<<20), "%s: tracked files stay under 2 MiB (build output? add it to .gitignore)", f)
		head := make([]byte, 4)
		if fh, err := os.Open(path); err == nil {
			n, _ := fh.Read(head)
			fh.Close()
			head = head[:n]
		}
		for _, m := range magic {
			executable := bytes.HasPrefix(head, m) && !(m[0] == 'M' && !strings.HasSuffix(f, ".exe"))
			assert.False(t, executable, "%s is an executable: never commit build output", f)
		}
	}
}
