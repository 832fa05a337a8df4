package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeVersions commits one edit and publishes it n times.
func writeVersions(tb testing.TB, s *Store, id string, from, n int) {
	tb.Helper()
	for i := from; i < from+n; i++ {
		mustCommit(tb, s, id, set(fmt.Sprintf("knowledge/k%d.md", i%17), fmt.Sprintf("edit %d\n", i)))
		mustPublish(tb, s, id, fmt.Sprintf("notes %d", i))
	}
}

// showRefs returns every ref of the bare repository dir as git sees it.
func showRefs(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(mustGit(tb, dir, "show-ref")), "\n") {
		hash, name, ok := strings.Cut(line, " ")
		require.True(tb, ok, "show-ref line %q", line)
		refs[name] = hash
	}
	return refs
}

// noAutoPack disables automatic housekeeping.
func noAutoPack(o *Options) { o.PackThreshold = -1 }

func TestHousekeepPacksObjectsAndRefs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	writeVersions(t, s, testID, 0, 300)
	dir := s.Path(testID)
	// Warm the handle so a stale go-git index would be noticed below.
	_, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, compiledPath)
	require.NoError(t, err)
	refsBefore := showRefs(t, dir)
	require.Len(t, refsBefore, 302) // 300 tags, draft, published
	versionsBefore, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	looseBefore := looseObjects(t, dir)
	require.Greater(t, looseBefore, 1500)

	hk, err := s.Housekeep(ctx, testID)
	require.NoError(t, err)
	t.Logf("housekeeping %+v", hk)
	assert.Equal(t, looseBefore, hk.LooseBefore)
	assert.Zero(t, hk.LooseAfter)
	assert.Zero(t, looseObjects(t, dir))
	assert.Equal(t, 1, hk.Packs)
	assert.FileExists(t, filepath.Join(dir, "packed-refs"))
	tags, err := os.ReadDir(filepath.Join(dir, "refs", "tags"))
	require.NoError(t, err)
	assert.Empty(t, tags, "loose tags left after pack-refs")
	mustFsck(t, dir)
	assert.Equal(t, refsBefore, showRefs(t, dir))

	// The same Store (its cached handle dropped) reads everything back.
	versionsAfter, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, versionsBefore, versionsAfter)
	for _, n := range []int{1, 150, 300} {
		data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: n}, compiledPath)
		require.NoError(t, err, "v%d", n)
		assert.NotEmpty(t, data)
	}
	pub, err := s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 300, pub)
	d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevVersion, Number: 300}, true)
	require.NoError(t, err)
	assert.NotEmpty(t, d.Files)

	// Refs that now live only in packed-refs move by writing a loose ref.
	c := mustCommit(t, s, testID, set("agent.yaml", "name: b\n"))
	v := mustPublish(t, s, testID, "after")
	assert.Equal(t, 301, v.Number)
	_, err = s.Rollback(ctx, testID, 7, nil, nil)
	require.NoError(t, err)
	refs := showRefs(t, dir)
	assert.Equal(t, c.Revision, refs["refs/heads/draft"])
	rc7, err := s.Version(ctx, testID, 7)
	require.NoError(t, err)
	assert.Equal(t, rc7.Commit, refs["refs/heads/published"])
	// A tag that exists only packed is still refused as taken.
	cur, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 301, cur)
	require.NoError(t, s.Recover(ctx, testID))
	mustFsck(t, dir)

	st := s.HousekeepingStats()
	assert.Equal(t, uint64(1), st.Repacks)
	assert.Zero(t, st.RepackFailures)
}

func TestHousekeepAutomatic(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.PackThreshold = 60 })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	writeVersions(t, s, testID, 0, 40)
	require.NoError(t, s.Close()) // waits for (or stops) background runs
	st := s.HousekeepingStats()
	assert.GreaterOrEqual(t, st.Repacks+st.RepackFailures, uint64(2), "40 versions × ~7 objects at threshold 60")
	assert.Zero(t, st.Running)
	require.NoError(t, s.Recover(ctx, testID))
	dir := s.Path(testID)
	mustFsck(t, dir)
	assert.Less(t, looseObjects(t, dir), 200)
	vs, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	assert.Len(t, vs, 40)
}

func TestHousekeepUnavailable(t *testing.T) {
	s := mustOpenStore(t, func(o *Options) { o.Git = "/nonexistent/git"; o.PackThreshold = 20 })
	mustCreate(t, s, testID, map[string][]byte{"a.md": []byte("a")})
	_, err := s.Housekeep(context.Background(), testID)
	require.Error(t, err)
	// Automatic runs fail too, but are retried only every threshold.
	writeVersions(t, s, testID, 0, 10) // ~70 objects
	require.NoError(t, s.Close())
	st := s.HousekeepingStats()
	assert.Zero(t, st.Repacks)
	// One on demand, then at most one per 20 objects written (~70).
	assert.GreaterOrEqual(t, st.RepackFailures, uint64(2))
	assert.LessOrEqual(t, st.RepackFailures, uint64(5))
	_, err = s.Housekeep(context.Background(), "nope")
	assert.ErrorIs(t, err, ErrNotFound)
}

