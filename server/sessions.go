package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

type createSessionRequest struct {
	AgentID   string `json:"agentId" validate:"required,max=64"`
	DraftMode bool   `json:"draftMode"`
	Channel   string `json:"channel" validate:"omitempty,oneof=chat phone"`
	CallerID  string `json:"callerId" validate:"max=256"`
}

func (s *Server) createSession(c *gin.Context) {
	var req createSessionRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	ss, err := s.backend.CreateSession(c.Request.Context(), principal(c), backend.SessionInput{
		AgentID: req.AgentID, DraftMode: req.DraftMode, Channel: req.Channel, CallerID: req.CallerID,
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

func (s *Server) usage(c *gin.Context) {
	from, to, err := timeRange(c)
	if err != nil {
		fail(c, err)
		return
	}
	u, err := s.backend.Usage(c.Request.Context(), principal(c), c.Query("agentId"), from, to)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, u)
}
