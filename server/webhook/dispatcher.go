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

// claimRace is how soon a worker looks again at a message that was due but
// that another dispatcher was claiming.
const claimRace = 50 * time.Millisecond

// maxErrorText bounds the error text kept in a delivery row.
const maxErrorText = 300

// Options configures a [Dispatcher]. Only Store is required.
type Options struct {
	// Store holds the webhooks, the event outbox, the queue and the log:
	// *store.Store (SQLite) or *postgres.Store (PostgreSQL, which several
	// daemons may share, each running a Dispatcher).
	Store Store
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
	// Lease is how long a message claimed for an attempt stays hidden
	// from every dispatcher on the database (this one included). An
	// attempt is cut short at 3/4 of its lease, so its outcome is recorded
	// before the lease ends and no other daemon sends it again; if the
	// daemon dies mid-attempt, the message falls due again when the lease
	// ends. Default: [DefaultLease] of the attempt timeout (the client's
	// Timeout, or DefaultTimeout).
	Lease time.Duration
	// Wake, if not nil, wakes the dispatcher as Notify does, to fan out
	// and pick up due messages now: the daemon feeds it the notifications
	// of other daemons (PostgreSQL LISTEN), so events they commit and
	// messages their dispatchers leave are seen before the next Poll. A
	// closed Wake is ignored from then on.
	Wake <-chan struct{}
}

// DefaultLease returns the default [Options.Lease] for an attempt timeout:
// twice the timeout, and at least the timeout plus 5 s for the record.
func DefaultLease(attemptTimeout time.Duration) time.Duration {
	return max(2*attemptTimeout, attemptTimeout+5*time.Second)
}

// Dispatcher fans out events from the store's outbox to matching webhooks
// and delivers them with retries. Create it with [New], run it with
// [Dispatcher.Run]; [Dispatcher.Notify] and [Dispatcher.Redeliver] may be
// called from any goroutine, before or while it runs.
type Dispatcher struct {
	store               Store
	client              *http.Client
	attemptTimeout      time.Duration // the client's Timeout, or DefaultTimeout
	lease               time.Duration
	maxAge              time.Duration // the oldest claim an attempt may start on
	wakeCh              <-chan struct{}
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
		lease:         o.Lease,
		wakeCh:        o.Wake,
		notify:        make(chan struct{}, 1),
		wake:          map[string]struct{}{},
	}
	if d.client == nil {
		d.client = NewClient(false, DefaultTimeout)
	}
	d.attemptTimeout = d.client.Timeout
	if d.attemptTimeout <= 0 {
		d.attemptTimeout = DefaultTimeout
	}
	if d.lease <= 0 {
		d.lease = DefaultLease(d.attemptTimeout)
	}
	// An attempt started on a claim this old still ends (at the attempt
	// timeout) before 3/4 of the lease, with the last quarter for the
	// record; a lease too short for that cuts attempts short.
	d.maxAge = max(d.lease*3/4-d.attemptTimeout, d.lease/4)
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
	wakeCh := d.wakeCh
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
		case _, ok := <-wakeCh:
			if !ok {
				wakeCh = nil
				continue
			}
			l.fanOut()
			l.resume()
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

// claimed is a message this dispatcher has claimed for an attempt.
type claimed struct {
	m  store.WebhookMessage
	at time.Time // when it was claimed (real time): its lease runs from here
}

// started is an attempt made and not yet recorded.
type started struct {
	rev     int64
	attempt int
}

// slotResult is what an attempt tells its worker when its request is over.
type slotResult struct {
	gone bool          // the endpoint answered 410: its messages are canceled
	took time.Duration // the request's duration (0: cut short by shutdown)
}

// prefetch caps how many messages a worker claims at once.
const prefetch = 64

