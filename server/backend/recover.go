package backend

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// RecoveryReport says what startup recovery repaired.
type RecoveryReport struct {
	Agents          int // live agents checked
	OrphansMovedOut int // repositories of deleted agents, moved aside
	Versions        int // version rows (and events) written from tags
	Deployments     int // pointer moves recorded from refs/heads/published
	RolledForward   int // half-done publishes completed (tag written, pointer not moved)
	Drafts          int // draft revisions brought in step with refs/heads/draft
	Failed          int // agents recovery could not bring in step (logged)
	Adopted         int // repositories without a row, rebuilt from git
	KeysRestored    int // API keys put back (or re-revoked) from the key journal
}

// reconcileAgent brings one agent's rows in step with git after a write
// whose git side succeeded but whose database side failed. It runs in the
// background (the caller may hold the agent's lock) and logs failures;
// startup recovery repeats it in any case.
func (b *Backend) reconcileAgent(id string) {
	go func() {
		var rep RecoveryReport
		if err := b.recoverAgentLocked(context.Background(), id, &rep); err != nil {
			b.log.Error().Err(err).Str("agent", id).Msg("reconcile after a failed database write")
			return
		}
		b.notifyWebhooks()
	}()
}

// Recover brings the database in step with git, the source of truth, after
// a crash: keys come back from the key journal, repositories without an
// agent row are adopted by the workspace they record (never hidden or
// discarded), every tag gets its version row and version.published event,
// a tag whose publish stopped before the pointer moved is rolled forward,
// and every move of refs/heads/published has its deployment. A repository
// that records no owner and has no row stops recovery with an error: the
// daemon refuses to serve rather than guess a tenant. It is idempotent;
// run it before serving.
func (b *Backend) Recover(ctx context.Context) (RecoveryReport, error) {
	rep, live, err := b.recoverStart(ctx)
	if err != nil {
		return rep, err
	}
	b.setPending(live)
	b.checkAll(ctx, live, &rep)
	return rep, nil
}

// Start is Recover for a daemon about to serve: the quick part (keys,
// repositories without rows, running idempotency keys) before it returns;
// the per-agent check of every live agent after, in the background, with
// each agent checked at once before its first write if the scan has not
// reached it. After a clean shutdown (clean true) the database was in
// step when the daemon stopped, and no agent is checked at all.
func (b *Backend) Start(ctx context.Context, clean bool) (RecoveryReport, error) {
	rep, live, err := b.recoverStart(ctx)
	if err != nil || clean {
		return rep, err
	}
	b.setPending(live)
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		var bg RecoveryReport
		start := time.Now()
		b.checkAll(ctx, live, &bg)
		b.log.Info().Int("agents", bg.Agents).Int("versions", bg.Versions).Int("deployments", bg.Deployments).
			Int("rolledForward", bg.RolledForward).Int("drafts", bg.Drafts).Int("failed", bg.Failed).
			Dur("took", time.Since(start)).Msg("background recovery checked every agent")
		b.notifyWebhooks()
	}()
	return rep, nil
}

