package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// hit is one request a receiver got.
type hit struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an httptest endpoint that records every request and answers
// with respond (nil: 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    []hit
	arrived chan struct{} // capacity 1: a request arrived
}

func newReceiver(tb testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	tb.Helper()
	rc := &receiver{arrived: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.hits)
		rc.mu.Unlock()
		select {
		case rc.arrived <- struct{}{}:
		default:
		}
		if respond != nil {
			respond(n, w, r)
		}
	}))
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

func (rc *receiver) count() int { return len(rc.got()) }

// fixture is a store with one workspace: SQLite, or PostgreSQL when
// FLOWYTE_TEST_DATABASE is set (see storetest.Open).
type fixture struct {
	path  string // the SQLite file
	dsn   string // the PostgreSQL database; "" on SQLite
	store storetest.Engine
	ws    string
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	if os.Getenv(pgtest.EnvDatabase) != "" {
		return newPGFixture(tb)
	}
	f := &fixture{path: filepath.Join(tb.TempDir(), "flowyte.db")}
	f.open(tb)
	f.ws = f.workspace(tb, "default")
	return f
}

// newPGFixture returns a fixture on a fresh PostgreSQL database; it skips
// tb when PostgreSQL is not installed.
func newPGFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{dsn: pgtest.Start(tb)}
	f.open(tb)
	f.ws = f.workspace(tb, "default")
	return f
}

// workspace creates (or finds) the workspace name and returns its id.
func (f *fixture) workspace(tb testing.TB, name string) string {
	tb.Helper()
	var id string
	err := f.store.Write(context.Background(), func(tx store.Tx) error {
		w, err := tx.EnsureWorkspace(context.Background(), name, time.Now())
		id = w.ID
		return err
	})
	require.NoError(tb, err, "EnsureWorkspace")
	return id
}

// open (re)opens the database, closing it at the end of the test.
func (f *fixture) open(tb testing.TB) {
	tb.Helper()
	f.store = f.connect(tb)
}

