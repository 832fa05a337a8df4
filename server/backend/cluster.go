package backend

import (
	"context"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// Cluster coordinates several daemons that share one database and one
// data directory (CONTRACT §14). The PostgreSQL engine implements it with
// advisory locks and LISTEN/NOTIFY; a single daemon (SQLite) has none.
type Cluster interface {
	// LockAgent holds agent id's lock across every daemon until unlock.
	LockAgent(ctx context.Context, id string) (unlock func(), err error)
	// Notify sends payload on channel to every listening daemon.
	Notify(ctx context.Context, channel, payload string) error
	// Listen calls onMessage for each payload on channel until ctx ends,
	// and onReset after any reconnection (messages may have been lost).
	Listen(ctx context.Context, channel string, onMessage func(payload string), onReset func()) error
	// Watch keeps this daemon in step with the others until ctx ends: it
	// calls onMessage for each Broadcast on channels, in commit order, and
	// onReset after any reconnection, before Leased is true again.
	Watch(ctx context.Context, onMessage func(channel, payload string), onReset func(), channels ...string) error
	// NotifyTx queues payload on channel in tx (a transaction of the
	// cluster's store): it leaves only if tx commits.
	NotifyTx(ctx context.Context, tx store.Tx, channel, payload string) error
	// Sync returns once every daemon with a lease has handled every
	// message committed before the call (or its lease ran out). A write
	// announces itself with NotifyTx, then calls Sync after the commit.
	Sync(ctx context.Context) error
	// Leased reports whether what this daemon caches and invalidates by
	// Broadcast may be trusted now; without a lease, read the database.
	Leased() bool
}

// Channels of cluster notifications.
const (
	// channelAgents carries the id of an agent whose row changed.
	channelAgents = "flowyte_agents"
	// ChannelEvents carries nothing: new events are in the outbox.
	ChannelEvents = "flowyte_events"
)

// lockAgent takes agent id's cluster-wide lock (a no-op on one daemon).
// Writes hold it around their git and database work, so daemons racing on
// one agent serialise exactly as goroutines of one daemon do.
func (b *Backend) lockAgent(ctx context.Context, id string) (func(), error) {
	if b.opts.Cluster == nil {
		return func() {}, nil
	}
	unlock, err := b.opts.Cluster.LockAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	return unlock, nil
}

// writeLocked runs a write use case on agent id under the cluster lock.
// With several daemons, another may have died in the middle of a write to
// this agent: every write is marked in the repository (repo.MarkWriting)
// and the mark cleared once git and the database agree, so a write that
// finds a mark left behind brings the agent in step with git first, on
// its next touch by any daemon, not only at startup. A write that fails
// leaves its mark too: the next one checks.
func (b *Backend) writeLocked(ctx context.Context, id string, fn func() error) error {
	unlock, err := b.lockAgent(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if b.opts.Cluster == nil {
		return fn()
	}
	interrupted, err := b.repos.MarkWriting(id)
	if err != nil {
		return err
	}
	if interrupted {
		var rep RecoveryReport
		if err := b.recoverAgent(ctx, id, &rep); err != nil {
			return err
		}
		b.log.Info().Str("agent", id).Int("rolledForward", rep.RolledForward).Msg("an interrupted write was repaired")
	}
	if err := fn(); err != nil {
		return err
	}
	if err := b.repos.ClearWriting(id); err != nil {
		b.log.Warn().Err(err).Str("agent", id).Msg("clear the write mark (the next write checks the agent)")
	}
	return nil
}

// clusterWrite runs fn in a transaction that also tells the other
// daemons, at its commit, that agent id changed (and, when fn wrote
// events, that the outbox has new ones), then waits until every daemon
// that trusts its cache has dropped the agent (Cluster.Sync): a write a
// client was told of is seen by every daemon at its next request. A write
// that failed is not waited for (during a database outage that would add
// a lease's length to every failing call): its caller was told it failed,
// and if its commit went through after all, the notification still
// reaches the other daemons, only not before the call returns.
func (b *Backend) clusterWrite(ctx context.Context, id string, fn func(tx store.Tx) error) error {
	err := b.store.Write(ctx, func(tx store.Tx) error {
		etx := &eventTx{Tx: tx}
		if err := fn(etx); err != nil {
			return err
		}
		if err := b.opts.Cluster.NotifyTx(ctx, tx, channelAgents, id); err != nil {
			return err
		}
		if etx.events {
			return b.opts.Cluster.NotifyTx(ctx, tx, ChannelEvents, "")
		}
		return nil
	})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := b.opts.Cluster.Sync(sctx); serr != nil {
		b.log.Warn().Err(serr).Str("agent", id).Msg("wait for the other daemons to see an agent change")
	}
	return nil
}

// eventTx notes whether a write inserted events.
type eventTx struct {
	store.Tx
	events bool
}

func (t *eventTx) InsertEvent(ctx context.Context, e store.Event) error {
	t.events = true
	return t.Tx.InsertEvent(ctx, e)
}

// Listen keeps this daemon's caches exact while other daemons write: an
// agent changed elsewhere is dropped from the agent row and channel
// caches before the writer's call returns, and after a lost connection
// both caches are emptied; they are used only while the cluster lease is
// held (Cluster.Leased). It returns when ctx ends.
func (b *Backend) Listen(ctx context.Context) error {
	if b.opts.Cluster == nil {
		<-ctx.Done()
		return nil
	}
	return b.opts.Cluster.Watch(ctx, func(_, id string) {
		b.agents.forget(id)
		b.chans.forget(id)
	}, func() {
		b.agents.forgetAll()
		b.chans.forgetAll()
	}, channelAgents)
}
