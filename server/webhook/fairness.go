package webhook

import (
	"context"
	"sync"
)

// MaxWebhooksPerWorkspace is the default limit on the webhooks one
// workspace may register. Registration (the backend) enforces it; the
// dispatcher's per-workspace caps ([Options.PerWorkspace]) keep the cost of
// whatever is registered to the workspace's own share.
const MaxWebhooksPerWorkspace = 50

// admission hands out the right to make a delivery attempt: at most max in
// flight in all and perWorkspace per workspace. It is fair between
// workspaces: a freed slot goes to the waiting workspace with the fewest
// attempts in flight, ties to the one that has waited longest, so a
// workspace whose endpoints are slow holds at most its own share and never
// queues another workspace behind its requests.
type admission struct {
	max, perWorkspace int

	mu       sync.Mutex
	total    int
	inflight map[string]int // workspace → attempts in flight
	waiters  []*admissionWaiter
}

type admissionWaiter struct {
	workspace string
	ready     chan struct{} // closed when granted
	granted   bool
}

func newAdmission(max, perWorkspace int) *admission {
	return &admission{max: max, perWorkspace: perWorkspace, inflight: map[string]int{}}
}

// acquire waits for an attempt slot of workspace and reports whether it
// got one (false: ctx ended first). A true acquire must be released.
func (a *admission) acquire(ctx context.Context, workspace string) bool {
	w := &admissionWaiter{workspace: workspace, ready: make(chan struct{})}
	a.mu.Lock()
	a.waiters = append(a.waiters, w)
	a.grant()
	a.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted {
		a.releaseLocked(workspace)
		return false
	}
	for i, x := range a.waiters {
		if x == w {
			a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
			break
		}
	}
	return false
}

// release returns a slot of workspace and hands it on.
func (a *admission) release(workspace string) {
	a.mu.Lock()
	a.releaseLocked(workspace)
	a.mu.Unlock()
}

func (a *admission) releaseLocked(workspace string) {
	a.total--
	if a.inflight[workspace]--; a.inflight[workspace] <= 0 {
		delete(a.inflight, workspace)
	}
	a.grant()
}

// grant hands free slots to waiters: each to the waiter, among those whose
// workspace is under its cap, whose workspace has the fewest attempts in
// flight, the earliest on ties.
func (a *admission) grant() {
	for a.total < a.max {
		best := -1
		for i, w := range a.waiters {
			n := a.inflight[w.workspace]
			if n >= a.perWorkspace {
				continue
			}
			if best < 0 || n < a.inflight[a.waiters[best].workspace] {
				best = i
			}
		}
		if best < 0 {
			return
		}
		w := a.waiters[best]
		a.waiters = append(a.waiters[:best], a.waiters[best+1:]...)
		a.total++
		a.inflight[w.workspace]++
		w.granted = true
		close(w.ready)
	}
}

// inFlight returns the attempts in flight of workspace ("" = all).
func (a *admission) inFlight(workspace string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if workspace == "" {
		return a.total
	}
	return a.inflight[workspace]
}

// tryAcquire takes a slot of workspace if one is free and nobody is waiting
// for one (so it never jumps the queue), and reports whether it did.
func (a *admission) tryAcquire(workspace string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiters) > 0 || a.total >= a.max || a.inflight[workspace] >= a.perWorkspace {
		return false
	}
	a.total++
	a.inflight[workspace]++
	return true
}
