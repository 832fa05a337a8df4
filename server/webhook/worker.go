package webhook

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

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
