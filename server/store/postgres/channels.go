package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const channelColumns = `agent_id, channel, mode, split, updated_at, updated_by`

// Channels returns the agent's channels that do not follow the published
// version, by channel name.
func (s *Store) Channels(ctx context.Context, agentID string) ([]store.ChannelMode, error) {
	return channels(ctx, s.pool, agentID)
}

// Channels returns the agent's non-follow channels as seen inside the
// transaction.
func (tx *pgTx) Channels(ctx context.Context, agentID string) ([]store.ChannelMode, error) {
	return channels(ctx, tx.tx, agentID)
}

func channels(ctx context.Context, q querier, agentID string) ([]store.ChannelMode, error) {
	rows, err := q.Query(ctx, `SELECT `+channelColumns+` FROM channels WHERE agent_id = $1 ORDER BY channel`, agentID)
	if err != nil {
		return nil, fmt.Errorf("channels %s: %w", agentID, wrapError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ChannelMode, error) {
		var (
			c     store.ChannelMode
			split string
			at    int64
		)
		if err := r.Scan(&c.AgentID, &c.Channel, &c.Mode, &split, &at, &c.UpdatedBy); err != nil {
			return c, wrapError(err)
		}
		var err error
		c.Split, err = store.DecodeSplit(split)
		c.UpdatedAt = fromNanos(at)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("channels %s: %w", agentID, err)
	}
	return out, nil
}

// SetChannel stores a pin or a split of one channel, replacing its mode.
func (tx *pgTx) SetChannel(ctx context.Context, c store.ChannelMode) error {
	if err := store.CheckChannelMode(c); err != nil {
		return err
	}
	_, err := tx.tx.Exec(ctx,
		`INSERT INTO channels (`+channelColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		 ON CONFLICT (agent_id, channel) DO UPDATE SET mode = excluded.mode, split = excluded.split,
		 updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		c.AgentID, c.Channel, c.Mode, store.EncodeSplit(c.Split), toNanos(c.UpdatedAt), c.UpdatedBy)
	if err != nil {
		return fmt.Errorf("set channel %s/%s: %w", c.AgentID, c.Channel, wrapError(err))
	}
	return nil
}

// FollowChannel returns one channel to following the published version.
func (tx *pgTx) FollowChannel(ctx context.Context, agentID, channel string) error {
	if _, err := tx.tx.Exec(ctx, `DELETE FROM channels WHERE agent_id = $1 AND channel = $2`, agentID, channel); err != nil {
		return fmt.Errorf("follow channel %s/%s: %w", agentID, channel, wrapError(err))
	}
	return nil
}

// AddOutcomes adds d to its counters row (creating it).
func (tx *pgTx) AddOutcomes(ctx context.Context, d store.OutcomeDelta) error {
	if d.AgentID == "" || d.Version <= 0 {
		return fmt.Errorf("add outcomes: bad agent %q or version %d", d.AgentID, d.Version)
	}
	_, err := tx.tx.Exec(ctx,
		`INSERT INTO outcome_counters AS o (agent_id, version, hour, sessions, messages, fallbacks, guardrail_blocks, playbooks_completed, handoffs)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		 ON CONFLICT (agent_id, version, hour) DO UPDATE SET
		 sessions = o.sessions + excluded.sessions, messages = o.messages + excluded.messages,
		 fallbacks = o.fallbacks + excluded.fallbacks, guardrail_blocks = o.guardrail_blocks + excluded.guardrail_blocks,
		 playbooks_completed = o.playbooks_completed + excluded.playbooks_completed, handoffs = o.handoffs + excluded.handoffs`,
		d.AgentID, d.Version, store.HourOf(d.At), d.Sessions, d.Messages, d.Fallbacks, d.GuardrailBlocks, d.PlaybooksCompleted, d.Handoffs)
	if err != nil {
		return fmt.Errorf("add outcomes %s v%d: %w", d.AgentID, d.Version, wrapError(err))
	}
	return nil
}

// AppendTurnCounted is AppendTurnAfter that also adds d to the outcome
// counters in the same transaction.
func (s *Store) AppendTurnCounted(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte, d store.OutcomeDelta) error {
	if lastSeq < 0 {
		return fmt.Errorf("append turn %s: negative last seq %d", sessionID, lastSeq)
	}
	return s.appendTurn(ctx, sessionID, lastSeq, user, agent, state, func(tx *pgTx) error { return tx.AddOutcomes(ctx, d) })
}

// Outcomes sums the counters of each of the agent's versions over the
// hours in [from, to), widened to whole hours; in the order asked.
func (s *Store) Outcomes(ctx context.Context, agentID string, versions []int, from, to time.Time) ([]store.Outcome, error) {
	lo, hi := store.HourRange(from, to)
	out := make([]store.Outcome, 0, len(versions))
	for _, v := range versions {
		o := store.Outcome{Version: v}
		err := s.pool.QueryRow(ctx,
			`SELECT coalesce(sum(sessions), 0), coalesce(sum(messages), 0), coalesce(sum(fallbacks), 0),
			 coalesce(sum(guardrail_blocks), 0), coalesce(sum(playbooks_completed), 0), coalesce(sum(handoffs), 0)
			 FROM outcome_counters WHERE agent_id = $1 AND version = $2 AND hour >= $3 AND hour < $4`,
			agentID, v, lo, hi).Scan(&o.Sessions, &o.Messages, &o.Fallbacks, &o.GuardrailBlocks, &o.PlaybooksCompleted, &o.Handoffs)
		if err != nil {
			return nil, fmt.Errorf("outcomes %s v%d: %w", agentID, v, wrapError(err))
		}
		out = append(out, o)
	}
	return out, nil
}
