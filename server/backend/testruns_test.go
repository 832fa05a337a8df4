package backend_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/testrun"
)

// failingTest is a test of the acme agent whose one expectation fails.
const failingTest = `description: Shipping by teleport (wrong on purpose)
turns:
  - user: How long does shipping take?
    expect:
      knowledge: [shipping]
      replyContains: ["teleport"]
`

func (w *world) commit(tb testing.TB, agentID string, changes ...backend.Change) {
	tb.Helper()
	_, err := w.b.Commit(context.Background(), w.admin, agentID, backend.CommitInput{Changes: changes, Message: "edit"})
	require.NoError(tb, err)
}

// git runs the git CLI in dir.
func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := exec.Command("git", append([]string{"--git-dir=" + dir}, args...)...).CombinedOutput()
	require.NoError(tb, err, "git %v: %s", args, out)
	return string(out)
}

func TestRunTestsTargets(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)

	run, err := w.b.RunTests(ctx, w.admin, a.ID, backend.TestRunInput{})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(run.ID, "run_"), run.ID)
	assert.Equal(t, "draft", run.Target)
	assert.Equal(t, "passed", run.Status)
	assert.Equal(t, 8, run.Total)
	assert.Equal(t, 8, run.Passed)
	assert.NotNil(t, run.DraftRevision)
	assert.Nil(t, run.Version)
	var cases []testrun.Case
	require.NoError(t, json.Unmarshal(run.Cases, &cases))
	require.Len(t, cases, 8)
	assert.Equal(t, "abuse-is-blocked", cases[0].Test)

	run, err = w.b.RunTests(ctx, w.admin, a.ID, backend.TestRunInput{Target: "draft", Tests: []string{"track-order"}})
	require.NoError(t, err)
	assert.Equal(t, 1, run.Total)

	for _, tc := range []struct {
		in   backend.TestRunInput
		code string
	}{
		{backend.TestRunInput{Tests: []string{"nope"}}, "validation_failed"},
		{backend.TestRunInput{Target: "staging"}, "validation_failed"},
		{backend.TestRunInput{Target: "published"}, "version_not_found"},
		{backend.TestRunInput{Target: "v1"}, "version_not_found"},
	} {
		_, err := w.b.RunTests(ctx, w.admin, a.ID, tc.in)
		assert.Equal(t, tc.code, code(err), "%+v", tc.in)
	}
	_, err = w.b.RunTests(ctx, w.other, a.ID, backend.TestRunInput{})
	assert.Equal(t, "agent_not_found", code(err), "another workspace")

	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	// The draft moves on with a failing test: the version still passes its own.
	w.commit(t, a.ID, backend.Change{Path: "tests/teleport.yaml", Content: []byte(failingTest)})
	for _, target := range []string{"published", "v1"} {
		run, err = w.b.RunTests(ctx, w.admin, a.ID, backend.TestRunInput{Target: target})
		require.NoError(t, err, target)
		assert.Equal(t, "v1", run.Version, target)
		assert.Nil(t, run.DraftRevision, target)
		assert.Equal(t, target, run.Target)
		assert.Equal(t, 8, run.Total, target)
		assert.Equal(t, "passed", run.Status, target)
	}
	run, err = w.b.RunTests(ctx, w.admin, a.ID, backend.TestRunInput{})
	require.NoError(t, err)
	assert.Equal(t, "failed", run.Status)
	assert.Equal(t, 9, run.Total)
	assert.Equal(t, 1, run.Failed)

	// Listing: newest first, without cases, paged.
	page, next, err := w.b.TestRuns(ctx, w.admin, a.ID, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, run.ID, page[0].ID)
	assert.Nil(t, page[0].Cases)
	require.NotEmpty(t, next)
	rest, next, err := w.b.TestRuns(ctx, w.admin, a.ID, next, 10)
	require.NoError(t, err)
	assert.Len(t, rest, 3)
	assert.Empty(t, next)
	_, _, err = w.b.TestRuns(ctx, w.admin, a.ID, "garbage!", 10)
	assert.Equal(t, "invalid_request", code(err))

	got, err := w.b.TestRun(ctx, w.admin, a.ID, run.ID)
	require.NoError(t, err)
	assert.Equal(t, run.ID, got.ID)
	assert.JSONEq(t, string(run.Cases), string(got.Cases))
	_, err = w.b.TestRun(ctx, w.admin, a.ID, "run_nope")
	assert.Equal(t, "not_found", code(err))
	_, err = w.b.TestRun(ctx, w.other, a.ID, run.ID)
	assert.Equal(t, "agent_not_found", code(err))
}

