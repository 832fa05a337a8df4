package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// hammer sends n requests from conc goroutines and returns requests/s.
func hammer(tb testing.TB, n, conc int, send func(c *http.Client) int, want int) float64 {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
	var left atomic.Int64
	left.Store(int64(n))
	var bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if send(client) != want {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	require.Zero(tb, bad.Load(), "requests that did not answer %d", want)
	return float64(n) / el.Seconds()
}

// send makes one request and returns its status (0 on a transport error).
func send(c *http.Client, method, url, key string, body []byte) int {
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rdr)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func post(c *http.Client, url, key string, body []byte) int { return send(c, "POST", url, key, body) }

func get(c *http.Client, url, key string) int { return send(c, "GET", url, key, nil) }

// BenchmarkSessionCreateVsHealthz measures, side by side in one run, the
// throughput of POST /chat/sessions on a published agent and of /healthz.
// Target: sessions ≥ 25% of healthz.
func BenchmarkSessionCreateVsHealthz(b *testing.B) {
	e := newEnv(b)
	id := e.createAgent("bench")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	body := []byte(`{"agentId":"` + id + `"}`)
	const n, conc = 4000, 32
	var health, sess float64
	for b.Loop() {
		health = hammer(b, n, conc, func(c *http.Client) int { return get(c, e.srv.URL+"/healthz", "") }, 200)
		sess = hammer(b, n, conc, func(c *http.Client) int { return post(c, e.srv.URL+"/chat/sessions", e.admin, body) }, 201)
	}
	b.ReportMetric(health, "healthz/s")
	b.ReportMetric(sess, "sessions/s")
	b.ReportMetric(sess/health, "ratio")
}

// BenchmarkMessageTurn answers messages on the richest fixture agent
// through the HTTP API and reports the p50 and p99 turn latency.
func BenchmarkMessageTurn(b *testing.B) {
	e := newEnv(b)
	id := e.createAgent("bench")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	sid := str(b, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(b), "id")
	texts := []string{"How long do I have to return something?", "do you ship abroad?", "what payment methods do you take?", "tell me about the warranty", "hello there"}
	client := &http.Client{}
	url := e.srv.URL + "/chat/sessions/" + sid + "/messages"
	var lat []time.Duration
	i := 0
	for b.Loop() {
		body := []byte(`{"text":"` + texts[i%len(texts)] + `"}`)
		i++
		start := time.Now()
		require.Equal(b, 200, post(client, url, e.admin, body), "message status")
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkVersionsPage: a page of versions (limit=50) costs the same
// whatever the history length (the index is read by key range, no tag
// scan). A history of 10 fills only 10 rows of the page, so compare 50
// with 10,000 for equal pages; "10000-deep" pages from v100 down.
func BenchmarkVersionsPage(b *testing.B) {
	for _, total := range []int{10, 50, 10000, -10000} {
		deep := total < 0
		total := max(total, -total)
		name := strconv.Itoa(total)
		if deep {
			name += "-deep"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			id := e.createAgent("many")
			ctx := context.Background()
			err := e.store.Write(ctx, func(tx store.Tx) error {
				for n := 1; n <= total; n++ {
					if err := tx.InsertVersion(ctx, store.Version{AgentID: id, Number: n, Commit: strings.Repeat("a", 40), DraftRevision: strings.Repeat("b", 40), Digest: "sha256:x", CreatedAt: time.Now()}); err != nil {
						return err
					}
				}
				return tx.SetPublished(ctx, id, total, total)
			})
			require.NoError(b, err, "seed versions")
			client := &http.Client{}
			url := e.srv.URL + "/agents/" + id + "/versions?limit=50"
			if deep {
				url += "&cursor=v100"
			}
			for b.Loop() {
				require.Equal(b, 200, get(client, url, e.reader), "versions page status")
			}
		})
	}
}

// BenchmarkManyAgentsRSS creates FLOWYTE_BENCH_AGENTS agents (default
// 10,000), reads each one's draft through the API (which opens its
// repository), and reports the process's resident memory afterwards.
// Target: under 150 MiB; open repositories are bounded by an LRU.
func BenchmarkManyAgentsRSS(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("FLOWYTE_BENCH_AGENTS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		e := newEnv(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		ids := make([]string, 0, n)
		for i := range n {
			st := post(client, e.srv.URL+"/agents", e.admin, []byte(fmt.Sprintf(`{"name":"agent %d"}`, i)))
			require.Equal(b, 201, st, "create agent %d", i)
		}
		next := ""
		for {
			page := e.must(200, "GET", "/agents?limit=200"+cursorParam(next), e.reader, nil).json(b)
			data := arr(b, page, "data")
			for i := range data {
				ids = append(ids, str(b, elem(b, data, i), "id"))
			}
			if page["nextCursor"] == nil {
				break
			}
			next = str(b, page, "nextCursor")
		}
		for _, id := range ids {
			require.Equal(b, 200, get(client, e.srv.URL+"/agents/"+id+"/draft", e.reader), "draft %s status", id)
		}
		runtime.GC()
		debug.FreeOSMemory()
		b.ReportMetric(float64(rssBytes())/(1<<20), "RSS-MiB")
		b.ReportMetric(float64(len(ids)), "agents")
		// Startup recovery over every agent, all in step (a restart).
		start := time.Now()
		_, err := e.backend.Recover(context.Background())
		require.NoError(b, err, "recover")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "recover-ms")
	}
}

func cursorParam(c string) string {
	if c == "" {
		return ""
	}
	return "&cursor=" + c
}

// rssBytes reads VmRSS from /proc/self/status (0 elsewhere).
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
