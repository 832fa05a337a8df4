package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

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
	w, err := s.backend.CreateWebhook(c.Request.Context(), principal(c), backend.WebhookInput{
		URL: req.URL, Events: req.Events, AgentID: req.AgentID, Description: req.Description,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/webhooks/"+w.ID)
	writeJSON(c, http.StatusCreated, w)
}

func (s *Server) listWebhooks(c *gin.Context) {
	ws, err := s.backend.Webhooks(c.Request.Context(), principal(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": ws})
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.backend.Webhook(c.Request.Context(), principal(c), c.Param("wid"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, w)
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.backend.DeleteWebhook(c.Request.Context(), principal(c), c.Param("wid")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) listDeliveries(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	ds, next, err := s.backend.Deliveries(c.Request.Context(), principal(c), c.Param("wid"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": ds, "nextCursor": nullableString(next)})
}

func (s *Server) redeliver(c *gin.Context) {
	wid, eid := c.Param("wid"), c.Param("eid")
	if err := s.backend.Redeliver(c.Request.Context(), principal(c), wid, eid); err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusAccepted, gin.H{"webhookId": wid, "eventId": eid, "status": "queued"})
}