func TestPublishGate(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	w.commit(t, a.ID, backend.Change{Path: "tests/teleport.yaml", Content: []byte(failingTest)})

	rep, err := w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.False(t, rep.Publishable)
	assert.Equal(t, []string{"tests_failed"}, rep.Blockers)
	require.NotNil(t, rep.Tests)
	assert.Equal(t, 9, rep.Tests.Total)
	assert.Equal(t, 8, rep.Tests.Passed)
	assert.Equal(t, 1, rep.Tests.Failed)
	stored, err := w.b.TestRun(ctx, w.admin, a.ID, rep.Tests.RunID)
	require.NoError(t, err, "the report's run is stored")
	assert.Equal(t, rep.DraftRevision, stored.DraftRevision)
	again, err := w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, rep.Tests.RunID, again.Tests.RunID, "a repeated report reuses the run of its tree")
	runs, _, err := w.b.TestRuns(ctx, w.admin, a.ID, "", 10)
	require.NoError(t, err)
	assert.Len(t, runs, 1)

	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{IdempotencyKey: "k1"})
	e := backend.ErrorOf(err)
	require.NotNil(t, e, "%v", err)
	assert.Equal(t, "tests_failed", e.Code)
	assert.Equal(t, []testrun.CaseFailure{{Test: "teleport", Turn: 0, Failure: testrun.Failure{
		Expect: "replyContains", Want: "teleport", Got: e.Extra["failures"].([]testrun.CaseFailure)[0].Got,
	}}}, e.Extra["failures"])
	page, err := w.b.Versions(ctx, w.admin, a.ID, "", 10)
	require.NoError(t, err)
	assert.Empty(t, page.Data, "nothing written")
	dir, err := w.b.RepoPath(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(git(t, dir, "tag")), "no tag")
	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{IdempotencyKey: "k1"})
	var replayed *backend.ReplayedError
	require.ErrorAs(t, err, &replayed)
	assert.Equal(t, "tests_failed", replayed.Err.Code)

	pub, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{Force: true, ExpectedDraftRevision: rep.DraftRevision})
	require.NoError(t, err)
	assert.Equal(t, &backend.TestTotals{Total: 9, Passed: 8, Failed: 1}, pub.Version.Tests)
	v, err := w.b.Version(ctx, w.admin, a.ID, "v1")
	require.NoError(t, err)
	assert.Equal(t, pub.Version.Tests, v.Tests)

	// The evidence in git: compiled/tests.json in the release tree, the trailers in the tag.
	assert.Contains(t, git(t, dir, "ls-tree", "-r", "--name-only", "v1"), "compiled/tests.json\n")
	msg := git(t, dir, "tag", "-l", "--format=%(contents)", "v1")
	assert.Contains(t, msg, "\nTests: 8/9 passed\nTests-Forced: true\n")
	f, err := w.b.VersionFile(ctx, w.admin, a.ID, "v1", compile.TestsPath, "")
	require.NoError(t, err)
	assert.Equal(t, git(t, dir, "show", "v1:compiled/tests.json"), string(f.Data))
	res, err := testrun.Decode(f.Data)
	require.NoError(t, err)
	assert.Equal(t, testrun.Summary{Total: 9, Passed: 8, Failed: 1}, res.Summary())
	assert.NotContains(t, string(f.Data), "run_", "no ids")
	assert.NotContains(t, string(f.Data), "createdAt", "no times")

	// Fixed: the next publish passes and is not forced.
	w.commit(t, a.ID, backend.Change{Path: "tests/teleport.yaml", Delete: true})
	rep, err = w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.True(t, rep.Publishable, "%v", rep.Blockers)
	pub, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	assert.Equal(t, &backend.TestTotals{Total: 8, Passed: 8}, pub.Version.Tests)
	msg = git(t, dir, "tag", "-l", "--format=%(contents)", "v2")
	assert.Contains(t, msg, "\nTests: 8/8 passed\n")
	assert.NotContains(t, msg, "Tests-Forced")
}

func TestAgentWithoutTestsPublishesAsBefore(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	files, err := fixtures.Files("acme-support")
	require.NoError(t, err)
	var dels []backend.Change
	for p := range files {
		if strings.HasPrefix(p, "tests/") {
			dels = append(dels, backend.Change{Path: p, Delete: true})
		}
	}
	w.commit(t, a.ID, dels...)
	rep, err := w.b.Report(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Nil(t, rep.Tests)
	assert.True(t, rep.Publishable)
	pub, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	assert.Nil(t, pub.Version.Tests)
	dir, err := w.b.RepoPath(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.NotContains(t, git(t, dir, "ls-tree", "-r", "--name-only", "v1"), "compiled/tests.json")
	assert.NotContains(t, git(t, dir, "tag", "-l", "--format=%(contents)", "v1"), "Tests")
	_, err = w.b.VersionFile(ctx, w.admin, a.ID, "v1", compile.TestsPath, "")
	assert.Equal(t, "file_not_found", code(err))
	run, err := w.b.RunTests(ctx, w.admin, a.ID, backend.TestRunInput{Target: "v1"})
	require.NoError(t, err)
	assert.Equal(t, 0, run.Total)
	assert.Equal(t, "passed", run.Status)
}

// TestRecoveryKeepsVersionTests: a database that lost its rows gets each
// version's test totals back from the tag trailers.
func TestRecoveryKeepsVersionTests(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *store.Store {
		st, err := store.Open(filepath.Join(dir, name), store.WithSynchronous("OFF"))
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	compileFn := func(files map[string][]byte) ([]byte, error) {
		res := compile.Compile(files)
		if !res.OK() {
			return nil, res.Errors
		}
		return res.JSON, nil
	}
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: compileFn})
	require.NoError(t, err)
	first := open("one.db")
	w := &world{b: backend.New(backend.Options{Repos: repos, Store: first, Log: zerolog.Nop()}), st: first}
	w.admin = w.principal(t, "a", "admin", backend.AllScopes...)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	w.commit(t, a.ID, backend.Change{Path: "tests/teleport.yaml", Content: []byte(failingTest)})
	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{Force: true})
	require.NoError(t, err)

	fresh := open("two.db")
	repos2, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: compileFn})
	require.NoError(t, err)
	b := backend.New(backend.Options{Repos: repos2, Store: fresh, Log: zerolog.Nop()})
	rep, err := b.Recover(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Versions)
	v1, err := fresh.Version(ctx, a.ID, 1)
	require.NoError(t, err)
	assert.Equal(t, &store.TestTotals{Total: 8, Passed: 8}, v1.Tests)
	v2, err := fresh.Version(ctx, a.ID, 2)
	require.NoError(t, err)
	assert.Equal(t, &store.TestTotals{Total: 9, Passed: 8, Failed: 1}, v2.Tests)
}
