package webhook

import (
	"context"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// Store is what the [Dispatcher] needs of the metadata store: the
// webhooks, the event outbox, the message queue and the delivery log.
// Both engines implement it: *store.Store (SQLite, one daemon) and
// *postgres.Store (PostgreSQL, shared by several daemons).
//
// With several dispatchers on one database, ClaimWebhookMessages must hide
// a claimed message from the others until its lease ends (FOR UPDATE SKIP
// LOCKED, then next_at = now+lease), RecordWebhookAttempts must settle it,
// and FanOutWebhookEvents must turn each outbox event into messages once
// (its cursor row locked for the transaction).
type Store interface {
	// WebhookByID returns a webhook whatever its workspace, or an error
	// wrapping store.ErrNotFound.
	WebhookByID(ctx context.Context, id string) (store.Webhook, error)
	// FanOutWebhookEvents turns up to limit new outbox events into
	// pending messages of the webhooks they match.
	FanOutWebhookEvents(ctx context.Context, now time.Time, limit int) (store.WebhookFanOut, error)
	// ClaimWebhookMessages returns up to limit messages of the webhook due
	// at now, with payloads, and makes them due again only at now+lease.
	ClaimWebhookMessages(ctx context.Context, webhookID string, now time.Time, lease time.Duration, limit int) ([]store.WebhookMessage, error)
	// NextWebhookMessageAt returns the earliest due time after notBefore
	// of the webhook's pending messages.
	NextWebhookMessageAt(ctx context.Context, webhookID string, notBefore time.Time) (time.Time, bool, error)
	// PendingWebhooks returns the earliest due time of every webhook with
	// pending messages.
	PendingWebhooks(ctx context.Context) (map[string]time.Time, error)
	// RecordWebhookAttempts logs attempt outcomes and moves their
	// messages on, in one transaction.
	RecordWebhookAttempts(ctx context.Context, attempts []store.WebhookAttempt) error
	// RequeueWebhookMessage makes a message due now again (a redelivery).
	RequeueWebhookMessage(ctx context.Context, workspaceID, webhookID, eventID string, now time.Time) error
	// PruneDeliveries deletes delivery log rows and finished messages
	// older than olderThan.
	PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error)
}
