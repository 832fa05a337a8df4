package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/server/backend"
)

type publishRequest struct {
	Notes                 string `json:"notes" validate:"max=10000"`
	ExpectedDraftRevision string `json:"expectedDraftRevision" validate:"omitempty,hexadecimal,len=40"`
	Force                 bool   `json:"force"`
}

// idempotencyKey validates the Idempotency-Key header.
func idempotencyKey(c *gin.Context) (string, error) {
	k := c.GetHeader("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > 255 {
		return "", problem("invalid_request", "Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", problem("invalid_request", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return k, nil
}

func (s *Server) publish(c *gin.Context) {
	idem, err := idempotencyKey(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req publishRequest
	if _, err = s.bindJSON(c, &req, true); err != nil {
		fail(c, err)
		return
	}
	out, err := s.backend.Publish(c.Request.Context(), principal(c), c.Param("id"), backend.PublishInput{
		Notes: req.Notes, ExpectedDraftRevision: req.ExpectedDraftRevision, Force: req.Force, IdempotencyKey: idem,
	})
	var replayed *backend.ReplayedError
	if errors.As(err, &replayed) {
		c.Header("Idempotent-Replayed", "true")
	}
	if err != nil {
		fail(c, err)
		return
	}
	if out.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", "/agents/"+out.Version.AgentID+"/versions/"+out.Version.ID)
	writeJSON(c, http.StatusCreated, out.Version)
}

type rollbackRequest struct {
	Version                  string  `json:"version" validate:"required"`
	ExpectedPublishedVersion *string `json:"expectedPublishedVersion"`
}

func (s *Server) rollback(c *gin.Context) {
	var req rollbackRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	out, err := s.backend.Rollback(c.Request.Context(), principal(c), c.Param("id"), backend.RollbackInput{
		Version: req.Version, ExpectedPublishedVersion: req.ExpectedPublishedVersion,
	})
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) listVersions(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	page, err := s.backend.Versions(c.Request.Context(), principal(c), c.Param("id"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, page)
}

func (s *Server) getVersion(c *gin.Context) {
	v, err := s.backend.Version(c.Request.Context(), principal(c), c.Param("id"), c.Param("v"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, v)
}

func (s *Server) getCompiled(c *gin.Context) {
	s.serveVersionFile(c, compile.ArtifactPath)
}

func (s *Server) getVersionFile(c *gin.Context) {
	s.serveVersionFile(c, strings.TrimPrefix(c.Param("path"), "/"))
}

// serveVersionFile answers a file frozen in a version: immutable behind
// v<n> (private: tenant content never sits in shared caches), revalidated
// behind the moving alias "published".
func (s *Server) serveVersionFile(c *gin.Context, path string) {
	f, err := s.backend.VersionFile(c.Request.Context(), principal(c), c.Param("id"), c.Param("v"), path, c.GetHeader("If-None-Match"))
	if err != nil {
		fail(c, err)
		return
	}
	cache := "private, max-age=31536000, immutable"
	if c.Param("v") == "published" {
		cache = "private, no-cache" // the alias moves; the bytes behind v<n> never do
		if path == compile.ArtifactPath {
			c.Header("Content-Location", "/agents/"+c.Param("id")+"/versions/"+backend.VersionID(f.Number)+"/compiled")
		}
	}
	serveFile(c, path, f.Data, `"`+f.ETag+`"`, cache)
}

func (s *Server) listDeployments(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	ds, next, err := s.backend.Deployments(c.Request.Context(), principal(c), c.Param("id"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": ds, "nextCursor": nullableString(next)})
}
