package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const webhookColumns = `id, workspace_id, url, events, agent_id, description, secret, created_at, disabled_at, disabled_reason`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var (
		w        store.Webhook
		events   string
		created  int64
		disabled *int64
	)
	if err := row.Scan(&w.ID, &w.WorkspaceID, &w.URL, &events, &w.AgentID, &w.Description, &w.Secret,
		&created, &disabled, &w.DisabledReason); err != nil {
		return store.Webhook{}, wrapError(err)
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s events: %w", w.ID, err)
	}
	w.CreatedAt = fromNanos(created)
	w.DisabledAt = timePtr(disabled)
	return w, nil
}

// CreateWebhook inserts w. ID, WorkspaceID, URL, Secret and at least one
// event type are required; a duplicate ID is ErrConflict. The webhook
// receives events recorded after this transaction, not earlier ones.
func (tx *pgTx) CreateWebhook(ctx context.Context, w store.Webhook) error {
	if w.ID == "" || w.WorkspaceID == "" || w.URL == "" || w.Secret == "" || len(w.Events) == 0 {
		return errors.New("create webhook: id, workspace, url, secret and events are required")
	}
	events, err := json.Marshal(w.Events)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO webhooks (id, workspace_id, url, events, agent_id, description, secret, created_at,
		                       after_seq, disabled_at, disabled_reason)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT last FROM event_seq WHERE id = 1), $9, $10)
		 ON CONFLICT DO NOTHING`,
		w.ID, w.WorkspaceID, w.URL, string(events), w.AgentID, w.Description, w.Secret, toNanos(w.CreatedAt),
		nullNanos(w.DisabledAt), w.DisabledReason)
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("create webhook: %w", wrapError(err))
	}
	return nil
}

// Webhook returns the webhook id of the workspace; another workspace's
// webhook is ErrNotFound.
func (s *Store) Webhook(ctx context.Context, workspaceID, id string) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, nil
}

// WebhookByID returns the webhook id whatever its workspace, or
// ErrNotFound.
func (s *Store) WebhookByID(ctx context.Context, id string) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, nil
}

// ListWebhooks returns the workspace's webhooks, oldest first (never nil).
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string) ([]store.Webhook, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE workspace_id = $1 ORDER BY created_at, id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return ws, nil
}

// DeleteWebhook deletes the workspace's webhook with its queue and delivery
// log; another workspace's webhook is ErrNotFound.
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND workspace_id = $2`, id, workspaceID)
	if err == nil {
		err = mustAffect(tag)
	}
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, wrapError(err))
	}
	return nil
}

const deliveryColumns = `seq, id, webhook_id, event_id, type, attempt, status, response_code, error, at, duration_ms`

