package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/store/storetest"
)

// wakeChannel is the PostgreSQL channel the tests' "daemons" notify each
// other on, as cmd/flowyted would.
const wakeChannel = "flowyte_webhooks"

// listenWake feeds s's notifications on wakeChannel into a Wake channel,
// as the daemon wiring does, until the test ends.
func listenWake(tb testing.TB, s *postgres.Store) <-chan struct{} {
	tb.Helper()
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, wakeChannel, func(string) { poke() }, poke)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return wake
}

// countingTransport counts the requests one dispatcher sends.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// countedClient returns a loopback-allowed client whose requests are
// counted.
func countedClient(timeout time.Duration) (*http.Client, *countingTransport) {
	c := NewClient(true, timeout)
	ct := &countingTransport{next: c.Transport}
	c.Transport = ct
	return c, ct
}

// publishNotify commits an event through s and, in the same transaction,
// notifies the other daemons (as the backend does on PostgreSQL).
func publishNotify(tb testing.TB, s storetest.Engine, ws string) string {
	tb.Helper()
	id := store.NewID("evt_")
	require.NoError(tb, s.Write(context.Background(), func(tx store.Tx) error {
		if err := tx.InsertEvent(context.Background(), store.Event{ID: id, WorkspaceID: ws, AgentID: "agt_1",
			Type: "version.published", CreatedAt: time.Now(),
			Payload: []byte(`{"type":"version.published","data":{"id":"` + id + `"}}`)}); err != nil {
			return err
		}
		n, ok := tx.(interface {
			Notify(ctx context.Context, channel, payload string) error
		})
		require.True(tb, ok, "a PostgreSQL transaction can notify")
		return n.Notify(context.Background(), wakeChannel, "")
	}), "InsertEvent")
	return id
}

// TestTwoDispatchersOneDatabase runs two dispatchers, each with its own
// connection pool (two daemons), on one PostgreSQL database, and publishes
// through both: every event reaches every webhook exactly once (no
// duplicate without a crash), and the delivery log has one successful
// first attempt per message.
func TestTwoDispatchersOneDatabase(t *testing.T) {
	for _, c := range []struct {
		name     string
		failures int // the first failures attempts of every message get a 503
	}{
		{"first attempts succeed", 0},
		{"retries", 2},
	} {
		t.Run(c.name, func(t *testing.T) { twoDispatchers(t, c.failures) })
	}
}

func twoDispatchers(t *testing.T, failures int) {
	f := newPGFixture(t)
	s1 := f.store.(*postgres.Store)
	s2 := f.connect(t).(*postgres.Store)

	var (
		mu   sync.Mutex
		hits = map[[2]string]int{} // (path, webhook-id) → requests
	)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		k := [2]string{r.URL.Path, r.Header.Get(HeaderID)}
		hits[k]++
		fail := hits[k] <= failures
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // long enough for the other dispatcher to compete
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	const hooks, events = 4, 30
	attempts := failures + 1
	var whs []store.Webhook
	for i := range hooks {
		whs = append(whs, f.webhook(t, fmt.Sprintf("%s/h%d", rc.srv.URL, i)))
	}

	o1, o2 := f.options(), f.options()
	o1.Store, o2.Store = s1, s2
	var ct1, ct2 *countingTransport
	o1.Client, ct1 = countedClient(5 * time.Second)
	o2.Client, ct2 = countedClient(5 * time.Second)
	o1.Poll, o2.Poll = time.Minute, time.Minute // only Notify, Wake and retry times
	o1.Wake, o2.Wake = listenWake(t, s1), listenWake(t, s2)
	d1, _ := start(t, o1)
	d2, _ := start(t, o2)

	begin := time.Now()
	var ids []string
	for i := range events {
		s, d := storetest.Engine(s1), d1
		if i%2 == 1 {
			s, d = s2, d2
		}
		ids = append(ids, publishNotify(t, s, f.ws))
		d.Notify()
	}
	published := time.Since(begin)
	waitFor(t, 20*time.Second, "every attempt at every webhook", func() bool { return rc.count() >= hooks*events*attempts })
	t.Logf("published %d events in %v, all delivered after %v", events, published, time.Since(begin))
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show
	mu.Lock()
	for i := range hooks {
		for _, id := range ids {
			assert.Equal(t, attempts, hits[[2]string{fmt.Sprintf("/h%d", i), id}], "requests for %s at webhook %d", id, i)
		}
	}
	mu.Unlock()
	assert.Equal(t, hooks*events*attempts, rc.count(), "requests in all")
	// How the work splits depends on timing (a worker claims a batch at
	// a time); that nothing is sent twice does not.
	assert.Equal(t, int64(hooks*events*attempts), ct1.n.Load()+ct2.n.Load(), "attempts by both")
	t.Logf("attempts: dispatcher 1 %d, dispatcher 2 %d", ct1.n.Load(), ct2.n.Load())
	for _, wh := range whs {
		waitFor(t, 5*time.Second, "the attempts recorded", func() bool { return len(f.deliveries(t, wh.ID)) == events*attempts })
		per := map[string][]int{}
		for _, dl := range f.deliveries(t, wh.ID) {
			per[dl.EventID] = append(per[dl.EventID], dl.Attempt)
			want := store.DeliveryFailed
			if dl.Attempt == attempts {
				want = store.DeliverySucceeded
			}
			assert.Equal(t, want, dl.Status, "%s attempt %d", dl.EventID, dl.Attempt)
		}
		for _, id := range ids {
			var want []int
			for a := range attempts {
				want = append(want, a+1)
			}
			assert.Equal(t, want, per[id], "attempts logged for %s", id)
		}
	}
	p, err := s2.PendingWebhooks(context.Background())
	require.NoError(t, err)
	assert.Empty(t, p, "pending messages after delivery")
}

