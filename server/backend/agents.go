package backend

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// Agent is the Agent resource (CONTRACT §4).
type Agent struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Description   string        `json:"description"`
	CreatedAt     time.Time     `json:"createdAt"`
	Draft         DraftRef      `json:"draft"`
	Published     *PublishedRef `json:"published"`
	LatestVersion *string       `json:"latestVersion"`
	CloneURL      string        `json:"cloneUrl"`
}

// DraftRef is an agent's draft head.
type DraftRef struct {
	Revision  string    `json:"revision"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// PublishedRef names the live version.
type PublishedRef struct {
	Version string `json:"version"`
	Number  int    `json:"number"`
}

// VersionID is "v<n>".
func VersionID(n int) string { return "v" + strconv.Itoa(n) }

// nullableVersion is "v<n>", or nil for 0.
func nullableVersion(n int) any {
	if n <= 0 {
		return nil
	}
	return VersionID(n)
}

// NullableString is s, or nil when empty (JSON null).
func NullableString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// cloneURL is the agent's clone address under base.
func cloneURL(base, id string) string {
	return strings.TrimRight(base, "/") + "/git/" + id + ".git"
}

// agentView renders a row; base is where the client reaches the daemon.
func agentView(base string, a store.Agent) Agent {
	out := Agent{
		ID: a.ID, Name: a.Name, Description: a.Description, CreatedAt: a.CreatedAt.UTC(),
		Draft:    DraftRef{Revision: a.DraftRevision, UpdatedAt: a.DraftUpdatedAt.UTC()},
		CloneURL: cloneURL(base, a.ID),
	}
	if a.Published > 0 {
		out.Published = &PublishedRef{Version: VersionID(a.Published), Number: a.Published}
	}
	if a.Latest > 0 {
		v := VersionID(a.Latest)
		out.LatestVersion = &v
	}
	return out
}

// agent finds agent id in the caller's workspace (agent_not_found
// otherwise, exactly as if it did not exist).
func (b *Backend) agent(ctx context.Context, p Principal, id string) (store.Agent, error) {
	ws := p.Key.WorkspaceID
	if !validAgentID(id) {
		return store.Agent{}, Errorf("agent_not_found", "no agent %q", id)
	}
	if a, ok := b.agents.get(id); ok {
		if a.WorkspaceID != ws {
			return store.Agent{}, Errorf("agent_not_found", "no agent %q", id)
		}
		return a, nil
	}
	gen := b.agents.generation(id)
	a, err := b.store.Agent(ctx, ws, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Agent{}, Errorf("agent_not_found", "no agent %q", id)
	}
	if err == nil {
		b.agents.put(a, gen)
	}
	return a, err
}

// validAgentID reports whether id has the shape of a server-made agent id.
func validAgentID(id string) bool {
	if len(id) != 24 || !strings.HasPrefix(id, "agt_") {
		return false
	}
	for _, ch := range id[4:] {
		if !(ch >= 'a' && ch <= 'z' || ch >= '2' && ch <= '7') {
			return false
		}
	}
	return true
}

// signature is the git identity of the caller.
func signature(p Principal, now time.Time) repo.Signature {
	return repo.Signature{Name: p.Key.Name, Email: p.Key.ID + "@flowyte", When: now}
}

// CreateAgent makes an agent: its repository with a first draft commit
// holding agent.yaml, then its row.
func (b *Backend) CreateAgent(ctx context.Context, p Principal, base, name, description string) (Agent, error) {
	if strings.TrimSpace(name) == "" {
		return Agent{}, Invalid("/name", "required", "name is required")
	}
	now := b.now()
	settings, err := compile.EncodeFile(compile.KindSettings, &compile.Settings{Name: name, Description: description})
	if err != nil {
		return Agent{}, Errorf("validation_failed", "%v", err)
	}
	id := store.NewAgentID()
	// The repository is made first, recording its owner: a crash before
	// the row is written leaves a repository that recovery adopts into
	// that workspace (git is the source of truth).
	owner := repo.Owner{WorkspaceID: p.Key.WorkspaceID, WorkspaceName: p.Key.WorkspaceName}
	commit, err := b.repos.CreateOwned(ctx, id, owner, map[string][]byte{"agent.yaml": settings}, "Create agent "+name, signature(p, now))
	if err != nil {
		return Agent{}, err
	}
	a := store.Agent{
		ID: id, WorkspaceID: p.Key.WorkspaceID, Name: name, Description: description,
		CreatedAt: now, DraftRevision: commit.Revision, DraftUpdatedAt: now,
	}
	if err := b.store.Write(ctx, func(tx *store.Tx) error { return tx.CreateAgent(ctx, a) }); err != nil {
		return Agent{}, err
	}
	return agentView(base, a), nil
}

// Agents lists the caller's agents, a page at a time.
func (b *Backend) Agents(ctx context.Context, p Principal, base, cursor string, limit int) ([]Agent, string, error) {
	rows, next, err := b.store.ListAgents(ctx, p.Key.WorkspaceID, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]Agent, 0, len(rows))
	for _, a := range rows {
		out = append(out, agentView(base, a))
	}
	return out, next, nil
}

// Agent returns one agent of the caller's workspace.
func (b *Backend) Agent(ctx context.Context, p Principal, base, id string) (Agent, error) {
	a, err := b.agent(ctx, p, id)
	if err != nil {
		return Agent{}, err
	}
	return agentView(base, a), nil
}

// CheckAgent reports agent_not_found unless id is an agent of the
// caller's workspace.
func (b *Backend) CheckAgent(ctx context.Context, p Principal, id string) error {
	_, err := b.agent(ctx, p, id)
	return err
}

// DeleteAgent marks the agent deleted and moves its repository aside.
func (b *Backend) DeleteAgent(ctx context.Context, p Principal, id string) error {
	a, err := b.agent(ctx, p, id)
	if err != nil {
		return err
	}
	// The row goes first: a crash before the repository moves leaves a
	// repository whose row says deleted, which recovery moves aside.
	if err := b.writeAgent(ctx, a.ID, func(tx *store.Tx) error { return tx.MarkAgentDeleted(ctx, a.ID, b.now()) }); err != nil {
		return err
	}
	if err := b.repos.Remove(ctx, a.ID); err != nil && !errors.Is(err, repo.ErrNotFound) {
		return err
	}
	b.cache.forget(a.ID)
	return nil
}

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

// writeAgent runs a database write that changes agent id's row (or its
// channels) and drops the cached row and channels afterwards, whatever the
// outcome.
func (b *Backend) writeAgent(ctx context.Context, id string, fn func(tx *store.Tx) error) error {
	defer b.chans.forget(id)
	defer b.agents.forget(id)
	return b.store.Write(ctx, fn)
}

// RepoPath returns the bare repository of an agent of the caller's
// workspace, for the git transport (agent_not_found otherwise).
func (b *Backend) RepoPath(ctx context.Context, p Principal, agentID string) (string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return "", err
	}
	if !b.repos.Exists(a.ID) {
		return "", Errorf("agent_not_found", "no agent %q", agentID)
	}
	return b.repos.Path(a.ID), nil
}
