package webhook

import (
	"container/heap"
	"errors"
	"sort"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

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
