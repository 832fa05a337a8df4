package webhook

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/server/store"
)

// Defaults of [Options].
const (
	// DefaultPerEndpoint is the default of Options.PerEndpoint.
	DefaultPerEndpoint = 1
	// DefaultMaxConcurrent is the default of Options.MaxConcurrent.
	DefaultMaxConcurrent = 64
	// DefaultPerWorkspace is the default of Options.PerWorkspace.
	DefaultPerWorkspace = 8
	// DefaultPoll is the default of Options.Poll.
	DefaultPoll = 5 * time.Second
	// DefaultMaxRetryAfter is the default of Options.MaxRetryAfter.
	DefaultMaxRetryAfter = 24 * time.Hour
	// DefaultRetention is the default of Options.Retention: 30 days.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultPruneEvery is the default of Options.PruneEvery.
	DefaultPruneEvery = time.Hour
)

// fanOutBatch is how many outbox events one fan-out transaction consumes.
const fanOutBatch = 500

// maxErrorText bounds the error text kept in a delivery row.
const maxErrorText = 300

// Options configures a [Dispatcher]. Only Store is required.
type Options struct {
	// Store holds the webhooks, the event outbox, the queue and the log.
	Store *store.Store
	// Client sends the deliveries; nil means NewClient(false, DefaultTimeout).
	// Build it with [NewClient] so the SSRF policy holds at dial time.
	Client *http.Client
	// Schedule holds the delays before each retry after the immediate first
	// attempt; empty means [DefaultSchedule].
	Schedule []time.Duration
	// Now is the clock (nil: time.Now). It stamps webhook-timestamp, the
	// delivery log and retry times; it must advance with real time.
	Now func() time.Time
	// Logger gets one line per attempt (never a secret or a URL query).
	Logger zerolog.Logger
	// PerEndpoint is how many deliveries one webhook may have in flight
	// at once (default 1).
	PerEndpoint int
	// MaxConcurrent caps the attempts in flight across all webhooks
	// (default 64); endpoint workers (one per webhook with due messages)
	// are capped at 4 × MaxConcurrent.
	MaxConcurrent int
	// PerWorkspace caps the attempts in flight of one workspace's webhooks
	// together (default 8), so one tenant's slow endpoints hold at most
	// that share of MaxConcurrent. A freed attempt slot goes to the
	// waiting workspace with the fewest attempts in flight. Workers are
	// shared the same way: one workspace gets at most
	// max(PerWorkspace, MaxWebhooksPerWorkspace) of them, the next free
	// one goes to the workspace with the fewest, and while webhooks wait
	// for one, a worker that has had its turn (PerEndpoint attempts)
	// makes way.
	PerWorkspace int
	// Poll is the fallback interval for looking at the outbox and the queue
	// without a Notify (default 5 s).
	Poll time.Duration
	// Jitter perturbs each retry delay (default: uniformly ±10 %).
	Jitter func(d time.Duration) time.Duration
	// MaxRetryAfter caps a Retry-After the endpoint asks for (default 24 h).
	MaxRetryAfter time.Duration
	// Retention is how long delivery log rows are kept (default 30 days);
	// they are pruned every PruneEvery (default 1 h) and when Run starts.
	Retention  time.Duration
	PruneEvery time.Duration
}

// Dispatcher fans out events from the store's outbox to matching webhooks
// and delivers them with retries. Create it with [New], run it with
// [Dispatcher.Run]; [Dispatcher.Notify] and [Dispatcher.Redeliver] may be
// called from any goroutine, before or while it runs.
type Dispatcher struct {
	store               *store.Store
	client              *http.Client
	schedule            []time.Duration
	now                 func() time.Time
	log                 zerolog.Logger
	perEndpoint         int
	maxConcurrent       int
	perWorkspace        int
	maxWorkers          int // endpoint workers in all
	workersPerWorkspace int // endpoint workers of one workspace
	poll                time.Duration
	jitter              func(time.Duration) time.Duration
	maxRetryAfter       time.Duration
	retention           time.Duration
	pruneEvery          time.Duration

	notify  chan struct{} // capacity 1: coalesced wake-ups
	running atomic.Bool

	mu   sync.Mutex
	wake map[string]struct{} // webhooks to look at now (redeliveries)
}

