package repo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffDetectsExactRenames: a moved file is one "renamed" entry whose
// patch git applies.
func TestDiffDetectsExactRenames(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"knowledge/old-name.md": []byte("same text\n"), "knowledge/other.md": []byte("x\n")})
	if _, err := s.Publish(ctx, testID, PublishRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{
		{Path: "knowledge/old-name.md", Delete: true},
		{Path: "knowledge/new-name.md", Content: []byte("same text\n")},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevDraft}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Files) != 1 || d.Files[0].Status != "renamed" || d.Files[0].OldPath != "knowledge/old-name.md" || d.Files[0].Path != "knowledge/new-name.md" {
		t.Fatalf("files %+v, want one rename", d.Files)
	}
	work := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run(work, "clone", "-q", s.Path(testID), "w")
	w := filepath.Join(work, "w")
	run(w, "checkout", "-q", "v1")
	run(w, "rm", "-q", "-r", "--cached", "compiled")
	os.WriteFile(filepath.Join(work, "p.diff"), d.Patch, 0o644)
	run(w, "apply", "--index", filepath.Join(work, "p.diff"))
	got := strings.TrimSpace(run(w, "write-tree"))
	want := strings.TrimSpace(run(w, "rev-parse", "origin/draft^{tree}"))
	if got != want {
		t.Fatalf("applied tree %s, want %s\n%s", got, want, d.Patch)
	}
}
