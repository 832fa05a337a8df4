package server_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fairClient sends both the probes and the attacks. Each side gets its own
// connections (see newFairClient), as two tenants' clients would.
func newFairClient(conns int) *http.Client {
	return &http.Client{
		Timeout:   2 * fairProbeTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true},
	}
}

// fairReq is one request of a probe or an attack.
type fairReq struct {
	method, url, key string
	body             []byte
	contentType      string
	headers          []string // name, value pairs
}

// fairDo sends r and returns its status and body; status 0 is a transport
// error (or ctx ended).
func fairDo(ctx context.Context, c *http.Client, r fairReq) (int, []byte, error) {
	var rdr io.Reader
	if r.body != nil {
		rdr = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, rdr)
	if err != nil {
		return 0, nil, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for i := 0; i+1 < len(r.headers); i += 2 {
		req.Header.Set(r.headers[i], r.headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res.StatusCode, data, err
}

// statuses counts the answers the attacker got.
type statuses struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statuses) add(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[code]++
}

func (s *statuses) snapshot() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.n))
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

// attack runs workers goroutines, each calling hit until ctx ends or it has
// run maxEach times. hit returns the status the attacker got (0 when the
// request was cut off by ctx).
type attack struct {
	workers, maxEach int
	hit              func(ctx context.Context, worker, i int) int
	// floor is the least quiet p99 the bound is computed from; fairFloor
	// when zero (fairWriteFloor for a's probes that commit).
	floor time.Duration
}

// fairResult is what one fairness run measured.
type fairResult struct {
	quiet, loud   time.Duration // p99 of a's probes
	bound         time.Duration
	attackAnswers map[int]int
	attackHits    int64
}

// p99 is the nearest-rank 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(math.Ceil(0.99*float64(len(s))))-1]
}

// p50 is the median of ds.
func p50(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// timeProbes runs probe n times in a row, and then on while more reports
// it is needed, and returns the durations.
func timeProbes(t *testing.T, n int, probe func(ctx context.Context, i int) error, more func(elapsed time.Duration) bool) []time.Duration {
	t.Helper()
	ds := make([]time.Duration, 0, n)
	begin := time.Now()
	for i := 0; i < n || (more != nil && more(time.Since(begin))); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), fairProbeTimeout)
		start := time.Now()
		err := probe(ctx, i)
		ds = append(ds, time.Since(start))
		cancel()
		require.NoError(t, err, "probe %d of workspace a", i)
	}
	return ds
}

// runFairness measures a's probe quiet, then while b's attack runs, then
// quiet again, and asserts the bound. The quiet p99 is the lower of the two
// quiet runs (a burst of unrelated load on the machine only ever raises a
// p99, and a raised baseline would loosen the bound). When the attack p99
// is over the bound, the round is measured once more and the second round
// decides: an attack the bound is about (seconds, in the review) fails
// both, a hiccup of the shared machine rarely hits both.
func runFairness(t *testing.T, name string, probe func(ctx context.Context, i int) error, atk attack) fairResult {
	t.Helper()
	timeProbes(t, fairWarmup, probe, nil)
	before := p99(timeProbes(t, fairSamples, probe, nil))
	var r fairResult
	for round := 1; round <= 2; round++ {
		var loud []time.Duration
		r, loud = attackRound(t, name, probe, atk)
		after := p99(timeProbes(t, fairSamples, probe, nil))
		r.quiet = min(before, after)
		floor := cmp.Or(atk.floor, fairFloor)
		r.bound = time.Duration(fairRatio * float64(max(r.quiet, floor)))
		t.Logf("%s, round %d: a's p99 quiet=%s (before %s, after %s) attack=%s ratio=%.1f (bound %s = %.0f × max(quiet, %s)); p50 under attack %s over %d samples; b sent %d requests, answers %v",
			name, round, r.quiet.Round(time.Microsecond), before.Round(time.Microsecond), after.Round(time.Microsecond),
			r.loud.Round(time.Microsecond), float64(r.loud)/float64(r.quiet), r.bound.Round(time.Microsecond), fairRatio, floor,
			p50(loud).Round(time.Microsecond), len(loud), r.attackHits, r.attackAnswers)
		if r.loud <= r.bound {
			break
		}
		before = after
	}
	assert.Positive(t, r.attackHits, "%s: b finished no request while a was timed", name)
	assert.LessOrEqual(t, r.loud, r.bound, "%s: a's p99 under attack=%s, want ≤ %s (quiet p99=%s)", name, r.loud, r.bound, r.quiet)
	return r
}