// recoverStart is the quick part of recovery; it returns the live agents.
func (b *Backend) recoverStart(ctx context.Context) (RecoveryReport, []string, error) {
	var rep RecoveryReport
	n, err := b.recoverKeys(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("keys: %w", err)
	}
	rep.KeysRestored = n
	ids, err := b.repos.List()
	if err != nil {
		return rep, nil, fmt.Errorf("list repositories: %w", err)
	}
	liveList, err := b.store.AllAgentIDs(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("list agents: %w", err)
	}
	live := make(map[string]bool, len(liveList))
	for _, id := range liveList {
		live[id] = true
	}
	var unowned []string
	for _, id := range ids {
		if live[id] {
			continue
		}
		deleted, err := b.store.AgentDeleted(ctx, id)
		if err != nil {
			return rep, nil, fmt.Errorf("agent %s: %w", id, err)
		}
		if deleted {
			// Deleted through the API, the move aside cut short: finish it.
			if err := b.repos.Remove(ctx, id); err != nil && !errors.Is(err, repo.ErrNotFound) {
				return rep, nil, fmt.Errorf("move aside %s: %w", id, err)
			}
			rep.OrphansMovedOut++
			continue
		}
		owner, err := b.repos.Owner(id)
		if errors.Is(err, repo.ErrNoOwner) {
			if b.opts.AdoptOrphansInto == "" {
				unowned = append(unowned, id)
				continue
			}
			owner = repo.Owner{WorkspaceName: b.opts.AdoptOrphansInto}
		} else if err != nil {
			return rep, nil, fmt.Errorf("owner of %s: %w", id, err)
		}
		adopted, err := b.adoptLocked(ctx, id, owner)
		if err != nil {
			return rep, nil, fmt.Errorf("adopt %s: %w", id, err)
		}
		if !adopted {
			continue // another daemon wrote its row meanwhile
		}
		b.log.Warn().Str("agent", id).Str("workspace", owner.WorkspaceName).Msg("agent repository had no database row: rebuilt it from git")
		rep.Adopted++
		liveList = append(liveList, id)
	}
	if len(unowned) > 0 {
		return rep, nil, fmt.Errorf("%d agent repositories have no database row and record no owning workspace (%s): "+
			"refusing to serve rather than hide them; restore the database from a backup, or start once with "+
			"--adopt-orphans WORKSPACE to give them to that workspace", len(unowned), strings.Join(unowned, ", "))
	}
	if err := b.abandonIdempotency(ctx); err != nil {
		return rep, nil, fmt.Errorf("idempotency: %w", err)
	}
	return rep, liveList, nil
}

// Unchecked counts the agents startup recovery has yet to check.
func (b *Backend) Unchecked() int {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	return len(b.pending)
}

// Wait waits for background work started by Start (cancel its context to
// stop it early).
func (b *Backend) Wait() { b.bg.Wait() }

// staleIdempotency is how long a request with an Idempotency-Key may run
// before another daemon takes it for dead (a publish takes seconds).
const staleIdempotency = 10 * time.Minute

// abandonIdempotency releases Idempotency-Keys whose first request died
// with its daemon. Alone, a daemon at startup knows that every running
// request was its own; among several, only stale ones are dead.
func (b *Backend) abandonIdempotency(ctx context.Context) error {
	if b.opts.Cluster == nil {
		return b.store.AbandonRunningIdempotency(ctx)
	}
	stale, ok := b.store.(interface {
		AbandonStaleIdempotency(ctx context.Context, olderThan time.Time) (int, error)
	})
	if !ok {
		return nil
	}
	_, err := stale.AbandonStaleIdempotency(ctx, b.now().Add(-staleIdempotency))
	return err
}

// checkState is one agent awaiting its recovery check.
type checkState struct {
	mu   sync.Mutex
	done bool
}

// setPending records the agents that need a check before their first write.
func (b *Backend) setPending(ids []string) {
	m := make(map[string]*checkState, len(ids))
	for _, id := range ids {
		m[id] = &checkState{}
	}
	b.pendingMu.Lock()
	b.pending = m
	b.pendingMu.Unlock()
}

