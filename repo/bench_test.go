package repo

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchAgent makes an agent with files draft files and versions published
// versions, each version changing one file.
func benchAgent(b *testing.B, sync bool, files, versions int) *Store {
	b.Helper()
	ctx := context.Background()
	s := mustOpenStore(b, func(o *Options) { o.Sync = sync })
	init := map[string][]byte{}
	for i := 0; i < files; i++ {
		init[fmt.Sprintf("knowledge/article-%03d.md", i)] = []byte(strings.Repeat(fmt.Sprintf("Line %d of article %d.\n", i, i), 20))
	}
	mustCreate(b, s, testID, init)
	for v := 1; v <= versions; v++ {
		if v > 1 {
			p := fmt.Sprintf("knowledge/article-%03d.md", v%files)
			_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(p, fmt.Sprintf("%sedit %d\n", init[p], v))}}, nil)
			require.NoError(b, err)
		}
		_, err := s.Publish(ctx, testID, PublishRequest{}, nil)
		require.NoError(b, err)
	}
	return s
}

// BenchmarkPublish measures one publish on an agent with 200 draft files
// and 1,000 earlier versions; the draft edit before each publish is not
// timed.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	s := benchAgent(b, false, 200, 1000)
	i := 0
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s.o.Sync = sync
			for b.Loop() {
				b.StopTimer()
				i++
				_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("knowledge/bench.md", fmt.Sprint(i))}}, nil)
				require.NoError(b, err)
				b.StartTimer()
				_, err = s.Publish(ctx, testID, PublishRequest{Notes: "bench"}, nil)
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkCommitDraft measures one single-file draft commit on an agent
// with 200 files.
func BenchmarkCommitDraft(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			ctx := context.Background()
			s := benchAgent(b, false, 200, 1)
			s.o.Sync = sync
			i := 0
			for b.Loop() {
				i++
				_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("knowledge/bench.md", fmt.Sprint(i))}}, nil)
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkDiff compares Diff v1..v1000 with `git diff v1 v1000` on the
// same repository.
func BenchmarkDiff(b *testing.B) {
	ctx := context.Background()
	s := benchAgent(b, false, 200, 1000)
	dir := s.Path(testID)
	var ours Diff
	b.Run("flowyte", func(b *testing.B) {
		for b.Loop() {
			d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevVersion, Number: 1000}, false)
			require.NoError(b, err)
			ours = d
		}
		b.ReportMetric(float64(len(ours.Files)), "files")
	})
	b.Run("flowyte-cold", func(b *testing.B) {
		// A fresh Store per run: nothing cached, the repository is opened
		// and every tree and blob read from disk.
		for b.Loop() {
			b.StopTimer()
			cold, err := Open(Options{Root: s.o.Root})
			require.NoError(b, err)
			b.StartTimer()
			_, err = cold.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevVersion, Number: 1000}, false)
			require.NoError(b, err)
		}
	})
	b.Run("git-cli", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command("/usr/bin/git", "--git-dir="+dir, "diff", "--no-renames", "v1", "v1000").Output()
			require.NoError(b, err)
			require.NotEmpty(b, out, "empty git diff")
		}
	})
}