// ListDeliveries returns up to limit rows of the webhook's delivery log,
// newest first, starting after cursor ("" = the newest), and the cursor of
// the next page ("" on the last page). A bad cursor is ErrBadCursor.
func (s *Store) ListDeliveries(ctx context.Context, webhookID string, cursor string, limit int) ([]store.Delivery, string, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	before, err := store.DecodeDeliveryCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = $1 AND seq < $2
		 ORDER BY seq DESC LIMIT $3`, webhookID, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	ds := []store.Delivery{}
	var lastSeq int64
	more := false
	for rows.Next() {
		if len(ds) == limit {
			more = true
			break
		}
		var (
			d   store.Delivery
			at  int64
			seq int64
		)
		if err := rows.Scan(&seq, &d.ID, &d.WebhookID, &d.EventID, &d.Type, &d.Attempt, &d.Status,
			&d.ResponseCode, &d.Error, &at, &d.DurationMs); err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		lastSeq = seq
		d.At = fromNanos(at)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if more {
		next = store.EncodeDeliveryCursor(lastSeq)
	}
	return ds, next, nil
}

// pruneBatch bounds the rows one pruning statement deletes.
const pruneBatch = 2000

// PruneDeliveries deletes delivery log rows older than olderThan, and
// finished messages last updated before it, in small batches. It returns
// the number of delivery rows deleted.
func (s *Store) PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error) {
	cut := toNanos(olderThan)
	total := 0
	for _, step := range []struct {
		query string
		count bool
	}{
		{`DELETE FROM webhook_deliveries WHERE seq IN
		   (SELECT seq FROM webhook_deliveries WHERE at < $1 LIMIT $2)`, true},
		{`DELETE FROM webhook_messages WHERE (webhook_id, event_id) IN
		   (SELECT webhook_id, event_id FROM webhook_messages WHERE status <> 'pending' AND updated_at < $1 LIMIT $2)`, false},
	} {
		for {
			tag, err := s.pool.Exec(ctx, step.query, cut, pruneBatch)
			if err != nil {
				return total, fmt.Errorf("prune deliveries: %w", wrapError(err))
			}
			n := tag.RowsAffected()
			if step.count {
				total += int(n)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// FanOutWebhookEvents turns up to limit outbox events after the fan-out
// cursor into pending messages (next_at = now) for every webhook they
// match. The cursor row is locked for the transaction, so daemons fan out
// one at a time and every event once.
func (s *Store) FanOutWebhookEvents(ctx context.Context, now time.Time, limit int) (store.WebhookFanOut, error) {
	if limit <= 0 {
		limit = 500
	}
	var out store.WebhookFanOut
	err := s.write(ctx, func(tx *pgTx) error {
		out = store.WebhookFanOut{}
		var after int64
		if err := tx.tx.QueryRow(ctx,
			`SELECT after_seq FROM webhook_fanout WHERE id = 1 FOR UPDATE`).Scan(&after); err != nil {
			return wrapError(err)
		}
		var upto *int64
		if err := tx.tx.QueryRow(ctx,
			`SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) AS e`,
			after, limit).Scan(&upto, &out.Events); err != nil {
			return wrapError(err)
		}
		if upto == nil {
			return nil
		}
		rows, err := tx.tx.Query(ctx,
			`INSERT INTO webhook_messages (webhook_id, event_id, event_seq, event_type, status, next_at, updated_at)
			 SELECT w.id, e.id, e.seq, e.type, 'pending', $1, $1
			 FROM events e JOIN webhooks w ON w.workspace_id = e.workspace_id
			 WHERE e.seq > $2 AND e.seq <= $3
			   AND w.disabled_at IS NULL
			   AND w.after_seq < e.seq
			   AND (w.agent_id = '' OR w.agent_id = e.agent_id)
			   AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(w.events::jsonb) AS j (t) WHERE j.t = e.type)
			 ORDER BY e.seq
			 ON CONFLICT DO NOTHING
			 RETURNING webhook_id`,
			toNanos(now), after, *upto)
		if err != nil {
			return wrapError(err)
		}
		ids, err := collectStrings(rows)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out.Webhooks = append(out.Webhooks, id)
			}
		}
		_, err = tx.tx.Exec(ctx, `UPDATE webhook_fanout SET after_seq = $1 WHERE id = 1`, *upto)
		return wrapError(err)
	})
	if err != nil {
		return store.WebhookFanOut{}, fmt.Errorf("fan out events: %w", err)
	}
	return out, nil
}

const messageColumns = `webhook_id, event_id, event_seq, event_type, attempts, step, manual, rev, next_at`

func scanMessage(row pgx.Row, extra ...any) (store.WebhookMessage, error) {
	var (
		m      store.WebhookMessage
		next   int64
		manual int
	)
	dest := append([]any{&m.WebhookID, &m.EventID, &m.EventSeq, &m.EventType, &m.Attempts, &m.Step, &manual,
		&m.Rev, &next}, extra...)
	if err := row.Scan(dest...); err != nil {
		return store.WebhookMessage{}, wrapError(err)
	}
	m.Manual = manual != 0
	m.NextAt = fromNanos(next)
	return m, nil
}

// DueWebhookMessages returns up to limit pending messages of the webhook
// due at now, earliest first (then in event order), with their event
// payloads. It claims nothing: with several daemons, use
// ClaimWebhookMessages.
func (s *Store) DueWebhookMessages(ctx context.Context, webhookID string, now time.Time, limit int) ([]store.WebhookMessage, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT m.webhook_id, m.event_id, m.event_seq, m.event_type, m.attempts, m.step, m.manual, m.rev, m.next_at,
		        e.payload, e.id IS NULL
		 FROM webhook_messages m LEFT JOIN events e ON e.id = m.event_id
		 WHERE m.webhook_id = $1 AND m.status = 'pending' AND m.next_at <= $2
		 ORDER BY m.next_at, m.event_seq LIMIT $3`, webhookID, toNanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due webhook messages: %w", err)
	}
	ms, err := collectMessagesWithPayload(rows)
	if err != nil {
		return nil, fmt.Errorf("due webhook messages: %w", err)
	}
	return ms, nil
}

