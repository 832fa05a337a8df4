package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/responder"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/testrun"
)

// Tag trailers of a release with tests (CONTRACT §11).
const (
	trailerTests       = "Tests"
	trailerTestsForced = "Tests-Forced"
)

// TestTotals are the totals of a version's test run (Version.tests).
type TestTotals struct {
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// TestRun is the TestRun resource (CONTRACT §11). Cases is absent in
// listings.
type TestRun struct {
	ID            string          `json:"id"`
	AgentID       string          `json:"agentId"`
	Target        string          `json:"target"`
	DraftRevision any             `json:"draftRevision"`
	Version       any             `json:"version"`
	Status        string          `json:"status"`
	Total         int             `json:"total"`
	Passed        int             `json:"passed"`
	Failed        int             `json:"failed"`
	DurationMs    int64           `json:"durationMs"`
	CreatedAt     time.Time       `json:"createdAt"`
	Cases         json.RawMessage `json:"cases,omitempty"`
}

func testRunView(r store.TestRun) TestRun {
	return TestRun{
		ID: r.ID, AgentID: r.AgentID, Target: r.Target, DraftRevision: NullableString(r.DraftRevision),
		Version: nullableVersion(r.Version), Status: r.Status, Total: r.Total, Passed: r.Passed, Failed: r.Failed,
		DurationMs: r.DurationMs, CreatedAt: r.CreatedAt.UTC(), Cases: r.Cases,
	}
}

// TestRunInput is one request to run an agent's tests.
type TestRunInput struct {
	// Target is "draft" (the default), "published" or "v<n>".
	Target string
	// Tests selects tests by slug; empty runs them all.
	Tests []string
}

// RunTests runs an agent's tests against the draft or a version,
// synchronously, and stores the run. A version's tests are those of the
// draft it was published from (its source tree, compiled once and cached
// by tree), answered by the responder of its frozen artifact, the one its
// live sessions use.
func (b *Backend) RunTests(ctx context.Context, p Principal, agentID string, in TestRunInput) (TestRun, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return TestRun{}, err
	}
	if in.Target == "" {
		in.Target = "draft"
	}
	row := store.TestRun{ID: store.NewTestRunID(), AgentID: a.ID, Target: in.Target, CreatedAt: b.now()}
	var (
		eng   *responder.Engine
		tests []compile.Test
	)
	switch _, isVersion := ParseVersionNumber(in.Target); {
	case in.Target == "draft":
		rev, _, cd, err := b.currentDraft(ctx, a.ID)
		if err != nil {
			return TestRun{}, err
		}
		if !cd.result.OK() || cd.engine == nil {
			b.metrics.compileFailures.Inc()
			return TestRun{}, Errorf("compile_failed", "the draft does not compile").With("errors", diagList(cd.result.Errors))
		}
		eng, tests, row.DraftRevision = cd.engine.engine, cd.result.Tests, rev
	case in.Target == "published" || isVersion:
		v, err := b.resolveVersion(ctx, a, in.Target)
		if err != nil {
			return TestRun{}, err
		}
		if eng, err = b.versionEngine(ctx, a.ID, v.Number); err != nil {
			return TestRun{}, err
		}
		src, err := b.cache.draftAt(ctx, b.repos, a.ID, v.DraftRevision)
		if err != nil {
			return TestRun{}, err
		}
		if !src.result.OK() {
			return TestRun{}, Errorf("compile_failed", "the source of %s no longer compiles", VersionID(v.Number)).With("errors", diagList(src.result.Errors))
		}
		tests, row.Version = src.result.Tests, v.Number
	default:
		return TestRun{}, Invalid("/target", "invalid_target", `target must be "draft", "published" or v<n>`)
	}
	sel, err := testrun.Select(tests, in.Tests)
	var unknown *testrun.UnknownTestsError
	if errors.As(err, &unknown) {
		return TestRun{}, Invalid("/tests", "unknown_test", fmt.Sprintf("no test named %s (tests/<slug>.yaml)", strings.Join(unknown.Slugs, ", ")))
	}
	start := time.Now()
	res := testrun.Run(eng, sel)
	row.DurationMs = time.Since(start).Milliseconds()
	if err := b.storeRun(ctx, &row, res); err != nil {
		return TestRun{}, err
	}
	return testRunView(row), nil
}

// storeRun fills row from res and inserts it.
func (b *Backend) storeRun(ctx context.Context, row *store.TestRun, res testrun.Result) error {
	cases, err := json.Marshal(res.Cases)
	if err != nil {
		return err
	}
	row.Status, row.Total, row.Passed, row.Failed, row.Cases = res.Status, res.Total, res.Passed, res.Failed, cases
	return b.store.Write(ctx, func(tx store.Tx) error { return tx.InsertTestRun(ctx, *row) })
}

// TestRuns lists an agent's runs, newest first, without their cases.
func (b *Backend) TestRuns(ctx context.Context, p Principal, agentID, cursor string, limit int) ([]TestRun, string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, "", err
	}
	rs, next, err := b.store.ListTestRuns(ctx, a.ID, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]TestRun, 0, len(rs))
	for _, r := range rs {
		out = append(out, testRunView(r))
	}
	return out, next, nil
}

