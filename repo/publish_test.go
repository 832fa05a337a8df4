package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestPublishLayout(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	files := map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n")}
	mustCreate(t, s, testID, files)
	dir := s.Path(testID)
	d, _ := s.Draft(ctx, testID)

	var seen []Version
	v1, err := s.Publish(ctx, testID, PublishRequest{ExpectedDraftRevision: d.Revision, Notes: "First release.\n\nWith details.", Publisher: Signature{Name: "Bob", Email: "bob@example.com"}},
		func(v Version) error { seen = append(seen, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if v1.Number != 1 || v1.Tag != "refs/tags/v1" || v1.DraftRevision != d.Revision || v1.PublishedBy != "Bob" || len(seen) != 1 {
		t.Fatalf("v1=%+v seen=%d", v1, len(seen))
	}
	mustFsck(t, dir)
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "v1^{commit}")); got != v1.Commit {
		t.Fatalf("v1^{commit}=%s, want %s", got, v1.Commit)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "published")); got != v1.Commit {
		t.Fatalf("published=%s, want %s", got, v1.Commit)
	}
	if got := mustGit(t, dir, "rev-list", "--parents", "-n1", "v1"); got != v1.Commit+" "+d.Revision+"\n" {
		t.Fatalf("parents=%q, want only the draft commit %s", got, d.Revision)
	}
	if got := mustGit(t, dir, "ls-tree", "-r", "--name-only", "v1"); got != "agent.yaml\ncompiled/agent.json\nknowledge/a.md\n" {
		t.Fatalf("release tree=%q", got)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "cat-file", "-t", "v1")); got != "tag" {
		t.Fatalf("v1 is a %s, want an annotated tag", got)
	}
	artifact, _ := fakeCompile(files)
	if got := mustGit(t, dir, "show", "v1:compiled/agent.json"); got != string(artifact) {
		t.Fatalf("compiled=%q, want %q", got, artifact)
	}
	sum := sha256.Sum256(artifact)
	wantDigest := "sha256:" + hex.EncodeToString(sum[:])
	if v1.Digest != wantDigest {
		t.Fatalf("digest=%s, want %s", v1.Digest, wantDigest)
	}
	tag := mustGit(t, dir, "cat-file", "-p", "v1")
	wantMsg := "v1\n\nFirst release.\n\nWith details.\n\nPublisher: Bob <bob@example.com>\nDraft-Revision: " + d.Revision + "\nCompiled-Digest: " + wantDigest + "\n"
	if !strings.HasSuffix(tag, "\n\n"+wantMsg) || !strings.Contains(tag, "\ntagger Bob <bob@example.com> ") {
		t.Fatalf("tag object=%q, want message %q", tag, wantMsg)
	}
	got, err := s.Version(ctx, testID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v1) {
		t.Fatalf("Version(1)=%+v, want %+v", got, v1)
	}
	if got.Notes != "First release.\n\nWith details." {
		t.Fatalf("notes=%q", got.Notes)
	}

	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	v2 := mustPublish(t, s, testID, "")
	if v2.Number != 2 {
		t.Fatalf("v2.Number=%d, want 2", v2.Number)
	}
	if diff := mustGit(t, dir, "diff", "--stat", "v1", "v2"); !strings.Contains(diff, "knowledge/a.md") || !strings.Contains(diff, "compiled/agent.json") {
		t.Fatalf("git diff v1 v2=%q", diff)
	}
	if n, _ := s.Latest(ctx, testID); n != 2 {
		t.Fatalf("latest=%d, want 2", n)
	}
	if n, _ := s.Published(ctx, testID); n != 2 {
		t.Fatalf("published=%d, want 2", n)
	}
	vs, err := s.Versions(ctx, testID)
	if err != nil || len(vs) != 2 || !reflect.DeepEqual(vs[0], v1) || vs[1].Notes != "" || vs[1].Digest == "" {
		t.Fatalf("versions=%+v, %v", vs, err)
	}
	if _, err := s.Version(ctx, testID, 3); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("Version(3): got %v, want ErrVersionNotFound", err)
	}
	// A fresh store finds the latest number from the tags.
	s2, err := Open(Options{Root: s.o.Root, Compile: fakeCompile})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s2.Latest(ctx, testID); n != 2 {
		t.Fatalf("latest after reopen=%d, want 2", n)
	}
	if n, _ := s2.Published(ctx, testID); n != 2 {
		t.Fatalf("published after reopen=%d, want 2", n)
	}
	mustFsck(t, dir)
}