// New returns a Dispatcher with o's zero fields set to their defaults.
func New(o Options) *Dispatcher {
	d := &Dispatcher{
		store:         o.Store,
		client:        o.Client,
		schedule:      append([]time.Duration(nil), o.Schedule...),
		now:           o.Now,
		log:           o.Logger,
		perEndpoint:   o.PerEndpoint,
		maxConcurrent: o.MaxConcurrent,
		perWorkspace:  o.PerWorkspace,
		poll:          o.Poll,
		jitter:        o.Jitter,
		maxRetryAfter: o.MaxRetryAfter,
		retention:     o.Retention,
		pruneEvery:    o.PruneEvery,
		notify:        make(chan struct{}, 1),
		wake:          map[string]struct{}{},
	}
	if d.client == nil {
		d.client = NewClient(false, DefaultTimeout)
	}
	if len(d.schedule) == 0 {
		d.schedule = DefaultSchedule()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.perEndpoint <= 0 {
		d.perEndpoint = DefaultPerEndpoint
	}
	if d.maxConcurrent <= 0 {
		d.maxConcurrent = DefaultMaxConcurrent
	}
	if d.perWorkspace <= 0 {
		d.perWorkspace = DefaultPerWorkspace
	}
	d.maxWorkers = 4 * d.maxConcurrent
	d.workersPerWorkspace = max(d.perWorkspace, MaxWebhooksPerWorkspace)
	if d.poll <= 0 {
		d.poll = DefaultPoll
	}
	if d.jitter == nil {
		d.jitter = tenPercentJitter
	}
	if d.maxRetryAfter <= 0 {
		d.maxRetryAfter = DefaultMaxRetryAfter
	}
	if d.retention <= 0 {
		d.retention = DefaultRetention
	}
	if d.pruneEvery <= 0 {
		d.pruneEvery = DefaultPruneEvery
	}
	return d
}

// tenPercentJitter returns d moved uniformly at random within ±10 %.
func tenPercentJitter(d time.Duration) time.Duration {
	span := d / 5
	if span <= 0 {
		return d
	}
	return d - d/10 + rand.N(span+1)
}

// Notify wakes the dispatcher to fan out and deliver new events now. It
// never blocks; call it after committing an event.
func (d *Dispatcher) Notify() {
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// Redeliver queues a fresh attempt, due now, of the event to the workspace's
// webhook, with the same webhook-id. A delivery still being retried is just
// made due now; a finished one gets a one-off attempt (not retried), even if
// the webhook was disabled. The error wraps store.ErrNotFound if the webhook
// is unknown or another workspace's, or the event never targeted it (or
// its record is older than the retention).
func (d *Dispatcher) Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error {
	if err := d.store.RequeueWebhookMessage(ctx, workspaceID, webhookID, eventID, d.now()); err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	d.mu.Lock()
	d.wake[webhookID] = struct{}{}
	d.mu.Unlock()
	d.Notify()
	return nil
}

// worker delivers one webhook's due messages, up to perEndpoint at a time.
// Only the Run loop starts workers, at most one per webhook.
type worker struct {
	id   string
	ws   string        // the webhook's workspace
	poke chan struct{} // capacity 1
	// gen counts pokes; a worker reports the gen it last looked at the
	// queue under, so the loop can tell whether work arrived since.
	gen atomic.Uint64
}

type workerExit struct {
	w       *worker
	seen    uint64
	next    time.Time
	hasNext bool
}

// record is one attempt outcome on its way to the group-commit writer.
type record struct {
	attempt store.WebhookAttempt
	done    chan error
}

// loop is the state of one Run, owned by its goroutine.
type loop struct {
	d         *Dispatcher
	ctx       context.Context
	active    map[string]*worker
	due       map[string]time.Time // webhooks without a worker, and when to start one
	wsOf      map[string]string    // webhook → workspace, learnt once per Run
	wsWorkers map[string]int       // workspace → its active workers
	exited    chan workerExit
	admit     *admission
	records   chan record
	wg        sync.WaitGroup
	timer     *time.Timer
	pruning   atomic.Bool
	// contended is set while due webhooks wait for a worker because all
	// are taken, and waiting holds the workspaces whose due webhooks wait
	// because the workspace has its share of workers: workers
	// that had their turn then yield.
	contended atomic.Bool
	waiting   atomic.Pointer[map[string]bool]
}

// Run fans out and delivers until ctx is done, then waits for in-flight
// attempts to be recorded and returns nil. On start it resumes every pending
// delivery (retries survive restarts). Run must not be called twice at once.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.store == nil {
		return errors.New("webhook: dispatcher without a store")
	}
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("webhook: dispatcher already running")
	}
	defer d.running.Store(false)

	l := &loop{
		d:         d,
		ctx:       ctx,
		active:    map[string]*worker{},
		due:       map[string]time.Time{},
		wsOf:      map[string]string{},
		wsWorkers: map[string]int{},
		exited:    make(chan workerExit),
		admit:     newAdmission(d.maxConcurrent, d.perWorkspace),
		records:   make(chan record, d.maxConcurrent),
		timer:     time.NewTimer(time.Hour),
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		d.writeRecords(l.records)
	}()
	poll := time.NewTicker(d.poll)
	prune := time.NewTicker(d.pruneEvery)
	defer func() {
		poll.Stop()
		prune.Stop()
		l.timer.Stop()
		l.wg.Wait() // workers wait for their attempts, attempts for their records
		close(l.records)
		<-writerDone
	}()

	l.resume()
	l.fanOut()
	l.prune()
	for {
		l.startDue()
		select {
		case <-ctx.Done():
			return nil
		case <-d.notify:
			d.mu.Lock()
			wake := d.wake
			d.wake = map[string]struct{}{}
			d.mu.Unlock()
			for id := range wake {
				l.ensure(id)
			}
			l.fanOut()
		case ex := <-l.exited:
			delete(l.active, ex.w.id)
			if l.wsWorkers[ex.w.ws]--; l.wsWorkers[ex.w.ws] <= 0 {
				delete(l.wsWorkers, ex.w.ws)
			}
			switch {
			case ex.w.gen.Load() != ex.seen:
				l.ensure(ex.w.id) // poked after its last look at the queue
			case ex.hasNext:
				l.schedule(ex.w.id, ex.next)
			}
		case <-l.timer.C:
		case <-poll.C:
			l.fanOut()
			l.resume()
		case <-prune.C:
			l.prune()
		}
	}
}

