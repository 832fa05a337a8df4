package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/server/store"
)

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

// fixture is a store with one workspace.
type fixture struct {
	path  string
	store *store.Store
	ws    string
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{path: filepath.Join(tb.TempDir(), "flowyte.db")}
	f.open(tb)
	err := f.store.Write(context.Background(), func(tx store.Tx) error {
		w, err := tx.EnsureWorkspace(context.Background(), "default", time.Now())
		f.ws = w.ID
		return err
	})
	if err != nil {
		tb.Fatalf("EnsureWorkspace: %v", err)
	}
	return f
}

// open (re)opens the database file, closing it at the end of the test.
func (f *fixture) open(tb testing.TB) {
	tb.Helper()
	s, err := store.Open(f.path, store.WithSynchronous("NORMAL"))
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	f.store = s
}

// webhook registers url for events (default: version.published).
func (f *fixture) webhook(tb testing.TB, url string, events ...string) store.Webhook {
	tb.Helper()
	if len(events) == 0 {
		events = []string{"version.published"}
	}
	secret, err := NewSecret()
	if err != nil {
		tb.Fatalf("NewSecret: %v", err)
	}
	w := store.Webhook{ID: store.NewID("wh_"), WorkspaceID: f.ws, URL: url, Events: events, Secret: secret,
		CreatedAt: time.Now()}
	if err := f.store.Write(context.Background(), func(tx store.Tx) error {
		return tx.CreateWebhook(context.Background(), w)
	}); err != nil {
		tb.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

// publish commits an event and notifies d (if not nil); it returns the event.
func (f *fixture) publish(tb testing.TB, d *Dispatcher, typ string) store.Event {
	tb.Helper()
	id := store.NewID("evt_")
	e := store.Event{ID: id, WorkspaceID: f.ws, AgentID: "agt_1", Type: typ, CreatedAt: time.Now(),
		Payload: []byte(`{"type":"` + typ + `","timestamp":"2026-01-01T00:00:00Z","data":{"agentId":"agt_1","id":"` + id + `"}}`)}
	if err := f.store.Write(context.Background(), func(tx store.Tx) error {
		return tx.InsertEvent(context.Background(), e)
	}); err != nil {
		tb.Fatalf("InsertEvent: %v", err)
	}
	if d != nil {
		d.Notify()
	}
	return e
}

// deliveries returns the webhook's delivery log, oldest first.
func (f *fixture) deliveries(tb testing.TB, webhookID string) []store.Delivery {
	tb.Helper()
	ds, _, err := f.store.ListDeliveries(context.Background(), webhookID, "", 1000)
	if err != nil {
		tb.Fatalf("ListDeliveries: %v", err)
	}
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
// ends); stop waits for Run to return and checks it returned nil.
func start(tb testing.TB, o Options) (*Dispatcher, func()) {
	tb.Helper()
	d := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					tb.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				tb.Errorf("Run did not return within 10s of cancel")
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
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
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
	if len(hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(hits))
	}
	h := hits[0]
	if string(h.body) != string(ev.Payload) {
		t.Fatalf("body = %s, want the payload verbatim %s", h.body, ev.Payload)
	}
	if got := h.header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", got)
	}
	if got := h.header.Get("webhook-id"); got != ev.ID {
		t.Fatalf("webhook-id = %q, want the event id %q", got, ev.ID)
	}
	if err := Verify(wh.Secret, h.header, h.body, time.Now(), time.Minute); err != nil {
		t.Fatalf("Verify(received) = %v, want nil", err)
	}
	ts, _ := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
	if skew := time.Since(time.Unix(ts, 0)); skew < -2*time.Second || skew > 5*time.Second {
		t.Fatalf("webhook-timestamp %d is %v off now, want about now", ts, skew)
	}
	dl := f.deliveries(t, wh.ID)[0]
	if dl.EventID != ev.ID || dl.Type != "version.published" || dl.Attempt != 1 || dl.Status != store.DeliverySucceeded ||
		dl.ResponseCode != 204 || dl.Error != "" {
		t.Fatalf("delivery row = %+v, want attempt 1 succeeded 204 for %s", dl, ev.ID)
	}
	if n := len(f.deliveries(t, other.ID)); n != 0 {
		t.Fatalf("draft.updated webhook got %d deliveries of a version.published event, want 0", n)
	}
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
	if len(hits) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(hits))
	}
	var lastTS int64
	for i, h := range hits {
		if got := h.header.Get("webhook-id"); got != ev.ID {
			t.Fatalf("attempt %d webhook-id = %q, want %q (stable across retries)", i+1, got, ev.ID)
		}
		ts, err := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
		if err != nil || ts <= lastTS {
			t.Fatalf("attempt %d webhook-timestamp = %d, want a fresh one after %d", i+1, ts, lastTS)
		}
		lastTS = ts
		if err := Verify(wh.Secret, h.header, h.body, time.Unix(ts, 0), time.Second); err != nil {
			t.Fatalf("attempt %d signature: %v", i+1, err)
		}
	}
	wantStatus := []string{store.DeliveryPending, store.DeliveryPending, store.DeliveryPending, store.DeliverySucceeded}
	wantCode := []int{500, 500, 500, 200}
	for i, dl := range f.deliveries(t, wh.ID) {
		if dl.Attempt != i+1 || dl.Status != wantStatus[i] || dl.ResponseCode != wantCode[i] || dl.EventID != ev.ID {
			t.Fatalf("row %d = %+v, want attempt %d %s %d", i, dl, i+1, wantStatus[i], wantCode[i])
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 4 {
		t.Fatalf("receiver got %d requests after success, want 4", n)
	}
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
	if ds[0].Status != store.DeliveryPending || ds[1].Status != store.DeliveryPending || ds[2].Status != store.DeliveryFailed {
		t.Fatalf("statuses = %s, %s, %s; want pending, pending, failed", ds[0].Status, ds[1].Status, ds[2].Status)
	}
	if ds[2].Error != "status 502" || ds[2].ResponseCode != 502 {
		t.Fatalf("last row = %+v, want code 502 and error \"status 502\"", ds[2])
	}
	hits := rc.got()
	for i, want := range schedule {
		if gap := hits[i+1].at.Sub(hits[i].at); gap < want {
			t.Fatalf("gap before attempt %d = %v, want at least %v", i+2, gap, want)
		}
	}
	m, err := f.store.WebhookMessage(context.Background(), wh.ID, ev.ID)
	if err != nil {
		t.Fatalf("WebhookMessage: %v", err)
	}
	if p, _ := f.store.PendingWebhooks(context.Background()); len(p) != 0 || m.Attempts != 3 {
		t.Fatalf("after exhaustion: pending=%v attempts=%d, want none pending and 3 attempts", p, m.Attempts)
	}
	time.Sleep(300 * time.Millisecond)
	if n := rc.count(); n != 3 {
		t.Fatalf("receiver got %d requests, want 3 (no retries after the schedule)", n)
	}
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
	w, _ := f.store.Webhook(context.Background(), f.ws, wh.ID)
	if !strings.Contains(w.DisabledReason, "410") {
		t.Fatalf("disabled reason = %q, want it to mention 410", w.DisabledReason)
	}
	f.publish(t, d, "version.published")
	time.Sleep(200 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver got %d requests, want 1 (no retries, no new events after 410)", n)
	}
	ds := f.deliveries(t, wh.ID)
	if len(ds) != 1 || ds[0].Status != store.DeliveryFailed || ds[0].ResponseCode != 410 {
		t.Fatalf("delivery log = %+v, want one failed 410", ds)
	}
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
	if gap := hits[1].at.Sub(hits[0].at); gap < 950*time.Millisecond {
		t.Fatalf("retry came %v after a Retry-After: 1, want at least 1s", gap)
	}
	waitFor(t, 5*time.Second, "2 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	if ds := f.deliveries(t, wh.ID); ds[0].ResponseCode != 503 || ds[1].Status != store.DeliverySucceeded {
		t.Fatalf("delivery log = %+v, want 503 then success", ds)
	}
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
	if gap := hits[1].at.Sub(hits[0].at); gap < 90*time.Millisecond {
		t.Fatalf("retry came %v after the first attempt, want at least the 100ms cap", gap)
	}
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
	if ds[0].ResponseCode != 302 || ds[0].Status != store.DeliveryPending || ds[1].Status != store.DeliveryFailed ||
		!strings.Contains(ds[0].Error, "redirect") {
		t.Fatalf("delivery log = %+v, want 302 counted as a failure and retried", ds)
	}
	if n := target.count(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
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
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver got %d requests before restart, want 1", n)
	}
	if ds := f.deliveries(t, wh.ID); ds[0].Status != store.DeliveryPending {
		t.Fatalf("row before restart = %+v, want pending (a retry is scheduled)", ds[0])
	}
	// An event committed while no dispatcher runs, and never notified.
	ev2 := f.publish(t, nil, "version.published")
	if err := f.store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f.open(t)

	_, _ = start(t, f.options(400*time.Millisecond)) // no Notify: Run resumes on its own
	waitFor(t, 5*time.Second, "retry and the unnotified event after restart", func() bool { return rc.count() >= 3 })
	byID := map[string]int{}
	for _, h := range rc.got() {
		byID[h.header.Get("webhook-id")]++
	}
	if byID[ev.ID] != 2 || byID[ev2.ID] != 1 {
		t.Fatalf("requests by webhook-id = %v, want %s twice and %s once", byID, ev.ID, ev2.ID)
	}
	waitFor(t, 5*time.Second, "3 rows", func() bool { return len(f.deliveries(t, wh.ID)) == 3 })
	var retried store.Delivery
	for _, dl := range f.deliveries(t, wh.ID) {
		if dl.EventID == ev.ID && dl.Attempt == 2 {
			retried = dl
		}
	}
	if retried.Status != store.DeliverySucceeded {
		t.Fatalf("attempt 2 of %s = %+v, want succeeded", ev.ID, retried)
	}
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
	if took := time.Since(begin); took > 8*time.Second {
		t.Fatalf("fast endpoint took %v for 5 events, want well under the slow endpoint's 30s", took)
	}
	if n := slow.count(); n != 1 {
		t.Fatalf("slow endpoint got %d requests, want 1 (one in flight per endpoint)", n)
	}
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
	if err := d.Redeliver(ctx, f.ws, wh.ID, ev.ID); err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	waitFor(t, 5*time.Second, "redelivery logged", func() bool { return len(f.deliveries(t, wh.ID)) == 2 })
	hits := rc.got()
	if len(hits) != 2 || hits[1].header.Get("webhook-id") != ev.ID {
		t.Fatalf("redelivery: %d requests, webhook-id %q; want 2 with %q", len(hits), hits[len(hits)-1].header.Get("webhook-id"), ev.ID)
	}
	if dl := f.deliveries(t, wh.ID)[1]; dl.Attempt != 2 || dl.Status != store.DeliverySucceeded {
		t.Fatalf("redelivery row = %+v, want attempt 2 succeeded", dl)
	}
	for _, c := range []struct{ name, ws, hook, event string }{
		{"unknown event", f.ws, wh.ID, "evt_nope"},
		{"unknown webhook", f.ws, "wh_nope", ev.ID},
		{"other workspace", "ws_other", wh.ID, ev.ID},
		{"event never targeted the webhook", f.ws, drafts.ID, ev.ID},
	} {
		if err := d.Redeliver(ctx, c.ws, c.hook, c.event); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Redeliver(%s) err = %v, want store.ErrNotFound", c.name, err)
		}
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
		if dl.ResponseCode != 0 || !strings.Contains(dl.Error, "private or reserved") {
			t.Fatalf("row = %+v, want no response and a refusal error", dl)
		}
		if strings.Contains(dl.Error, rc.srv.URL) {
			t.Fatalf("error %q repeats the URL, want only the reason", dl.Error)
		}
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("loopback receiver got %d requests, want 0", n)
	}
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
	if ds[0].Status != store.DeliveryPending || !strings.Contains(ds[0].Error, "timeout") || ds[0].DurationMs < 150 ||
		ds[1].Status != store.DeliverySucceeded {
		t.Fatalf("delivery log = %+v, want a timeout (~200ms) then success", ds)
	}
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
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
}

