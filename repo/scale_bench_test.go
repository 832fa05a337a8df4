package repo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
)

// BenchmarkWriteScale (issue 10 §2, §6) isolates the repository write path
// of BenchmarkEditScale: on the acme agent plus 10, 1,000 and 5,000
// articles in one Store, with the daemon's compiler (its per-file cache
// shared by every publish), each iteration times per size a one-article
// CommitDraft and then a Publish. compile-N-ms is the part of the publish
// spent in the compile function; the rest is the repository's. The sizes
// run side by side, rotated, so machine load hits them alike.
func BenchmarkWriteScale(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) { benchWriteScale(b, sync) })
	}
}

func benchWriteScale(b *testing.B, sync bool) {
	ctx := context.Background()
	sizes := []int{10, 1000, 5000}
	compiler := compile.NewCompiler(compile.NewCache(64 << 20))
	var compileTook time.Duration
	s := mustOpenStore(b, func(o *Options) {
		o.Sync = sync
		o.MaxFiles = 20000
		o.MaxDraftBytes = 256 << 20
		o.Compile = func(files map[string][]byte) ([]byte, error) {
			start := time.Now()
			defer func() { compileTook += time.Since(start) }()
			res := compiler.Compile(files)
			if !res.OK() {
				return nil, res.Errors
			}
			return res.JSON, nil
		}
	})
	b.Cleanup(func() { _ = s.Close() })
	base, err := fixtures.Files("acme-support")
	require.NoError(b, err)
	ids := make([]string, len(sizes))
	for k, n := range sizes {
		files := map[string][]byte{}
		for p, data := range base {
			files[p] = data
		}
		for i := range n {
			files[fmt.Sprintf("knowledge/article-%04d.md", i)] = fixtures.Article(i, 0)
		}
		ids[k] = fmt.Sprintf("scale-%d", n)
		mustCreate(b, s, ids[k], files)
		_, err := s.Publish(ctx, ids[k], PublishRequest{}, nil)
		require.NoError(b, err)
		// Packed, as months of use leave it: the first timed writes do
		// not wait for the repack of thousands of new loose objects.
		_, err = s.Housekeep(ctx, ids[k])
		require.NoError(b, err)
	}
	commits := make([]time.Duration, len(sizes))
	publishes := make([]time.Duration, len(sizes))
	compiles := make([]time.Duration, len(sizes))
	rev := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range sizes {
			k := (i + j) % len(sizes)
			rev++
			start := time.Now()
			_, err := s.CommitDraft(ctx, ids[k], CommitRequest{Changes: []Change{{
				Path: fmt.Sprintf("knowledge/article-%04d.md", rev%10), Content: fixtures.Article(rev%10, rev)}}}, nil)
			require.NoError(b, err)
			commits[k] += time.Since(start)
			compileTook = 0
			start = time.Now()
			_, err = s.Publish(ctx, ids[k], PublishRequest{}, nil)
			require.NoError(b, err)
			publishes[k] += time.Since(start)
			compiles[k] += compileTook
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	for k, n := range sizes {
		b.ReportMetric(ms(commits[k]), fmt.Sprintf("commit-%d-ms", n))
		b.ReportMetric(ms(publishes[k]), fmt.Sprintf("publish-%d-ms", n))
		b.ReportMetric(ms(compiles[k]), fmt.Sprintf("compile-%d-ms", n))
	}
}
