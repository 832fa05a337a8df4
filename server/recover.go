package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// RecoveryReport says what startup recovery repaired.
type RecoveryReport struct {
	Agents          int // live agents checked
	OrphansMovedOut int // repositories without a live agent row, moved aside
	Versions        int // version rows (and events) written from tags
	Deployments     int // pointer moves recorded from refs/heads/published
	RolledForward   int // half-done publishes completed (tag written, pointer not moved)
	Drafts          int // draft revisions brought in step with refs/heads/draft
	Failed          int // agents recovery could not bring in step (logged)
}

// reconcileAgent brings one agent's rows in step with git after a write
// whose git side succeeded but whose database side failed. It runs in the
// background (the caller may hold the agent's lock) and logs failures;
// startup recovery repeats it in any case.
func (s *Server) reconcileAgent(id string) {
	go func() {
		var rep RecoveryReport
		if err := s.recoverAgent(context.Background(), id, &rep); err != nil {
			s.log.Error().Err(err).Str("agent", id).Msg("reconcile after a failed database write")
			return
		}
		s.notifyWebhooks()
	}()
}

// Recover brings the database in step with git, the source of truth, after
// a crash: every tag gets its version row and version.published event,
// a tag whose publish stopped before the pointer moved is rolled forward,
// every move of refs/heads/published has its deployment, and repositories
// no live agent owns are moved aside. It is idempotent; run it before
// serving.
func (s *Server) Recover(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	ids, err := s.repos.List()
	if err != nil {
		return rep, fmt.Errorf("list repositories: %w", err)
	}
	live, err := s.store.AllAgentIDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("list agents: %w", err)
	}
	for _, id := range ids {
		if slices.Contains(live, id) {
			continue
		}
		// Created but never acknowledged, or deleted before the move.
		if err := s.repos.Remove(ctx, id); err != nil && !errors.Is(err, repo.ErrNotFound) {
			return rep, fmt.Errorf("move aside %s: %w", id, err)
		}
		rep.OrphansMovedOut++
	}
	// Agents are independent (one lock each): check them on a few workers.
	const workers = 4
	ids2 := make(chan string)
	reps := make([]RecoveryReport, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids2 {
				if !s.repos.Exists(id) {
					s.log.Error().Str("agent", id).Msg("agent row without repository: restore it from backup")
					continue
				}
				if err := s.recoverAgent(ctx, id, &reps[w]); err != nil {
					// One damaged agent must not keep the others offline:
					// say so loudly and serve the rest.
					s.log.Error().Err(err).Str("agent", id).Msg("recovery failed for this agent; it may answer errors until repaired")
					reps[w].Failed++
					continue
				}
				reps[w].Agents++
			}
		}()
	}
	for _, id := range live {
		ids2 <- id
	}
	close(ids2)
	wg.Wait()
	for w := range workers {
		rep.Agents += reps[w].Agents
		rep.Versions += reps[w].Versions
		rep.Deployments += reps[w].Deployments
		rep.RolledForward += reps[w].RolledForward
		rep.Drafts += reps[w].Drafts
		rep.Failed += reps[w].Failed
	}
	if err := s.store.AbandonRunningIdempotency(ctx); err != nil {
		return rep, fmt.Errorf("idempotency: %w", err)
	}
	return rep, nil
}

func (s *Server) recoverAgent(ctx context.Context, id string, rep *RecoveryReport) error {
	if err := s.repos.Recover(ctx, id); err != nil {
		if !errors.Is(err, repo.ErrCorrupt) {
			return err
		}
		// Refs that pointed at missing objects were moved aside (never
		// deleted); the repository is usable, so carry on and say so.
		s.log.Error().Err(err).Str("agent", id).Msg("repository repaired: see lost-refs/")
	}
	a, err := s.store.AgentByID(ctx, id)
	if err != nil {
		return err
	}
	heads, _, err := s.repos.History(ctx, id, "", 1)
	if err != nil {
		return err
	}
	if len(heads) == 0 {
		return fmt.Errorf("draft has no commit")
	}
	head := heads[0]
	latest, err := s.repos.Latest(ctx, id)
	if err != nil {
		return err
	}
	published, err := s.repos.Published(ctx, id)
	if err != nil {
		return err
	}
	knownList, err := s.store.VersionNumbers(ctx, id)
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
	tags, err := s.repos.Versions(ctx, id)
	if err != nil {
		return err
	}
	// A newest tag the database never saw, with the pointer not on it: the
	// publish stopped between the tag and the pointer. Finish it.
	if latest > 0 && published != latest && !known[latest] {
		from, err := s.repos.Rollback(ctx, id, latest, &published, nil)
		if err != nil {
			return fmt.Errorf("roll forward v%d: %w", latest, err)
		}
		published = latest
		rep.RolledForward++
		_ = from
	}
	now := s.now()
	return s.writeAgent(ctx, id, func(tx store.Tx) error {
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
			if err := s.insertVersionEvent(ctx, tx, EventVersionPublished, a, sv, prevPublished, v.PublishedBy, now, nil, publishDedupe(id, v.Number)); err != nil && !errors.Is(err, store.ErrConflict) {
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
			if err := s.insertVersionEvent(ctx, tx, EventVersionRolledBack, a, v, a.Published, "recovery", now, nil, deploymentDedupe(id, did)); err != nil {
				return err
			}
			rep.Deployments++
		}
		if published != a.Published || latest != a.Latest {
			return tx.SetPublished(ctx, id, published, latest)
		}
		return nil
	})
}
