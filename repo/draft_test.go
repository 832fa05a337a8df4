package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/storage"
)

func TestCreate(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	files := map[string][]byte{
		"agent.yaml":          []byte("name: Support\n"),
		"knowledge/refund.md": []byte("# Refunds\n"),
		"knowledge.md":        []byte("sorts before knowledge/\n"),
		"skills/lookup.yaml":  []byte("description: x\n"),
	}
	c := mustCreate(t, s, testID, files)
	if !s.Exists(testID) {
		t.Fatalf("Exists=false after create, want true")
	}
	if got, want := strings.Join(c.Paths, ","), "agent.yaml,knowledge.md,knowledge/refund.md,skills/lookup.yaml"; got != want {
		t.Fatalf("paths=%s, want %s", got, want)
	}
	dir := s.Path(testID)
	mustFsck(t, dir)
	if got := strings.TrimSpace(mustGit(t, dir, "symbolic-ref", "HEAD")); got != "refs/heads/draft" {
		t.Fatalf("HEAD=%s, want refs/heads/draft", got)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")); got != c.Revision {
		t.Fatalf("draft=%s, want %s", got, c.Revision)
	}
	if got := mustGit(t, dir, "log", "-1", "--format=%an <%ae>|%s"); got != "Alice Example <alice@example.com>|Create agent\n" {
		t.Fatalf("log=%q", got)
	}
	if got := mustGit(t, dir, "show", "draft:knowledge/refund.md"); got != "# Refunds\n" {
		t.Fatalf("content=%q, want %q", got, "# Refunds\n")
	}
	d, err := s.Draft(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Revision != c.Revision || len(d.Files) != 4 || d.Files[0].Path != "agent.yaml" || d.Files[0].Size != 14 {
		t.Fatalf("draft=%+v", d)
	}
	if want := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft:agent.yaml")); d.Files[0].Blob != want {
		t.Fatalf("blob=%s, want %s", d.Files[0].Blob, want)
	}
	if _, err := s.Create(ctx, testID, files, "", alice); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != testID {
		t.Fatalf("List=%v, %v; want [%s]", ids, err, testID)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.o.Root, tmpDir)); len(ents) != 0 {
		t.Fatalf("%d leftovers in .tmp, want 0", len(ents))
	}
}

func TestInvalidIDs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	for _, id := range []string{"", "../x", "a/b", "UPPER", ".trash", strings.Repeat("a", 65), "x\x00"} {
		if _, err := s.Create(ctx, id, nil, "", alice); !errors.Is(err, ErrNotFound) {
			t.Errorf("create %q: got %v, want ErrNotFound", id, err)
		}
		if _, err := s.Draft(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("draft %q: got %v, want ErrNotFound", id, err)
		}
		if s.Path(id) != "" || s.Exists(id) {
			t.Errorf("Path(%q)=%q Exists=%v, want empty and false", id, s.Path(id), s.Exists(id))
		}
	}
	if _, err := s.Draft(ctx, "agt_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("draft of missing agent: got %v, want ErrNotFound", err)
	}
}

