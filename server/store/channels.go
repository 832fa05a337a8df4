package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Channel modes as stored. A channel without a row follows the published
// version (ModeFollow is never stored).
const (
	ModeFollow = "follow"
	ModePin    = "pin"
	ModeSplit  = "split"
)

// SplitEntry is one version of a split (or the one version of a pin, with
// weight 100).
type SplitEntry struct {
	Version int `json:"version"`
	Weight  int `json:"weight"`
}

// ChannelMode is the stored mode of one channel of an agent.
type ChannelMode struct {
	AgentID string
	Channel string // "chat" or "phone"
	Mode    string // ModePin or ModeSplit
	// Split holds the pinned version (one entry, weight 100) or the split,
	// in ascending version order.
	Split     []SplitEntry
	UpdatedAt time.Time
	UpdatedBy string
}

// EncodeSplit is the stored form of a split (JSON), shared by engines.
func EncodeSplit(s []SplitEntry) string { return encodeSplit(s) }

// DecodeSplit reads a stored split.
func DecodeSplit(s string) ([]SplitEntry, error) { return decodeSplit(s) }

// HourOf is the outcome counters' bucket of t (whole hours since the
// Unix epoch, rounded down), shared by engines.
func HourOf(t time.Time) int64 { return hourOf(t) }

// HourRange is [from, to) widened to whole hours as counter buckets; a
// zero side is unbounded.
func HourRange(from, to time.Time) (lo, hi int64) {
	lo, hi = int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = hourOf(from)
	}
	if !to.IsZero() {
		hi = hourOf(to)
		if !to.Equal(time.Unix(hi*3600, 0)) {
			hi++ // round up to the next whole hour
		}
	}
	return lo, hi
}

// CheckChannelMode reports why c cannot be stored, or nil.
func CheckChannelMode(c ChannelMode) error {
	switch {
	case c.Mode == ModePin && len(c.Split) != 1:
		return fmt.Errorf("set channel %s/%s: a pin names one version", c.AgentID, c.Channel)
	case c.Mode == ModeSplit && (len(c.Split) < 2 || len(c.Split) > 5):
		return fmt.Errorf("set channel %s/%s: a split names 2 to 5 versions", c.AgentID, c.Channel)
	case c.Mode != ModePin && c.Mode != ModeSplit:
		return fmt.Errorf("set channel %s/%s: bad mode %q", c.AgentID, c.Channel, c.Mode)
	}
	return nil
}

func encodeSplit(s []SplitEntry) string {
	b, _ := json.Marshal(s) // a slice of two ints per entry always encodes
	return string(b)
}

func decodeSplit(s string) ([]SplitEntry, error) {
	var out []SplitEntry
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode split %q: %w", s, err)
	}
	return out, nil
}

const channelColumns = `agent_id, channel, mode, split, updated_at, updated_by`

// Channels returns the agent's channels that do not follow the published
// version, by channel name. One read of the primary key.
func (s *Store) Channels(ctx context.Context, agentID string) ([]ChannelMode, error) {
	return channels(ctx, s.rdb, agentID)
}

// Channels returns the agent's non-follow channels as seen inside the
// transaction.
func (tx *sqliteTx) Channels(ctx context.Context, agentID string) ([]ChannelMode, error) {
	return channels(ctx, tx.q, agentID)
}

func channels(ctx context.Context, q querier, agentID string) ([]ChannelMode, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+channelColumns+` FROM channels WHERE agent_id = ? ORDER BY channel`, agentID)
	if err != nil {
		return nil, fmt.Errorf("channels %s: %w", agentID, wrapError(err))
	}
	defer rows.Close()
	var out []ChannelMode
	for rows.Next() {
		var (
			c     ChannelMode
			split string
			at    int64
		)
		if err := rows.Scan(&c.AgentID, &c.Channel, &c.Mode, &split, &at, &c.UpdatedBy); err != nil {
			return nil, fmt.Errorf("channels %s: %w", agentID, wrapError(err))
		}
		if c.Split, err = decodeSplit(split); err != nil {
			return nil, fmt.Errorf("channels %s: %w", agentID, err)
		}
		c.UpdatedAt = fromNanos(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("channels %s: %w", agentID, wrapError(err))
	}
	return out, nil
}