// TestDispatcherKilledMidAttempt: a dispatcher dies while its request
// hangs; the other one leaves the claimed message alone while the lease
// runs and delivers it once the lease ends.
func TestDispatcherKilledMidAttempt(t *testing.T) {
	f := newPGFixture(t)
	s2 := f.connect(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 { // the first request hangs until its client goes away
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	const lease = 3 * time.Second

	o1 := f.options()
	o1.Client = NewClient(true, 30*time.Second)
	o1.Lease = lease
	d1, kill1 := start(t, o1)
	ev := f.publish(t, d1, "version.published")
	waitFor(t, 5*time.Second, "dispatcher 1's request", func() bool { return rc.count() == 1 })
	first := rc.got()[0].at

	o2 := f.options()
	o2.Store = s2
	o2.Lease = lease
	o2.Poll = 100 * time.Millisecond
	d2, _ := start(t, o2)
	d2.Notify()
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, 1, rc.count(), "dispatcher 2 leaves a message claimed by a live dispatcher alone")

	kill1() // dies mid-request: nothing is recorded
	require.NoError(t, f.store.Close())
	waitFor(t, 2*lease, "dispatcher 2's delivery after the lease", func() bool { return rc.count() == 2 })
	hits := rc.got()
	assert.Equal(t, ev.ID, hits[1].header.Get(HeaderID), "the same message")
	assert.GreaterOrEqual(t, hits[1].at.Sub(first), lease-200*time.Millisecond, "delivered after the lease ended")
	var ds []store.Delivery
	waitFor(t, 5*time.Second, "the attempt recorded", func() bool {
		var err error
		ds, _, err = s2.ListDeliveries(context.Background(), wh.ID, "", 10)
		require.NoError(t, err)
		return len(ds) > 0
	})
	time.Sleep(300 * time.Millisecond)
	ds, _, err := s2.ListDeliveries(context.Background(), wh.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, ds, 1, "one attempt recorded: the killed one left no record")
	assert.Equal(t, store.DeliverySucceeded, ds[0].Status)
	assert.Equal(t, 1, ds[0].Attempt)
	assert.Equal(t, 2, rc.count(), "requests in all")
}

// TestConcurrentFanOut races fan-outs of two connection pools over one
// PostgreSQL outbox: every event is consumed exactly once.
func TestConcurrentFanOut(t *testing.T) {
	f := newPGFixture(t)
	stores := []storetest.Engine{f.store, f.connect(t)}
	rc := newReceiver(t, nil)
	wh := f.webhook(t, rc.srv.URL)
	const events = 120
	var ids []string
	for range events {
		ids = append(ids, publishNotify(t, f.store, f.ws))
	}
	var (
		consumed atomic.Int64
		wg       sync.WaitGroup
	)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				out, err := stores[i%2].FanOutWebhookEvents(context.Background(), time.Now(), 7)
				if !assert.NoError(t, err, "FanOutWebhookEvents") {
					return
				}
				consumed.Add(int64(out.Events))
				if out.Events == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, events, consumed.Load(), "events consumed by all fan-outs together")
	for _, id := range ids {
		m, err := f.store.WebhookMessage(context.Background(), wh.ID, id)
		if assert.NoError(t, err, "message of %s", id) {
			assert.Zero(t, m.Attempts)
		}
	}
}
