package webhook

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// TestWake: a send on Options.Wake (another daemon's notification) makes
// the dispatcher fan out at once, without Notify or Poll; a closed Wake
// is ignored.
func TestWake(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	wh := f.webhook(t, rc.srv.URL)
	wake := make(chan struct{}, 1)
	o := f.options()
	o.Poll = time.Hour
	o.Wake = wake
	d, _ := start(t, o)
	waitFor(t, 5*time.Second, "Run started", d.running.Load)
	time.Sleep(50 * time.Millisecond) // past the fan-out at start

	f.publish(t, nil, "version.published")
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, rc.count(), "requests before the wake-up")
	wake <- struct{}{}
	waitFor(t, 5*time.Second, "delivery after the wake-up", func() bool { return rc.count() == 1 })

	close(wake)
	f.publish(t, d, "version.published")
	waitFor(t, 5*time.Second, "delivery after Notify, with Wake closed", func() bool { return rc.count() == 2 })
	waitFor(t, 5*time.Second, "2 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
}

// TestRedeliverWhileInFlight: a redelivery asked for while the message's
// first attempt hangs is sent after that attempt, as attempt 2, right away
// (not after the claim's lease), and never alongside it.
func TestRedeliverWhileInFlight(t *testing.T) {
	f := newFixture(t)
	var g gauge
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	o.PerEndpoint = 2
	d, _ := start(t, o)
	ev := f.publish(t, d, "version.published")
	waitFor(t, 5*time.Second, "the first request", func() bool { return rc.count() == 1 })

	require.NoError(t, d.Redeliver(context.Background(), f.ws, wh.ID, ev.ID))
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, rc.count(), "the redelivery waits for the attempt in flight")
	begin := time.Now()
	close(release)
	waitFor(t, 5*time.Second, "the redelivery", func() bool { return rc.count() == 2 })
	assert.Less(t, time.Since(begin), 3*time.Second, "sent once the first attempt is recorded, not after the lease")
	waitFor(t, 5*time.Second, "2 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	ds := f.deliveries(t, wh.ID)
	assert.Equal(t, []int{1, 2}, []int{ds[0].Attempt, ds[1].Attempt}, "attempt numbers")
	assert.EqualValues(t, 1, g.peak.Load(), "requests for the message at once")
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 2, rc.count(), "requests in all")
}

// TestAttemptEndsWithinLease: with a lease shorter than the client
// timeout, a hanging attempt is cut short at 3/4 of the lease and recorded
// as a timeout before the lease ends, so the message is not sent again
// while that attempt runs; the retry then succeeds.
func TestAttemptEndsWithinLease(t *testing.T) {
	f := newFixture(t)
	var g gauge
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		if n == 1 {
			<-r.Context().Done()
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	o := f.options(10 * time.Millisecond)
	o.Client = NewClient(true, 30*time.Second)
	o.Lease = 400 * time.Millisecond
	o.Poll = 50 * time.Millisecond
	d, _ := start(t, o)
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "2 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	ds := f.deliveries(t, wh.ID)
	assert.Equal(t, store.DeliveryFailed, ds[0].Status)
	assert.Contains(t, ds[0].Error, "timeout")
	assert.InDelta(t, 300, ds[0].DurationMs, 150, "the attempt ran for 3/4 of the 400ms lease")
	assert.Equal(t, store.DeliverySucceeded, ds[1].Status)
	assert.Equal(t, 2, rc.count(), "requests in all")
	assert.EqualValues(t, 1, g.peak.Load(), "requests at once")
}

func TestLeaseDefaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		o      Options
		lease  time.Duration
		client time.Duration
	}{
		{"default client", Options{}, 30 * time.Second, DefaultTimeout},
		{"short client timeout", Options{Client: NewClient(false, time.Second)}, 6 * time.Second, time.Second},
		{"long client timeout", Options{Client: NewClient(false, time.Minute)}, 2 * time.Minute, time.Minute},
		{"client without timeout", Options{Client: &http.Client{}}, 30 * time.Second, DefaultTimeout},
		{"explicit lease", Options{Lease: 5 * time.Second}, 5 * time.Second, DefaultTimeout},
	} {
		d := New(c.o)
		assert.Equal(t, c.lease, d.lease, c.name)
		assert.Equal(t, c.client, d.attemptTimeout, c.name)
	}
}

// TestShutdownHandsBackClaims: messages claimed and not started when the
// dispatcher stops are due again at once, not when their lease ends.
func TestShutdownHandsBackClaims(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { time.Sleep(50 * time.Millisecond) })
	wh := f.webhook(t, rc.srv.URL)
	o := f.options()
	o.Lease = time.Hour
	d, stop := start(t, o)
	var evs []store.Event
	for range 20 {
		evs = append(evs, f.publish(t, nil, "version.published"))
	}
	d.Notify()
	waitFor(t, 5*time.Second, "3 deliveries", func() bool { return rc.count() >= 3 })
	stop()

	ctx := context.Background()
	now := time.Now()
	pending, later := 0, 0
	for _, ev := range evs {
		m, err := f.store.WebhookMessage(ctx, wh.ID, ev.ID)
		require.NoError(t, err)
		if m.Attempts > 0 {
			continue
		}
		pending++
		if m.NextAt.After(now) {
			later++ // still claimed: the attempt cut short by the stop
		}
	}
	assert.Greater(t, pending, 10, "messages not yet sent")
	assert.LessOrEqual(t, later, 1, "messages left claimed, of %d not sent", pending)
}

// TestRetriesNotHeldByClaims: a retry that falls due while its worker has
// not yet heard that the failed attempt is recorded is claimed and sent
// at once, not left to the claim's lease.
func TestRetriesNotHeldByClaims(t *testing.T) {
	f := newFixture(t)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(HeaderID)]++
		first := seen[r.Header.Get(HeaderID)] == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	f.webhook(t, rc.srv.URL)
	o := f.options(time.Millisecond)
	o.Poll = time.Minute
	d, _ := start(t, o)
	const events = 40
	for range events {
		f.publish(t, nil, "version.published")
	}
	begin := time.Now()
	d.Notify()
	waitFor(t, 20*time.Second, "every event retried", func() bool { return rc.count() >= 2*events })
	assert.Less(t, time.Since(begin), 5*time.Second, "retries within a 7s lease")
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		assert.Equal(t, 2, n, "requests for %s", id)
	}
}
