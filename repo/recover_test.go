package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecoverAfterCrash(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID, set("agent.yaml", "b"))
	dir := s.Path(testID)

	// A crash mid-publish: objects of a would-be v2 written (here by git),
	// ref locks and temp objects left behind, HEAD damaged.
	mustGit(t, dir, "hash-object", "-w", "--stdin")
	leftovers := []string{
		"refs/heads/draft.lock",
		"refs/heads/published.lock",
		"refs/tags/v2.lock",
		"HEAD.lock",
		"packed-refs.lock",
		"objects/pack/tmp_obj_123456",
		"objects/pack/tmp_pack_abcdef",
	}
	for _, p := range leftovers {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "HEAD"), []byte("ref: refs/heads/master\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A fresh process (new Store) recovers.
	s2, err := Open(Options{Root: s.o.Root, Compile: fakeCompile, Sync: true, Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("x", "y")}}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit before recover: got %v, want ErrConflict (stale lock)", err)
	}
	if err := s2.Recover(ctx, testID); err != nil {
		t.Fatalf("recover: %v", err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after recover", p)
		}
	}
	if got := strings.TrimSpace(mustGit(t, dir, "symbolic-ref", "HEAD")); got != "refs/heads/draft" {
		t.Fatalf("HEAD=%s, want refs/heads/draft", got)
	}
	mustFsck(t, dir)
	if n, _ := s2.Latest(ctx, testID); n != 1 {
		t.Fatalf("latest=%d, want 1", n)
	}
	if v := mustPublish(t, s2, testID, ""); v.Number != 2 {
		t.Fatalf("next version=%d, want 2", v.Number)
	}
	mustFsck(t, dir)
}

func TestRecoverBrokenRefs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	v1 := mustPublish(t, s, testID, "")
	dir := s.Path(testID)
	// A tag ref pointing at a missing object (impossible with the write order,
	// simulated here).
	missing := strings.Repeat("ab", 20)
	if err := os.WriteFile(filepath.Join(dir, "refs", "tags", "v2"), []byte(missing+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Recover(ctx, testID)
	var re *RecoveryError
	if !errors.As(err, &re) || !errors.Is(err, ErrCorrupt) || len(re.Moved) != 1 || re.Moved[0] != "refs/tags/v2" || len(re.Broken) != 0 {
		t.Fatalf("got %v, want RecoveryError moving refs/tags/v2", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "refs", "tags", "v2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refs/tags/v2 still present")
	}
	lost, _ := os.ReadDir(filepath.Join(dir, "lost-refs"))
	if len(lost) != 1 {
		t.Fatalf("lost-refs holds %d files, want 1", len(lost))
	}
	if n, _ := s.Latest(ctx, testID); n != 1 {
		t.Fatalf("latest=%d after recover, want 1", n)
	}
	if p, _ := s.Published(ctx, testID); p != 1 {
		t.Fatalf("published=%d, want 1", p)
	}
	mustFsck(t, dir)
	if err := s.Recover(ctx, testID); err != nil {
		t.Fatalf("second recover: %v", err)
	}
	if v, err := s.Version(ctx, testID, 1); err != nil || v.Commit != v1.Commit {
		t.Fatalf("v1=%+v, %v", v, err)
	}
	if err := s.Recover(ctx, "agt_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("recover missing: got %v, want ErrNotFound", err)
	}
}

func TestOpenCleansInterruptedCreate(t *testing.T) {
	root := t.TempDir()
	half := filepath.Join(root, tmpDir, "agt_x-123.git")
	if err := os.MkdirAll(filepath.Join(half, "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("interrupted create left in place")
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Fatalf("List=%v, want none", ids)
	}
}

func TestEmptyLooseObjectIsRewritten(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	dir := s.Path(testID)
	// What a power loss can leave of an unsynced object write.
	hash, err := gitCmd(t, dir, []byte("power loss\n"), "--git-dir="+dir, "hash-object", "--stdin")
	if err != nil {
		t.Fatal(err)
	}
	hash = strings.TrimSpace(hash)
	p := filepath.Join(dir, "objects", hash[:2], hash[2:])
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, testID, set("k.md", "power loss\n"))
	if data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "k.md"); err != nil || string(data) != "power loss\n" {
		t.Fatalf("read=%q, %v", data, err)
	}
	mustFsck(t, dir)
}
