package githttp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gzipBest compresses b as well as gzip can.
func gzipBest(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
	require.NoError(tb, err)
	_, err = zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return z.Bytes()
}

// haveBomb is a well-framed v0 upload-pack request: one want, then have
// lines of an unknown object up to size bytes.
func haveBomb(want string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(pkt("want " + want + " ofs-delta side-band-64k no-progress\n"))
	b.WriteString("0000")
	have := pkt("have " + strings.Repeat("0", 40) + "\n")
	for b.Len() < size {
		b.WriteString(have)
	}
	return b.Bytes()
}

// TestGzipBombRefusedWhileStreaming: gzip bodies inflating to 64 MiB are
// refused 413 with the text/plain sentence, read as a stream: the server
// allocates a small fraction of the inflated size. The zero-byte bomb is
// 63 KiB; the well-framed one reaches upload-pack's stdin before the
// limit cuts it.
func TestGzipBombRefusedWhileStreaming(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil) // DefaultMaxBodyBytes
	tests := []struct {
		name     string
		inflated []byte
		maxSize  int
	}{
		{"zero bytes", make([]byte, 64<<20), 64 << 10},
		{"NUL-free flushes", bytes.Repeat([]byte("0"), 64<<20), 64 << 10},
		{"have lines", haveBomb(mustGit(t, repo, "rev-parse", "draft"), 64<<20), 200 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := gzipBest(t, tt.inflated)
			require.Less(t, len(body), tt.maxSize, "the bomb is not small")
			t.Logf("bomb: %d bytes gzipped, %d MiB inflated", len(body), len(tt.inflated)>>20)
			hdr := postHeader(testKey)
			hdr.Set("Content-Encoding", "gzip")

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, answer := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, body)
			runtime.ReadMemStats(&after)

			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "body %q", answer)
			assert.Equal(t, "payload_too_large", problemOf(t, resp, answer))
			assert.Equal(t, fmt.Sprintf("payload_too_large: the request body exceeds %d bytes.\n", DefaultMaxBodyBytes), string(answer))
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated while serving: %d KiB", allocated>>10)
			assert.Less(t, allocated, uint64(4<<20), "the body was buffered, not streamed")
		})
	}
}

// TestLargeBodyStreamsToUploadPack: a valid body larger than the
// pre-buffer reaches upload-pack whole.
func TestLargeBodyStreamsToUploadPack(t *testing.T) {
	repo := newRepo(t, 2)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	draft := mustGit(t, repo, "rev-parse", "draft")
	var b bytes.Buffer
	b.WriteString(pkt("want " + draft + " ofs-delta side-band-64k no-progress\n"))
	b.WriteString("0000")
	for b.Len() < 3*preBuffer {
		b.WriteString(pkt("have " + strings.Repeat("0", 40) + "\n"))
	}
	b.WriteString(pkt("done\n"))
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", postHeader(testKey), b.Bytes())
	require.Equal(t, 200, resp.StatusCode, "body %q", body[:min(len(body), 200)])
	assert.True(t, bytes.HasPrefix(body, []byte("0008NAK\n")), "body starts %q", body[:min(len(body), 40)])
	assert.Contains(t, string(body), "PACK")

	// Cut by the limit in the streamed part: 413 all the same.
	small := newServer(t, map[string]string{testID: repo}, func(o *Options) { o.MaxBodyBytes = 2 * preBuffer })
	resp, body = do(t, small, "POST", "/git/"+testID+".git/git-upload-pack", postHeader(testKey), b.Bytes())
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "body %q", body)
	assert.Equal(t, "payload_too_large", problemOf(t, resp, body))
}

// slowHave is what trickle sends slowly: have lines, byte by byte.
var slowHave = pkt("have " + strings.Repeat("0", 40) + "\n")

// trickle sends a request whose body is fast followed by one byte (of
// slowHave lines) every interval, up to total bytes, on a raw connection,
// and returns the response and how long it took to come.
func trickle(tb testing.TB, srv *httptest.Server, hdr http.Header, fast []byte, total int, interval time.Duration) (*http.Response, []byte, time.Duration) {
	tb.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST /git/%s.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", testID, total)
	require.NoError(tb, hdr.Write(&head))
	head.WriteString("\r\n")
	head.Write(fast)
	start := time.Now()
	_, err = conn.Write(head.Bytes())
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for sent := len(fast); sent < total; sent++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			i := (sent - len(fast)) % len(slowHave)
			if _, err := conn.Write([]byte(slowHave[i : i+1])); err != nil {
				return
			}
		}
	}()
	require.NoError(tb, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(tb, err, "read response")
	body, _ := io.ReadAll(resp.Body)
	return resp, body, time.Since(start)
}