func TestCommitDraft(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	dir := s.Path(testID)

	var seen []Commit
	c1, err := s.CommitDraft(ctx, testID, CommitRequest{
		ExpectedRevision: c0.Revision,
		Changes:          []Change{set("knowledge/a.md", "A\n"), set("knowledge/b.md", "B\n"), set("agent.yaml", "name: B\n")},
		Message:          "add knowledge",
		Author:           alice,
	}, func(c Commit) error { seen = append(seen, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Revision != c1.Revision {
		t.Fatalf("then saw %v, want one call with %s", seen, c1.Revision)
	}
	if got, want := strings.Join(c1.Paths, ","), "agent.yaml,knowledge/a.md,knowledge/b.md"; got != want {
		t.Fatalf("paths=%s, want %s", got, want)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft^")); got != c0.Revision {
		t.Fatalf("parent=%s, want %s", got, c0.Revision)
	}

	// Stale expected revision.
	_, err = s.CommitDraft(ctx, testID, CommitRequest{ExpectedRevision: c0.Revision, Changes: []Change{set("x.md", "x")}}, nil)
	var rm *RevisionMismatchError
	if !errors.As(err, &rm) || rm.Current != c1.Revision || !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("stale: got %v, want RevisionMismatchError{%s}", err, c1.Revision)
	}

	// Deleting a missing file fails and commits nothing, even with other changes.
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("knowledge/c.md", "C"), del("nope.md")}}, nil)
	if !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("delete missing: got %v, want ErrFileNotFound", err)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")); got != c1.Revision {
		t.Fatalf("draft moved to %s after failed commit, want %s", got, c1.Revision)
	}

	// Delete.
	c2 := mustCommit(t, s, testID, del("knowledge/b.md"))
	if got := mustGit(t, dir, "ls-tree", "-r", "--name-only", "draft"); got != "agent.yaml\nknowledge/a.md\n" {
		t.Fatalf("tree after delete=%q", got)
	}
	if got := strings.Join(c2.Paths, ","); got != "knowledge/b.md" {
		t.Fatalf("paths=%s, want knowledge/b.md", got)
	}
	// Deleting the last file of a directory removes the directory.
	mustCommit(t, s, testID, del("knowledge/a.md"))
	if got := mustGit(t, dir, "ls-tree", "--name-only", "draft"); got != "agent.yaml\n" {
		t.Fatalf("tree after emptying dir=%q", got)
	}

	// A change set that leaves the tree identical makes no commit.
	head := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft"))
	called := false
	same, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("agent.yaml", "name: B\n")}}, func(Commit) error { called = true; return nil })
	if err != nil || !same.Unchanged || same.Revision != head || called {
		t.Fatalf("no-op commit: %+v, %v, then called=%v; want Unchanged head %s without then", same, err, called, head)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")); got != head {
		t.Fatalf("draft moved on no-op to %s", got)
	}

	// then's error is returned but the commit stays.
	boom := errors.New("db down")
	c3, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("k.md", "k")}}, func(Commit) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("then error: got %v, want %v", err, boom)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")); got != c3.Revision || c3.Revision == head {
		t.Fatalf("draft=%s, want the new commit %s", got, c3.Revision)
	}

	// Bad paths.
	for _, p := range []string{"", "/abs", "../x", "a/../b", "a//b", ".git/config", "compiled/agent.json", "x\x00", "agent.yaml/sub"} {
		if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(p, "x")}}, nil); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("path %q: got %v, want ErrInvalidPath", p, err)
		}
	}
	if got := mustGit(t, dir, "rev-list", "--count", "draft"); got != "5\n" {
		t.Fatalf("commit count=%q, want 5", got)
	}
	mustFsck(t, dir)
}

func TestCommitLimits(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxFiles = 3; o.MaxDraftBytes = 10 })
	mustCreate(t, s, testID, map[string][]byte{"a": []byte("12345")})
	if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "1"), set("c", "1"), set("d", "1")}}, nil); !errors.Is(err, ErrDraftTooLarge) {
		t.Fatalf("4 files: got %v, want ErrDraftTooLarge", err)
	}
	if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "123456")}}, nil); !errors.Is(err, ErrDraftTooLarge) {
		t.Fatalf("11 bytes: got %v, want ErrDraftTooLarge", err)
	}
	if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "12345"), set("c", "")}}, nil); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := s.Create(ctx, "agt_other", map[string][]byte{"a": make([]byte, 11)}, "", alice); !errors.Is(err, ErrDraftTooLarge) {
		t.Fatalf("create too large: got %v, want ErrDraftTooLarge", err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	var revs []string
	revs = append(revs, mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("v0")}).Revision)
	for i := 1; i <= 4; i++ {
		revs = append(revs, mustCommit(t, s, testID, set("f"+string(rune('0'+i)), "x")).Revision)
	}
	// Newest first, pages of 2.
	var got []Commit
	cursor := ""
	pages := 0
	for {
		page, next, err := s.History(ctx, testID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || len(got) != 5 {
		t.Fatalf("pages=%d commits=%d, want 3 and 5", pages, len(got))
	}
	for i, c := range got {
		if want := revs[len(revs)-1-i]; c.Revision != want {
			t.Fatalf("commit %d=%s, want %s", i, c.Revision, want)
		}
	}
	if got[0].Paths[0] != "f4" || got[4].Paths[0] != "agent.yaml" || got[0].Author.Name != alice.Name || got[0].Message != "Update f4" {
		t.Fatalf("head commit=%+v, root=%+v", got[0], got[4])
	}
	for _, bad := range []string{"zzz", strings.Repeat("0", 40), strings.Repeat("A", 40)} {
		if _, _, err := s.History(ctx, testID, bad, 2); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: got %v, want ErrBadCursor", bad, err)
		}
	}
	// A tree id is an object but not a commit.
	d, _ := s.Draft(ctx, testID)
	if _, _, err := s.History(ctx, testID, d.Tree, 2); !errors.Is(err, ErrBadCursor) {
		t.Errorf("tree cursor: got %v, want ErrBadCursor", err)
	}
}