// SetChannel stores a pin or a split of one channel, replacing its mode.
func (tx *sqliteTx) SetChannel(ctx context.Context, c ChannelMode) error {
	if err := CheckChannelMode(c); err != nil {
		return err
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO channels (`+channelColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (agent_id, channel) DO UPDATE SET mode = excluded.mode, split = excluded.split,
		 updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		c.AgentID, c.Channel, c.Mode, encodeSplit(c.Split), toNanos(c.UpdatedAt), c.UpdatedBy)
	if err != nil {
		return fmt.Errorf("set channel %s/%s: %w", c.AgentID, c.Channel, wrapError(err))
	}
	return nil
}

// FollowChannel returns one channel to following the published version
// (removes its row; a channel that already follows is left alone).
func (tx *sqliteTx) FollowChannel(ctx context.Context, agentID, channel string) error {
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM channels WHERE agent_id = ? AND channel = ?`, agentID, channel); err != nil {
		return fmt.Errorf("follow channel %s/%s: %w", agentID, channel, wrapError(err))
	}
	return nil
}

// OutcomeDelta is what to add to one agent's counters for one version and
// hour. Zero fields add nothing.
type OutcomeDelta struct {
	AgentID            string
	Version            int
	At                 time.Time // the hour bucket is At truncated to the hour (UTC)
	Sessions           int
	Messages           int
	Fallbacks          int
	GuardrailBlocks    int
	PlaybooksCompleted int
	Handoffs           int
}

// Outcome is the sum of one version's counters over a range of hours.
type Outcome struct {
	Version            int
	Sessions           int64
	Messages           int64
	Fallbacks          int64
	GuardrailBlocks    int64
	PlaybooksCompleted int64
	Handoffs           int64
}

// hourOf is the counters' bucket of t: whole hours since the Unix epoch,
// rounded down.
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s < 0 && s%3600 != 0 {
		h-- // division truncates toward zero
	}
	return h
}

// AddOutcomes adds d to its counters row (creating it).
func (tx *sqliteTx) AddOutcomes(ctx context.Context, d OutcomeDelta) error {
	if d.AgentID == "" || d.Version <= 0 {
		return fmt.Errorf("add outcomes: bad agent %q or version %d", d.AgentID, d.Version)
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO outcome_counters (agent_id, version, hour, sessions, messages, fallbacks, guardrail_blocks, playbooks_completed, handoffs)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (agent_id, version, hour) DO UPDATE SET
		 sessions = sessions + excluded.sessions, messages = messages + excluded.messages,
		 fallbacks = fallbacks + excluded.fallbacks, guardrail_blocks = guardrail_blocks + excluded.guardrail_blocks,
		 playbooks_completed = playbooks_completed + excluded.playbooks_completed, handoffs = handoffs + excluded.handoffs`,
		d.AgentID, d.Version, hourOf(d.At), d.Sessions, d.Messages, d.Fallbacks, d.GuardrailBlocks, d.PlaybooksCompleted, d.Handoffs)
	if err != nil {
		return fmt.Errorf("add outcomes %s v%d: %w", d.AgentID, d.Version, wrapError(err))
	}
	return nil
}

// AppendTurnCounted is [Store.AppendTurnAfter] that also adds d to the
// outcome counters in the same transaction: a turn is counted exactly when
// it is stored.
func (s *Store) AppendTurnCounted(ctx context.Context, sessionID string, lastSeq int, user, agent Message, state []byte, d OutcomeDelta) error {
	if lastSeq < 0 {
		return fmt.Errorf("append turn %s: negative last seq %d", sessionID, lastSeq)
	}
	return s.appendTurn(ctx, sessionID, lastSeq, user, agent, state, func(tx Tx) error { return tx.AddOutcomes(ctx, d) })
}

// Outcomes sums the counters of each of the agent's versions over the hours
// in [from, to), both widened to whole hours (from rounded down, to rounded
// up); a zero from or to leaves that side unbounded. Every version asked
// for is in the result, in the order asked, zero when nothing was counted.
func (s *Store) Outcomes(ctx context.Context, agentID string, versions []int, from, to time.Time) ([]Outcome, error) {
	lo, hi := HourRange(from, to)
	out := make([]Outcome, 0, len(versions))
	for _, v := range versions {
		o := Outcome{Version: v}
		err := s.rdb.QueryRowContext(ctx,
			`SELECT coalesce(sum(sessions), 0), coalesce(sum(messages), 0), coalesce(sum(fallbacks), 0),
			 coalesce(sum(guardrail_blocks), 0), coalesce(sum(playbooks_completed), 0), coalesce(sum(handoffs), 0)
			 FROM outcome_counters WHERE agent_id = ? AND version = ? AND hour >= ? AND hour < ?`,
			agentID, v, lo, hi).Scan(&o.Sessions, &o.Messages, &o.Fallbacks, &o.GuardrailBlocks, &o.PlaybooksCompleted, &o.Handoffs)
		if err != nil {
			return nil, fmt.Errorf("outcomes %s v%d: %w", agentID, v, wrapError(err))
		}
		out = append(out, o)
	}
	return out, nil
}
