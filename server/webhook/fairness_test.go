package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// gauge counts requests in progress and remembers the peak.
type gauge struct{ cur, peak atomic.Int32 }

func (g *gauge) enter() {
	cur := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if cur <= p || g.peak.CompareAndSwap(p, cur) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

func TestConcurrencyBounds(t *testing.T) {
	f := newFixture(t)
	var g gauge
	release := make(chan struct{})
	blocking := func(n int, w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)

	rc := newReceiver(t, blocking)
	wh := f.webhook(t, rc.srv.URL)
	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	o.PerEndpoint = 3
	d, _ := start(t, o)
	for range 5 {
		f.publish(t, d, "version.published")
	}
	waitFor(t, 3*time.Second, "3 concurrent requests", func() bool { return rc.count() == 3 })
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 3, rc.count(), "concurrent requests to one endpoint, want PerEndpoint")
	open()
	waitFor(t, 3*time.Second, "all 5 delivered", func() bool { return len(f.deliveries(t, wh.ID)) == 5 })
	assert.EqualValues(t, 3, g.peak.Load(), "peak concurrency")
}

func TestGlobalCap(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var total atomic.Int32
	var rcs []*receiver
	for i := range 3 {
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			total.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		rcs = append(rcs, rc)
		// One workspace each, so only the global cap binds.
		f.webhookIn(t, f.workspace(t, fmt.Sprintf("ws%d", i)), rc.srv.URL)
	}
	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	o.MaxConcurrent = 2
	d, _ := start(t, o)
	for i := range 3 {
		f.publishIn(t, nil, f.workspace(t, fmt.Sprintf("ws%d", i)), "version.published")
	}
	d.Notify()
	waitFor(t, 3*time.Second, "2 requests in flight", func() bool { return total.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	assert.EqualValues(t, 2, total.Load(), "requests in flight, want MaxConcurrent")
	close(release)
	waitFor(t, 3*time.Second, "third endpoint served after the cap frees", func() bool { return total.Load() == 3 })
	for i, rc := range rcs {
		assert.Equal(t, 1, rc.count(), "endpoint %d", i)
	}
}

// TestPerWorkspaceCap: one workspace's many slow endpoints hold at most
// PerWorkspace attempts, and another workspace's endpoint is served at
// once although the noisy one has more work waiting.
func TestPerWorkspaceCap(t *testing.T) {
	f := newFixture(t)
	var noisy gauge
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		noisy.enter()
		defer noisy.leave()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	for i := range 6 {
		f.webhook(t, fmt.Sprintf("%s/slow/%d", slow.srv.URL, i))
	}
	quiet := newReceiver(t, nil)
	other := f.workspace(t, "other")
	quietHook := f.webhookIn(t, other, quiet.srv.URL)

	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	o.MaxConcurrent = 4
	o.PerWorkspace = 2
	d, _ := start(t, o)
	for range 3 {
		f.publish(t, nil, "version.published")
	}
	d.Notify()
	waitFor(t, 3*time.Second, "the noisy workspace at its cap", func() bool { return noisy.cur.Load() == 2 })

	begin := time.Now()
	f.publishIn(t, d, other, "version.published")
	waitFor(t, 3*time.Second, "the quiet workspace's delivery", func() bool { return len(f.deliveries(t, quietHook.ID)) == 1 })
	assert.Less(t, time.Since(begin), 2*time.Second, "the quiet workspace waits for no slow request")
	time.Sleep(100 * time.Millisecond)
	assert.EqualValues(t, 2, noisy.peak.Load(), "peak attempts of the noisy workspace, want PerWorkspace")
}

// TestWorkersYieldWhenContended: with every worker taken by one workspace's
// endpoints (each with a backlog), a webhook of another workspace gets a
// worker after the current attempts, not after the whole backlog. (The
// worker cap is lowered to 2 to get there with two endpoints.)
func TestWorkersYieldWhenContended(t *testing.T) {
	f := newFixture(t)
	busy := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { time.Sleep(100 * time.Millisecond) })
	busyHooks := []store.Webhook{f.webhook(t, busy.srv.URL+"/a"), f.webhook(t, busy.srv.URL+"/b")}
	quiet := newReceiver(t, nil)
	other := f.workspace(t, "other")
	quietHook := f.webhookIn(t, other, quiet.srv.URL)

	o := f.options()
	d, _ := start(t, o, func(d *Dispatcher) { d.maxWorkers = 2 })
	for range 20 { // 20 × 100ms per endpoint: 2s of backlog
		f.publish(t, nil, "version.published")
	}
	d.Notify()
	// A few attempts in, the busy workers know their endpoint's pace and
	// claim a batch.
	waitFor(t, 3*time.Second, "the busy workspace delivering", func() bool { return busy.count() >= 6 })

	begin := time.Now()
	f.publishIn(t, d, other, "version.published")
	waitFor(t, 5*time.Second, "the quiet workspace's delivery", func() bool { return len(f.deliveries(t, quietHook.ID)) == 1 })
	assert.Less(t, time.Since(begin), time.Second, "served after an attempt or two, not after the 2s backlog")
	waitFor(t, 10*time.Second, "the backlog delivered", func() bool {
		return len(f.deliveries(t, busyHooks[0].ID)) == 20 && len(f.deliveries(t, busyHooks[1].ID)) == 20
	})
	// The yielding workers had claimed part of their backlog; they hand it
	// back rather than leave it to the claims' 7s lease.
	assert.Less(t, time.Since(begin), 5*time.Second, "the backlog delivered, after the yield")
	assert.Equal(t, 40, busy.count(), "each backlog message sent once")
}

// TestAdmissionFair: freed slots go to the workspace with the fewest
// attempts in flight, never past its cap; a canceled wait takes nothing.
func TestAdmissionFair(t *testing.T) {
	ctx := context.Background()
	a := newAdmission(3, 2)
	require.True(t, a.acquire(ctx, "A"))
	require.True(t, a.acquire(ctx, "A"))
	require.True(t, a.acquire(ctx, "B"))
	assert.Equal(t, 3, a.inFlight(""))

	got := make(chan string, 4)
	wait := func(ws string) {
		go func() {
			if a.acquire(ctx, ws) {
				got <- ws
			}
		}()
		waitFor(t, time.Second, ws+" waiting", func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, w := range a.waiters {
				if w.workspace == ws && !w.granted {
					return true
				}
			}
			return false
		})
	}
	wait("A") // first in line, but A already has 2
	wait("C")
	wait("B")
	a.release("B") // A is at its cap; C (0 in flight) before B (0 now, but later)
	assert.Equal(t, "C", <-got)
	a.release("A") // A has 1, B has 0: B first
	assert.Equal(t, "B", <-got)
	a.release("C")
	assert.Equal(t, "A", <-got)
	assert.Equal(t, 2, a.inFlight("A"))
	assert.Equal(t, 3, a.inFlight(""))

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan bool)
	go func() { done <- a.acquire(cctx, "D") }()
	cancel()
	assert.False(t, <-done, "a canceled acquire")
	assert.Equal(t, 3, a.inFlight(""), "a canceled acquire holds nothing")
}