func TestPublishNeverPublished(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, nil)
	if n, err := s.Published(ctx, testID); err != nil || n != 0 {
		t.Fatalf("published=%d, %v; want 0", n, err)
	}
	if n, err := s.Latest(ctx, testID); err != nil || n != 0 {
		t.Fatalf("latest=%d, %v; want 0", n, err)
	}
	// An empty draft still publishes.
	if v := mustPublish(t, s, testID, ""); v.Number != 1 {
		t.Fatalf("number=%d, want 1", v.Number)
	}
	mustFsck(t, s.Path(testID))
}

func TestPublishDraftUnchanged(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	mustPublish(t, s, testID, "")
	_, err := s.Publish(ctx, testID, PublishRequest{}, nil)
	var du *DraftUnchangedError
	if !errors.As(err, &du) || du.Latest != 1 || !errors.Is(err, ErrDraftUnchanged) {
		t.Fatalf("got %v, want DraftUnchangedError{1}", err)
	}
	// Edit and revert: a new draft commit with the same tree is still unchanged.
	mustCommit(t, s, testID, set("agent.yaml", "b"))
	mustCommit(t, s, testID, set("agent.yaml", "a"))
	if _, err := s.Publish(ctx, testID, PublishRequest{}, nil); !errors.Is(err, ErrDraftUnchanged) {
		t.Fatalf("after revert: got %v, want ErrDraftUnchanged", err)
	}
	// Unchanged is relative to the latest version, not the published one.
	mustCommit(t, s, testID, set("agent.yaml", "c"))
	mustPublish(t, s, testID, "")
	if _, err := s.Rollback(ctx, testID, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(ctx, testID, PublishRequest{}, nil); !errors.As(err, &du) || du.Latest != 2 {
		t.Fatalf("after rollback: got %v, want DraftUnchangedError{2}", err)
	}
}

func TestPublishRevisionMismatch(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	c1 := mustCommit(t, s, testID, set("agent.yaml", "b"))
	_, err := s.Publish(ctx, testID, PublishRequest{ExpectedDraftRevision: c0.Revision}, nil)
	var rm *RevisionMismatchError
	if !errors.As(err, &rm) || rm.Current != c1.Revision {
		t.Fatalf("got %v, want RevisionMismatchError{%s}", err, c1.Revision)
	}
	if n, _ := s.Latest(ctx, testID); n != 0 {
		t.Fatalf("latest=%d, want 0", n)
	}
}

func TestPublishCompileErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a"), "broken.yaml": []byte("x")})
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	called := false
	_, err := s.Publish(ctx, testID, PublishRequest{}, func(Version) error { called = true; return nil })
	var diag *fakeDiagnostics
	if !errors.As(err, &diag) || diag.File != "broken.yaml" {
		t.Fatalf("got %v, want the compile diagnostics", err)
	}
	if after := looseObjects(t, dir); after != before || called {
		t.Fatalf("objects %d → %d, then called=%v; want nothing written", before, after, called)
	}
	if tags := mustGit(t, dir, "tag", "-l"); tags != "" {
		t.Fatalf("tags=%q, want none", tags)
	}
	if _, err := gitCmd(t, dir, nil, "--git-dir="+dir, "rev-parse", "--verify", "-q", "published"); err == nil {
		t.Fatalf("published ref exists after failed compile")
	}
	mustCommit(t, s, testID, del("broken.yaml"))
	if v := mustPublish(t, s, testID, ""); v.Number != 1 {
		t.Fatalf("number=%d, want 1", v.Number)
	}
}

