package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// baseURL is where clients reach the daemon: the configured public URL,
// or the request's own scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.deps.PublicURL != "" {
		return strings.TrimRight(s.deps.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type createAgentRequest struct {
	Name        string `json:"name" validate:"required,max=200"`
	Description string `json:"description" validate:"max=2000"`
}

func (s *Server) createAgent(c *gin.Context) {
	var req createAgentRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	a, err := s.backend.CreateAgent(c.Request.Context(), principal(c), s.baseURL(c.Request), req.Name, req.Description)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/agents/"+a.ID)
	writeJSON(c, http.StatusCreated, a)
}

func (s *Server) listAgents(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	agents, next, err := s.backend.Agents(c.Request.Context(), principal(c), s.baseURL(c.Request), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": agents, "nextCursor": nullableString(next)})
}

func (s *Server) getAgent(c *gin.Context) {
	a, err := s.backend.Agent(c.Request.Context(), principal(c), s.baseURL(c.Request), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, a)
}

func (s *Server) deleteAgent(c *gin.Context) {
	if err := s.backend.DeleteAgent(c.Request.Context(), principal(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// parseLimit reads ?limit= (default 50, 1..200).
func parseLimit(c *gin.Context) (int, error) {
	raw, ok := c.GetQuery("limit")
	if !ok || raw == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 200 {
		return 0, problem("invalid_request", "limit must be an integer from 1 to 200, got %q", raw)
	}
	return n, nil
}

func nullableString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
