package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

func (s *Server) diff(c *gin.Context) {
	format := c.Query("format")
	switch format {
	case "", "json", "patch":
	default:
		fail(c, problem("invalid_request", "format must be json or patch, got %q", format))
		return
	}
	accept := c.GetHeader("Accept")
	if format == "" && (strings.Contains(accept, "text/x-diff") || strings.Contains(accept, "text/x-patch")) {
		format = "patch"
	}
	pathsMode := c.Query("paths")
	if pathsMode != "" && pathsMode != "source" && pathsMode != "all" {
		fail(c, problem("invalid_request", "paths must be source or all, got %q", pathsMode))
		return
	}
	base, hasBase := c.GetQuery("base")
	if hasBase && base == "" {
		fail(c, problem("version_not_found", "base is empty: use v<n>, published or draft"))
		return
	}
	d, err := s.backend.Diff(c.Request.Context(), principal(c), c.Param("id"), backend.DiffInput{
		Target: c.Param("v"), Base: base, SourceOnly: pathsMode == "source",
	})
	if err != nil {
		fail(c, err)
		return
	}
	if format == "patch" {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/x-diff; charset=utf-8", d.Patch)
		return
	}
	writeJSON(c, 200, d)
}

func (s *Server) prepublishReport(c *gin.Context) {
	r, err := s.backend.Report(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, r)
}