// ensureChecked brings agent id in step with git if startup recovery has
// not yet: writes call it first, so none works from rows a crash left
// behind git.
func (b *Backend) ensureChecked(ctx context.Context, id string, rep *RecoveryReport) error {
	b.pendingMu.Lock()
	cs := b.pending[id]
	b.pendingMu.Unlock()
	if cs == nil {
		return nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.done {
		return nil
	}
	if rep == nil {
		rep = &RecoveryReport{}
	}
	if !b.repos.Exists(id) {
		b.log.Error().Str("agent", id).Msg("agent row without repository: restore it from backup")
	} else if err := b.recoverAgentLocked(ctx, id, rep); err != nil {
		return err
	}
	cs.done = true
	b.pendingMu.Lock()
	delete(b.pending, id)
	b.pendingMu.Unlock()
	return nil
}

// checkAll checks every agent of ids on a few workers (agents are
// independent: one lock each).
func (b *Backend) checkAll(ctx context.Context, ids []string, rep *RecoveryReport) {
	const workers = 4
	ch := make(chan string)
	reps := make([]RecoveryReport, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				if err := b.ensureChecked(ctx, id, &reps[w]); err != nil {
					// One damaged agent must not keep the others offline:
					// say so loudly and serve the rest.
					b.log.Error().Err(err).Str("agent", id).Msg("recovery failed for this agent; it may answer errors until repaired")
					reps[w].Failed++
					continue
				}
				reps[w].Agents++
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		ch <- id
	}
	close(ch)
	wg.Wait()
	for w := range workers {
		rep.Agents += reps[w].Agents
		rep.Versions += reps[w].Versions
		rep.Deployments += reps[w].Deployments
		rep.RolledForward += reps[w].RolledForward
		rep.Drafts += reps[w].Drafts
		rep.Failed += reps[w].Failed
	}
}

// recoverAgentLocked is recoverAgent under the agent's cluster lock.
func (b *Backend) recoverAgentLocked(ctx context.Context, id string, rep *RecoveryReport) error {
	unlock, err := b.lockAgent(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return b.recoverAgent(ctx, id, rep)
}

func (b *Backend) recoverAgent(ctx context.Context, id string, rep *RecoveryReport) error {
	if err := b.repos.Recover(ctx, id); err != nil {
		if !errors.Is(err, repo.ErrCorrupt) {
			return err
		}
		// Refs that pointed at missing objects were moved aside (never
		// deleted); the repository is usable, so carry on and say so.
		b.log.Error().Err(err).Str("agent", id).Msg("repository repaired: see lost-refs/")
	}
	a, err := b.store.AgentByID(ctx, id)
	if err != nil {
		return err
	}
	heads, _, err := b.repos.History(ctx, id, "", 1)
	if err != nil {
		return err
	}
	if len(heads) == 0 {
		return fmt.Errorf("draft has no commit")
	}
	head := heads[0]
	latest, err := b.repos.Latest(ctx, id)
	if err != nil {
		return err
	}
	published, err := b.repos.Published(ctx, id)
	if err != nil {
		return err
	}
	knownList, err := b.store.VersionNumbers(ctx, id)
	if err != nil {
		return err
	}
	known := make(map[int]bool, len(knownList))
	for _, n := range knownList {
		known[n] = true
	}
	if head.Revision == a.DraftRevision && latest == a.Latest && published == a.Published &&
		len(known) == latest && (latest == 0 || known[latest]) {
		return nil // in step: the common case, no tag is read
	}
	tags, err := b.repos.Versions(ctx, id)
	if err != nil {
		return err
	}
	// A newest tag the database never saw, with the pointer not on it,
	// while the database knows every earlier version and agrees with the
	// pointer: the publish stopped between the tag and the pointer. Finish
	// it. (A database that lost more than that, say a lost -wal, cannot
	// tell a cut publish from a later rollback: the pointer in git stands.)
	if latest > 0 && published != latest && !known[latest] && len(known) == latest-1 && a.Published == published {
		from, err := b.repos.Rollback(ctx, id, latest, &published, nil)
		if err != nil {
			return fmt.Errorf("roll forward v%d: %w", latest, err)
		}
		published = latest
		rep.RolledForward++
		_ = from
	}
	now := b.now()
	return b.writeAgent(ctx, id, func(tx store.Tx) error {
		if head.Revision != a.DraftRevision {
			if err := tx.SetDraft(ctx, id, head.Revision, head.Author.When); err != nil {
				return err
			}
			rep.Drafts++
		}
		prevPublished := a.Published
		for _, v := range tags {
			if known[v.Number] {
				continue
			}
			sv := storeVersion(id, v)
			if err := tx.InsertVersion(ctx, sv); err != nil {
				return err
			}
			if err := b.insertVersionEvent(ctx, tx, EventVersionPublished, a, sv, prevPublished, v.PublishedBy, now, publishDedupe(id, v.Number)); err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
			rep.Versions++
			if v.Number == published && v.Number == latest && a.Published != published {
				// The publish moved the pointer; record that move as the publish.
				if _, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: id, At: v.CreatedAt, By: v.PublishedBy, Kind: "publish", From: a.Published, To: v.Number}); err != nil {
					return err
				}
				rep.Deployments++
				a.Published = published
			}
			prevPublished = v.Number
		}
		if published != a.Published {
			// The pointer moved without its row: a rollback cut short.
			did, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: id, At: now, By: "recovery", Kind: "rollback", From: a.Published, To: published})
			if err != nil {
				return err
			}
			v, err := tx.Version(ctx, id, published)
			if err != nil {
				return err
			}
			if err := b.insertVersionEvent(ctx, tx, EventVersionRolledBack, a, v, a.Published, "recovery", now, deploymentDedupe(id, did)); err != nil {
				return err
			}
			rep.Deployments++
			moved := a
			moved.Published = published
			if err := b.followAll(ctx, tx, moved, "recovery", now); err != nil {
				return err
			}
		}
		if published != a.Published || latest != a.Latest {
			return tx.SetPublished(ctx, id, published, latest)
		}
		return nil
	})
}