// resume schedules every webhook with pending messages (start, poll).
func (l *loop) resume() {
	pending, err := l.d.store.PendingWebhooks(l.ctx)
	if err != nil {
		if l.ctx.Err() == nil {
			l.d.log.Error().Err(err).Msg("webhook: list pending deliveries")
		}
		return
	}
	for id, next := range pending {
		if _, ok := l.active[id]; !ok {
			l.schedule(id, next)
		}
	}
}

// fanOut turns new outbox events into messages and wakes their webhooks.
func (l *loop) fanOut() {
	for l.ctx.Err() == nil {
		f, err := l.d.store.FanOutWebhookEvents(l.ctx, l.d.now(), fanOutBatch)
		if err != nil {
			if l.ctx.Err() == nil {
				l.d.log.Error().Err(err).Msg("webhook: fan out events")
			}
			return
		}
		for _, id := range f.Webhooks {
			l.ensure(id)
		}
		if f.Events < fanOutBatch {
			return
		}
	}
}

// prune deletes old delivery log rows in the background, one pass at a
// time.
func (l *loop) prune() {
	if !l.pruning.CompareAndSwap(false, true) {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.pruning.Store(false)
		n, err := l.d.store.PruneDeliveries(l.ctx, l.d.now().Add(-l.d.retention))
		if err != nil {
			if l.ctx.Err() == nil {
				l.d.log.Error().Err(err).Msg("webhook: prune delivery log")
			}
			return
		}
		if n > 0 {
			l.d.log.Info().Int("deleted", n).Msg("webhook: pruned delivery log")
		}
	}()
}

// schedule records that webhook id needs a worker at (or before) at.
func (l *loop) schedule(id string, at time.Time) {
	if cur, ok := l.due[id]; !ok || at.Before(cur) {
		l.due[id] = at
	}
}

// ensure makes sure webhook id is looked at now: it pokes its worker, or
// starts one (or queues it when at the worker cap).
func (l *loop) ensure(id string) {
	if w, ok := l.active[id]; ok {
		w.gen.Add(1)
		select {
		case w.poke <- struct{}{}:
		default:
		}
		return
	}
	l.schedule(id, time.Time{})
}

