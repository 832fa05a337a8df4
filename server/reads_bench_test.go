package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

// BenchmarkCompiledVsHealthz (issue 10 §5) measures side by side, in one
// run, with 32 parallel clients over HTTP: /healthz, GET
// /agents/{id}/versions/v1/compiled (200, the artifact of the richest
// fixture plus 200 articles) and the same GET with If-None-Match of its
// ETag (304). The backend is wired as the daemon wires it (one compiler
// with a per-file cache; the default --cache-bytes split). Targets:
// compiled ≥ 0.6× healthz, 304 ≥ 0.8×.
func BenchmarkCompiledVsHealthz(b *testing.B) {
	e := newEnv(b)
	const cacheBytes = 384 << 20
	opts := e.opts
	opts.Compiler = compile.NewCompiler(compile.NewCache(cacheBytes / 6))
	opts.CacheBytes = cacheBytes * 4 / 6
	e.serve(opts)
	id := e.createAgent("bench")
	e.loadFixture(id, "acme-support")
	changes := []map[string]any{}
	for i := range 200 {
		changes = append(changes, map[string]any{"path": "knowledge/a" + itoa(i) + ".md", "content": "# Article " + itoa(i) + "\n\nSome words about topic " + itoa(i) + ".\n"})
	}
	e.must(201, "POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"changes": changes})
	v := e.publish(id)
	url := e.srv.URL + "/agents/" + id + "/versions/" + v + "/compiled"
	first := e.must(200, "GET", "/agents/"+id+"/versions/"+v+"/compiled", e.reader, nil)
	etag := first.Header.Get("ETag")
	require.NotEmpty(b, etag)
	conditional := func(c *http.Client) int {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+e.reader)
		req.Header.Set("If-None-Match", etag)
		res, err := c.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	const n, conc = 4000, 32
	var health, full, notMod float64
	for b.Loop() {
		health = hammer(b, n, conc, func(c *http.Client) int { return get(c, e.srv.URL+"/healthz", "") }, 200)
		full = hammer(b, n, conc, func(c *http.Client) int { return get(c, url, e.reader) }, 200)
		notMod = hammer(b, n, conc, conditional, 304)
	}
	b.ReportMetric(health, "healthz/s")
	b.ReportMetric(full, "compiled/s")
	b.ReportMetric(notMod, "304/s")
	b.ReportMetric(full/health, "compiled-ratio")
	b.ReportMetric(notMod/health, "304-ratio")
	b.ReportMetric(float64(len(first.body))/1024, "artifact-KiB")
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	p := len(buf)
	for ; i > 0; i /= 10 {
		p--
		buf[p] = byte('0' + i%10)
	}
	return string(buf[p:])
}