// connect opens another handle on the fixture's database (on PostgreSQL,
// its own pool: another daemon), closed at the end of the test.
func (f *fixture) connect(tb testing.TB) storetest.Engine {
	tb.Helper()
	if f.dsn != "" {
		s, err := postgres.Open(context.Background(), f.dsn)
		require.NoError(tb, err, "postgres.Open")
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
	s, err := store.Open(f.path, store.WithSynchronous("NORMAL"))
	require.NoError(tb, err, "store.Open")
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// webhook registers url for events (default: version.published).
func (f *fixture) webhook(tb testing.TB, url string, events ...string) store.Webhook {
	tb.Helper()
	return f.webhookIn(tb, f.ws, url, events...)
}

// webhookIn registers url in workspace ws.
func (f *fixture) webhookIn(tb testing.TB, ws, url string, events ...string) store.Webhook {
	tb.Helper()
	if len(events) == 0 {
		events = []string{"version.published"}
	}
	secret, err := NewSecret()
	require.NoError(tb, err, "NewSecret")
	w := store.Webhook{ID: store.NewID("wh_"), WorkspaceID: ws, URL: url, Events: events, Secret: secret,
		CreatedAt: time.Now()}
	require.NoError(tb, f.store.Write(context.Background(), func(tx store.Tx) error {
		return tx.CreateWebhook(context.Background(), w)
	}), "CreateWebhook")
	return w
}

// publish commits an event and notifies d (if not nil); it returns the event.
func (f *fixture) publish(tb testing.TB, d *Dispatcher, typ string) store.Event {
	tb.Helper()
	return f.publishIn(tb, d, f.ws, typ)
}

// publishIn commits an event of workspace ws and notifies d (if not nil).
func (f *fixture) publishIn(tb testing.TB, d *Dispatcher, ws, typ string) store.Event {
	tb.Helper()
	id := store.NewID("evt_")
	e := store.Event{ID: id, WorkspaceID: ws, AgentID: "agt_1", Type: typ, CreatedAt: time.Now(),
		Payload: []byte(`{"type":"` + typ + `","timestamp":"2026-01-01T00:00:00Z","data":{"agentId":"agt_1","id":"` + id + `"}}`)}
	require.NoError(tb, f.store.Write(context.Background(), func(tx store.Tx) error {
		return tx.InsertEvent(context.Background(), e)
	}), "InsertEvent")
	if d != nil {
		d.Notify()
	}
	return e
}

// deliveries returns the webhook's delivery log, oldest first.
func (f *fixture) deliveries(tb testing.TB, webhookID string) []store.Delivery {
	tb.Helper()
	ds, _, err := f.store.ListDeliveries(context.Background(), webhookID, "", 1000)
	require.NoError(tb, err, "ListDeliveries")
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// options returns test defaults: loopback allowed, no jitter, short
// schedule and poll.
func (f *fixture) options(schedule ...time.Duration) Options {
	if len(schedule) == 0 {
		schedule = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	}
	return Options{
		Store:    f.store,
		Client:   NewClient(true, 2*time.Second),
		Schedule: schedule,
		Logger:   zerolog.Nop(),
		Poll:     time.Second,
		Jitter:   func(d time.Duration) time.Duration { return d },
	}
}

// start runs a dispatcher until the returned stop is called (or the test
// ends); stop waits for Run to return and checks it returned nil. tweaks
// change the dispatcher before it runs.
func start(tb testing.TB, o Options, tweaks ...func(*Dispatcher)) (*Dispatcher, func()) {
	tb.Helper()
	d := New(o)
	for _, tweak := range tweaks {
		tweak(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				assert.NoError(tb, err, "Run")
			case <-time.After(10 * time.Second):
				assert.Fail(tb, "Run did not return within 10s of cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return d, stop
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		require.False(tb, time.Now().After(deadline), "timed out after %v waiting for %s", timeout, what)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliverySignedAndLogged(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	wh := f.webhook(t, rc.srv.URL+"/in?token=abc")
	other := f.webhook(t, rc.srv.URL+"/drafts", "draft.updated")
	d, _ := start(t, f.options())
	ev := f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "one delivery logged", func() bool { return len(f.deliveries(t, wh.ID)) == 1 })
	hits := rc.got()
	require.Len(t, hits, 1, "requests received")
	h := hits[0]
	assert.Equal(t, string(ev.Payload), string(h.body), "the payload is sent verbatim")
	assert.Equal(t, "application/json", h.header.Get("Content-Type"))
	assert.Equal(t, ev.ID, h.header.Get("webhook-id"), "webhook-id is the event id")
	assert.NoError(t, Verify(wh.Secret, h.header, h.body, time.Now(), time.Minute), "Verify(received)")
	ts, _ := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
	skew := time.Since(time.Unix(ts, 0))
	assert.True(t, skew > -2*time.Second && skew < 5*time.Second, "webhook-timestamp %d is %v off now, want about now", ts, skew)
	dl := f.deliveries(t, wh.ID)[0]
	assert.Equal(t, ev.ID, dl.EventID)
	assert.Equal(t, "version.published", dl.Type)
	assert.Equal(t, 1, dl.Attempt)
	assert.Equal(t, store.DeliverySucceeded, dl.Status)
	assert.Equal(t, 204, dl.ResponseCode)
	assert.Empty(t, dl.Error)
	assert.Empty(t, f.deliveries(t, other.ID), "a draft.updated webhook gets no version.published event")
}

// steppingClock returns a clock that runs ahead of real time by one more
// second on every call, so consecutive attempts get distinct unix-second
// webhook-timestamps without the test waiting.
func steppingClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return time.Now().Add(time.Duration(n.Add(1)) * time.Second) }
}

func TestRetryUntilSuccess(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	o := f.options(time.Second, time.Second, time.Second, time.Second, time.Second)
	o.Now = steppingClock()
	d, _ := start(t, o)
	ev := f.publish(t, d, "version.published")

	waitFor(t, 10*time.Second, "4 attempts logged", func() bool { return len(f.deliveries(t, wh.ID)) == 4 })
	hits := rc.got()
	require.Len(t, hits, 4, "requests received")
	var lastTS int64
	for i, h := range hits {
		assert.Equal(t, ev.ID, h.header.Get("webhook-id"), "attempt %d: webhook-id is stable across retries", i+1)
		ts, err := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err, "attempt %d webhook-timestamp", i+1)
		assert.Greater(t, ts, lastTS, "attempt %d gets a fresh webhook-timestamp", i+1)
		lastTS = ts
		assert.NoError(t, Verify(wh.Secret, h.header, h.body, time.Unix(ts, 0), time.Second), "attempt %d signature", i+1)
	}
	// Every failed attempt is logged failed, even though a retry follows.
	wantStatus := []string{store.DeliveryFailed, store.DeliveryFailed, store.DeliveryFailed, store.DeliverySucceeded}
	wantCode := []int{500, 500, 500, 200}
	for i, dl := range f.deliveries(t, wh.ID) {
		assert.Equal(t, i+1, dl.Attempt, "row %d attempt", i)
		assert.Equal(t, wantStatus[i], dl.Status, "row %d status", i)
		assert.Equal(t, wantCode[i], dl.ResponseCode, "row %d response code", i)
		assert.Equal(t, ev.ID, dl.EventID, "row %d event", i)
	}
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 4, rc.count(), "requests after success")
}

func TestScheduleExhausted(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	wh := f.webhook(t, rc.srv.URL)
	schedule := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	d, _ := start(t, f.options(schedule...))
	ev := f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "3 attempts logged", func() bool { return len(f.deliveries(t, wh.ID)) == 3 })
	ds := f.deliveries(t, wh.ID)
	for i, dl := range ds {
		assert.Equal(t, store.DeliveryFailed, dl.Status, "row %d", i)
	}
	assert.Equal(t, "status 502", ds[2].Error)
	assert.Equal(t, 502, ds[2].ResponseCode)
	hits := rc.got()
	require.Len(t, hits, 3)
	for i, want := range schedule {
		assert.GreaterOrEqual(t, hits[i+1].at.Sub(hits[i].at), want, "gap before attempt %d", i+2)
	}
	m, err := f.store.WebhookMessage(context.Background(), wh.ID, ev.ID)
	require.NoError(t, err, "WebhookMessage")
	p, err := f.store.PendingWebhooks(context.Background())
	require.NoError(t, err)
	assert.Empty(t, p, "pending webhooks after the schedule is exhausted")
	assert.Equal(t, 3, m.Attempts)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 3, rc.count(), "no retries after the schedule")
}

