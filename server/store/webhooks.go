package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Webhook is a registered endpoint (CONTRACT §9). Secret is the signing
// secret; show it to the user once, at creation.
type Webhook struct {
	ID          string // "wh_..."
	WorkspaceID string
	URL         string
	Events      []string // event types delivered, e.g. "version.published"
	AgentID     string   // "" = every agent of the workspace
	Description string
	Secret      string // "whsec_" + base64 of 24 random bytes
	CreatedAt   time.Time
	// DisabledAt is set when the endpoint answered 410 Gone; a disabled
	// webhook gets no new events and no automatic retries.
	DisabledAt     *time.Time
	DisabledReason string
}

// Statuses of the delivery log, one row per attempt: an attempt either
// succeeded or failed, whether or not a retry follows it.
const (
	// DeliverySucceeded: the endpoint answered 2xx.
	DeliverySucceeded = "succeeded"
	// DeliveryFailed: the attempt failed (no 2xx, no response, refused);
	// the message may still be pending for a retry.
	DeliveryFailed = "failed"
	// DeliveryPending is the status of a message (WebhookAttempt.
	// MessageStatus) waiting for an attempt; the same as MessagePending.
	// No attempt is pending: never use it for Delivery.Status.
	DeliveryPending = MessagePending
)

// MessagePending is the state of a queued (webhook, event) message waiting
// for its first attempt or a retry; its other states are DeliverySucceeded
// and DeliveryFailed.
const MessagePending = "pending"

// Delivery is one row of a webhook's delivery log: one attempt to deliver
// one event.
type Delivery struct {
	ID           string // "dlv_..."
	WebhookID    string
	EventID      string // the webhook-id header
	Type         string // the event type
	Attempt      int    // 1-based, counting every attempt for this event and webhook
	Status       string // DeliverySucceeded or DeliveryFailed
	ResponseCode int    // 0 when no response arrived
	Error        string // why it failed; never a secret
	At           time.Time
	DurationMs   int64
}

// WebhookMessage is one queued (webhook, event) delivery, as the dispatcher
// sees it.
type WebhookMessage struct {
	WebhookID string
	EventID   string
	EventSeq  int64
	EventType string
	Attempts  int  // attempts made so far
	Step      int  // failures in the current series: the schedule index of the next delay
	Manual    bool // a one-off redelivery: not retried on failure
	Rev       int64
	NextAt    time.Time
	// Payload is the event body, filled by DueWebhookMessages only; nil
	// with EventMissing when the event is no longer in the outbox.
	Payload      []byte
	EventMissing bool
}

// WebhookFanOut is what one [Store.FanOutWebhookEvents] call did.
type WebhookFanOut struct {
	Events   int      // events consumed from the outbox
	Webhooks []string // ids of the webhooks that got new messages
}

// WebhookAttempt is the outcome of one delivery attempt, recorded by
// [Store.RecordWebhookAttempts].
type WebhookAttempt struct {
	// Delivery is the log row (ID "" = a new "dlv_" id). Its WebhookID,
	// EventID and Attempt identify the message.
	Delivery Delivery
	// Rev is the message revision the attempt was made for. If a
	// redelivery bumped it meanwhile, the message is left pending for it;
	// a message canceled meanwhile (410) stays canceled.
	Rev int64
	// MessageStatus is the message's new state: "pending" (retry at
	// NextAt), "succeeded" or "failed".
	MessageStatus string
	Step          int
	NextAt        time.Time
	// Disable, when not empty, disables the webhook with this reason and
	// cancels its pending automatic messages (a 410 Gone).
	Disable string
}

const webhookColumns = `id, workspace_id, url, events, agent_id, description, secret, created_at, disabled_at, disabled_reason`

func scanWebhook(sc scanner) (Webhook, error) {
	var (
		w        Webhook
		events   string
		created  int64
		disabled sql.NullInt64
	)
	if err := sc.Scan(&w.ID, &w.WorkspaceID, &w.URL, &events, &w.AgentID, &w.Description, &w.Secret,
		&created, &disabled, &w.DisabledReason); err != nil {
		return Webhook{}, wrapError(err)
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return Webhook{}, fmt.Errorf("webhook %s events: %w", w.ID, err)
	}
	w.CreatedAt = fromNanos(created)
	w.DisabledAt = timePtr(disabled)
	return w, nil
}