func collectMessagesWithPayload(rows pgx.Rows) ([]store.WebhookMessage, error) {
	defer rows.Close()
	var ms []store.WebhookMessage
	for rows.Next() {
		var (
			payload []byte
			missing bool
		)
		m, err := scanMessage(rows, &payload, &missing)
		if err != nil {
			return nil, err
		}
		m.Payload, m.EventMissing = payload, missing
		ms = append(ms, m)
	}
	return ms, wrapError(rows.Err())
}

// ClaimWebhookMessages is DueWebhookMessages for several daemons: in one
// transaction it locks up to limit due messages of the webhook that no
// other daemon is claiming (FOR UPDATE SKIP LOCKED) and pushes their next_at
// to now+lease, so no other daemon sees them due while this one attempts
// them. RecordWebhookAttempts then sets their real next state; if this
// daemon dies first, the messages fall due again when the lease ends
// (at-least-once). The returned messages carry the NextAt they were due at.
func (s *Store) ClaimWebhookMessages(ctx context.Context, webhookID string, now time.Time, lease time.Duration, limit int) ([]store.WebhookMessage, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	var ms []store.WebhookMessage
	err := s.write(ctx, func(tx *pgTx) error {
		rows, err := tx.tx.Query(ctx,
			`SELECT m.webhook_id, m.event_id, m.event_seq, m.event_type, m.attempts, m.step, m.manual, m.rev, m.next_at,
			        e.payload, e.id IS NULL
			 FROM webhook_messages m LEFT JOIN events e ON e.id = m.event_id
			 WHERE m.webhook_id = $1 AND m.status = 'pending' AND m.next_at <= $2
			 ORDER BY m.next_at, m.event_seq LIMIT $3
			 FOR UPDATE OF m SKIP LOCKED`, webhookID, toNanos(now), limit)
		if err != nil {
			return wrapError(err)
		}
		ms, err = collectMessagesWithPayload(rows)
		if err != nil || len(ms) == 0 {
			return err
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.EventID
		}
		_, err = tx.tx.Exec(ctx,
			`UPDATE webhook_messages SET next_at = $1 WHERE webhook_id = $2 AND event_id = ANY ($3)`,
			toNanos(now.Add(lease)), webhookID, ids)
		return wrapError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook messages: %w", err)
	}
	return ms, nil
}

// WebhookMessage returns the message of one webhook and event, or
// ErrNotFound.
func (s *Store) WebhookMessage(ctx context.Context, webhookID, eventID string) (store.WebhookMessage, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx,
		`SELECT `+messageColumns+` FROM webhook_messages WHERE webhook_id = $1 AND event_id = $2`, webhookID, eventID))
	if err != nil {
		return store.WebhookMessage{}, fmt.Errorf("webhook message %s/%s: %w", webhookID, eventID, err)
	}
	return m, nil
}