// startDue starts workers for due webhooks while under the caps, and arms
// the timer for the earliest future one. Workers start fairly: the next
// slot goes to the workspace with the fewest workers (ties: the longest
// due), and no workspace gets more than its share (d.workersPerWorkspace).
func (l *loop) startDue() {
	now := l.d.now()
	var earliest time.Time
	groups := map[string][]dueHook{} // workspace → its due webhooks
	for id, at := range l.due {
		if at.After(now) {
			if earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
			continue
		}
		ws, ok := l.workspace(id)
		if !ok {
			continue
		}
		groups[ws] = append(groups[ws], dueHook{id: id, at: at})
	}
	h := make(wsHeap, 0, len(groups))
	waiting := map[string]bool{}
	for ws, g := range groups {
		if l.wsWorkers[ws] >= l.d.workersPerWorkspace {
			waiting[ws] = true // its own cap: it waits for one of its workers
			continue
		}
		sort.Slice(g, func(i, j int) bool {
			if !g[i].at.Equal(g[j].at) {
				return g[i].at.Before(g[j].at)
			}
			return g[i].id < g[j].id
		})
		h = append(h, &wsDue{ws: ws, hooks: g, workers: l.wsWorkers[ws]})
	}
	heap.Init(&h)
	for h.Len() > 0 && len(l.active) < l.d.maxWorkers {
		g := h[0]
		l.start(g.hooks[0].id, g.ws)
		delete(l.due, g.hooks[0].id)
		g.hooks = g.hooks[1:]
		g.workers++
		switch {
		case len(g.hooks) == 0:
			heap.Pop(&h)
		case g.workers >= l.d.workersPerWorkspace:
			waiting[g.ws] = true
			heap.Pop(&h)
		default:
			heap.Fix(&h, 0)
		}
	}
	l.contended.Store(h.Len() > 0)
	l.waiting.Store(&waiting)
	if earliest.IsZero() {
		l.timer.Reset(time.Hour)
		return
	}
	l.timer.Reset(earliest.Sub(now))
}

// othersWait reports whether webhooks wait for a worker that a worker of
// workspace ws could make way for.
func (l *loop) othersWait(ws string) bool {
	if l.contended.Load() {
		return true
	}
	w := l.waiting.Load()
	return w != nil && (*w)[ws]
}

// workspace returns the workspace of webhook id, looking it up once; a
// webhook that no longer exists is dropped from the due set.
func (l *loop) workspace(id string) (string, bool) {
	if ws, ok := l.wsOf[id]; ok {
		return ws, true
	}
	hook, err := l.d.store.WebhookByID(l.ctx, id)
	switch {
	case err == nil:
		l.wsOf[id] = hook.WorkspaceID
		return hook.WorkspaceID, true
	case errors.Is(err, store.ErrNotFound):
		delete(l.due, id)
	case l.ctx.Err() == nil:
		l.d.log.Error().Err(err).Str("webhook", id).Msg("webhook: load webhook")
		l.due[id] = l.d.now().Add(l.d.poll)
	}
	return "", false
}

// dueHook is a webhook waiting for a worker.
type dueHook struct {
	id string
	at time.Time
}

// wsDue is one workspace's due webhooks, earliest first.
type wsDue struct {
	ws      string
	hooks   []dueHook
	workers int
}

// wsHeap orders workspaces by workers, then by their earliest due webhook.
type wsHeap []*wsDue

func (h wsHeap) Len() int { return len(h) }
func (h wsHeap) Less(i, j int) bool {
	if h[i].workers != h[j].workers {
		return h[i].workers < h[j].workers
	}
	if !h[i].hooks[0].at.Equal(h[j].hooks[0].at) {
		return h[i].hooks[0].at.Before(h[j].hooks[0].at)
	}
	return h[i].ws < h[j].ws
}
func (h wsHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *wsHeap) Push(x any)   { *h = append(*h, x.(*wsDue)) }
func (h *wsHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (l *loop) start(id, ws string) {
	w := &worker{id: id, ws: ws, poke: make(chan struct{}, 1)}
	l.active[id] = w
	l.wsWorkers[ws]++
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.work(w)
	}()
}

// prefetch is how many due messages a worker reads per query.
const prefetch = 64

