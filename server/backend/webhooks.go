package backend

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/webhook"
)

// Webhook is the webhook resource (CONTRACT §9); Secret only at creation.
type Webhook struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	AgentID        *string    `json:"agentId"`
	Description    string     `json:"description"`
	Secret         string     `json:"secret,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	DisabledAt     *time.Time `json:"disabledAt"`
	DisabledReason string     `json:"disabledReason,omitempty"`
}

func webhookView(w store.Webhook, withSecret bool) Webhook {
	out := Webhook{ID: w.ID, URL: w.URL, Events: w.Events, Description: w.Description, CreatedAt: w.CreatedAt.UTC(),
		DisabledAt: w.DisabledAt, DisabledReason: w.DisabledReason}
	if w.AgentID != "" {
		id := w.AgentID
		out.AgentID = &id
	}
	if withSecret {
		out.Secret = w.Secret
	}
	if out.Events == nil {
		out.Events = []string{}
	}
	return out
}

// WebhookInput is one registration.
type WebhookInput struct {
	URL         string
	Events      []string
	AgentID     string
	Description string
}

// CreateWebhook registers an endpoint after checking its URL is public.
func (b *Backend) CreateWebhook(ctx context.Context, p Principal, in WebhookInput) (Webhook, error) {
	events := make([]string, 0, len(in.Events))
	for i, ev := range in.Events {
		if !slices.Contains(EventTypes, ev) {
			return Webhook{}, Errorf("validation_failed", "unknown event type %q (known: %s)", ev, strings.Join(EventTypes, ", ")).
				With("errors", []FieldError{{Pointer: "/events/" + strconv.Itoa(i), Code: "oneof", Message: "events must be among " + strings.Join(EventTypes, ", ")}})
		}
		if !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	if in.AgentID != "" {
		if _, err := b.agent(ctx, p, in.AgentID); err != nil {
			return Webhook{}, err
		}
	}
	existing, err := b.store.ListWebhooks(ctx, p.Key.WorkspaceID)
	if err != nil {
		return Webhook{}, err
	}
	if len(existing) >= b.opts.MaxWebhooksPerWorkspace {
		return Webhook{}, Errorf("validation_failed", "a workspace may register at most %d webhooks", b.opts.MaxWebhooksPerWorkspace).
			With("errors", []FieldError{{Pointer: "", Code: "limit", Message: "too many webhooks in this workspace: delete one first"}})
	}
	if err := webhook.CheckURL(ctx, in.URL, b.opts.AllowPrivateWebhooks, nil); err != nil {
		code := "invalid_url"
		if errors.Is(err, webhook.ErrPrivateAddress) {
			code = "private_address"
		}
		return Webhook{}, Errorf("validation_failed", "%v", err).With("errors", []FieldError{{Pointer: "/url", Code: code, Message: err.Error()}})
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return Webhook{}, err
	}
	w := store.Webhook{ID: store.NewID("wh_"), WorkspaceID: p.Key.WorkspaceID, URL: in.URL, Events: events,
		AgentID: in.AgentID, Description: in.Description, Secret: secret, CreatedAt: b.now()}
	if err := b.store.Write(ctx, func(tx store.Tx) error { return tx.CreateWebhook(ctx, w) }); err != nil {
		return Webhook{}, err
	}
	return webhookView(w, true), nil
}

// webhook finds wid in the caller's workspace.
func (b *Backend) webhook(ctx context.Context, p Principal, wid string) (store.Webhook, error) {
	w, err := b.store.Webhook(ctx, p.Key.WorkspaceID, wid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, Errorf("webhook_not_found", "no webhook %q", wid)
	}
	return w, err
}

// Webhooks lists the caller's webhooks.
func (b *Backend) Webhooks(ctx context.Context, p Principal) ([]Webhook, error) {
	ws, err := b.store.ListWebhooks(ctx, p.Key.WorkspaceID)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(ws))
	for _, w := range ws {
		out = append(out, webhookView(w, false))
	}
	return out, nil
}

// Webhook returns one webhook (without its secret).
func (b *Backend) Webhook(ctx context.Context, p Principal, wid string) (Webhook, error) {
	w, err := b.webhook(ctx, p, wid)
	if err != nil {
		return Webhook{}, err
	}
	return webhookView(w, false), nil
}

// DeleteWebhook removes a webhook.
func (b *Backend) DeleteWebhook(ctx context.Context, p Principal, wid string) error {
	w, err := b.webhook(ctx, p, wid)
	if err != nil {
		return err
	}
	if err := b.store.DeleteWebhook(ctx, w.WorkspaceID, w.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Errorf("webhook_not_found", "no webhook %q", w.ID)
		}
		return err
	}
	return nil
}

// Delivery is one delivery attempt in a webhook's log.
type Delivery struct {
	ID           string    `json:"id"`
	EventID      string    `json:"eventId"`
	Type         string    `json:"type"`
	Attempt      int       `json:"attempt"`
	Status       string    `json:"status"`
	ResponseCode *int      `json:"responseCode"`
	Error        string    `json:"error"`
	At           time.Time `json:"at"`
	DurationMs   int64     `json:"durationMs"`
}

// Deliveries lists a webhook's delivery attempts, newest first.
func (b *Backend) Deliveries(ctx context.Context, p Principal, wid, cursor string, limit int) ([]Delivery, string, error) {
	w, err := b.webhook(ctx, p, wid)
	if err != nil {
		return nil, "", err
	}
	ds, next, err := b.store.ListDeliveries(ctx, w.ID, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		dj := Delivery{ID: d.ID, EventID: d.EventID, Type: d.Type, Attempt: d.Attempt, Status: d.Status,
			Error: d.Error, At: d.At.UTC(), DurationMs: d.DurationMs}
		if d.ResponseCode != 0 {
			code := d.ResponseCode
			dj.ResponseCode = &code
		}
		out = append(out, dj)
	}
	return out, next, nil
}

// Redeliver queues a fresh attempt of one event to one webhook.
func (b *Backend) Redeliver(ctx context.Context, p Principal, wid, eventID string) error {
	w, err := b.webhook(ctx, p, wid)
	if err != nil {
		return err
	}
	if b.opts.Redeliver == nil {
		return Errorf("unavailable", "webhook delivery is not running")
	}
	if err := b.opts.Redeliver.Redeliver(ctx, w.WorkspaceID, w.ID, eventID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Errorf("not_found", "event %q was never sent to webhook %s", eventID, w.ID)
		}
		return err
	}
	return nil
}
