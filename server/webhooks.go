package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/webhook"
)

type webhookJSON struct {
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

func webhookView(w store.Webhook, withSecret bool) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Events: w.Events, Description: w.Description, CreatedAt: w.CreatedAt.UTC(),
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

type createWebhookRequest struct {
	URL         string   `json:"url" validate:"required,max=2000"`
	Events      []string `json:"events" validate:"required,min=1,max=10,dive,required"`
	AgentID     string   `json:"agentId" validate:"max=64"`
	Description string   `json:"description" validate:"max=2000"`
}

func (s *Server) createWebhook(c *gin.Context) {
	var req createWebhookRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	events := make([]string, 0, len(req.Events))
	for i, ev := range req.Events {
		if !slices.Contains(EventTypes, ev) {
			fail(c, problem(422, "validation_failed", "unknown event type %q (known: %s)", ev, strings.Join(EventTypes, ", ")).
				with("errors", []fieldError{{Pointer: "/events/" + itoa(i), Code: "oneof", Message: "events must be among " + strings.Join(EventTypes, ", ")}}))
			return
		}
		if !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	if req.AgentID != "" {
		if _, err := s.agentInWorkspace(ctx, p.Key.WorkspaceID, req.AgentID); err != nil {
			fail(c, err)
			return
		}
	}
	if err := webhook.CheckURL(ctx, req.URL, s.deps.AllowPrivateWebhooks, nil); err != nil {
		code := "invalid_url"
		if errors.Is(err, webhook.ErrPrivateAddress) {
			code = "private_address"
		}
		fail(c, problem(422, "validation_failed", "%v", err).with("errors", []fieldError{{Pointer: "/url", Code: code, Message: err.Error()}}))
		return
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		fail(c, err)
		return
	}
	w := store.Webhook{ID: store.NewID("wh_"), WorkspaceID: p.Key.WorkspaceID, URL: req.URL, Events: events,
		AgentID: req.AgentID, Description: req.Description, Secret: secret, CreatedAt: s.now()}
	if err := s.store.Write(ctx, func(tx store.Tx) error { return tx.CreateWebhook(ctx, w) }); err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/webhooks/"+w.ID)
	writeJSON(c, http.StatusCreated, webhookView(w, true))
}

func itoa(i int) string { return strconv.Itoa(i) }

// loadWebhook finds :wid in the caller's workspace.
func (s *Server) loadWebhook(c *gin.Context) (store.Webhook, error) {
	w, err := s.store.Webhook(c.Request.Context(), principal(c).Key.WorkspaceID, c.Param("wid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, problem(404, "webhook_not_found", "no webhook %q", c.Param("wid"))
	}
	return w, err
}

func (s *Server) listWebhooks(c *gin.Context) {
	ws, err := s.store.ListWebhooks(c.Request.Context(), principal(c).Key.WorkspaceID)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]webhookJSON, 0, len(ws))
	for _, w := range ws {
		out = append(out, webhookView(w, false))
	}
	writeJSON(c, 200, gin.H{"data": out})
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.loadWebhook(c)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, webhookView(w, false))
}

func (s *Server) deleteWebhook(c *gin.Context) {
	w, err := s.loadWebhook(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.store.DeleteWebhook(c.Request.Context(), w.WorkspaceID, w.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = problem(404, "webhook_not_found", "no webhook %q", w.ID)
		}
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type deliveryJSON struct {
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

func (s *Server) listDeliveries(c *gin.Context) {
	w, err := s.loadWebhook(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	ds, next, err := s.store.ListDeliveries(c.Request.Context(), w.ID, c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		dj := deliveryJSON{ID: d.ID, EventID: d.EventID, Type: d.Type, Attempt: d.Attempt, Status: d.Status,
			Error: d.Error, At: d.At.UTC(), DurationMs: d.DurationMs}
		if d.ResponseCode != 0 {
			code := d.ResponseCode
			dj.ResponseCode = &code
		}
		out = append(out, dj)
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next)})
}

func (s *Server) redeliver(c *gin.Context) {
	w, err := s.loadWebhook(c)
	if err != nil {
		fail(c, err)
		return
	}
	if s.deps.Redeliver == nil {
		fail(c, problem(503, "unavailable", "webhook delivery is not running"))
		return
	}
	eid := c.Param("eid")
	if err := s.deps.Redeliver.Redeliver(c.Request.Context(), w.WorkspaceID, w.ID, eid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = problem(404, "not_found", "event %q was never sent to webhook %s", eid, w.ID)
		}
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusAccepted, gin.H{"webhookId": w.ID, "eventId": eid, "status": "queued"})
}
