package main

// Benchmarks of the built daemon, measured from outside (issues 10 and 13):
// clone after a long history, RSS after big drafts and versions, /readyz
// after a restart at many agents, and the PostgreSQL comparisons. They use a
// binary built without -race (TestMain's is a race build, whose memory and
// speed say nothing about production) and start it with --log-level warn.
// Run one with, for example:
//
//	go test -run='^$' -bench=BenchmarkDaemonClone -benchtime=1x ./cmd/flowyted

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/server/store/pgtest"
)

var bench struct {
	once sync.Once
	bin  string
	err  error
}

// benchDaemon starts the non-race daemon over data.
func benchDaemon(tb testing.TB, data string, extra ...string) *daemon {
	tb.Helper()
	bench.once.Do(func() {
		bench.bin = filepath.Join(filepath.Dir(binPath), "flowyted-bench")
		out, err := exec.Command("go", "build", "-o", bench.bin, ".").CombinedOutput()
		if err != nil {
			bench.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	require.NoError(tb, bench.err)
	old := binPath
	binPath = bench.bin
	defer func() { binPath = old }()
	return startDaemon(tb, data, append([]string{"--log-level", "warn"}, extra...)...)
}

// benchEnv reads a positive integer from the environment, or def.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// bigAgent creates an agent holding the acme-support fixture plus n
// articles in one draft commit, and returns its id.
func bigAgent(tb testing.TB, d *daemon, key string, n int) string {
	tb.Helper()
	id := strField(tb, mustCall(tb, "POST", d.url+"/agents", key, map[string]any{"name": fmt.Sprintf("big %d", n)}, 201), "id")
	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	var changes []map[string]any
	for p, data := range files {
		changes = append(changes, map[string]any{"path": p, "content": string(data)})
	}
	for i := range n {
		changes = append(changes, map[string]any{"path": fmt.Sprintf("knowledge/article-%04d.md", i), "content": string(fixtures.Article(i, 0))})
		if len(changes) == 200 { // a request body is capped at 1.25 MiB
			mustCall(tb, "POST", d.url+"/agents/"+id+"/draft/commits", key, map[string]any{"message": "import", "changes": changes}, 201)
			changes = nil
		}
	}
	if len(changes) > 0 {
		mustCall(tb, "POST", d.url+"/agents/"+id+"/draft/commits", key, map[string]any{"message": "import", "changes": changes}, 201)
	}
	return id
}

// putFile writes one draft file.
func putFile(tb testing.TB, c *http.Client, d *daemon, key, id, path string, body []byte) {
	tb.Helper()
	st, res, err := call(c, "PUT", d.url+"/agents/"+id+"/draft/files/"+path, key, body)
	require.NoError(tb, err)
	require.Equal(tb, 200, st, "PUT %s: %v", path, res)
}

// blast sends n requests from conc goroutines, each to urls[i%len(urls)]
// with the given method and body, and returns requests/s; every answer
// must be want.
func blast(tb testing.TB, urls []string, n, conc int, method, key string, body []byte, hdr map[string]string, want int) float64 {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var left atomic.Int64
	left.Store(int64(n))
	var bad atomic.Int64
	var lastBad atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; left.Add(-1) >= 0; i++ {
				var rdr io.Reader
				if body != nil {
					rdr = bytes.NewReader(body)
				}
				req, _ := http.NewRequest(method, urls[i%len(urls)], rdr)
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				res, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					lastBad.Store(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					bad.Add(1)
					lastBad.Store(res.Status)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	require.Zero(tb, bad.Load(), "requests that did not answer %d (last: %v)", want, lastBad.Load())
	return float64(n) / el.Seconds()
}

// statusKiB reads a field (VmRSS, VmHWM) of /proc/<pid>/status in KiB.
func statusKiB(tb testing.TB, pid int, field string) int {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(tb, err)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			n, err := strconv.Atoi(strings.Fields(line)[1])
			require.NoError(tb, err)
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// duKiB is what `du -sk` reports for dir.
func duKiB(tb testing.TB, dir string) int {
	tb.Helper()
	out, err := exec.Command("du", "-sk", dir).Output()
	require.NoError(tb, err)
	n, err := strconv.Atoi(strings.Fields(string(out))[0])
	require.NoError(tb, err)
	return n
}

// BenchmarkDaemonClone (issue 10 §1): an agent of the acme-support fixture
// plus 20 articles gets FLOWYTE_BENCH_VERSIONS versions (default 1,000),
// each a one-article PUT then a publish through the daemon's API, with
// housekeeping as configured by default. Then, alternately, `git clone`
// over the daemon's smart HTTP and `git clone file://` of a `git gc
// --aggressive` copy. Targets: clone ≤ 1.5× the copy's, disk ≤ 3×.
func BenchmarkDaemonClone(b *testing.B) {
	versions := benchEnv("FLOWYTE_BENCH_VERSIONS", 1000)
	data := b.TempDir()
	d := benchDaemon(b, data)
	key := d.bootstrapKey()
	id := bigAgent(b, d, key, 20)
	c := &http.Client{}
	build := time.Now()
	for v := 1; v <= versions; v++ {
		if v > 1 {
			putFile(b, c, d, key, id, fmt.Sprintf("knowledge/article-%04d.md", v%20), fixtures.Article(v%20, v))
		}
		st, res, err := call(c, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{})
		require.NoError(b, err)
		require.Equal(b, 201, st, "publish v%d: %v", v, res)
	}
	b.Logf("%d versions built through the API in %v", versions, time.Since(build).Round(time.Millisecond))
	// Let background housekeeping settle, as a daemon idle for a moment would.
	time.Sleep(2 * time.Second)
	repoDir := filepath.Join(data, "agents", id+".git")
	gc := filepath.Join(b.TempDir(), "gc.git")
	out, err := exec.Command("cp", "-a", repoDir, gc).CombinedOutput()
	require.NoError(b, err, "%s", out)
	out, err = exec.Command("git", "--git-dir="+gc, "gc", "--aggressive", "--prune=now", "-q").CombinedOutput()
	require.NoError(b, err, "%s", out)

	httpURL := strings.Replace(d.url, "http://", "http://x:"+key+"@", 1) + "/git/" + id + ".git"
	work := b.TempDir()
	clone := func(url string) time.Duration {
		dst, err := os.MkdirTemp(work, "clone")
		require.NoError(b, err)
		start := time.Now()
		out, err := exec.Command("git", "clone", "-q", "--bare", url, filepath.Join(dst, "c.git")).CombinedOutput()
		took := time.Since(start)
		require.NoError(b, err, "clone %s: %s", url, out)
		require.NoError(b, os.RemoveAll(dst))
		return took
	}
	clone("file://" + gc)
	clone(httpURL)
	var viaHTTP, viaFile time.Duration
	i := 0
	for b.Loop() { // b.Loop: the history is built once, whatever -benchtime
		i++
		if i%2 == 0 {
			viaHTTP += clone(httpURL)
			viaFile += clone("file://" + gc)
		} else {
			viaFile += clone("file://" + gc)
			viaHTTP += clone(httpURL)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(viaHTTP.Milliseconds())/n, "daemon-http-ms")
	b.ReportMetric(float64(viaFile.Milliseconds())/n, "gc-file-ms")
	b.ReportMetric(float64(viaHTTP)/float64(viaFile), "clone-ratio")
	dk, gk := duKiB(b, repoDir), duKiB(b, gc)
	b.ReportMetric(float64(dk), "daemon-KiB")
	b.ReportMetric(float64(gk), "gc-KiB")
	b.ReportMetric(float64(dk)/float64(gk), "disk-ratio")
	require.NoError(b, d.stop(syscall.SIGTERM))
}

// BenchmarkDaemonRSS (issue 10 §3): five agents of 1,000 articles each;
// 25 big drafts tried (a one-article edit, a draft session, a message)
// then 10 big versions published and served (an edit, a publish, a
// session on the published version, a message, the compiled artifact),
// round-robin over the agents. Reports the daemon's VmRSS and VmHWM
// (/proc/<pid>/status). Target: RSS < 400 MiB.
func BenchmarkDaemonRSS(b *testing.B) {
	const agents, articles = 5, 1000
	for b.Loop() {
		d := benchDaemon(b, b.TempDir())
		key := d.bootstrapKey()
		ids := make([]string, agents)
		for i := range ids {
			ids[i] = bigAgent(b, d, key, articles)
		}
		c := &http.Client{}
		rev := 0
		edit := func(id string) {
			rev++
			putFile(b, c, d, key, id, fmt.Sprintf("knowledge/article-%04d.md", rev%articles), fixtures.Article(rev%articles, rev))
		}
		talk := func(body map[string]any) {
			sid := strField(b, mustCall(b, "POST", d.url+"/chat/sessions", key, body, 201), "id")
			mustCall(b, "POST", d.url+"/chat/sessions/"+sid+"/messages", key, map[string]any{"text": "How long does shipping take?"}, 200)
		}
		for i := range 25 {
			id := ids[i%agents]
			edit(id)
			talk(map[string]any{"agentId": id, "draftMode": true})
		}
		draftRSS := statusKiB(b, d.cmd.Process.Pid, "VmRSS")
		for i := range 10 {
			id := ids[i%agents]
			edit(id)
			v := mustCall(b, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
			talk(map[string]any{"agentId": id})
			st, _, err := call(c, "GET", d.url+"/agents/"+id+"/versions/"+strField(b, v, "id")+"/compiled", key, nil)
			require.NoError(b, err)
			require.Equal(b, 200, st)
		}
		pid := d.cmd.Process.Pid
		b.ReportMetric(float64(draftRSS)/1024, "after-drafts-MiB")
		b.ReportMetric(float64(statusKiB(b, pid, "VmRSS"))/1024, "RSS-MiB")
		b.ReportMetric(float64(statusKiB(b, pid, "VmHWM"))/1024, "peak-MiB")
		require.NoError(b, d.stop(syscall.SIGTERM))
	}
}

// BenchmarkDaemonReadyz (issue 10 §4): FLOWYTE_BENCH_AGENTS agents
// (default 10,000) created through the API, then the time from exec to the
// first /readyz 200 after a SIGKILL and after a clean stop (SIGTERM).
// Target: < 1 s each.
func BenchmarkDaemonReadyz(b *testing.B) {
	n := benchEnv("FLOWYTE_BENCH_AGENTS", 10000)
	data := b.TempDir()
	d := benchDaemon(b, data)
	key := d.bootstrapKey()
	body, err := json.Marshal(map[string]any{"name": "agent"})
	require.NoError(b, err)
	blast(b, []string{d.url + "/agents"}, n, 8, "POST", key, body, nil, 201)
	readyz := func() time.Duration {
		start := time.Now()
		d = benchDaemon(b, data)
		for {
			res, err := http.Get(d.url + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return time.Since(start)
				}
			}
			require.Less(b, time.Since(start), time.Minute, "readyz")
			time.Sleep(5 * time.Millisecond)
		}
	}
	var killed, clean time.Duration
	for b.Loop() {
		require.NoError(b, d.cmd.Process.Signal(syscall.SIGKILL))
		<-d.done
		killed += readyz()
		require.NoError(b, d.stop(syscall.SIGTERM))
		clean += readyz()
	}
	b.ReportMetric(float64(n), "agents")
	b.ReportMetric(float64(killed.Milliseconds())/float64(b.N), "after-kill-ms")
	b.ReportMetric(float64(clean.Milliseconds())/float64(b.N), "after-stop-ms")
	require.NoError(b, d.stop(syscall.SIGTERM))
}

// pgDSN is a fresh database on a private cluster with fsync and synchronous
// commits on (fair against SQLite's synchronous=FULL).
func pgDSN(b *testing.B) string {
	b.Helper()
	b.Setenv(pgtest.EnvDurable, "1")
	return pgtest.Start(b)
}

// publisher edits one article and publishes, returning the publish time.
func publishOnce(b *testing.B, c *http.Client, d *daemon, key, id string, i int) time.Duration {
	b.Helper()
	putFile(b, c, d, key, id, "knowledge/article-0000.md", fixtures.Article(0, i))
	start := time.Now()
	st, res, err := call(c, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{})
	took := time.Since(start)
	require.NoError(b, err)
	require.Equal(b, 201, st, "%v", res)
	return took
}

// BenchmarkPGPublishVsSQLite (issue 13): a one-article edit then a publish
// of the acme agent with 20 articles, on a SQLite daemon and a PostgreSQL
// daemon (loopback, durable), alternately. Target: PG ≤ 1.5× SQLite.
func BenchmarkPGPublishVsSQLite(b *testing.B) {
	dsn := pgDSN(b)
	lite := benchDaemon(b, b.TempDir())
	pg := benchDaemon(b, b.TempDir(), "--database", dsn)
	kl, kp := lite.bootstrapKey(), pg.bootstrapKey()
	il, ip := bigAgent(b, lite, kl, 20), bigAgent(b, pg, kp, 20)
	c := &http.Client{}
	publishOnce(b, c, lite, kl, il, 0)
	publishOnce(b, c, pg, kp, ip, 0)
	var tl, tp time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		if i%2 == 0 {
			tl += publishOnce(b, c, lite, kl, il, i)
			tp += publishOnce(b, c, pg, kp, ip, i)
		} else {
			tp += publishOnce(b, c, pg, kp, ip, i)
			tl += publishOnce(b, c, lite, kl, il, i)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(tl.Microseconds())/1000/float64(b.N), "sqlite-ms")
	b.ReportMetric(float64(tp.Microseconds())/1000/float64(b.N), "pg-ms")
	b.ReportMetric(float64(tp)/float64(tl), "pg/sqlite")
}

// BenchmarkPGSessionVsHealthz (issue 13): session creation on a published
// agent against /healthz throughput on a PostgreSQL daemon, 32 clients,
// with draft sessions (no outcome counter) alongside. Target: ≥ 0.25.
func BenchmarkPGSessionVsHealthz(b *testing.B) {
	d := benchDaemon(b, b.TempDir(), "--database", pgDSN(b))
	key := d.bootstrapKey()
	id := bigAgent(b, d, key, 0)
	mustCall(b, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
	body := []byte(`{"agentId":"` + id + `"}`)
	draft := []byte(`{"agentId":"` + id + `","draftMode":true}`)
	const n, conc = 4000, 32
	var health, sess, drafts float64
	for b.Loop() {
		health = blast(b, []string{d.url + "/healthz"}, n, conc, "GET", "", nil, nil, 200)
		sess = blast(b, []string{d.url + "/chat/sessions"}, n, conc, "POST", key, body, nil, 201)
		drafts = blast(b, []string{d.url + "/chat/sessions"}, n, conc, "POST", key, draft, nil, 201)
	}
	b.ReportMetric(health, "healthz/s")
	b.ReportMetric(sess, "sessions/s")
	b.ReportMetric(sess/health, "ratio")
	// A draft session writes no outcome counter: the contrast shows what
	// the per-version counter row costs.
	b.ReportMetric(drafts, "draft-sessions/s")
}

// BenchmarkPGSessionCPU (issue 13): the CPU time one request costs, summed
// over every process it runs in (the daemon, the PostgreSQL backends of its
// database with the WAL writer, checkpointer and background writer, and
// this load generator), for /healthz and for a session creation, 32
// clients. Unlike the throughputs of BenchmarkPGSessionVsHealthz, it hardly
// moves with whatever else the machine runs: healthz-us / session-us is the
// ratio a CPU-bound machine would reach.
func BenchmarkPGSessionCPU(b *testing.B) {
	dsn := pgDSN(b)
	d := benchDaemon(b, b.TempDir(), "--database", dsn)
	key := d.bootstrapKey()
	id := bigAgent(b, d, key, 0)
	mustCall(b, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
	body := []byte(`{"agentId":"` + id + `"}`)
	pgTicks := pgTicker(b, dsn)
	const n, conc = 20000, 32
	// cpu runs fn twice (the first warms up) and reports µs of CPU per
	// request of the second run, per process and in all.
	cpu := func(name string, fn func()) float64 {
		fn()
		d0, p0, s0 := procTicks(d.cmd.Process.Pid), pgTicks(), selfTicks()
		fn()
		d1, p1, s1 := procTicks(d.cmd.Process.Pid), pgTicks(), selfTicks()
		us := func(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks / n }
		b.ReportMetric(us(d1-d0), name+"-daemon-us")
		b.ReportMetric(us(p1-p0), name+"-pg-us")
		b.ReportMetric(us(s1-s0), name+"-loadgen-us")
		b.ReportMetric(us(d1-d0+p1-p0+s1-s0), name+"-us")
		return us(d1 - d0 + p1 - p0 + s1 - s0)
	}
	var health, sess float64
	for b.Loop() {
		health = cpu("healthz", func() { blast(b, []string{d.url + "/healthz"}, n, conc, "GET", "", nil, nil, 200) })
		sess = cpu("session", func() { blast(b, []string{d.url + "/chat/sessions"}, n, conc, "POST", key, body, nil, 201) })
	}
	b.ReportMetric(health/sess, "cpu-ratio")
}

// pgTicker returns a function summing the CPU ticks of the database's
// backends (but its own) and of the server processes commits wake.
func pgTicker(b *testing.B, dsn string) func() int64 {
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close(context.Background()) })
	return func() int64 {
		rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE (datname = current_database() AND pid <> pg_backend_pid())
			OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`)
		require.NoError(b, err)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		require.NoError(b, err)
		var n int64
		for _, p := range pids {
			n += procTicks(int(p))
		}
		return n
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on
// every Linux this runs on).
const clockTicks = 100

// procTicks returns the user plus system CPU time of process pid so far,
// in clock ticks (0 if it is gone).
func procTicks(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:]) // fields from the 3rd (state) on
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// selfTicks is procTicks of this process.
func selfTicks() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return (ru.Utime.Nano() + ru.Stime.Nano()) * clockTicks / 1e9
}

// BenchmarkPGTwoDaemonsRead (issue 13): the published artifact route
// (GET /agents/{id}/versions/published/compiled) served by one daemon, then by
// two daemons on one PostgreSQL database and one data dir with the load
// spread over both. Target: two ≥ 1.6× one.
//
// The route is CPU-bound (answered from the byte-bounded cache: no lock,
// no database, no git), so what a second daemon adds is its CPU:
//
//   - "shared-cores": both daemons and a net/http load generator (32
//     clients) share this machine's cores, so a second daemon adds none;
//   - "node-each": each daemon is a one-core node (GOMAXPROCS=1, pinned
//     with taskset to its own CPU) and the load comes from a light
//     pipelined generator (16 connections, 8 requests in flight on each),
//     the stand-in for a load balancer on other machines. It needs two
//     CPUs and taskset, and is skipped otherwise.
func BenchmarkPGTwoDaemonsRead(b *testing.B) {
	for _, mode := range []string{"shared-cores", "node-each"} {
		b.Run(mode, func(b *testing.B) {
			nodes := mode == "node-each"
			if nodes {
				if nproc() < 2 {
					b.Skip("node-each needs two CPUs")
				}
				b.Setenv("GOMAXPROCS", "1") // the daemons' environment, not this process's
			}
			dsn := pgDSN(b)
			data := b.TempDir()
			a := benchDaemon(b, data, "--database", dsn)
			key := a.bootstrapKey()
			id := bigAgent(b, a, key, 20)
			mustCall(b, "POST", a.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
			c := benchDaemon(b, data, "--database", dsn)
			if nodes && (!pin(b, a.cmd.Process.Pid, 0) || !pin(b, c.cmd.Process.Pid, 1)) {
				b.Skip("node-each: taskset could not pin the daemons")
			}
			path := "/agents/" + id + "/versions/published/compiled"
			load := func(urls []string, n int) float64 {
				if nodes {
					return pipeBlast(b, urls, n, benchEnv("FLOWYTE_BENCH_CONNS", 16), benchEnv("FLOWYTE_BENCH_DEPTH", 8), key, 200)
				}
				return blast(b, urls, n, 32, "GET", key, nil, nil, 200)
			}
			load([]string{a.url + path, c.url + path}, 400) // warm both
			const n = 6000
			// Rates over every iteration (one and two alternate, so the
			// machine's neighbours weigh on both alike).
			pgTicks := pgTicker(b, dsn)
			var oneT, twoT float64     // seconds
			var dCPU, pCPU, gCPU int64 // ticks: daemons, PostgreSQL, generator
			runs := 0
			for b.Loop() {
				oneT += n / load([]string{a.url + path}, n)
				d0, p0, g0 := procTicks(a.cmd.Process.Pid)+procTicks(c.cmd.Process.Pid), pgTicks(), selfTicks()
				twoT += n / load([]string{a.url + path, c.url + path}, n)
				dCPU += procTicks(a.cmd.Process.Pid) + procTicks(c.cmd.Process.Pid) - d0
				pCPU += max(pgTicks()-p0, 0)
				gCPU += selfTicks() - g0
				runs++
			}
			one, two := float64(runs*n)/oneT, float64(runs*n)/twoT
			// Where the CPU of the two-daemon run went, per request: the
			// ratio can only approach 2 when the daemons' share dominates.
			per := func(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks / float64(runs*n) }
			b.ReportMetric(per(dCPU), "daemon-µs/req")
			b.ReportMetric(per(pCPU), "pg-µs/req")
			b.ReportMetric(per(gCPU), "loadgen-µs/req")
			b.ReportMetric(one, "one/s")
			b.ReportMetric(two, "two/s")
			b.ReportMetric(two/one, "ratio")
			b.ReportMetric(float64(nproc()), "cores")
		})
	}
}

func nproc() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}
