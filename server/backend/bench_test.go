package backend_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// benchConversations are two 5-turn conversations with the acme agent,
// each turn with expectations, covering knowledge, playbooks with skill
// calls, both guardrails, the handoff and the fallback.
var benchConversations = []string{`turns:
  - user: I want to return an item
    expect: {playbook: start-return, replyContains: ["order number"]}
  - user: A-10442
    expect: {playbook: start-return}
  - user: damaged
    expect:
      skillCalls: [{skill: create-return, with: {orderId: A-10442}}]
      replyMatches: "return for order A-10442 is open"
  - user: How long does shipping take?
    expect: {knowledge: [shipping], fallback: false}
  - user: Is my drill under warranty?
    expect: {knowledge: [warranty]}
`, `turns:
  - user: What are your store hours?
    expect: {playbook: store-hours}
  - user: bob@example.com
    expect: {guardrail: pii-redaction, replyNotContains: ["bob@example.com"]}
  - user: you stupid bot
    expect: {guardrail: abuse-and-competitors}
  - user: Tell me about quantum physics
    expect: {fallback: true}
  - user: Can I talk to a human?
    expect: {playbook: talk-to-human, replyContains: ["connecting you"]}
`}

// newSharedWorld is newWorld wired as the daemon is (cmd/flowyted
// openData and serve with the default limits): publish and the backend
// share one compiler with a per-file cache, and the --cache-bytes default
// (384 MiB) is split as the daemon splits it.
func newSharedWorld(tb testing.TB) *world {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	const cacheBytes = 384 << 20
	compiles := compile.NewCache(cacheBytes / 6)
	compiler := compile.NewCompiler(compiles)
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), PackThreshold: 256, MaxFiles: 20000, MaxDraftBytes: 256 << 20, CacheBytes: cacheBytes / 6, Compile: releaseCompile(compiler.Compile)})
	require.NoError(tb, err)
	w := &world{b: backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop(), Compiler: compiler, CacheBytes: cacheBytes * 4 / 6}), st: st, repos: repos, compiles: compiles}
	w.admin = w.principal(tb, "a", "admin", backend.AllScopes...)
	return w
}

// publishedArticles creates an acme agent with n generated articles,
// publishes it and packs its repository: the steady state after an
// import (housekeeping packs an import's loose objects once, in the
// background; timed work must not race it).
func (w *world) publishedArticles(tb testing.TB, n int) backend.Agent {
	tb.Helper()
	ctx := context.Background()
	a := w.agentFromFixture(tb)
	changes := make([]backend.Change, n)
	for i := range n {
		changes[i] = backend.Change{Path: fmt.Sprintf("knowledge/article-%04d.md", i), Content: fixtures.Article(i, 0)}
	}
	w.commit(tb, a.ID, changes...)
	_, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(tb, err)
	_, err = w.repos.Housekeep(ctx, a.ID)
	require.NoError(tb, err)
	return a
}

// publisher publishes a one-line change of an acme agent whose tests are
// replaced by n tests of 5 turns.
type publisher struct {
	w  *world
	id string
	n  int
	i  int
}

func newPublisher(tb testing.TB, w *world, n int) *publisher {
	tb.Helper()
	a := w.agentFromFixture(tb)
	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	var changes []backend.Change
	for p := range files {
		if strings.HasPrefix(p, "tests/") {
			changes = append(changes, backend.Change{Path: p, Delete: true})
		}
	}
	for i := range n {
		changes = append(changes, backend.Change{Path: fmt.Sprintf("tests/t%02d.yaml", i), Content: []byte(benchConversations[i%2])})
	}
	w.commit(tb, a.ID, changes...)
	return &publisher{w: w, id: a.ID, n: n}
}

// edit changes the draft (not timed).
func (p *publisher) edit(tb testing.TB) {
	p.i++
	p.w.commit(tb, p.id, backend.Change{Path: "knowledge/bench.md", Content: fmt.Appendf(nil, "# Bench\n\nEdit %d.\n", p.i)})
}

// publish publishes the draft and returns how long it took.
func (p *publisher) publish(tb testing.TB) time.Duration {
	start := time.Now()
	v, err := p.w.b.Publish(context.Background(), p.w.admin, p.id, backend.PublishInput{})
	took := time.Since(start)
	require.NoError(tb, err)
	if p.n > 0 && (v.Version.Tests == nil || v.Version.Tests.Passed != p.n) {
		require.FailNow(tb, fmt.Sprintf("tests=%+v, want %d passed", v.Version.Tests, p.n))
	}
	return took
}

// BenchmarkPublishTests compares publish without tests with publish gated
// by a 50 tests × 5 turns suite (target: within 2×). Each iteration
// publishes both agents back to back, so load on a shared machine hits
// both alike; ratio is the gated publish's time over the plain one's.
func BenchmarkPublishTests(b *testing.B) {
	w := newSharedWorld(b)
	plain, gated := newPublisher(b, w, 0), newPublisher(b, w, 50)
	var tPlain, tGated time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		plain.edit(b)
		gated.edit(b)
		b.StartTimer()
		if i%2 == 0 {
			tPlain += plain.publish(b)
			tGated += gated.publish(b)
		} else {
			tGated += gated.publish(b)
			tPlain += plain.publish(b)
		}
	}
	b.ReportMetric(float64(tPlain.Microseconds())/1000/float64(b.N), "plain-ms")
	b.ReportMetric(float64(tGated.Microseconds())/1000/float64(b.N), "gated-ms")
	b.ReportMetric(float64(tGated)/float64(tPlain), "ratio")
}