// work is one webhook's worker. It claims due messages (a batch at a time:
// as many as it can start within maxAge of the claim, judging by its
// endpoint's recent response times), keeps up to perEndpoint requests in
// flight, and exits when nothing is due, telling the loop when the next
// message will be, or when it has had its turn (PerEndpoint attempts) and
// other webhooks wait for a worker (it then hands back what it claimed and
// did not start, exits due now and queues behind them). A claimed message
// not started within maxAge is left to fall due when its lease ends, so an
// attempt always ends, and is recorded, within its lease. A message stays
// "in flight" until its attempt is recorded, so this worker never sends it
// twice at once: a redelivery claimed meanwhile waits for that record. The
// request slot frees as soon as the response is in, so the next request
// does not wait for the database.
func (l *loop) work(w *worker) {
	d := l.d
	var (
		hook      store.Webhook
		haveHook  bool
		queue     []claimed                              // claimed, not started
		inflight  = map[string]started{}                 // started, not yet recorded
		held      = map[string]claimed{}                 // claimed while the same message is in flight
		busy      int                                    // requests in progress
		slotFree  = make(chan slotResult, d.perEndpoint) // a request is over
		recorded  = make(chan string, d.perEndpoint)
		timer     = time.NewTimer(time.Hour)
		notBefore time.Time     // after a store error: claim nothing before (real time)
		served    int           // attempts started by this worker
		yielding  bool          // had its turn while others wait: claim nothing more
		gone      bool          // a 410 came in: claim nothing until it is recorded
		avg       time.Duration // moving average of the request durations (0: none yet)
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
		if gone && len(inflight) == 0 {
			gone = false
		}
		if yielding && len(inflight) == 0 && len(queue) == 0 {
			exit(seen, d.now(), true)
			return
		}
		// Start what is claimed while request slots are free.
		for busy < d.perEndpoint && len(queue) > 0 && l.ctx.Err() == nil {
			if !yielding && served >= d.perEndpoint && l.othersWait(w.ws) {
				yielding = true
				l.unclaim(l.ctx, w, queue)
				queue = nil
				break
			}
			if !l.admit.acquire(l.ctx, w.ws) {
				break
			}
			c := queue[0]
			queue = queue[1:]
			if time.Since(c.at) > d.maxAge {
				// Too little of its lease is left for an attempt: it
				// falls due again when the lease ends.
				l.admit.release(w.ws)
				continue
			}
			inflight[c.m.EventID] = started{rev: c.m.Rev, attempt: c.m.Attempts + 1}
			busy++
			served++
			go l.attempt(hook, c, slotFree, recorded)
		}
		if len(queue) == 0 && !yielding && !gone && busy < d.perEndpoint &&
			!time.Now().Before(notBefore) && l.ctx.Err() == nil {
			if served >= d.perEndpoint && l.othersWait(w.ws) {
				yielding = true
				continue
			}
			if !haveHook {
				h, err := d.store.WebhookByID(l.ctx, w.id)
				switch {
				case err == nil:
					hook, haveHook = h, true
				case errors.Is(err, store.ErrNotFound):
					// The webhook was deleted with its queue: finish what is
					// in flight, then go.
					if len(inflight) == 0 {
						exit(seen, time.Time{}, false)
						return
					}
					gone = true
					continue
				case l.ctx.Err() != nil:
					continue
				default:
					d.log.Error().Err(err).Str("webhook", w.id).Msg("webhook: load webhook")
					if len(inflight) == 0 {
						exit(seen, d.now().Add(d.poll), true)
						return
					}
					notBefore = time.Now().Add(d.poll)
					timer.Reset(d.poll)
					continue
				}
			}
			// Look first (a read), claim (a write) only when something is due.
			now := d.now()
			next, ok, err := d.store.NextWebhookMessageAt(l.ctx, w.id, time.Time{})
			if err != nil {
				if l.ctx.Err() != nil {
					continue
				}
				d.log.Error().Err(err).Str("webhook", w.id).Msg("webhook: next delivery time")
				next, ok = now.Add(d.poll), true
			}
			if ok && !next.After(now) {
				n := d.perEndpoint - busy
				if avg > 0 && !l.othersWait(w.ws) {
					n = max(n, min(prefetch, int(int64(d.perEndpoint)*int64(d.maxAge)/int64(avg))))
				}
				now, at := d.now(), time.Now()
				msgs, err := d.store.ClaimWebhookMessages(l.ctx, w.id, now, d.lease, n)
				for _, m := range msgs {
					if _, ok := inflight[m.EventID]; ok {
						held[m.EventID] = claimed{m: m, at: at}
					} else {
						queue = append(queue, claimed{m: m, at: at})
					}
				}
				switch {
				case err != nil:
					if l.ctx.Err() != nil {
						continue
					}
					d.log.Error().Err(err).Str("webhook", w.id).Msg("webhook: claim due deliveries")
					if len(inflight) == 0 && len(queue) == 0 {
						exit(seen, now.Add(d.poll), true)
						return
					}
					notBefore = time.Now().Add(d.poll)
					timer.Reset(d.poll)
				case len(msgs) > 0:
					continue // start them
				case len(inflight) == 0:
					// What looked due is being claimed by another
					// dispatcher: look again shortly.
					exit(seen, now.Add(claimRace), true)
					return
				default:
					timer.Reset(claimRace)
				}
			} else {
				// Nothing is due now.
				if len(inflight) == 0 {
					exit(seen, next, ok)
					return
				}
				if ok {
					timer.Reset(max(next.Sub(now), 0))
				}
			}
		}
		select {
		case r := <-slotFree:
			busy--
			if r.took > 0 {
				if avg == 0 {
					avg = r.took
				} else {
					avg = (3*avg + r.took) / 4
				}
			}
			if r.gone {
				// Its automatic messages are canceled with it; hand back the
				// redeliveries.
				gone = true
				var manual []claimed
				for _, c := range queue {
					if c.m.Manual {
						manual = append(manual, c)
					}
				}
				l.unclaim(l.ctx, w, manual)
				queue = nil
			}
		case id := <-recorded:
			s := inflight[id]
			delete(inflight, id)
			if c, ok := held[id]; ok {
				delete(held, id)
				// Claimed again while in flight: a redelivery asked for
				// meanwhile (a newer revision), or the retry, due already
				// when the record was in and the worker had not heard yet
				// (the attempt counted): send it now. Otherwise the lease
				// ran out mid-attempt: the record just made covers it.
				if c.m.Rev != s.rev || c.m.Attempts >= s.attempt {
					c.m.Attempts = max(c.m.Attempts, s.attempt)
					queue = append([]claimed{c}, queue...)
				}
			}
		case <-w.poke:
		case <-timer.C:
		case <-l.ctx.Done():
		}
	}
	// Shutdown: wait for the attempts in flight (cut short by ctx), then
	// hand back what is claimed and not started, so another daemon (or
	// this one after a restart) need not wait for the leases to end.
	for len(inflight) > 0 {
		select {
		case <-slotFree:
		case id := <-recorded:
			delete(inflight, id)
		}
	}
	for _, c := range held {
		queue = append(queue, c)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 5*time.Second)
	defer cancel()
	l.unclaim(ctx, w, queue)
}