// TestSlowBodyCut: a body trickled at a byte per interval is answered 408
// once Options.BodyTimeout has passed, whether the trickle comes before
// upload-pack starts (within the pre-buffer) or while the body streams
// to it.
func TestSlowBodyCut(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, func(o *Options) { o.BodyTimeout = 300 * time.Millisecond })
	draft := mustGit(t, repo, "rev-parse", "draft")
	var big bytes.Buffer
	big.WriteString(pkt("want " + draft + " ofs-delta\n"))
	big.WriteString("0000")
	for big.Len() < 2*preBuffer {
		big.WriteString(pkt("have " + strings.Repeat("0", 40) + "\n"))
	}
	tests := []struct {
		name string
		fast []byte
	}{
		{"before upload-pack", []byte(pkt("want " + draft + "\n"))},
		{"streaming to upload-pack", big.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, took := trickle(t, srv, postHeader(testKey), tt.fast, len(tt.fast)+1000, 50*time.Millisecond)
			require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "body %q", body)
			assert.Equal(t, "request_timeout", problemOf(t, resp, body))
			assert.GreaterOrEqual(t, took, 300*time.Millisecond)
			assert.Less(t, took, 5*time.Second, "cut long after the 300ms body deadline")
		})
	}

	t.Run("a whole body clears the deadline", func(t *testing.T) {
		// A fetch whose body came in time but whose answer takes longer
		// than the body deadline is not cut.
		slow := newServer(t, map[string]string{testID: repo}, func(o *Options) { o.BodyTimeout = 50 * time.Millisecond })
		dst := mustClone(t, cloneURL(slow, testKey, testID), nil)
		addVersion(t, repo, 2)
		time.Sleep(100 * time.Millisecond)
		mustGit(t, dst, "fetch", "-q")
		assert.Equal(t, mustGit(t, repo, "rev-parse", "published"), mustGit(t, dst, "rev-parse", "origin/published"))
	})
}

// TestProcessCap: beyond Options.MaxProcesses, a request waits up to
// Options.QueueWait for a slot, then gets 503 with Retry-After; a slot
// freed in time is taken.
func TestProcessCap(t *testing.T) {
	gitPath, _ := fakeGit(t, "000eversion 2\\n")
	srv := newServer(t, map[string]string{testID: t.TempDir()}, func(o *Options) {
		o.GitPath = gitPath
		o.MaxProcesses = 1
		o.QueueWait = 300 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	openStream(t, ctx, srv) // holds the only slot

	start := time.Now()
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "body %q", body)
	assert.Equal(t, "unavailable", problemOf(t, resp, body))
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "answered before the queue wait")

	// A waiting request gets the slot when the first one ends.
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	openStream(t, ctx2, srv)
}

// streamedBomb gzips size bytes of fill after prefix without holding the
// inflated body in memory.
func streamedBomb(tb testing.TB, prefix []byte, fill []byte, size int) []byte {
	tb.Helper()
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
	require.NoError(tb, err)
	_, err = zw.Write(prefix)
	require.NoError(tb, err)
	chunk := bytes.Repeat(fill, (32<<10)/len(fill))
	for n := len(prefix); n < size; n += len(chunk) {
		_, err = zw.Write(chunk)
		require.NoError(tb, err)
	}
	require.NoError(tb, zw.Close())
	return z.Bytes()
}

// rssKiB returns the process's resident set size in KiB.
func rssKiB(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(tb, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			require.NoError(tb, err)
			return n
		}
	}
	require.FailNow(tb, "no VmRSS")
	return 0
}

// TestConcurrentBombsKeepMemoryFlat: 12 concurrent 64 MiB gzip bombs (6
// of zero bytes, 6 of have lines that reach upload-pack) are all refused
// 413 while the server's resident memory stays flat.
func TestConcurrentBombsKeepMemoryFlat(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	draft := mustGit(t, repo, "rev-parse", "draft")
	zeros := streamedBomb(t, nil, []byte{0}, 64<<20)
	haves := streamedBomb(t, []byte(pkt("want "+draft+" ofs-delta\n")+"0000"), []byte(pkt("have "+strings.Repeat("0", 40)+"\n")), 64<<20)
	hdr := postHeader(testKey)
	hdr.Set("Content-Encoding", "gzip")

	runtime.GC()
	before := rssKiB(t)
	peak := before
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				peak = max(peak, rssKiB(t))
			}
		}
	}()
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	for i := range statuses {
		body := zeros
		if i%2 == 1 {
			body = haves
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, body)
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i, s := range statuses {
		assert.Equal(t, http.StatusRequestEntityTooLarge, s, "request %d", i)
	}
	t.Logf("RSS before %d MiB, peak during 12 concurrent bombs %d MiB (+%d MiB)", before>>10, peak>>10, (peak-before)>>10)
	assert.Less(t, peak-before, 48<<10, "RSS grew by %d KiB", peak-before)
}
