package backend_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/server/backend"
)

// BenchmarkEditScale (issue 10 §2, §6): on the acme agent plus 10, 1,000
// and 5,000 articles, in one world wired as the daemon is (one compiler
// with its per-file cache shared by publish and the backend), each
// iteration times, per size:
//   - publish: a one-article edit then a publish;
//   - draft: a one-article edit then a draft session and its first message.
//
// The sizes run side by side in each iteration, so machine load hits them
// alike. Targets: 1,000 within 3× of 10 for both; the same holding at 5,000.
// Reports ms per size and the ratios to 10 articles.
//
// FLOWYTE_BENCH_PROFILE=file writes a CPU profile of the timed part only
// (not the imports), its samples labelled size=<articles>,
// phase=publish|draft and run=<size>-<phase>: go tool pprof -tagfocus
// run=5000-draft file.
func BenchmarkEditScale(b *testing.B) {
	sizes := []int{10, 1000, 5000}
	w := newSharedWorld(b)
	ctx := context.Background()
	ids := make([]string, len(sizes))
	for k, n := range sizes {
		ids[k] = w.publishedArticles(b, n).ID
	}
	rev := 0
	edit := func(k int) time.Duration {
		rev++
		start := time.Now()
		w.commit(b, ids[k], backend.Change{Path: fmt.Sprintf("knowledge/article-%04d.md", rev%10), Content: fixtures.Article(rev%10, rev)})
		return time.Since(start)
	}
	edits := make([]time.Duration, len(sizes))
	publish := make([]time.Duration, len(sizes))
	draft := make([]time.Duration, len(sizes))
	if path := os.Getenv("FLOWYTE_BENCH_PROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	labelled := func(k int, phase string, f func()) {
		pprof.Do(ctx, pprof.Labels("size", strconv.Itoa(sizes[k]), "phase", phase, "run", strconv.Itoa(sizes[k])+"-"+phase), func(context.Context) { f() })
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range sizes {
			k := (i + j) % len(sizes) // rotate the order
			labelled(k, "publish", func() {
				took := edit(k)
				start := time.Now()
				_, err := w.b.Publish(ctx, w.admin, ids[k], backend.PublishInput{})
				require.NoError(b, err)
				publish[k] += took + time.Since(start)
				edits[k] += took
			})
			labelled(k, "draft", func() {
				took := edit(k)
				start := time.Now()
				s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: ids[k], DraftMode: true})
				require.NoError(b, err)
				_, err = w.b.PostMessage(ctx, w.admin, s.ID, "How long does shipping take?")
				require.NoError(b, err)
				draft[k] += took + time.Since(start)
				edits[k] += took
			})
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	for k, n := range sizes {
		b.ReportMetric(ms(publish[k]), fmt.Sprintf("publish-%d-ms", n))
		b.ReportMetric(ms(draft[k]), fmt.Sprintf("draft-%d-ms", n))
		b.ReportMetric(ms(edits[k])/2, fmt.Sprintf("edit-%d-ms", n))
		if k > 0 {
			b.ReportMetric(float64(publish[k])/float64(publish[0]), fmt.Sprintf("publish-%d/10", n))
			b.ReportMetric(float64(draft[k])/float64(draft[0]), fmt.Sprintf("draft-%d/10", n))
		}
	}
}