// work is one webhook's worker: it reads due messages (a batch at a time),
// keeps up to perEndpoint requests in flight, and exits when nothing is
// due, telling the loop when the next message will be, or when it has had
// its turn (PerEndpoint attempts) and other webhooks wait for a worker
// (it then exits due now and queues behind them). A message stays
// "in flight" until its attempt is recorded, so it is never sent twice at
// once; its request slot frees as soon as the response is in, so the next
// request does not wait for the database.
func (l *loop) work(w *worker) {
	d := l.d
	var (
		queue    []store.WebhookMessage // due, read but not started
		hook     store.Webhook
		inflight = map[string]bool{}              // started, not yet recorded
		busy     int                              // requests in progress
		slotFree = make(chan bool, d.perEndpoint) // true: the endpoint is gone (410)
		recorded = make(chan string, d.perEndpoint+prefetch)
		timer    = time.NewTimer(time.Hour)
		served   int  // attempts started by this worker
		yielding bool // had its turn while others wait: start nothing more
	)
	defer timer.Stop()
	exit := func(seen uint64, next time.Time, hasNext bool) {
		select {
		case l.exited <- workerExit{w: w, seen: seen, next: next, hasNext: hasNext}:
		case <-l.ctx.Done():
		}
	}
	for l.ctx.Err() == nil {
		seen := w.gen.Load()
		if yielding && len(inflight) == 0 {
			exit(seen, d.now(), true)
			return
		}
		if !yielding && len(queue) == 0 && busy < d.perEndpoint {
			now := d.now()
			msgs, err := d.store.DueWebhookMessages(l.ctx, w.id, now, prefetch+len(inflight))
			if err == nil && len(msgs) > 0 {
				hook, err = d.store.WebhookByID(l.ctx, w.id)
			}
			switch {
			case err == nil:
				for _, m := range msgs {
					if !inflight[m.EventID] {
						queue = append(queue, m)
					}
				}
				if len(queue) == 0 {
					// Everything due is in flight: when is the next one due?
					next, ok, err := d.store.NextWebhookMessageAt(l.ctx, w.id, now)
					if err != nil {
						if l.ctx.Err() != nil {
							break
						}
						d.log.Error().Err(err).Str("webhook", w.id).Msg("webhook: next delivery time")
						next, ok = now.Add(d.poll), true
					}
					if len(inflight) == 0 {
						exit(seen, next, ok)
						return
					}
					if ok {
						timer.Reset(max(next.Sub(d.now()), 0))
					}
				}
			case errors.Is(err, store.ErrNotFound):
				// The webhook was deleted: finish what is in flight, then go.
				if len(inflight) == 0 {
					exit(seen, time.Time{}, false)
					return
				}
			case l.ctx.Err() == nil:
				d.log.Error().Err(err).Str("webhook", w.id).Msg("webhook: load due deliveries")
				if len(inflight) == 0 {
					exit(seen, now.Add(d.poll), true)
					return
				}
				timer.Reset(d.poll)
			}
		}
		for !yielding && busy < d.perEndpoint && len(queue) > 0 && l.ctx.Err() == nil {
			if served >= d.perEndpoint && l.othersWait(w.ws) {
				yielding, queue = true, nil
				break
			}
			if !l.admit.acquire(l.ctx, hook.WorkspaceID) {
				continue
			}
			m := queue[0]
			queue = queue[1:]
			inflight[m.EventID] = true
			busy++
			served++
			go l.attempt(hook, m, slotFree, recorded)
		}
		if yielding && len(inflight) == 0 {
			continue
		}
		select {
		case gone := <-slotFree:
			busy--
			if gone {
				queue = nil // its other messages were canceled with it
			}
		case id := <-recorded:
			delete(inflight, id)
		case <-w.poke:
		case <-timer.C:
		case <-l.ctx.Done():
		}
	}
	// Shutdown: wait for the attempts in flight (cut short by ctx).
	for len(inflight) > 0 {
		select {
		case <-slotFree:
		case id := <-recorded:
			delete(inflight, id)
		}
	}
}

// attempt makes one delivery attempt, frees its request slot, records the
// outcome, then reports the message recorded to its worker. On shutdown
// mid-request nothing is recorded: the message stays due and is delivered
// after the restart.
func (l *loop) attempt(hook store.Webhook, m store.WebhookMessage, slotFree chan<- bool, recorded chan<- string) {
	d := l.d
	defer func() { recorded <- m.EventID }()
	a, ok := d.deliver(l.ctx, hook, m)
	l.admit.release(hook.WorkspaceID)
	slotFree <- ok && a.Disable != ""
	if !ok {
		return
	}
	r := record{attempt: a, done: make(chan error, 1)}
	l.records <- r
	if err := <-r.done; err != nil {
		d.log.Error().Err(err).Str("webhook", hook.ID).Str("event", m.EventID).Msg("webhook: record attempt")
		// Back off before the worker sees the message due again.
		select {
		case <-time.After(d.poll):
		case <-l.ctx.Done():
		}
	}
}