func TestDefaults(t *testing.T) {
	d := New(Options{})
	assert.Equal(t, DefaultPerEndpoint, d.perEndpoint)
	assert.Equal(t, DefaultPerWorkspace, d.perWorkspace)
	assert.Equal(t, DefaultMaxConcurrent, d.maxConcurrent)
	assert.Equal(t, 4*DefaultMaxConcurrent, d.maxWorkers)
	assert.Equal(t, MaxWebhooksPerWorkspace, d.workersPerWorkspace)
	assert.Equal(t, 50, MaxWebhooksPerWorkspace)
}

// TestTenantFairnessLatency times one workspace's deliveries alone, then
// while another workspace has MaxWebhooksPerWorkspace endpoints that hang
// until the client timeout with a backlog each: the quiet workspace's p99
// publish-to-delivery must stay within 3× of its quiet baseline (with a
// 50 ms floor for the scheduling noise of a shared, -race machine).
func TestTenantFairnessLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	f := newFixture(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	var inFlight gauge
	noisy := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		inFlight.enter()
		defer inFlight.leave()
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	got := make(chan string, 64)
	quiet := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { got <- r.Header.Get(HeaderID) })
	other := f.workspace(t, "quiet")
	f.webhookIn(t, other, quiet.srv.URL)
	o := f.options()
	o.Client = NewClient(true, 3*time.Second)
	o.MaxConcurrent = 16 // fewer than the noisy endpoints: only fairness keeps the quiet one going
	d, _ := start(t, o)

	measure := func(n int) time.Duration {
		var lat []time.Duration
		for range n {
			t0 := time.Now()
			ev := f.publishIn(t, d, other, "version.published")
			for id := range got {
				if id == ev.ID {
					break
				}
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	base := measure(60)

	for i := range MaxWebhooksPerWorkspace {
		f.webhook(t, fmt.Sprintf("%s/hang/%d", noisy.srv.URL, i))
	}
	for range 4 {
		f.publish(t, nil, "version.published")
	}
	d.Notify()
	waitFor(t, 5*time.Second, "the noisy workspace's requests hanging", func() bool {
		return inFlight.cur.Load() == DefaultPerWorkspace
	})
	time.Sleep(300 * time.Millisecond) // the noisy workers' start-up reads settle
	bound := max(3*base, 50*time.Millisecond)
	attacked := measure(60)
	if attacked > bound {
		// One slow sample on a shared machine is noise, not starvation:
		// a second round decides (starvation fails both).
		t.Logf("first round p99 %v over %v: measuring again", attacked, bound)
		attacked = measure(60)
	}
	t.Logf("quiet workspace p99: %v alone, %v with %d hanging endpoints next door", base, attacked, MaxWebhooksPerWorkspace)
	assert.LessOrEqual(t, attacked, bound, "p99 under attack (baseline %v)", base)
	assert.EqualValues(t, DefaultPerWorkspace, inFlight.peak.Load(), "peak attempts in flight of the noisy workspace")
}
