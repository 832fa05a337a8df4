package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

type createSessionRequest struct {
	AgentID   string `json:"agentId" validate:"required,max=64"`
	DraftMode bool   `json:"draftMode"`
	Channel   string `json:"channel" validate:"omitempty,oneof=chat phone"`
}

func (s *Server) createSession(c *gin.Context) {
	var req createSessionRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	ss, err := s.backend.CreateSession(c.Request.Context(), principal(c), backend.SessionInput{
		AgentID: req.AgentID, DraftMode: req.DraftMode, Channel: req.Channel,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/chat/sessions/"+ss.ID)
	writeJSON(c, http.StatusCreated, ss)
}

func (s *Server) getSession(c *gin.Context) {
	ss, err := s.backend.Session(c.Request.Context(), principal(c), c.Param("sid"))
	if err != nil {
		fail(c, err)
		return
	}
	if ss.Messages == nil {
		ss.Messages = []backend.Message{}
	}
	writeJSON(c, 200, sessionWithMessages{Session: ss, Messages: ss.Messages})
}

// sessionWithMessages always carries "messages", even when empty.
type sessionWithMessages struct {
	backend.Session
	Messages []backend.Message `json:"messages"`
}

type messageRequest struct {
	Text string `json:"text" validate:"required"`
}

func (s *Server) postMessage(c *gin.Context) {
	var req messageRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	out, err := s.backend.PostMessage(c.Request.Context(), principal(c), c.Param("sid"), req.Text)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) channels(c *gin.Context) {
	out, err := s.backend.Channels(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) usage(c *gin.Context) {
	var from, to time.Time
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			fail(c, problem("invalid_request", "%s must be an RFC 3339 time, got %q", q.name, raw))
			return
		}
		*q.dst = t.UTC()
	}
	u, err := s.backend.Usage(c.Request.Context(), principal(c), c.Query("agentId"), from, to)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, u)
}