func TestRunTwiceRefused(t *testing.T) {
	f := newFixture(t)
	d, _ := start(t, f.options())
	waitFor(t, 5*time.Second, "Run started", d.running.Load)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := d.Run(ctx); err == nil {
		t.Fatalf("second concurrent Run = nil, want an error")
	}
	if err := New(Options{}).Run(ctx); err == nil {
		t.Fatalf("Run without a store = nil, want an error")
	}
}

func TestConcurrencyBounds(t *testing.T) {
	f := newFixture(t)
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	blocking := func(n int, w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)

	t.Run("per endpoint", func(t *testing.T) {
		rc := newReceiver(t, blocking)
		wh := f.webhook(t, rc.srv.URL)
		o := f.options()
		o.Client = NewClient(true, 30*time.Second)
		o.PerEndpoint = 3
		d, stop := start(t, o)
		defer stop()
		for range 5 {
			f.publish(t, d, "version.published")
		}
		waitFor(t, 3*time.Second, "3 concurrent requests", func() bool { return rc.count() == 3 })
		time.Sleep(100 * time.Millisecond)
		if n := rc.count(); n != 3 {
			t.Fatalf("endpoint got %d concurrent requests, want PerEndpoint = 3", n)
		}
		open()
		waitFor(t, 3*time.Second, "all 5 delivered", func() bool { return len(f.deliveries(t, wh.ID)) == 5 })
		if p := peak.Load(); p != 3 {
			t.Fatalf("peak concurrency = %d, want 3", p)
		}
	})
}

func TestGlobalCap(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var total atomic.Int32
	var rcs []*receiver
	for range 3 {
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			total.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		rcs = append(rcs, rc)
		f.webhook(t, rc.srv.URL)
	}
	o := f.options()
	o.Client = NewClient(true, 30*time.Second)
	o.MaxConcurrent = 2
	d, _ := start(t, o)
	f.publish(t, d, "version.published")
	waitFor(t, 3*time.Second, "2 requests in flight", func() bool { return total.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	if n := total.Load(); n != 2 {
		t.Fatalf("%d requests in flight, want MaxConcurrent = 2", n)
	}
	close(release)
	waitFor(t, 3*time.Second, "third endpoint served after the cap frees", func() bool { return total.Load() == 3 })
	for i, rc := range rcs {
		if n := rc.count(); n != 1 {
			t.Fatalf("endpoint %d got %d requests, want 1", i, n)
		}
	}
}