// attackRound runs b's attack, times a's probe meanwhile, and stops the
// attack. It returns the attack p99 and answers, and the durations.
func attackRound(t *testing.T, name string, probe func(ctx context.Context, i int) error, atk attack) (fairResult, []time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st statuses
	var hits atomic.Int64
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range atk.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < atk.maxEach && ctx.Err() == nil; i++ {
				once.Do(func() { close(started) })
				code := atk.hit(ctx, w, i)
				if ctx.Err() != nil && code == 0 {
					return // cut off at the end of the run
				}
				hits.Add(1)
				st.add(code)
			}
		}()
	}
	<-started
	// Let the attack reach its steady state (every worker in flight).
	time.Sleep(300 * time.Millisecond)
	loud := timeProbes(t, fairSamples, probe, func(el time.Duration) bool {
		return el < fairLoudMin || (hits.Load() < fairLoudHits && el < fairLoudMax)
	})
	cancel()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(fairDrain):
		assert.Fail(t, fmt.Sprintf("%s: the attackers did not stop within %s of hanging up", name, fairDrain))
	}
	return fairResult{loud: p99(loud), attackAnswers: st.snapshot(), attackHits: hits.Load()}, loud
}

// expectStatus returns an error unless code is want.
func expectStatus(what string, code int, body []byte, err error, want int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code != want {
		return fmt.Errorf("%s: status=%d, want %d: %s", what, code, want, truncate(body, 300))
	}
	return nil
}

// onlyStatuses asserts that the attacker got only the given answers (no
// 5xx, no transport errors).
func onlyStatuses(t *testing.T, got map[int]int, allowed ...int) {
	t.Helper()
	for code, n := range got {
		assert.Contains(t, allowed, code, "the attacker got %d × status %d; allowed %v (all answers %v)", n, code, allowed, got)
	}
}

// raceDetector is set when the tests run with -race (fairness_race_test.go).
var raceDetector bool

// skipShort skips a fairness test with -short, and under the race
// detector, whose 5–20× slowdown of CPU-bound code it would measure.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fairness tests time requests under load; skipped with -short")
	}
	if raceDetector {
		t.Skip("fairness tests time requests under load; skipped under the race detector")
	}
}

// quietAgent makes workspace a's agent: the acme-support fixture, published.
func quietAgent(e *env) string {
	id := e.createAgent("quiet")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	return id
}

// otherAgent makes an agent of workspace b.
func otherAgent(e *env, name string) string {
	e.tb.Helper()
	r := e.must(201, "POST", "/agents", e.other, map[string]any{"name": name})
	return str(e.tb, r.json(e.tb), "id")
}

// filePutProbe is a's plain file PUT, new content each time.
func filePutProbe(e *env, c *http.Client, id string) func(ctx context.Context, i int) error {
	url := e.srv.URL + "/agents/" + id + "/draft/files/knowledge/probe.md"
	return func(ctx context.Context, i int) error {
		code, body, err := fairDo(ctx, c, fairReq{method: "PUT", url: url, key: e.admin, body: fmt.Appendf(nil, "# Probe\n\nedit %d\n", i)})
		return expectStatus("PUT knowledge/probe.md", code, body, err, 200)
	}
}
