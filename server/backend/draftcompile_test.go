package backend_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/server/backend"
)

// TestDraftCompilesFollowTheEdit: after a one-file edit, a draft session
// and a publish compile the draft from the agent's previous compile,
// looking up only the edited file in the compile cache, and what they
// give is exactly what compiling every file gives: the session's answers,
// the report's digest, the version's artifact and digest.
func TestDraftCompilesFollowTheEdit(t *testing.T) {
	w := newSharedWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	var articles []backend.Change
	for i := range 200 {
		articles = append(articles, backend.Change{Path: fmt.Sprintf("knowledge/article-%04d.md", i), Content: fixtures.Article(i, 0)})
	}
	w.commit(t, a.ID, articles...)

	// whole compiles every file of the draft, the reference.
	whole := func() compile.Result {
		t.Helper()
		_, _, files, err := w.repos.DraftFiles(ctx, a.ID)
		require.NoError(t, err)
		res := compile.Compile(files)
		require.True(t, res.OK(), "%v", res.Errors)
		return res
	}
	ask := func(draft bool, text string) string {
		t.Helper()
		s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, DraftMode: draft})
		require.NoError(t, err)
		r, err := w.b.PostMessage(ctx, w.admin, s.ID, text)
		require.NoError(t, err)
		return r.Reply.Text
	}
	// lookups counts the compile cache look-ups fn makes.
	lookups := func(fn func()) uint64 {
		before := w.compiles.Stats()
		fn()
		after := w.compiles.Stats()
		return after.Hits + after.Misses - before.Hits - before.Misses
	}

	ask(true, "hello") // the first compile of the agent reads every file
	w.commit(t, a.ID, backend.Change{Path: "knowledge/article-0007.md", Content: []byte("# Zebra care\n\nFeed the zebras at noon.\n")})
	var reply string
	assert.Equal(t, uint64(1), lookups(func() { reply = ask(true, "when do I feed the zebras?") }), "a draft session after a one-file edit")
	assert.Contains(t, reply, "Feed the zebras at noon.")

	rep, err := w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	want := whole()
	assert.Equal(t, want.Digest, rep.CompiledDigest, "the report's digest, computed from the draft's parts")

	pub, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	assert.Equal(t, want.Digest, pub.Version.CompiledDigest)
	assertArtifact(t, w, a.ID, pub.Version, want)

	// A publish right after an edit, the tree never compiled: an edit
	// and a removal cost their own files only.
	w.commit(t, a.ID,
		backend.Change{Path: "knowledge/article-0007.md", Content: []byte("# Zebra care\n\nFeed the zebras at dawn.\n")},
		backend.Change{Path: "knowledge/article-0008.md", Delete: true})
	var v backend.Version
	assert.Equal(t, uint64(1), lookups(func() {
		pub, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
		require.NoError(t, err)
		v = pub.Version
	}), "a publish after an edit")
	want = whole()
	assert.Equal(t, want.Digest, v.CompiledDigest)
	assertArtifact(t, w, a.ID, v, want)
	assert.Contains(t, ask(false, "when do I feed the zebras?"), "Feed the zebras at dawn.", "the version's sessions")

	rep, err = w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, v.CompiledDigest, rep.CompiledDigest, "the report after a publish")
	assert.Contains(t, rep.Blockers, "draft_unchanged")

	// The artifacts were written from their parts' deflated forms: git
	// reads them back and finds the repository sound.
	dir := w.repos.Path(a.ID)
	for _, v := range []string{"v1", "v2"} {
		f, err := w.b.VersionFile(ctx, w.admin, a.ID, v, compile.ArtifactPath, "")
		require.NoError(t, err)
		assert.Equal(t, string(f.Data), git(t, dir, "show", v+":"+compile.ArtifactPath))
	}
	git(t, dir, "fsck", "--strict", "--no-dangling")
}

// assertArtifact checks that version v's compiled/agent.json is want's
// JSON, with v's digest.
func assertArtifact(t *testing.T, w *world, agentID string, v backend.Version, want compile.Result) {
	t.Helper()
	f, err := w.b.VersionFile(context.Background(), w.admin, agentID, v.ID, compile.ArtifactPath, "")
	require.NoError(t, err)
	assert.Equal(t, string(want.JSON), string(f.Data))
	sum := sha256.Sum256(f.Data)
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), v.CompiledDigest)
}
