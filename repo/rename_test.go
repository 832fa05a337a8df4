package repo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDiffDetectsExactRenames: a moved file is one "renamed" entry whose
// patch git applies.
func TestDiffDetectsExactRenames(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"knowledge/old-name.md": []byte("same text\n"), "knowledge/other.md": []byte("x\n")})
	_, err := s.Publish(ctx, testID, PublishRequest{}, nil)
	require.NoError(t, err)
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{
		{Path: "knowledge/old-name.md", Delete: true},
		{Path: "knowledge/new-name.md", Content: []byte("same text\n")},
	}}, nil)
	require.NoError(t, err)
	d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevDraft}, true)
	require.NoError(t, err)
	require.Len(t, d.Files, 1, "files %+v, want one rename", d.Files)
	assert.Equal(t, "renamed", d.Files[0].Status)
	assert.Equal(t, "knowledge/old-name.md", d.Files[0].OldPath)
	assert.Equal(t, "knowledge/new-name.md", d.Files[0].Path)
	work := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return string(out)
	}
	run(work, "clone", "-q", s.Path(testID), "w")
	w := filepath.Join(work, "w")
	run(w, "checkout", "-q", "v1")
	run(w, "rm", "-q", "-r", "--cached", "compiled")
	require.NoError(t, os.WriteFile(filepath.Join(work, "p.diff"), d.Patch, 0o644))
	run(w, "apply", "--index", filepath.Join(work, "p.diff"))
	got := strings.TrimSpace(run(w, "write-tree"))
	want := strings.TrimSpace(run(w, "rev-parse", "origin/draft^{tree}"))
	assert.Equal(t, want, got, "applied tree\n%s", d.Patch)
}
