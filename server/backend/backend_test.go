package backend_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// world is a backend over real temp repositories and a real SQLite file,
// with principals of two workspaces.
type world struct {
	b     *backend.Backend
	st    *store.Store
	repos *repo.Store // set by newSharedWorld
	// compiles is the per-file cache of the compiler shared by publish
	// and the backend; set by newSharedWorld.
	compiles *compile.Cache
	admin    backend.Principal
	other    backend.Principal
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: releaseCompile(compile.Compile)})
	require.NoError(tb, err)
	b := backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop(), PublicURL: "https://flowyte.example/"})
	w := &world{b: b, st: st}
	w.admin = w.principal(tb, "a", "admin", backend.AllScopes...)
	w.other = w.principal(tb, "b", "intruder", backend.AllScopes...)
	return w
}

// releaseCompile is repo's Compile option for a compile function: the
// artifact's JSON, or the compile errors.
func releaseCompile(compile func(files map[string][]byte) compile.Result) func(map[string][]byte) ([]byte, error) {
	return func(files map[string][]byte) ([]byte, error) {
		res := compile(files)
		if !res.OK() {
			return nil, res.Errors
		}
		return res.JSON, nil
	}
}

func (w *world) principal(tb testing.TB, ws, name string, scopes ...string) backend.Principal {
	tb.Helper()
	secret, _, err := backend.CreateKey(context.Background(), w.st, ws, name, scopes, time.Now())
	require.NoError(tb, err)
	p, err := w.b.Authenticate(context.Background(), secret)
	require.NoError(tb, err)
	return p
}

// agentFromFixture creates an agent whose draft is fixtures/acme-support.
func (w *world) agentFromFixture(tb testing.TB) backend.Agent {
	tb.Helper()
	ctx := context.Background()
	a, err := w.b.CreateAgent(ctx, w.admin, "http://req.example", "Acme", "")
	require.NoError(tb, err)
	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	var changes []backend.Change
	for p, data := range files {
		changes = append(changes, backend.Change{Path: p, Content: data})
	}
	_, err = w.b.Commit(ctx, w.admin, a.ID, backend.CommitInput{Changes: changes, Message: "import"})
	require.NoError(tb, err)
	return a
}

func code(err error) string {
	if e := backend.ErrorOf(err); e != nil {
		return e.Code
	}
	return "internal"
}

func TestReleaseFlowWithoutHTTP(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	assert.Equal(t, "http://req.example/git/"+a.ID+".git", a.CloneURL, "resources use the base the transport passes")

	_, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID})
	assert.Equal(t, "no_published_version", code(err))

	rep, err := w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.True(t, rep.Publishable)
	assert.Equal(t, "v1", rep.NextVersion)

	pub, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{Notes: "first", ExpectedDraftRevision: rep.DraftRevision})
	require.NoError(t, err)
	assert.Equal(t, "v1", pub.Version.ID)
	assert.True(t, pub.Version.Published)

	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	assert.Equal(t, "draft_unchanged", code(err))

	_, err = w.b.Commit(ctx, w.admin, a.ID, backend.CommitInput{Changes: []backend.Change{{Path: "knowledge/new.md", Content: []byte("# New\n\nfresh text\n")}}})
	require.NoError(t, err)
	v2, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{Notes: "second"})
	require.NoError(t, err)
	assert.Equal(t, 2, v2.Version.Number)

	d, err := w.b.Diff(ctx, w.admin, a.ID, backend.DiffInput{Target: "v2", SourceOnly: true})
	require.NoError(t, err)
	assert.Equal(t, "v1", d.Base)
	assert.Equal(t, []string{"new"}, d.Summary.Knowledge.Added)

	rb, err := w.b.Rollback(ctx, w.admin, a.ID, backend.RollbackInput{Version: "v1"})
	require.NoError(t, err)
	assert.Equal(t, "v1", rb.Published.ID)
	assert.Equal(t, "v2", rb.Previous)

	page, err := w.b.Versions(ctx, w.admin, a.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Data, 2)
	assert.Equal(t, "v1", page.Published)

	deps, _, err := w.b.Deployments(ctx, w.admin, a.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, deps, 3)
	assert.Equal(t, "rollback", deps[0].Kind)
}