func TestReadFile(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("one"), "knowledge/a.md": []byte("A")})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID, set("agent.yaml", "two"))
	if data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "agent.yaml"); err != nil || string(data) != "two" {
		t.Fatalf("draft read=%q, %v; want two", data, err)
	}
	if data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "agent.yaml"); err != nil || string(data) != "one" {
		t.Fatalf("v1 read=%q, %v; want one", data, err)
	}
	if data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "compiled/agent.json"); err != nil || !strings.Contains(string(data), `"knowledge/a.md"`) {
		t.Fatalf("v1 compiled=%q, %v", data, err)
	}
	for _, p := range []string{"nope", "knowledge", "knowledge/a.md/x", ""} {
		if _, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, p); !errors.Is(err, ErrFileNotFound) {
			t.Errorf("read %q: got %v, want ErrFileNotFound", p, err)
		}
	}
	if _, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevEmpty}, "agent.yaml"); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("empty read: got %v, want ErrFileNotFound", err)
	}
	if _, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 2}, "agent.yaml"); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("v2 read: got %v, want ErrVersionNotFound", err)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("x")})
	if _, err := s.Draft(ctx, testID); err != nil { // opens a handle
		t.Fatal(err)
	}
	if err := s.Remove(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if s.Exists(testID) {
		t.Fatalf("Exists=true after remove, want false")
	}
	ents, _ := os.ReadDir(filepath.Join(s.o.Root, trashDir))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), testID+"-") || !strings.HasSuffix(ents[0].Name(), ".git") {
		t.Fatalf("trash=%v, want one %s-<nanos>.git", ents, testID)
	}
	mustFsck(t, filepath.Join(s.o.Root, trashDir, ents[0].Name()))
	if err := s.Remove(ctx, testID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: got %v, want ErrNotFound", err)
	}
	if _, err := s.Draft(ctx, testID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("draft after remove: got %v, want ErrNotFound", err)
	}
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("again")})
	if data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "agent.yaml"); err != nil || string(data) != "again" {
		t.Fatalf("read after re-create=%q, %v", data, err)
	}
}

func TestStaleLockIsConflict(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("x")})
	lock := filepath.Join(s.Path(testID), "refs", "heads", "draft.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("a", "b")}}, nil)
	if !errors.Is(err, ErrConflict) || !errors.Is(err, storage.ErrReferenceHasChanged) {
		t.Fatalf("got %v, want ErrConflict wrapping storage.ErrReferenceHasChanged", err)
	}
	if err := s.Recover(ctx, testID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("a", "b")}}, nil); err != nil {
		t.Fatalf("after recover: %v", err)
	}
}

func TestLRUBounded(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxOpen = 2 })
	for i := 0; i < 6; i++ {
		id := "agt_" + string(rune('a'+i))
		mustCreate(t, s, id, map[string][]byte{"agent.yaml": []byte(id)})
		if _, err := s.Draft(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	n, idle := len(s.agents), s.idle.Len()
	s.mu.Unlock()
	if n != 2 || idle != 2 {
		t.Fatalf("agents=%d idle=%d, want 2 and 2", n, idle)
	}
	// Evicted repositories reopen transparently.
	if d, err := s.Draft(ctx, "agt_a"); err != nil || len(d.Files) != 1 {
		t.Fatalf("reopen: %+v, %v", d, err)
	}
}

func TestFailedCommitWritesNoObjects(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxDraftBytes = 100 })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	for _, req := range []CommitRequest{
		{Changes: []Change{set("big", strings.Repeat("x", 101))}},
		{Changes: []Change{set("new.md", "fresh"), del("missing.md")}},
		{Changes: []Change{set("agent.yaml/x", "collides")}},
	} {
		if _, err := s.CommitDraft(ctx, testID, req, nil); err == nil {
			t.Fatalf("commit %+v succeeded, want an error", req)
		}
	}
	if after := looseObjects(t, dir); after != before {
		t.Fatalf("loose objects %d → %d after failed commits, want unchanged", before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Draft(ctx, testID); err != nil || len(d.Files) != 1 {
		t.Fatalf("draft after Close=%+v, %v", d, err)
	}
}

func TestFilesAt(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("one")})
	mustCommit(t, s, testID, set("agent.yaml", "two"), set("k.md", "k"))
	tree, files, err := s.FilesAt(ctx, testID, c0.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || string(files["agent.yaml"]) != "one" {
		t.Fatalf("files at first revision=%v, want agent.yaml=one", files)
	}
	if want := strings.TrimSpace(mustGit(t, s.Path(testID), "rev-parse", c0.Revision+"^{tree}")); tree != want {
		t.Fatalf("tree=%s, want %s", tree, want)
	}
	for _, bad := range []string{"", "nope", strings.Repeat("1", 40)} {
		if _, _, err := s.FilesAt(ctx, testID, bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("FilesAt(%q): got %v, want ErrBadCursor", bad, err)
		}
	}
}