// writeRecords commits attempt outcomes in groups: whatever has queued up
// while the previous transaction ran goes into the next one.
func (d *Dispatcher) writeRecords(in <-chan record) {
	for r := range in {
		batch := []record{r}
	gather:
		for len(batch) < 256 {
			select {
			case r, ok := <-in:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		attempts := make([]store.WebhookAttempt, len(batch))
		for i, b := range batch {
			attempts[i] = b.attempt
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.store.RecordWebhookAttempts(ctx, attempts)
		cancel()
		for _, b := range batch {
			b.done <- err
		}
	}
}

// deliver POSTs the event to the webhook once and returns the outcome to
// record, or false when the attempt was cut short by shutdown.
func (d *Dispatcher) deliver(ctx context.Context, hook store.Webhook, m store.WebhookMessage) (store.WebhookAttempt, bool) {
	start := d.now()
	a := store.WebhookAttempt{
		Delivery: store.Delivery{
			WebhookID: hook.ID, EventID: m.EventID, Type: m.EventType, Attempt: m.Attempts + 1, At: start,
		},
		Rev: m.Rev,
	}
	code, retryAfter, errText := d.post(ctx, hook, m, start)
	if ctx.Err() != nil && code == 0 {
		return a, false
	}
	end := d.now()
	a.Delivery.DurationMs = max(end.Sub(start).Milliseconds(), 0)
	a.Delivery.ResponseCode = code
	a.Delivery.Error = truncate(errText, maxErrorText)
	lg := d.log.With().Str("webhook", hook.ID).Str("event", m.EventID).Int("attempt", a.Delivery.Attempt).
		Int("status", code).Int64("durationMs", a.Delivery.DurationMs).Logger()
	switch {
	case code >= 200 && code < 300:
		a.Delivery.Status, a.MessageStatus = store.DeliverySucceeded, store.DeliverySucceeded
		lg.Debug().Msg("webhook delivered")
	case code == http.StatusGone:
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.DeliveryFailed
		a.Disable = "endpoint answered 410 Gone"
		lg.Warn().Msg("webhook endpoint gone: disabled")
	case errText == errEventGone || errText == errBadSecret || m.Manual || m.Step >= len(d.schedule):
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.DeliveryFailed
		a.Step = m.Step
		lg.Warn().Str("error", a.Delivery.Error).Msg("webhook delivery failed")
	default:
		delay := d.jitter(d.schedule[m.Step])
		if retryAfter > delay {
			delay = min(retryAfter, d.maxRetryAfter)
		}
		// The attempt failed; the message stays pending for its retry.
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.MessagePending
		a.Step = m.Step + 1
		a.NextAt = end.Add(delay)
		lg.Info().Str("error", a.Delivery.Error).Dur("retryIn", delay).Msg("webhook delivery failed, will retry")
	}
	return a, true
}

const (
	errEventGone = "event no longer exists"
	errBadSecret = "invalid signing secret"
)

// post sends one request and returns the response status (0: none), the
// Retry-After delay asked for, and an error text without secrets.
func (d *Dispatcher) post(ctx context.Context, hook store.Webhook, m store.WebhookMessage, ts time.Time) (int, time.Duration, string) {
	if m.EventMissing {
		return 0, 0, errEventGone
	}
	sig, err := Sign(hook.Secret, m.EventID, ts, m.Payload)
	if err != nil {
		return 0, 0, errBadSecret
	}
	if d.client.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return 0, 0, "bad endpoint url"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowyte-webhooks/1")
	req.Header.Set(HeaderID, m.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, describe(err, d.client.Timeout)
	}
	// Drain a little so the connection can be reused; the body is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	var text string
	switch {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		text = fmt.Sprintf("status %d: redirects are not followed", code)
	default:
		text = fmt.Sprintf("status %d", code)
	}
	return code, retryAfter(resp.Header.Get("Retry-After"), d.now()), text
}

// describe turns a transport error into log text: no URL (its query may
// hold a token), no resolver or local address (internal), the reason only.
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, ErrPrivateAddress) {
		var op *net.OpError
		if errors.As(err, &op) && op.Addr != nil {
			return "refused: " + op.Addr.String() + " is a private or reserved address"
		}
		return "refused: private or reserved address"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		if timeout > 0 {
			return "timeout after " + timeout.String()
		}
		return "timeout"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return lookupFailure(de.Name, err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		// Without op.Source: the daemon's own address is internal.
		s := op.Op
		if op.Addr != nil {
			s += " " + op.Addr.String()
		}
		return s + ": " + op.Err.Error()
	}
	return stripURL(err).Error()
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP date)
// into a delay from now; 0 when absent, unparsable or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
