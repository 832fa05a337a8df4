package server

import (
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

// Channels, pins, splits and outcomes per version (CONTRACT §12).

func (s *Server) channels(c *gin.Context) {
	out, err := s.backend.Channels(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) putChannel(c *gin.Context) {
	var req backend.ChannelInput
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	out, err := s.backend.SetChannel(c.Request.Context(), principal(c), c.Param("id"), c.Param("channel"), req)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) outcomes(c *gin.Context) {
	from, to, err := timeRange(c)
	if err != nil {
		fail(c, err)
		return
	}
	var versions []string
	if raw := c.Query("versions"); raw != "" {
		for _, v := range strings.Split(raw, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				fail(c, problem("invalid_request", "versions is a comma-separated list of v<n>, got %q", raw))
				return
			}
			versions = append(versions, v)
		}
	}
	out, err := s.backend.Outcomes(c.Request.Context(), principal(c), c.Param("id"), versions, from, to)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

// timeRange reads the optional RFC 3339 query parameters from and to.
func timeRange(c *gin.Context) (from, to time.Time, err error) {
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		t, perr := time.Parse(time.RFC3339, raw)
		if perr != nil {
			return time.Time{}, time.Time{}, problem("invalid_request", "%s must be an RFC 3339 time, got %q", q.name, raw)
		}
		*q.dst = t.UTC()
	}
	return from, to, nil
}