// killStage is an instant of a housekeeping run, recognised from the
// files git leaves in the repository.
type killStage struct {
	name string
	seen func(dir string, b before) bool
}

// before is the state of a repository before a housekeeping run.
type before struct {
	packs  []string
	loose  int
	packed time.Time // modification time of packed-refs, zero if none
}

func packFiles(dir, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", pattern))
	return m
}

func staged(dir, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, repackDir, pattern))
	return m
}

var killStages = []killStage{
	{"pack-objects writing", func(dir string, _ before) bool { return len(packFiles(dir, "tmp_pack_*")) > 0 }},
	{"new pack staged", func(dir string, _ before) bool { return len(staged(dir, "pack-*.idx")) > 0 }},
	{"geometric repack writing", func(dir string, _ before) bool { return len(packFiles(dir, ".tmp-*")) > 0 }},
	{"new pack installed", func(dir string, b before) bool {
		return len(packFiles(dir, "pack-*.idx")) > len(b.packs)
	}},
	{"old pack or loose objects deleted", func(dir string, b before) bool {
		n, _ := countLoose(dir)
		return n < b.loose || len(packFiles(dir, "pack-*.pack")) < len(b.packs)
	}},
	{"pack-refs writing", func(dir string, _ before) bool {
		_, err := os.Stat(filepath.Join(dir, "packed-refs.lock"))
		return err == nil
	}},
	{"pack-refs pruning loose refs", func(dir string, b before) bool {
		fi, err := os.Stat(filepath.Join(dir, "packed-refs"))
		return err == nil && !fi.ModTime().Equal(b.packed)
	}},
}

// TestHousekeepKilled SIGKILLs git (through the context, which kills its
// process group) at each stage of a housekeeping run, recognised from the
// files git leaves, and checks after each that Recover leaves a repository
// where fsck --strict is clean and every ref and version written before is
// intact.
func TestHousekeepKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns git many times")
	}
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	dir := s.Path(testID)
	killed := map[string]bool{}
	for round, stage := range append(killStages, killStages...) {
		writeVersions(t, s, testID, round*20, 20)
		refs := showRefs(t, dir)
		b := before{packs: packFiles(dir, "pack-*.idx")}
		var err error
		b.loose, err = countLoose(dir)
		require.NoError(t, err)
		if fi, err := os.Stat(filepath.Join(dir, "packed-refs")); err == nil {
			b.packed = fi.ModTime()
		}
		kctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for kctx.Err() == nil {
				if stage.seen(dir, b) {
					cancel()
					return
				}
			}
		}()
		_, err = s.Housekeep(kctx, testID)
		cancel()
		<-done
		if errors.Is(err, context.Canceled) {
			killed[stage.name] = true
		} else {
			require.NoError(t, err, "round %d", round)
		}
		t.Logf("round %d: stage %q killed=%v", round, stage.name, err != nil)
		require.NoError(t, s.Recover(ctx, testID), "round %d", round)
		mustFsck(t, dir)
		assert.Equal(t, refs, showRefs(t, dir), "round %d", round)
		vs, err := s.Versions(ctx, testID)
		require.NoError(t, err)
		require.Len(t, vs, (round+1)*20, "round %d", round)
		for _, v := range []int{1, len(vs)} {
			_, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: v}, compiledPath)
			require.NoError(t, err, "round %d v%d", round, v)
		}
	}
	assert.GreaterOrEqual(t, len(killed), 3, "stages killed: %v", killed)
	_, err := s.Housekeep(ctx, testID)
	require.NoError(t, err)
	mustFsck(t, dir)
	assert.Zero(t, looseObjects(t, dir))
}

// TestRecoverLeftoversOfRepack plants what a killed repack can leave (a
// temporary pack, a pack whose index was never renamed into place) and a
// leftover packed-refs.lock, and checks that Recover removes them.
func TestRecoverLeftoversOfRepack(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	writeVersions(t, s, testID, 0, 5)
	_, err := s.Housekeep(ctx, testID)
	require.NoError(t, err)
	dir := s.Path(testID)
	pack := filepath.Join(dir, "objects", "pack")
	planted := []string{
		filepath.Join(pack, ".tmp-4242-pack-0123456789abcdef0123456789abcdef01234567.pack"),
		filepath.Join(pack, "tmp_pack_Xy12"),
		filepath.Join(pack, "pack-89abcdef0123456789abcdef0123456789abcdef.pack"), // no .idx
		filepath.Join(dir, "packed-refs.lock"),
		filepath.Join(dir, "packed-refs.new"),
		filepath.Join(dir, repackDir, "pack-0123456789abcdef0123456789abcdef01234567.pack"),
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, repackDir), 0o755))
	for _, p := range planted {
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o644))
	}
	require.NoError(t, s.Recover(ctx, testID))
	for _, p := range planted {
		assert.NoFileExists(t, p)
	}
	assert.NoDirExists(t, filepath.Join(dir, repackDir))
	mustFsck(t, dir)
	writeVersions(t, s, testID, 5, 1)
}