func TestGoneDisablesWebhook(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	wh := f.webhook(t, rc.srv.URL)
	d, _ := start(t, f.options())
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "webhook disabled", func() bool {
		w, err := f.store.Webhook(context.Background(), f.ws, wh.ID)
		return err == nil && w.DisabledAt != nil
	})
	w, err := f.store.Webhook(context.Background(), f.ws, wh.ID)
	require.NoError(t, err)
	assert.Contains(t, w.DisabledReason, "410")
	f.publish(t, d, "version.published")
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, rc.count(), "no retries, no new events after 410")
	ds := f.deliveries(t, wh.ID)
	require.Len(t, ds, 1)
	assert.Equal(t, store.DeliveryFailed, ds[0].Status)
	assert.Equal(t, 410, ds[0].ResponseCode)
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	d, _ := start(t, f.options(10*time.Millisecond))
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "second attempt", func() bool { return rc.count() == 2 })
	hits := rc.got()
	assert.GreaterOrEqual(t, hits[1].at.Sub(hits[0].at), 950*time.Millisecond, "retry after a Retry-After: 1")
	waitFor(t, 5*time.Second, "2 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	ds := f.deliveries(t, wh.ID)
	assert.Equal(t, 503, ds[0].ResponseCode)
	assert.Equal(t, store.DeliveryFailed, ds[0].Status)
	assert.Equal(t, store.DeliverySucceeded, ds[1].Status)
}