// TestRun returns one run with its cases.
func (b *Backend) TestRun(ctx context.Context, p Principal, agentID, runID string) (TestRun, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return TestRun{}, err
	}
	r, err := b.store.TestRun(ctx, a.ID, runID)
	if errors.Is(err, store.ErrNotFound) {
		return TestRun{}, Errorf("not_found", "agent %s has no test run %q", a.ID, runID)
	}
	if err != nil {
		return TestRun{}, err
	}
	return testRunView(r), nil
}

// draftSuite is the run of one compiled draft's tests, made at most once:
// the tree and the responder are deterministic, so every run of one tree
// gives the same result. The pre-publish report and publish share it.
type draftSuite struct {
	once   sync.Once
	result testrun.Result
	json   []byte // compiled/tests.json
	err    error

	mu    sync.Mutex
	runID string // the stored run the report shows, once stored
}

// suite runs cd's tests once. cd must have compiled cleanly.
func (cd *compiledDraft) suite() (*draftSuite, error) {
	s := &cd.tests
	s.once.Do(func() {
		s.result = testrun.Run(cd.engine.engine, cd.result.Tests)
		s.json, s.err = testrun.Encode(s.result)
	})
	return s, s.err
}

// ReportTests is the tests section of the pre-publish report.
type ReportTests struct {
	Total  int    `json:"total"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
	RunID  string `json:"runId"`
}

// reportTests runs (once per draft tree) and stores the suite of the
// draft the report describes; nil when it has no tests.
func (b *Backend) reportTests(ctx context.Context, agentID, rev string, cd *compiledDraft) (*ReportTests, error) {
	if !cd.result.OK() || cd.engine == nil || len(cd.result.Tests) == 0 {
		return nil, nil
	}
	s, err := cd.suite()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runID == "" {
		row := store.TestRun{ID: store.NewTestRunID(), AgentID: agentID, Target: "draft", DraftRevision: rev, CreatedAt: b.now()}
		if err := b.storeRun(ctx, &row, s.result); err != nil {
			return nil, err
		}
		s.runID = row.ID
	}
	return &ReportTests{Total: s.result.Total, Passed: s.result.Passed, Failed: s.result.Failed, RunID: s.runID}, nil
}

// publishGate runs the suite of the draft a publish freezes: with
// failures and without force, the publish fails with tests_failed;
// otherwise the release gains compiled/tests.json and the Tests trailer
// (and Tests-Forced when failures were forced through). A draft without
// tests publishes as before.
//
// The compiled draft is stored in *compiled, for Publish to share its
// responder with the new version.
func (b *Backend) publishGate(ctx context.Context, agentID string, force bool, compiled **compiledDraft) func(repo.GateInput) (repo.ReleaseExtras, error) {
	return func(g repo.GateInput) (repo.ReleaseExtras, error) {
		cd, err := b.cache.compiled(ctx, agentID, g.Tree, draftSource{changes: g.Changes, files: g.Files}, true)
		if err != nil {
			return repo.ReleaseExtras{}, err
		}
		if !cd.result.OK() || cd.engine == nil {
			return repo.ReleaseExtras{}, cd.result.Errors
		}
		*compiled = cd
		// The release's artifact is this compile of the tree, encoded now
		// (a draft does not keep its bytes); its digest is computed while
		// it is written, unless a report computed it before.
		art := repo.ReleaseExtras{Artifact: releaseParts(cd.result.EncodeParts()), Digest: cd.knownDigest()}
		if len(cd.result.Tests) == 0 {
			return art, nil
		}
		s, err := cd.suite()
		if err != nil {
			return repo.ReleaseExtras{}, err
		}
		r := s.result
		if r.Failed > 0 && !force {
			return repo.ReleaseExtras{}, Errorf("tests_failed", "%d of %d tests failed; fix them or publish with force: true", r.Failed, r.Total).
				With("failures", r.Failures())
		}
		x := art
		x.Files = map[string][]byte{strings.TrimPrefix(compile.TestsPath, "compiled/"): s.json}
		x.Trailers = []repo.Trailer{{Key: trailerTests, Value: fmt.Sprintf("%d/%d passed", r.Passed, r.Total)}}
		if r.Failed > 0 {
			x.Trailers = append(x.Trailers, repo.Trailer{Key: trailerTestsForced, Value: "true"})
		}
		return x, nil
	}
}

// releaseParts hands the artifact's parts, with their deflated form, to
// the repository.
func releaseParts(ps []compile.Part) []repo.Part {
	out := make([]repo.Part, len(ps))
	for i, p := range ps {
		out[i] = repo.Part{Data: p.Data, Deflated: p.Deflated, Adler32: p.Adler32}
	}
	return out
}

// parseTestsTrailer reads "<passed>/<total> passed"; nil when absent or
// malformed.
func parseTestsTrailer(s string) *store.TestTotals {
	frac, ok := strings.CutSuffix(s, " passed")
	if !ok {
		return nil
	}
	ps, ts, ok := strings.Cut(frac, "/")
	if !ok {
		return nil
	}
	p, err1 := strconv.Atoi(ps)
	t, err2 := strconv.Atoi(ts)
	if err1 != nil || err2 != nil || p < 0 || t < p {
		return nil
	}
	return &store.TestTotals{Total: t, Passed: p, Failed: t - p}
}

func testTotalsView(t *store.TestTotals) *TestTotals {
	if t == nil {
		return nil
	}
	return &TestTotals{Total: t.Total, Passed: t.Passed, Failed: t.Failed}
}