// TestRecoverBrokenPackedRefs points a packed tag and a loose published ref
// (shadowing a packed one) at missing objects; Recover must record them in
// lost-refs and delete them everywhere, so no stale packed value
// resurfaces.
func TestRecoverBrokenPackedRefs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	writeVersions(t, s, testID, 0, 4)
	_, err := s.Housekeep(ctx, testID)
	require.NoError(t, err)
	dir := s.Path(testID)
	refs := showRefs(t, dir)
	missing := strings.Repeat("ab", 20)

	packed, err := os.ReadFile(filepath.Join(dir, "packed-refs"))
	require.NoError(t, err)
	v3 := refs["refs/tags/v3"]
	require.Contains(t, string(packed), v3+" refs/tags/v3\n")
	packed = []byte(strings.Replace(string(packed), v3+" refs/tags/v3\n", missing+" refs/tags/v3\n", 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "packed-refs"), packed, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "refs", "heads", "published"), []byte(missing+"\n"), 0o644))

	err = s.Recover(ctx, testID)
	var rerr *RecoveryError
	require.ErrorAs(t, err, &rerr)
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.ElementsMatch(t, []string{"refs/heads/published", "refs/tags/v3"}, rerr.Moved)
	assert.Empty(t, rerr.Broken)

	after := showRefs(t, dir)
	assert.NotContains(t, after, "refs/tags/v3")
	assert.NotContains(t, after, "refs/heads/published", "the packed published ref resurfaced")
	assert.Equal(t, refs["refs/tags/v4"], after["refs/tags/v4"])
	packed, err = os.ReadFile(filepath.Join(dir, "packed-refs"))
	require.NoError(t, err)
	assert.NotContains(t, string(packed), "refs/tags/v3")
	assert.NotContains(t, string(packed), "refs/heads/published")

	lost, err := os.ReadDir(filepath.Join(dir, "lost-refs"))
	require.NoError(t, err)
	require.Len(t, lost, 2)
	var records []string
	for _, e := range lost {
		b, err := os.ReadFile(filepath.Join(dir, "lost-refs", e.Name()))
		require.NoError(t, err)
		records = append(records, string(b))
	}
	assert.Contains(t, records, missing+"\n")
	assert.Contains(t, records, missing+"\n"+refs["refs/heads/published"]+" packed\n")
	mustFsck(t, dir)
	require.NoError(t, s.Recover(ctx, testID))
}

// TestDeleteRefPacked deletes an annotated tag that is both packed (with
// its peeled line) and loose.
func TestDeleteRefPacked(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: a\n")})
	writeVersions(t, s, testID, 0, 3)
	_, err := s.Housekeep(ctx, testID)
	require.NoError(t, err)
	dir := s.Path(testID)
	refs := showRefs(t, dir)
	packed, err := os.ReadFile(filepath.Join(dir, "packed-refs"))
	require.NoError(t, err)
	require.Contains(t, string(packed), "^", "pack-refs writes peeled lines for annotated tags")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "refs", "tags", "v2"), []byte(refs["refs/tags/v2"]+"\n"), 0o644))

	err = s.with(ctx, testID, func(h *handle) error { return h.deleteRef(tagRef(2), true) })
	require.NoError(t, err)
	after := showRefs(t, dir)
	assert.NotContains(t, after, "refs/tags/v2")
	assert.Len(t, after, len(refs)-1)
	assert.NoFileExists(t, filepath.Join(dir, "refs", "tags", "v2"))
	assert.NoFileExists(t, filepath.Join(dir, "refs", "tags", "v2.lock"))
	mustFsck(t, dir)
	out := mustGit(t, dir, "for-each-ref", "--format=%(refname) %(*objectname)", "refs/tags")
	assert.Equal(t, 2, strings.Count(out, "refs/tags/v"), "peeled lines of the other tags intact: %s", out)

	// Deleting what exists nowhere is a no-op.
	err = s.with(ctx, testID, func(h *handle) error {
		return h.deleteRef(plumbing.NewTagReferenceName("v99"), false)
	})
	assert.NoError(t, err)
}