func TestRetryAfterCapped(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	f.webhook(t, rc.srv.URL)
	o := f.options(10 * time.Millisecond)
	o.MaxRetryAfter = 100 * time.Millisecond
	d, _ := start(t, o)
	f.publish(t, d, "version.published")

	waitFor(t, 3*time.Second, "second attempt despite Retry-After: 3600", func() bool { return rc.count() == 2 })
	hits := rc.got()
	assert.GreaterOrEqual(t, hits[1].at.Sub(hits[0].at), 90*time.Millisecond, "retry waits for the 100ms cap")
}

func TestRedirectNotFollowed(t *testing.T) {
	f := newFixture(t)
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.srv.URL, http.StatusFound)
	})
	wh := f.webhook(t, rc.srv.URL)
	d, _ := start(t, f.options(10*time.Millisecond))
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "2 attempts logged", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	ds := f.deliveries(t, wh.ID)
	assert.Equal(t, 302, ds[0].ResponseCode)
	assert.Equal(t, store.DeliveryFailed, ds[0].Status, "a 302 counts as a failure")
	assert.Contains(t, ds[0].Error, "redirect")
	assert.Equal(t, store.DeliveryFailed, ds[1].Status, "and is retried")
	assert.Zero(t, target.count(), "requests reaching the redirect target")
}

func TestRetryResumesAfterRestart(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	d1, stop1 := start(t, f.options(400*time.Millisecond))
	ev := f.publish(t, d1, "version.published")
	waitFor(t, 5*time.Second, "first failed attempt logged", func() bool { return len(f.deliveries(t, wh.ID)) == 1 })
	stop1()
	require.Equal(t, 1, rc.count(), "requests before restart")
	assert.Equal(t, store.DeliveryFailed, f.deliveries(t, wh.ID)[0].Status, "the attempt before restart")
	pending, err := f.store.PendingWebhooks(context.Background())
	require.NoError(t, err)
	assert.Contains(t, pending, wh.ID, "the message is pending: a retry is scheduled")
	// An event committed while no dispatcher runs, and never notified.
	ev2 := f.publish(t, nil, "version.published")
	require.NoError(t, f.store.Close())
	f.open(t)

	_, _ = start(t, f.options(400*time.Millisecond)) // no Notify: Run resumes on its own
	waitFor(t, 5*time.Second, "retry and the unnotified event after restart", func() bool { return rc.count() >= 3 })
	byID := map[string]int{}
	for _, h := range rc.got() {
		byID[h.header.Get("webhook-id")]++
	}
	assert.Equal(t, map[string]int{ev.ID: 2, ev2.ID: 1}, byID, "requests by webhook-id")
	waitFor(t, 5*time.Second, "3 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 3 })
	var retried store.Delivery
	for _, dl := range f.deliveries(t, wh.ID) {
		if dl.EventID == ev.ID && dl.Attempt == 2 {
			retried = dl
		}
	}
	assert.Equal(t, store.DeliverySucceeded, retried.Status, "attempt 2 of %s", ev.ID)
}

func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	slow := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, nil)
	f.webhook(t, slow.srv.URL)
	fastHook := f.webhook(t, fast.srv.URL)
	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	d, _ := start(t, o)

	begin := time.Now()
	for range 5 {
		f.publish(t, d, "version.published")
	}
	// The slow endpoint holds its request for 30 s; anything well under
	// that proves the fast one was not queued behind it (generous bounds:
	// CI machines are shared and run this under -race).
	waitFor(t, 10*time.Second, "5 deliveries to the fast endpoint", func() bool { return fast.count() == 5 })
	assert.Less(t, time.Since(begin), 8*time.Second, "fast endpoint's 5 events, well under the slow endpoint's 30s")
	waitFor(t, 5*time.Second, "the slow endpoint's first request", func() bool { return slow.count() >= 1 })
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, slow.count(), "one request in flight per endpoint")
	waitFor(t, 10*time.Second, "5 rows", func() bool { return len(f.deliveries(t, fastHook.ID)) == 5 })
}