// NextWebhookMessageAt returns the earliest next_at of the webhook's pending
// messages after notBefore (the zero time: all), and whether there is one.
func (s *Store) NextWebhookMessageAt(ctx context.Context, webhookID string, notBefore time.Time) (time.Time, bool, error) {
	var next *int64
	lo := int64(-1 << 63)
	if !notBefore.IsZero() {
		lo = toNanos(notBefore)
	}
	if err := s.pool.QueryRow(ctx,
		`SELECT MIN(next_at) FROM webhook_messages WHERE webhook_id = $1 AND status = 'pending' AND next_at > $2`,
		webhookID, lo).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("next webhook message: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return fromNanos(*next), true, nil
}

// PendingWebhooks returns, for every webhook with pending messages, the
// earliest next_at.
func (s *Store) PendingWebhooks(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT webhook_id, MIN(next_at) FROM webhook_messages WHERE status = 'pending' GROUP BY webhook_id`)
	if err != nil {
		return nil, fmt.Errorf("pending webhooks: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			id   string
			next int64
		)
		if err := rows.Scan(&id, &next); err != nil {
			return nil, fmt.Errorf("pending webhooks: %w", err)
		}
		out[id] = fromNanos(next)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending webhooks: %w", err)
	}
	return out, nil
}

// RecordWebhookAttempts records attempt outcomes in one transaction: each
// adds its delivery log row and moves its message on. An attempt whose
// webhook was deleted meanwhile is skipped.
func (s *Store) RecordWebhookAttempts(ctx context.Context, attempts []store.WebhookAttempt) error {
	if len(attempts) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *pgTx) error {
		for i := range attempts {
			if err := tx.recordWebhookAttempt(ctx, &attempts[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record webhook attempts: %w", err)
	}
	return nil
}

func (tx *pgTx) recordWebhookAttempt(ctx context.Context, a *store.WebhookAttempt) error {
	d := &a.Delivery
	switch a.MessageStatus {
	case "pending", "succeeded", "failed":
	default:
		return fmt.Errorf("bad message status %q", a.MessageStatus)
	}
	if d.ID == "" {
		d.ID = store.NewID("dlv_")
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO webhook_deliveries (id, webhook_id, event_id, type, attempt, status, response_code, error, at, duration_ms)
		 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $2)`,
		d.ID, d.WebhookID, d.EventID, d.Type, d.Attempt, d.Status, d.ResponseCode, d.Error, toNanos(d.At), d.DurationMs)
	if err != nil {
		return wrapError(err)
	}
	if tag.RowsAffected() == 0 {
		return nil // the webhook is gone: nothing more to record
	}
	now := toNanos(d.At.Add(time.Duration(d.DurationMs) * time.Millisecond))
	tag, err = tx.tx.Exec(ctx,
		`UPDATE webhook_messages
		 SET status = $1, attempts = GREATEST(attempts, $2), step = $3, next_at = $4, updated_at = $5,
		     manual = CASE WHEN $1 = 'pending' THEN manual ELSE 0 END
		 WHERE webhook_id = $6 AND event_id = $7 AND rev = $8 AND status = 'pending'`,
		a.MessageStatus, d.Attempt, a.Step, toNanos(a.NextAt), now, d.WebhookID, d.EventID, a.Rev)
	if err != nil {
		return wrapError(err)
	}
	if tag.RowsAffected() == 0 {
		// A redelivery bumped the revision meanwhile, or a 410 canceled
		// the message: only count the attempt.
		if _, err := tx.tx.Exec(ctx,
			`UPDATE webhook_messages SET attempts = GREATEST(attempts, $1) WHERE webhook_id = $2 AND event_id = $3`,
			d.Attempt, d.WebhookID, d.EventID); err != nil {
			return wrapError(err)
		}
	}
	if a.Disable != "" {
		if _, err := tx.tx.Exec(ctx,
			`UPDATE webhooks SET disabled_at = $1, disabled_reason = $2 WHERE id = $3 AND disabled_at IS NULL`,
			now, a.Disable, d.WebhookID); err != nil {
			return wrapError(err)
		}
		if _, err := tx.tx.Exec(ctx,
			`UPDATE webhook_messages SET status = 'canceled', updated_at = $1
			 WHERE webhook_id = $2 AND status = 'pending' AND manual = 0`,
			now, d.WebhookID); err != nil {
			return wrapError(err)
		}
	}
	return nil
}

// RequeueWebhookMessage queues a fresh attempt at now for an event that
// targeted the workspace's webhook (a redelivery); see
// store.Store.RequeueWebhookMessage. ErrNotFound if the webhook is not the
// workspace's or the event never targeted it.
func (s *Store) RequeueWebhookMessage(ctx context.Context, workspaceID, webhookID, eventID string, now time.Time) error {
	err := s.write(ctx, func(tx *pgTx) error {
		var one int
		if err := tx.tx.QueryRow(ctx,
			`SELECT 1 FROM webhooks WHERE id = $1 AND workspace_id = $2`, webhookID, workspaceID).Scan(&one); err != nil {
			return wrapError(err)
		}
		tag, err := tx.tx.Exec(ctx,
			`UPDATE webhook_messages
			 SET manual = CASE WHEN status = 'pending' THEN manual ELSE 1 END,
			     status = 'pending', next_at = $1, rev = rev + 1, updated_at = $1
			 WHERE webhook_id = $2 AND event_id = $3`,
			toNanos(now), webhookID, eventID)
		if err != nil {
			return wrapError(err)
		}
		return mustAffect(tag)
	})
	if err != nil {
		return fmt.Errorf("requeue %s for webhook %s: %w", eventID, webhookID, err)
	}
	return nil
}