// unclaim hands claimed messages that the worker will not send back to the
// queue, due now (with a new revision, as a redelivery without the
// "manual" mark). One claimed too long ago is left to its lease: it may
// have run out, and the message been settled by another dispatcher.
func (l *loop) unclaim(ctx context.Context, w *worker, cs []claimed) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if time.Since(c.at) > l.d.lease/2 {
			continue
		}
		wg.Go(func() {
			err := l.d.store.RequeueWebhookMessage(ctx, w.ws, w.id, c.m.EventID, l.d.now())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				l.d.log.Warn().Err(err).Str("webhook", w.id).Str("event", c.m.EventID).
					Msg("webhook: hand back a claimed delivery (it is retried when its lease ends)")
			}
		})
	}
	wg.Wait()
}

// attempt makes one delivery attempt, frees its request slot, records the
// outcome, then reports the message recorded to its worker. The request
// is cut short so that it ends within 3/4 of the claim's lease, leaving
// the rest for the record: no other dispatcher claims the message before
// its outcome is in. On shutdown mid-request nothing is recorded: the
// message falls due again when its lease ends.
func (l *loop) attempt(hook store.Webhook, c claimed, slotFree chan<- slotResult, recorded chan<- string) {
	d := l.d
	m := c.m
	defer func() { recorded <- m.EventID }()
	begin := time.Now()
	a, ok := d.deliver(l.ctx, hook, m, c.at.Add(d.lease-d.lease/4))
	l.admit.release(hook.WorkspaceID)
	r := slotResult{gone: ok && a.Disable != ""}
	if ok {
		r.took = max(time.Since(begin), time.Microsecond)
	}
	slotFree <- r
	if !ok {
		return
	}
	rec := record{attempt: a, done: make(chan error, 1)}
	l.records <- rec
	if err := <-rec.done; err != nil {
		d.log.Error().Err(err).Str("webhook", hook.ID).Str("event", m.EventID).Msg("webhook: record attempt")
		// Back off before the worker claims again.
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
// The request ends by deadline at the latest.
func (d *Dispatcher) deliver(ctx context.Context, hook store.Webhook, m store.WebhookMessage, deadline time.Time) (store.WebhookAttempt, bool) {
	start := d.now()
	a := store.WebhookAttempt{
		Delivery: store.Delivery{
			WebhookID: hook.ID, EventID: m.EventID, Type: m.EventType, Attempt: m.Attempts + 1, At: start,
		},
		Rev: m.Rev,
	}
	code, retryAfter, errText := d.post(ctx, hook, m, start, deadline)
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
// Retry-After delay asked for, and an error text without secrets. The
// request gives up after the attempt timeout or at deadline, whichever
// comes first.
func (d *Dispatcher) post(ctx context.Context, hook store.Webhook, m store.WebhookMessage, ts, deadline time.Time) (int, time.Duration, string) {
	if m.EventMissing {
		return 0, 0, errEventGone
	}
	sig, err := Sign(hook.Secret, m.EventID, ts, m.Payload)
	if err != nil {
		return 0, 0, errBadSecret
	}
	timeout := d.attemptTimeout
	if left := time.Until(deadline); left < timeout {
		timeout = max(left, time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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
		return 0, 0, describe(err, timeout.Round(time.Millisecond))
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