// CreateWebhook inserts w. ID, WorkspaceID, URL, Secret and at least one
// event type are required; a duplicate ID is ErrConflict. The webhook
// receives events recorded after this transaction, not earlier ones.
func (tx *sqliteTx) CreateWebhook(ctx context.Context, w Webhook) error {
	if w.ID == "" || w.WorkspaceID == "" || w.URL == "" || w.Secret == "" || len(w.Events) == 0 {
		return errors.New("create webhook: id, workspace, url, secret and events are required")
	}
	events, err := json.Marshal(w.Events)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	_, err = tx.q.ExecContext(ctx,
		`INSERT INTO webhooks (id, workspace_id, url, events, agent_id, description, secret, created_at,
		                       after_seq, disabled_at, disabled_reason)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) FROM events), ?, ?)`,
		w.ID, w.WorkspaceID, w.URL, string(events), w.AgentID, w.Description, w.Secret, toNanos(w.CreatedAt),
		nullNanos(w.DisabledAt), w.DisabledReason)
	if err != nil {
		return fmt.Errorf("create webhook: %w", wrapError(err))
	}
	return nil
}

// Webhook returns the webhook id of the workspace; another workspace's
// webhook is ErrNotFound.
func (s *Store) Webhook(ctx context.Context, workspaceID, id string) (Webhook, error) {
	w, err := scanWebhook(s.rdb.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE id = ? AND workspace_id = ?`, id, workspaceID))
	if err != nil {
		return Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, nil
}

// WebhookByID returns the webhook id whatever its workspace, for the
// dispatcher; ErrNotFound if it does not exist (or was deleted).
func (s *Store) WebhookByID(ctx context.Context, id string) (Webhook, error) {
	w, err := scanWebhook(s.rdb.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if err != nil {
		return Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, nil
}

// ListWebhooks returns the workspace's webhooks, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, workspaceID string) ([]Webhook, error) {
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE workspace_id = ? ORDER BY created_at, id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	ws := []Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return ws, nil
}

// DeleteWebhook deletes the workspace's webhook with its queue and delivery
// log; another workspace's webhook is ErrNotFound.
func (s *Store) DeleteWebhook(ctx context.Context, workspaceID, id string) error {
	err := s.write(ctx, func(tx *sqliteTx) error {
		res, err := tx.q.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND workspace_id = ?`, id, workspaceID)
		if err != nil {
			return wrapError(err)
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}

const deliveryColumns = `seq, id, webhook_id, event_id, type, attempt, status, response_code, error, at, duration_ms`

// ListDeliveries returns up to limit rows of the webhook's delivery log,
// newest first, starting after cursor ("" = the newest), and the cursor of
// the next page ("" on the last page). A cursor that does not decode is
// ErrBadCursor. The caller checks the webhook's workspace first.
func (s *Store) ListDeliveries(ctx context.Context, webhookID string, cursor string, limit int) ([]Delivery, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	before, err := DecodeDeliveryCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = ? AND seq < ?
		 ORDER BY seq DESC LIMIT ?`, webhookID, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	ds := make([]Delivery, 0, min(limit, 256))
	var lastSeq int64
	more := false
	for rows.Next() {
		if len(ds) == limit {
			more = true
			break
		}
		var (
			d  Delivery
			at int64
		)
		if err := rows.Scan(&lastSeq, &d.ID, &d.WebhookID, &d.EventID, &d.Type, &d.Attempt, &d.Status,
			&d.ResponseCode, &d.Error, &at, &d.DurationMs); err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		d.At = fromNanos(at)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if more {
		next = EncodeDeliveryCursor(lastSeq)
	}
	return ds, next, nil
}

// pruneBatch bounds the rows one pruning transaction deletes, so pruning
// never holds the writer for long.
const pruneBatch = 2000

// PruneDeliveries deletes delivery log rows older than olderThan, and
// finished (not pending) messages last updated before it, in small
// transactions. It returns the number of delivery rows deleted. After
// pruning, a redelivery of such an old event is ErrNotFound.
func (s *Store) PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error) {
	cut := toNanos(olderThan)
	total := 0
	for _, step := range []struct {
		query string
		count bool
	}{
		{`DELETE FROM webhook_deliveries WHERE seq IN
		   (SELECT seq FROM webhook_deliveries WHERE at < ? LIMIT ?)`, true},
		{`DELETE FROM webhook_messages WHERE (webhook_id, event_id) IN
		   (SELECT webhook_id, event_id FROM webhook_messages WHERE status <> 'pending' AND updated_at < ? LIMIT ?)`, false},
	} {
		for {
			var n int64
			err := s.write(ctx, func(tx *sqliteTx) error {
				res, err := tx.q.ExecContext(ctx, step.query, cut, pruneBatch)
				if err != nil {
					return wrapError(err)
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("prune deliveries: %w", err)
			}
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
// match: same workspace, not disabled, created before the event, the event
// type among its Events, and its AgentID empty or the event's. The cursor
// moves in the same transaction, so every event is fanned out once even
// across crashes. Call it until Events < limit.
func (s *Store) FanOutWebhookEvents(ctx context.Context, now time.Time, limit int) (WebhookFanOut, error) {
	if limit <= 0 {
		limit = 500
	}
	var out WebhookFanOut
	err := s.write(ctx, func(tx *sqliteTx) error {
		out = WebhookFanOut{}
		var after int64
		if err := tx.q.QueryRowContext(ctx, `SELECT after_seq FROM webhook_fanout WHERE id = 1`).Scan(&after); err != nil {
			return wrapError(err)
		}
		var upto sql.NullInt64
		if err := tx.q.QueryRowContext(ctx,
			`SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)`,
			after, limit).Scan(&upto, &out.Events); err != nil {
			return wrapError(err)
		}
		if !upto.Valid {
			return nil
		}
		rows, err := tx.q.QueryContext(ctx,
			`INSERT INTO webhook_messages (webhook_id, event_id, event_seq, event_type, status, next_at, updated_at)
			 SELECT w.id, e.id, e.seq, e.type, 'pending', ?, ?
			 FROM events e JOIN webhooks w ON w.workspace_id = e.workspace_id
			 WHERE e.seq > ? AND e.seq <= ?
			   AND w.disabled_at IS NULL
			   AND w.after_seq < e.seq
			   AND (w.agent_id = '' OR w.agent_id = e.agent_id)
			   AND EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = e.type)
			 ORDER BY e.seq
			 ON CONFLICT DO NOTHING
			 RETURNING webhook_id`,
			toNanos(now), toNanos(now), after, upto.Int64)
		if err != nil {
			return wrapError(err)
		}
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if !seen[id] {
				seen[id] = true
				out.Webhooks = append(out.Webhooks, id)
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.q.ExecContext(ctx, `UPDATE webhook_fanout SET after_seq = ? WHERE id = 1`, upto.Int64)
		return wrapError(err)
	})
	if err != nil {
		return WebhookFanOut{}, fmt.Errorf("fan out events: %w", err)
	}
	return out, nil
}

const messageColumns = `webhook_id, event_id, event_seq, event_type, attempts, step, manual, rev, next_at`

func scanMessage(sc scanner) (WebhookMessage, error) {
	var (
		m      WebhookMessage
		next   int64
		manual int
	)
	if err := sc.Scan(&m.WebhookID, &m.EventID, &m.EventSeq, &m.EventType, &m.Attempts, &m.Step, &manual,
		&m.Rev, &next); err != nil {
		return WebhookMessage{}, wrapError(err)
	}
	m.Manual = manual != 0
	m.NextAt = fromNanos(next)
	return m, nil
}

// DueWebhookMessages returns up to limit pending messages of the webhook
// due at now, earliest first (then in event order), with their event
// payloads.
func (s *Store) DueWebhookMessages(ctx context.Context, webhookID string, now time.Time, limit int) ([]WebhookMessage, error) {
	ms, err := dueWebhookMessages(ctx, s.rdb, webhookID, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due webhook messages: %w", err)
	}
	return ms, nil
}

func dueWebhookMessages(ctx context.Context, q querier, webhookID string, now time.Time, limit int) ([]WebhookMessage, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT m.webhook_id, m.event_id, m.event_seq, m.event_type, m.attempts, m.step, m.manual, m.rev, m.next_at,
		        e.payload, e.id IS NULL
		 FROM webhook_messages m LEFT JOIN events e ON e.id = m.event_id
		 WHERE m.webhook_id = ? AND m.status = 'pending' AND m.next_at <= ?
		 ORDER BY m.next_at, m.event_seq LIMIT ?`, webhookID, toNanos(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []WebhookMessage
	for rows.Next() {
		var (
			m       WebhookMessage
			next    int64
			manual  int
			payload []byte
		)
		if err := rows.Scan(&m.WebhookID, &m.EventID, &m.EventSeq, &m.EventType, &m.Attempts, &m.Step, &manual,
			&m.Rev, &next, &payload, &m.EventMissing); err != nil {
			return nil, err
		}
		m.Manual = manual != 0
		m.NextAt = fromNanos(next)
		m.Payload = payload
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

// ClaimWebhookMessages returns up to limit due messages of the webhook, as
// DueWebhookMessages does, and in the same transaction pushes their next_at
// to now+lease, so no other dispatcher (another daemon, on PostgreSQL) sees
// them due while this one attempts them. RecordWebhookAttempts then sets
// their real next state; if the process dies first, they fall due again
// when the lease ends (at-least-once). The returned messages carry the
// NextAt they were due at.
func (s *Store) ClaimWebhookMessages(ctx context.Context, webhookID string, now time.Time, lease time.Duration, limit int) ([]WebhookMessage, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	var ms []WebhookMessage
	err := s.write(ctx, func(tx *sqliteTx) error {
		var err error
		ms, err = dueWebhookMessages(ctx, tx.q, webhookID, now, limit)
		if err != nil {
			return wrapError(err)
		}
		for _, m := range ms {
			if _, err := tx.q.ExecContext(ctx,
				`UPDATE webhook_messages SET next_at = ? WHERE webhook_id = ? AND event_id = ?`,
				toNanos(now.Add(lease)), webhookID, m.EventID); err != nil {
				return wrapError(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook messages: %w", err)
	}
	return ms, nil
}

// WebhookMessage returns the message of one webhook and event, or
// ErrNotFound.
func (s *Store) WebhookMessage(ctx context.Context, webhookID, eventID string) (WebhookMessage, error) {
	m, err := scanMessage(s.rdb.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM webhook_messages WHERE webhook_id = ? AND event_id = ?`, webhookID, eventID))
	if err != nil {
		return WebhookMessage{}, fmt.Errorf("webhook message %s/%s: %w", webhookID, eventID, err)
	}
	return m, nil
}

// NextWebhookMessageAt returns the earliest next_at of the webhook's pending
// messages after notBefore (pass the zero time for all), and whether there is
// one.
func (s *Store) NextWebhookMessageAt(ctx context.Context, webhookID string, notBefore time.Time) (time.Time, bool, error) {
	var next sql.NullInt64
	lo := int64(-1 << 63)
	if !notBefore.IsZero() {
		lo = toNanos(notBefore)
	}
	if err := s.rdb.QueryRowContext(ctx,
		`SELECT MIN(next_at) FROM webhook_messages WHERE webhook_id = ? AND status = 'pending' AND next_at > ?`,
		webhookID, lo).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("next webhook message: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(next.Int64), true, nil
}

// PendingWebhooks returns, for every webhook with pending messages, the
// earliest next_at: where the dispatcher resumes after a restart.
func (s *Store) PendingWebhooks(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.rdb.QueryContext(ctx,
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

// RecordWebhookAttempts records attempt outcomes in one transaction (group
// commit): each adds its delivery log row and moves its message on. An
// attempt whose webhook was deleted meanwhile is skipped.
func (s *Store) RecordWebhookAttempts(ctx context.Context, attempts []WebhookAttempt) error {
	if len(attempts) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sqliteTx) error {
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

func (tx *sqliteTx) recordWebhookAttempt(ctx context.Context, a *WebhookAttempt) error {
	d := &a.Delivery
	switch a.MessageStatus {
	case "pending", "succeeded", "failed":
	default:
		return fmt.Errorf("bad message status %q", a.MessageStatus)
	}
	if d.ID == "" {
		d.ID = NewID("dlv_")
	}
	res, err := tx.q.ExecContext(ctx,
		`INSERT INTO webhook_deliveries (id, webhook_id, event_id, type, attempt, status, response_code, error, at, duration_ms)
		 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)`,
		d.ID, d.WebhookID, d.EventID, d.Type, d.Attempt, d.Status, d.ResponseCode, d.Error, toNanos(d.At), d.DurationMs,
		d.WebhookID)
	if err != nil {
		return wrapError(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // the webhook is gone: nothing more to record
	}
	now := toNanos(d.At.Add(time.Duration(d.DurationMs) * time.Millisecond))
	res, err = tx.q.ExecContext(ctx,
		`UPDATE webhook_messages
		 SET status = ?, attempts = MAX(attempts, ?), step = ?, next_at = ?, updated_at = ?,
		     manual = CASE WHEN ? = 'pending' THEN manual ELSE 0 END
		 WHERE webhook_id = ? AND event_id = ? AND rev = ? AND status = 'pending'`,
		a.MessageStatus, d.Attempt, a.Step, toNanos(a.NextAt), now, a.MessageStatus,
		d.WebhookID, d.EventID, a.Rev)
	if err != nil {
		return wrapError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		// A redelivery bumped the revision while this attempt was in
		// flight (keep its pending state), or a 410 canceled the message
		// (keep it canceled): only count the attempt.
		if _, err := tx.q.ExecContext(ctx,
			`UPDATE webhook_messages SET attempts = MAX(attempts, ?) WHERE webhook_id = ? AND event_id = ?`,
			d.Attempt, d.WebhookID, d.EventID); err != nil {
			return wrapError(err)
		}
	}
	if a.Disable != "" {
		if _, err := tx.q.ExecContext(ctx,
			`UPDATE webhooks SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL`,
			now, a.Disable, d.WebhookID); err != nil {
			return wrapError(err)
		}
		if _, err := tx.q.ExecContext(ctx,
			`UPDATE webhook_messages SET status = 'canceled', updated_at = ?
			 WHERE webhook_id = ? AND status = 'pending' AND manual = 0`,
			now, d.WebhookID); err != nil {
			return wrapError(err)
		}
	}
	return nil
}

// RequeueWebhookMessage queues a fresh attempt at now for an event that
// targeted the workspace's webhook (a redelivery). A pending message is
// just made due now, keeping its retry series; a finished one becomes a
// one-off pending attempt (not retried on failure), even on a disabled
// webhook. ErrNotFound if the webhook is not the workspace's or the event
// never targeted it (or its record was pruned).
func (s *Store) RequeueWebhookMessage(ctx context.Context, workspaceID, webhookID, eventID string, now time.Time) error {
	err := s.write(ctx, func(tx *sqliteTx) error {
		var one int
		if err := tx.q.QueryRowContext(ctx,
			`SELECT 1 FROM webhooks WHERE id = ? AND workspace_id = ?`, webhookID, workspaceID).Scan(&one); err != nil {
			return wrapError(err)
		}
		res, err := tx.q.ExecContext(ctx,
			`UPDATE webhook_messages
			 SET manual = CASE WHEN status = 'pending' THEN manual ELSE 1 END,
			     status = 'pending', next_at = ?, rev = rev + 1, updated_at = ?
			 WHERE webhook_id = ? AND event_id = ?`,
			toNanos(now), toNanos(now), webhookID, eventID)
		if err != nil {
			return wrapError(err)
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("requeue %s for webhook %s: %w", eventID, webhookID, err)
	}
	return nil
}