// adoptLocked adopts repository id under its cluster lock, unless
// another daemon (creating it, or adopting it too) wrote its row first.
func (b *Backend) adoptLocked(ctx context.Context, id string, owner repo.Owner) (bool, error) {
	unlock, err := b.lockAgent(ctx, id)
	if err != nil {
		return false, err
	}
	defer unlock()
	if b.opts.Cluster != nil {
		if _, err := b.store.AgentByID(ctx, id); err == nil {
			return false, nil
		}
	}
	return true, b.adopt(ctx, id, owner)
}

// adopt writes the agent row of repository id from what git knows: the
// owner recorded in its config, the name and description of the draft's
// agent.yaml, the draft head. recoverAgent then rebuilds versions,
// deployments and events from the tags.
func (b *Backend) adopt(ctx context.Context, id string, owner repo.Owner) error {
	heads, _, err := b.repos.History(ctx, id, "", 1)
	if err != nil {
		return err
	}
	if len(heads) == 0 {
		return fmt.Errorf("draft has no commit")
	}
	head := heads[0]
	name, desc := id, ""
	if data, _, err := b.repos.ReadFile(ctx, id, repo.Rev{Kind: repo.RevDraft}, "agent.yaml"); err == nil {
		if n, d, ok := settingsMeta([]repo.Change{{Path: "agent.yaml", Content: data}}); ok {
			name, desc = n, d
		}
	}
	now := b.now()
	return b.writeAgent(ctx, id, func(tx store.Tx) error {
		ws, err := tx.EnsureWorkspace(ctx, owner.WorkspaceName, now)
		if err != nil {
			return err
		}
		return tx.CreateAgent(ctx, store.Agent{
			ID: id, WorkspaceID: ws.ID, Name: name, Description: desc,
			CreatedAt: head.Author.When.UTC(), DraftRevision: head.Revision, DraftUpdatedAt: head.Author.When.UTC(),
		})
	})
}

// recoverKeys puts back keys the database lost from the key journal, and
// revokes rows whose revocation the database lost.
func (b *Backend) recoverKeys(ctx context.Context) (int, error) {
	entries, err := b.opts.Keys.entries()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		hash, err := hex.DecodeString(e.Hash)
		if err != nil {
			return n, fmt.Errorf("key %s: bad hash", e.ID)
		}
		k, err := b.store.KeyByHash(ctx, hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = b.store.Write(ctx, func(tx store.Tx) error {
				ws, err := tx.EnsureWorkspace(ctx, e.WorkspaceName, e.CreatedAt)
				if err != nil {
					return err
				}
				return tx.CreateKey(ctx, store.Key{ID: e.ID, WorkspaceID: ws.ID, WorkspaceName: ws.Name, Name: e.Name,
					Scopes: e.Scopes, CreatedAt: e.CreatedAt, RevokedAt: e.RevokedAt}, hash)
			})
			if err != nil {
				return n, fmt.Errorf("restore key %s: %w", e.ID, err)
			}
			b.log.Warn().Str("keyId", e.ID).Msg("API key missing from the database: restored from the key journal")
			n++
		case err != nil:
			return n, err
		case e.RevokedAt != nil && k.RevokedAt == nil:
			if err := b.store.RevokeKey(ctx, k.ID, *e.RevokedAt); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