func TestConcurrentPublishContiguous(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	const n = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []Version
	thenNums := map[int]bool{}
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(fmt.Sprintf("knowledge/k%02d.md", i), "x")}}, nil); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			v, err := s.Publish(ctx, testID, PublishRequest{}, func(v Version) error {
				mu.Lock()
				defer mu.Unlock()
				thenNums[v.Number] = true
				return nil
			})
			if err != nil {
				if !errors.Is(err, ErrDraftUnchanged) {
					errs <- err
				}
				return
			}
			mu.Lock()
			ok = append(ok, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("unexpected error: %v", err)
	}
	k := len(ok)
	if k == 0 {
		t.Fatalf("no publish succeeded")
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Number < ok[j].Number })
	for i, v := range ok {
		if v.Number != i+1 || !thenNums[v.Number] {
			t.Fatalf("versions %v not contiguous from 1", ok)
		}
	}
	vs, err := s.Versions(ctx, testID)
	if err != nil || len(vs) != k {
		t.Fatalf("Versions=%d, %v; want %d", len(vs), err, k)
	}
	dir := s.Path(testID)
	if tags := strings.Count(mustGit(t, dir, "tag", "-l"), "\n"); tags != k {
		t.Fatalf("git tags=%d, want %d", tags, k)
	}
	if p, _ := s.Published(ctx, testID); p != k {
		t.Fatalf("published=%d, want %d", p, k)
	}
	if c := mustGit(t, dir, "rev-list", "--count", "draft"); c != fmt.Sprintf("%d\n", n+1) {
		t.Fatalf("draft commits=%q, want %d", c, n+1)
	}
	mustFsck(t, dir)
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("1")})
	var vs []Version
	vs = append(vs, mustPublish(t, s, testID, ""))
	for i := 2; i <= 3; i++ {
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprint(i)))
		vs = append(vs, mustPublish(t, s, testID, ""))
	}
	dir := s.Path(testID)
	var moves [][2]int
	rec := func(from, to int) error { moves = append(moves, [2]int{from, to}); return nil }
	from, err := s.Rollback(ctx, testID, 1, nil, rec)
	if err != nil || from != 3 {
		t.Fatalf("rollback to 1: from=%d, %v; want 3", from, err)
	}
	if got := strings.TrimSpace(mustGit(t, dir, "rev-parse", "published")); got != vs[0].Commit {
		t.Fatalf("published=%s, want %s", got, vs[0].Commit)
	}
	if n, _ := s.Published(ctx, testID); n != 1 {
		t.Fatalf("published=%d, want 1", n)
	}
	three := 3
	_, err = s.Rollback(ctx, testID, 2, &three, rec)
	var pm *PublishedMismatchError
	if !errors.As(err, &pm) || pm.Current != 1 || !errors.Is(err, ErrPublishedMismatch) {
		t.Fatalf("stale expected: got %v, want PublishedMismatchError{1}", err)
	}
	one := 1
	if from, err := s.Rollback(ctx, testID, 3, &one, rec); err != nil || from != 1 {
		t.Fatalf("forward to 3: from=%d, %v; want 1", from, err)
	}
	if _, err := s.Rollback(ctx, testID, 4, nil, rec); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("unknown: got %v, want ErrVersionNotFound", err)
	}
	if _, err := s.Rollback(ctx, testID, 0, nil, rec); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("v0: got %v, want ErrVersionNotFound", err)
	}
	if len(moves) != 2 || moves[0] != [2]int{3, 1} || moves[1] != [2]int{1, 3} {
		t.Fatalf("then calls=%v, want [[3 1] [1 3]]", moves)
	}
	if n, _ := s.Latest(ctx, testID); n != 3 {
		t.Fatalf("latest=%d, want 3", n)
	}
	mustFsck(t, dir)
}

func TestTagMessageRoundTrip(t *testing.T) {
	cases := []string{
		"",
		"one line",
		"para one\n\npara two",
		"looks like: a trailer",
		"Publisher: fake <x>\nDraft-Revision: 123",
		"-----BEGIN PGP SIGNATURE-----\nnot really\n-----END PGP SIGNATURE-----",
	}
	for _, notes := range cases {
		msg := tagMessage(7, notes, alice, [20]byte{1}, "sha256:ab", nil)
		got, tr := parseTagMessage(endLine(msg))
		if got != notes || tr[trailerDigest] != "sha256:ab" || tr[trailerPublisher] != "Alice Example <alice@example.com>" {
			t.Errorf("notes %q: got %q, trailers %v", notes, got, tr)
		}
	}
	if got := cleanNotes("\n\n  hi\r\nthere  \n\n"); got != "  hi\nthere" {
		t.Fatalf("cleanNotes=%q, want %q", got, "  hi\nthere")
	}
}

func TestConcurrentAgentsWithEviction(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxOpen = 2 })
	ids := []string{"agt_a", "agt_b", "agt_c", "agt_d", "agt_e"}
	for _, id := range ids {
		mustCreate(t, s, id, map[string][]byte{"agent.yaml": []byte(id)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				id := ids[(w+i)%len(ids)]
				if _, err := s.CommitDraft(ctx, id, CommitRequest{Changes: []Change{set(fmt.Sprintf("k/%d-%d.md", w, i), "x")}}, nil); err != nil {
					errs <- err
				}
				if _, err := s.Draft(ctx, id); err != nil {
					errs <- err
				}
				if _, err := s.Publish(ctx, id, PublishRequest{}, nil); err != nil && !errors.Is(err, ErrDraftUnchanged) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("unexpected error: %v", err)
	}
	total := 0
	for _, id := range ids {
		d, err := s.Draft(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		total += len(d.Files) - 1
		vs, err := s.Versions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vs {
			if v.Number != i+1 {
				t.Fatalf("%s versions not contiguous: %d at %d", id, v.Number, i)
			}
		}
		mustFsck(t, s.Path(id))
	}
	if total != 60 {
		t.Fatalf("%d files committed, want 60", total)
	}
	s.mu.Lock()
	n := len(s.agents)
	s.mu.Unlock()
	if n > 2 {
		t.Fatalf("%d agent entries after the run, want at most MaxOpen=2", n)
	}
}
