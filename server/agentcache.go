package server

import (
	"context"
	"sync"

	"github.com/flowyte/flowyte/server/store"
)

// agentCache keeps agent rows in memory: every request that names an agent
// reads its row, and only this process writes agent rows, always through
// writeAgent, which invalidates. A generation per id keeps a read that
// raced with a write from caching the old row.
type agentCache struct {
	mu   sync.Mutex
	rows map[string]store.Agent
	gen  map[string]uint64
}

const agentCacheMax = 20000

func (ac *agentCache) get(id string) (store.Agent, bool) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	a, ok := ac.rows[id]
	return a, ok
}

// generation is read before loading a row; put keeps the row only if no
// write happened since.
func (ac *agentCache) generation(id string) uint64 {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return ac.gen[id]
}

func (ac *agentCache) put(a store.Agent, gen uint64) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if ac.gen[a.ID] != gen {
		return
	}
	if ac.rows == nil || len(ac.rows) >= agentCacheMax {
		ac.rows = map[string]store.Agent{}
	}
	ac.rows[a.ID] = a
}

func (ac *agentCache) forget(id string) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	delete(ac.rows, id)
	if ac.gen == nil {
		ac.gen = map[string]uint64{}
	}
	// Generations are never reset (one counter per agent ever written):
	// a reset could let a reader's old generation match again.
	ac.gen[id]++
}

// writeAgent runs a database write that changes agent id's row and drops
// the cached row afterwards, whatever the outcome.
func (s *Server) writeAgent(ctx context.Context, id string, fn func(tx store.Tx) error) error {
	defer s.agents.forget(id)
	return s.store.Write(ctx, fn)
}
