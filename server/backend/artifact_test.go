package backend_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// artifactWorld is a world whose repositories and database can be
// served by a second backend with empty caches, and whose repository
// publish (without the backend's gate) writes the format-1 artifact of
// compile/testdata when format1 is set.
type artifactWorld struct {
	*world
	format1 atomic.Bool
}

func newArtifactWorld(tb testing.TB) *artifactWorld {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	old, err := os.ReadFile(filepath.Join("..", "..", "compile", "testdata", "format1-acme-support.json"))
	require.NoError(tb, err)
	aw := &artifactWorld{}
	current := releaseCompile(compile.Compile)
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: func(files map[string][]byte) ([]byte, error) {
		if aw.format1.Load() {
			return old, nil
		}
		return current(files)
	}})
	require.NoError(tb, err)
	w := &world{b: backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop()}), st: st, repos: repos}
	w.admin = w.principal(tb, "a", "admin", backend.AllScopes...)
	aw.world = w
	return aw
}

// fresh is a second backend over the same data, with empty caches: a
// published version's responder is loaded from its stored artifact.
func (aw *artifactWorld) fresh() *backend.Backend {
	return backend.New(backend.Options{Repos: aw.repos, Store: aw.st, Log: zerolog.Nop()})
}

// knowledgeQuestions reach every article of acme-support and the extra
// ones artifactTestArticles adds, plus a fallback.
var knowledgeQuestions = []string{
	"what are your opening hours on saturday?",
	"do you accept paypal or apple pay?",
	"how do I return an item for a refund",
	"how long does shipping to canada take",
	"is the battery covered by the warranty",
	"tell me about the crlf gardening calendar",
	"what does the plain note say about compost",
	"xyzzy plugh",
}

// artifactTestArticles are articles with CRLF front matter and with
// none, whose bodies must be cut exactly as the compile cut them.
var artifactTestArticles = []backend.Change{
	{Path: "knowledge/crlf-calendar.md", Content: []byte("---\r\ntitle: Gardening calendar\r\ntags: [crlf, garden]\r\n---\r\n\r\n# Gardening calendar (crlf)\r\n\r\nPlant bulbs in autumn; the crlf gardening calendar lists every month.\r\n")},
	{Path: "knowledge/plain-note.md", Content: []byte("Compost: the plain note says to turn the compost heap every two weeks.")},
}

// replies answers questions in a new session of agentID (the draft's or
// the published version's).
func replies(t *testing.T, b *backend.Backend, p backend.Principal, agentID string, draft bool) []backend.Reply {
	t.Helper()
	ctx := context.Background()
	ss, err := b.CreateSession(ctx, p, backend.SessionInput{AgentID: agentID, DraftMode: draft})
	require.NoError(t, err)
	var out []backend.Reply
	for _, q := range knowledgeQuestions {
		r, err := b.PostMessage(ctx, p, ss.ID, q)
		require.NoError(t, err, q)
		r.ServedBy = backend.ServedBy{}
		out = append(out, r)
	}
	return out
}

// TestVersionEngineFromBlobsAnswersAsTheDraft: a published version's
// responder, loaded from its format-2 artifact and the knowledge blobs of
// its release tree, answers exactly as the responder built from the
// draft's compile.
func TestVersionEngineFromBlobsAnswersAsTheDraft(t *testing.T) {
	aw := newArtifactWorld(t)
	ctx := context.Background()
	a := aw.agentFromFixture(t)
	_, err := aw.b.Commit(ctx, aw.admin, a.ID, backend.CommitInput{Changes: artifactTestArticles})
	require.NoError(t, err)
	fromDraft := replies(t, aw.b, aw.admin, a.ID, true)
	pub, err := aw.b.Publish(ctx, aw.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)

	data, _, err := aw.repos.ReadFile(ctx, a.ID, repo.Rev{Kind: repo.RevVersion, Number: 1}, compile.ArtifactPath)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"format": 2`)
	assert.NotContains(t, string(data), "Plant bulbs", "bodies are not in the artifact")
	assert.Equal(t, compile.Digest(data), pub.Version.CompiledDigest)

	// The publishing backend hands the draft's responder over; a fresh
	// one loads it from git.
	assert.Equal(t, fromDraft, replies(t, aw.b, aw.admin, a.ID, false))
	b2 := aw.fresh()
	loaded := replies(t, b2, aw.admin, a.ID, false)
	assert.Equal(t, fromDraft, loaded)
	var matched int
	for _, r := range loaded {
		if strings.Contains(r.Reply.Text, "crlf gardening calendar lists") || strings.Contains(r.Reply.Text, "turn the compost heap") {
			matched++
		}
	}
	assert.Equal(t, 2, matched, "the added articles answer from their bodies")
}

// TestFormat1VersionStillServes: a version published before format 2
// (its artifact embeds the bodies) loads and answers unchanged.
func TestFormat1VersionStillServes(t *testing.T) {
	aw := newArtifactWorld(t)
	ctx := context.Background()
	a := aw.agentFromFixture(t)
	fromDraft := replies(t, aw.b, aw.admin, a.ID, true)

	// Published by the repository alone, as an older daemon did, then
	// recovered into the database.
	aw.format1.Store(true)
	v, err := aw.repos.Publish(ctx, a.ID, repo.PublishRequest{Publisher: repo.Signature{Name: "old", Email: "old@example.com"}}, nil)
	aw.format1.Store(false)
	require.NoError(t, err)
	data, _, err := aw.repos.ReadFile(ctx, a.ID, repo.Rev{Kind: repo.RevVersion, Number: 1}, compile.ArtifactPath)
	require.NoError(t, err)
	require.Contains(t, string(data), `"format": 1`)
	assert.Equal(t, compile.Digest(data), v.Digest)

	b2 := aw.fresh()
	_, err = b2.Recover(ctx)
	require.NoError(t, err)
	got, err := b2.Version(ctx, aw.admin, a.ID, "v1")
	require.NoError(t, err)
	assert.Equal(t, v.Digest, got.CompiledDigest, "the stored digest is kept, not recomputed")
	assert.Equal(t, fromDraft, replies(t, b2, aw.admin, a.ID, false))
}
