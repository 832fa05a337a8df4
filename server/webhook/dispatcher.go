package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
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