func TestRedeliver(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	wh := f.webhook(t, rc.srv.URL)
	drafts := f.webhook(t, rc.srv.URL, "draft.updated")
	d, _ := start(t, f.options())
	ev := f.publish(t, d, "version.published")
	waitFor(t, 5*time.Second, "first delivery", func() bool { return len(f.deliveries(t, wh.ID)) == 1 })

	ctx := context.Background()
	require.NoError(t, d.Redeliver(ctx, f.ws, wh.ID, ev.ID))
	waitFor(t, 5*time.Second, "redelivery logged", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	hits := rc.got()
	require.Len(t, hits, 2)
	assert.Equal(t, ev.ID, hits[1].header.Get("webhook-id"), "a redelivery keeps the webhook-id")
	dl := f.deliveries(t, wh.ID)[1]
	assert.Equal(t, 2, dl.Attempt)
	assert.Equal(t, store.DeliverySucceeded, dl.Status)
	for _, c := range []struct{ name, ws, hook, event string }{
		{"unknown event", f.ws, wh.ID, "evt_nope"},
		{"unknown webhook", f.ws, "wh_nope", ev.ID},
		{"other workspace", "ws_other", wh.ID, ev.ID},
		{"event never targeted the webhook", f.ws, drafts.ID, ev.ID},
	} {
		assert.ErrorIs(t, d.Redeliver(ctx, c.ws, c.hook, c.event), store.ErrNotFound, c.name)
	}
}

func TestDispatcherRefusesPrivateAtDial(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	wh := f.webhook(t, rc.srv.URL)
	o := f.options(10 * time.Millisecond)
	o.Client = NewClient(false, time.Second)
	d, _ := start(t, o)
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "2 refused attempts logged", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	for _, dl := range f.deliveries(t, wh.ID) {
		assert.Zero(t, dl.ResponseCode, "no response")
		assert.Contains(t, dl.Error, "private or reserved")
		assert.NotContains(t, dl.Error, rc.srv.URL, "the error gives the reason, not the URL")
		assert.Equal(t, store.DeliveryFailed, dl.Status)
	}
	assert.Zero(t, rc.count(), "requests reaching the loopback receiver")
}

func TestTimeoutIsRetried(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
		}
	})
	wh := f.webhook(t, rc.srv.URL)
	o := f.options(10 * time.Millisecond)
	o.Client = NewClient(true, 200*time.Millisecond)
	d, _ := start(t, o)
	f.publish(t, d, "version.published")

	waitFor(t, 5*time.Second, "2 attempts logged", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	ds := f.deliveries(t, wh.ID)
	assert.Equal(t, store.DeliveryFailed, ds[0].Status)
	assert.Contains(t, ds[0].Error, "timeout")
	assert.GreaterOrEqual(t, ds[0].DurationMs, int64(150), "the timed-out attempt took about 200ms")
	assert.Equal(t, store.DeliverySucceeded, ds[1].Status)
}

func TestDeliveryLogPruned(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	wh := f.webhook(t, rc.srv.URL)
	o := f.options()
	o.Retention = 200 * time.Millisecond
	o.PruneEvery = 50 * time.Millisecond
	d, _ := start(t, o)
	f.publish(t, d, "version.published")
	waitFor(t, 5*time.Second, "delivery logged", func() bool { return len(f.deliveries(t, wh.ID)) == 1 })
	waitFor(t, 5*time.Second, "delivery pruned", func() bool { return len(f.deliveries(t, wh.ID)) == 0 })
	assert.Equal(t, 1, rc.count())
}

func TestRunTwiceRefused(t *testing.T) {
	f := newFixture(t)
	d, _ := start(t, f.options())
	waitFor(t, 5*time.Second, "Run started", d.running.Load)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	assert.Error(t, d.Run(ctx), "a second concurrent Run")
	assert.Error(t, New(Options{}).Run(ctx), "Run without a store")
}
