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
// otherwise, exactly as if it did not exist). An agent that startup
// recovery has not checked yet is brought in step with git first, so no
// read or write works from rows a crash left behind git.
func (b *Backend) agent(ctx context.Context, p Principal, id string) (store.Agent, error) {
	a, err := b.agentRow(ctx, p, id)
	if err != nil {
		return a, err
	}
	b.pendingMu.Lock()
	_, pending := b.pending[a.ID]
	b.pendingMu.Unlock()
	if !pending {
		return a, nil
	}
	if err := b.ensureChecked(ctx, a.ID, nil); err != nil {
		return store.Agent{}, err
	}
	return b.agentRow(ctx, p, id)
}

// agentRow is agent without the recovery check.
func (b *Backend) agentRow(ctx context.Context, p Principal, id string) (store.Agent, error) {
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
		b.agents.put(a.ID, a, gen)
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
	var a store.Agent
	err = func() error {
		// Under the cluster lock: another daemon's startup must not adopt
		// the repository between its creation and its row.
		unlock, err := b.lockAgent(ctx, id)
		if err != nil {
			return err
		}
		defer unlock()
		commit, err := b.repos.CreateOwned(ctx, id, owner, map[string][]byte{"agent.yaml": settings}, "Create agent "+name, signature(p, now))
		if err != nil {
			return err
		}
		a = store.Agent{
			ID: id, WorkspaceID: p.Key.WorkspaceID, Name: name, Description: description,
			CreatedAt: now, DraftRevision: commit.Revision, DraftUpdatedAt: now,
		}
		return b.store.Write(ctx, func(tx store.Tx) error { return tx.CreateAgent(ctx, a) })
	}()
	if err != nil {
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
	err = b.writeLocked(ctx, a.ID, func() error {
		if err := b.writeAgent(ctx, a.ID, func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, a.ID, b.now()) }); err != nil {
			return err
		}
		if err := b.repos.Remove(ctx, a.ID); err != nil && !errors.Is(err, repo.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.cache.forget(a.ID)
	return nil
}

// rowCache keeps one value per agent in memory (its row, its channels):
// every request that names an agent reads them, and this process writes
// them only through writeAgent, which invalidates (other daemons are told
// by notification). A generation per id keeps a read that raced with a
// write from caching the old value.
type rowCache[V any] struct {
	// trusted, when set, says whether cached values may be used now (with
	// several daemons: while the cluster lease is held).
	trusted func() bool

	mu    sync.Mutex
	rows  map[string]V
	gen   map[string]uint64
	epoch uint64 // bumped by forgetAll
}

// agentCache holds agent rows.
type agentCache = rowCache[store.Agent]

// channelCache holds each agent's channel modes.
type channelCache = rowCache[[]store.ChannelMode]

const agentCacheMax = 20000

func (rc *rowCache[V]) get(id string) (V, bool) {
	if rc.trusted != nil && !rc.trusted() {
		var zero V
		return zero, false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	v, ok := rc.rows[id]
	return v, ok
}

// generation is read before loading a value; put keeps the value only if
// no write happened since.
func (rc *rowCache[V]) generation(id string) uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.gen[id] + rc.epoch<<40
}

func (rc *rowCache[V]) put(id string, v V, gen uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.gen[id]+rc.epoch<<40 != gen {
		return
	}
	if rc.rows == nil || len(rc.rows) >= agentCacheMax {
		rc.rows = map[string]V{}
	}
	rc.rows[id] = v
}

// forgetAll drops every value (the epoch moves on, so no read in flight
// caches an old one either).
func (rc *rowCache[V]) forgetAll() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.epoch++
	rc.rows = nil
}

func (rc *rowCache[V]) forget(id string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.rows, id)
	if rc.gen == nil {
		rc.gen = map[string]uint64{}
	}
	// Generations are never reset (one counter per agent ever written):
	// a reset could let a reader's old generation match again.
	rc.gen[id]++
}

// writeAgent runs a database write that changes agent id's row (or its
// channels) and drops the cached row and channels afterwards, whatever the
// outcome, here and on every other daemon (clusterWrite). Every event
// insert goes through it.
func (b *Backend) writeAgent(ctx context.Context, id string, fn func(tx store.Tx) error) error {
	defer b.chans.forget(id)
	defer b.agents.forget(id)
	if b.opts.Cluster == nil {
		return b.store.Write(ctx, fn)
	}
	return b.clusterWrite(ctx, id, fn)
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
