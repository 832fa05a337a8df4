package githttp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bigRepo builds, in one fast-import run, a bare repository with the
// flowyte layout and n versions: n draft commits, n release commits and n
// annotated tags.
func bigRepo(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	mustGit(tb, dir, "init", "-q", "--bare", dir)
	mustGit(tb, dir, "symbolic-ref", "HEAD", "refs/heads/draft")
	var s bytes.Buffer
	fmt.Fprintf(&s, "commit refs/heads/draft\ncommitter Tester <t@example.com> 1700000000 +0000\n")
	writeData(&s, "create agent")
	writeInline(&s, "agent.yaml", "name: test\n")
	writeInline(&s, "knowledge/intro.md", "# Intro\n\nHello.\n")
	for v := 1; v <= n; v++ {
		when := 1700000000 + int64(v)*60
		// No "from": the draft continues from its own tip.
		fmt.Fprintf(&s, "commit refs/heads/draft\nmark :%d\ncommitter Tester <t@example.com> %d +0000\n", 2*v, when)
		writeData(&s, fmt.Sprintf("edit %d", v))
		writeInline(&s, "agent.yaml", fmt.Sprintf("name: test\ndescription: revision %d\n", v))
		writeInline(&s, fmt.Sprintf("knowledge/article-%d.md", v%50), fmt.Sprintf("# Article\n\nRevision %d of this article.\n", v))
		fmt.Fprintf(&s, "\ncommit refs/heads/published\nmark :%d\ncommitter Tester <t@example.com> %d +0000\n", 2*v+1, when)
		writeData(&s, fmt.Sprintf("release v%d", v))
		fmt.Fprintf(&s, "from :%d\n", 2*v)
		writeInline(&s, "compiled/agent.json", fmt.Sprintf(`{"name":"test","revision":%d}`+"\n", v))
		fmt.Fprintf(&s, "\ntag v%d\nfrom :%d\ntagger Tester <t@example.com> %d +0000\n", v, 2*v+1, when)
		writeData(&s, fmt.Sprintf("notes: version %d\npublisher: tester\n", v))
	}
	mustFastImport(tb, dir, s.Bytes())
	// Pack it as the daemon's repositories would be after a gc.
	mustGit(tb, dir, "repack", "-adq")
	return dir
}

// BenchmarkClone clones a repository with 1,000 versions (annotated tags)
// over smart HTTP and over file://, alternately, and reports both times
// and their ratio (target: http/file ≤ 1.5).
func BenchmarkClone(b *testing.B) {
	repo := bigRepo(b, 1000)
	srv := newServer(b, map[string]string{testID: repo}, nil)
	httpURL := cloneURL(srv, testKey, testID)
	fileURL := "file://" + repo
	work := b.TempDir()

	clone := func(url string) time.Duration {
		dst, err := os.MkdirTemp(work, "clone")
		require.NoError(b, err)
		start := time.Now()
		_, stderr, err := gitRun(b, "", nil, nil, "clone", "-q", url, filepath.Join(dst, "c"))
		require.NoError(b, err, "clone %s\n%s", url, stderr)
		d := time.Since(start)
		require.NoError(b, os.RemoveAll(dst))
		return d
	}
	// Warm both paths (page cache, first pack-objects run).
	clone(fileURL)
	clone(httpURL)

	var viaHTTP, viaFile time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		viaFile += clone(fileURL)
		viaHTTP += clone(httpURL)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(viaHTTP.Milliseconds())/n, "http-ms/op")
	b.ReportMetric(float64(viaFile.Milliseconds())/n, "file-ms/op")
	b.ReportMetric(float64(viaHTTP)/float64(viaFile), "http/file")
}

// BenchmarkFetchAfterPublish measures a plain fetch of one new version
// into a clone of a repository with 1,000 versions, and reports the
// objects it brought (TestIncrementalFetch asserts the bound).
func BenchmarkFetchAfterPublish(b *testing.B) {
	repo := bigRepo(b, 1000)
	srv := newServer(b, map[string]string{testID: repo}, nil)
	dst := mustClone(b, cloneURL(srv, testKey, testID), nil)
	var objects int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		addVersion(b, repo, 1001+i)
		before := objectCount(b, dst)
		b.StartTimer()
		_, stderr, err := gitRun(b, dst, nil, nil, "fetch", "-q")
		require.NoError(b, err, "fetch\n%s", stderr)
		b.StopTimer()
		objects += objectCount(b, dst) - before
		b.StartTimer()
	}
	b.ReportMetric(float64(objects)/float64(b.N), "objects/op")
}