func TestEventsCarryTheConfiguredPublicURL(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	_, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	evs, _, err := w.st.EventsAfter(ctx, 0, 100)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	for _, ev := range evs {
		var body struct {
			Data struct {
				CloneURL string `json:"cloneUrl"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(ev.Payload, &body))
		assert.Equal(t, "https://flowyte.example/git/"+a.ID+".git", body.Data.CloneURL, "event %s", ev.Type)
	}
}

func TestIdempotentPublishReplays(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	in := backend.PublishInput{Notes: "n", IdempotencyKey: "k1"}
	first, err := w.b.Publish(ctx, w.admin, a.ID, in)
	require.NoError(t, err)
	again, err := w.b.Publish(ctx, w.admin, a.ID, in)
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Version, again.Version)

	in.Notes = "other"
	_, err = w.b.Publish(ctx, w.admin, a.ID, in)
	assert.Equal(t, "idempotency_key_reused", code(err))

	// A client error is replayed as the same error.
	bad := backend.PublishInput{IdempotencyKey: "k2"}
	_, err = w.b.Publish(ctx, w.admin, a.ID, bad)
	assert.Equal(t, "draft_unchanged", code(err))
	_, err = w.b.Publish(ctx, w.admin, a.ID, bad)
	var replayed *backend.ReplayedError
	require.True(t, errors.As(err, &replayed))
	assert.Equal(t, "draft_unchanged", code(err))
}

func TestTenancy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	_, err := w.b.Agent(ctx, w.other, "", a.ID)
	assert.Equal(t, "agent_not_found", code(err))
	_, err = w.b.Publish(ctx, w.other, a.ID, backend.PublishInput{})
	assert.Equal(t, "agent_not_found", code(err))
	_, err = w.b.Commit(ctx, w.other, a.ID, backend.CommitInput{Changes: []backend.Change{{Path: "knowledge/x.md", Content: []byte("x")}}})
	assert.Equal(t, "agent_not_found", code(err))
	_, err = w.b.CreateSession(ctx, w.other, backend.SessionInput{AgentID: a.ID, DraftMode: true})
	assert.Equal(t, "agent_not_found", code(err))
	_, err = w.b.RepoPath(ctx, w.other, a.ID)
	assert.Equal(t, "agent_not_found", code(err))
}

func TestKeysCannotGrantScopesTheyLack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	minter := w.principal(t, "a", "minter", backend.ScopeKeysWrite, backend.ScopeAgentsRead)
	_, err := w.b.NewKey(ctx, minter, "escalate", []string{backend.ScopeAgentsWrite})
	assert.Equal(t, "insufficient_scope", code(err))
	k, err := w.b.NewKey(ctx, minter, "reader", []string{backend.ScopeAgentsRead})
	require.NoError(t, err)
	assert.NotEmpty(t, k.Secret)
	assert.Equal(t, []string{backend.ScopeAgentsRead}, k.Scopes)
}

func TestConcurrentTurnsOfOneSessionAllLand(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	ss, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, DraftMode: true})
	require.NoError(t, err)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.b.PostMessage(ctx, w.admin, ss.ID, "what are your opening hours? "+string(rune('a'+i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := w.b.Session(ctx, w.admin, ss.ID)
	require.NoError(t, err)
	require.Len(t, got.Messages, 2*n)
	for i, m := range got.Messages {
		assert.Equal(t, i+1, m.Seq, "transcript has no gaps or duplicates")
	}
}

func TestErrorOfMapsDomainErrors(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&repo.RevisionMismatchError{Current: "abc"}, "draft_revision_mismatch"},
		{repo.ErrConflict, "publish_conflict"},
		{repo.ErrVersionNotFound, "version_not_found"},
		{compile.Diagnostics{{Code: "x", Message: "y"}}, "compile_failed"},
		{store.ErrNotFound, "not_found"},
		{backend.ErrInvalidKey, "unauthorized"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, code(c.err), "%v", c.err)
	}
	assert.Nil(t, backend.ErrorOf(errors.New("disk on fire")), "unknown errors are not the client's to see")
}

func TestRecoveryAdoptsOwnedRepositoriesAndRefusesUnowned(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(t, err)
	defer st.Close()
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents")})
	require.NoError(t, err)
	ctx := context.Background()
	settings := map[string][]byte{"agent.yaml": []byte("name: Lost and found\n")}
	owned := store.NewAgentID()
	_, err = repos.CreateOwned(ctx, owned, repo.Owner{WorkspaceName: "team"}, settings, "create", repo.Signature{Name: "t"})
	require.NoError(t, err)

	b := backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop()})
	rep, err := b.Recover(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Adopted)
	a, err := st.AgentByID(ctx, owned)
	require.NoError(t, err)
	assert.Equal(t, "Lost and found", a.Name)
	ws, err := st.WorkspaceByName(ctx, "team")
	require.NoError(t, err)
	assert.Equal(t, ws.ID, a.WorkspaceID)

	unowned := store.NewAgentID()
	_, err = repos.Create(ctx, unowned, settings, "create", repo.Signature{Name: "t"})
	require.NoError(t, err)
	_, err = b.Recover(ctx)
	require.Error(t, err, "a repository nobody can be said to own stops startup")
	assert.Contains(t, err.Error(), unowned)
	assert.True(t, repos.Exists(unowned), "and it is neither hidden nor moved")

	b = backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop(), AdoptOrphansInto: "default"})
	rep, err = b.Recover(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Adopted)
}

func TestKeyJournalRestoresLostKeys(t *testing.T) {
	dir := t.TempDir()
	journal := backend.NewKeyJournal(filepath.Join(dir, "keys"))
	open := func(name string) *store.Store {
		st, err := store.Open(filepath.Join(dir, name), store.WithSynchronous("OFF"))
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	ctx := context.Background()
	first := open("one.db")
	secret, k, err := backend.CreateJournaledKey(ctx, first, journal, "ws", "ci", []string{backend.ScopeAgentsRead}, time.Now())
	require.NoError(t, err)
	revoked, rk, err := backend.CreateJournaledKey(ctx, first, journal, "ws", "old", []string{backend.ScopeAgentsRead}, time.Now())
	require.NoError(t, err)
	require.NoError(t, backend.RevokeKey(ctx, first, journal, rk.ID, time.Now()))

	// A database that lost every row.
	fresh := open("two.db")
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents")})
	require.NoError(t, err)
	b := backend.New(backend.Options{Repos: repos, Store: fresh, Log: zerolog.Nop(), Keys: journal})
	rep, err := b.Recover(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.KeysRestored)
	p, err := b.Authenticate(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, k.ID, p.Key.ID)
	assert.Equal(t, "ws", p.Key.WorkspaceName)
	_, err = b.Authenticate(ctx, revoked)
	assert.ErrorIs(t, err, backend.ErrInvalidKey)
}
