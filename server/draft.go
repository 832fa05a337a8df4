package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/server/backend"
)

func (s *Server) getDraft(c *gin.Context) {
	d, err := s.backend.Draft(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+d.Revision+`"`)
	c.Header("Cache-Control", "private, no-cache")
	c.Header("Vary", "Authorization, Cookie")
	if backend.MatchETag(c.GetHeader("If-None-Match"), d.Revision) {
		c.Status(http.StatusNotModified)
		return
	}
	writeJSON(c, 200, d)
}

// draftPath is the *path parameter of the file routes.
func draftPath(c *gin.Context) string {
	return strings.TrimPrefix(c.Param("path"), "/")
}

func (s *Server) getDraftFile(c *gin.Context) {
	p := draftPath(c)
	data, blob, err := s.backend.DraftFileData(c.Request.Context(), principal(c), c.Param("id"), p)
	if err != nil {
		fail(c, err)
		return
	}
	serveFile(c, p, data, `"`+blob+`"`, "private, no-cache")
}

// serveFile answers raw file bytes with their entity tag. Tenant content
// is private to the key that read it: never stored by shared caches.
func serveFile(c *gin.Context, p string, data []byte, etag, cacheControl string) {
	c.Header("ETag", etag)
	c.Header("Cache-Control", cacheControl)
	c.Header("Vary", "Authorization, Cookie")
	if backend.MatchETag(c.GetHeader("If-None-Match"), strings.Trim(etag, `"`)) {
		c.Status(http.StatusNotModified)
		return
	}
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(p, ".md"):
		ct = "text/markdown; charset=utf-8"
	case strings.HasSuffix(p, ".yaml"):
		ct = "application/yaml; charset=utf-8"
	case strings.HasSuffix(p, ".json"):
		ct = "application/json"
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(200, ct, data)
}

// commit writes one change set and answers its revision.
func (s *Server) commit(c *gin.Context, status int, in backend.CommitInput) {
	rev, err := s.backend.Commit(c.Request.Context(), principal(c), c.Param("id"), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+rev+`"`)
	writeJSON(c, status, gin.H{"revision": rev})
}

func (s *Server) putDraftFile(c *gin.Context) {
	p := draftPath(c)
	if err := backend.CheckDraftPath(p); err != nil {
		fail(c, err)
		return
	}
	data, err := readBody(c, backend.MaxFileBytes)
	if err != nil {
		fail(c, err)
		return
	}
	s.commit(c, 200, backend.CommitInput{
		Changes: []backend.Change{{Path: p, Content: data}},
		Message: c.Query("message"),
		IfMatch: c.GetHeader("If-Match"),
	})
}

func (s *Server) deleteDraftFile(c *gin.Context) {
	p := draftPath(c)
	if err := backend.CheckDraftPath(p); err != nil {
		fail(c, err)
		return
	}
	s.commit(c, 200, backend.CommitInput{
		Changes: []backend.Change{{Path: p, Delete: true}},
		Message: c.Query("message"),
		IfMatch: c.GetHeader("If-Match"),
	})
}

type changeRequest struct {
	Path     string  `json:"path" validate:"required"`
	Content  *string `json:"content"`
	Encoding string  `json:"encoding" validate:"omitempty,oneof=utf-8 base64"`
}

type commitRequest struct {
	Message          string          `json:"message" validate:"max=10000"`
	ExpectedRevision string          `json:"expectedRevision" validate:"omitempty,hexadecimal,len=40"`
	Changes          []changeRequest `json:"changes" validate:"required,min=1,max=20000,dive"`
}

func (s *Server) commitDraft(c *gin.Context) {
	var req commitRequest
	if _, err := s.bindJSONLimit(c, &req, false, maxJSONFileBody); err != nil {
		fail(c, err)
		return
	}
	changes := make([]backend.Change, 0, len(req.Changes))
	for i, ch := range req.Changes {
		if ch.Content == nil {
			changes = append(changes, backend.Change{Path: ch.Path, Delete: true})
			continue
		}
		content := []byte(*ch.Content)
		if ch.Encoding == "base64" {
			var err error
			content, err = base64.StdEncoding.DecodeString(*ch.Content)
			if err != nil {
				fail(c, backend.Invalid(fmt.Sprintf("/changes/%d/content", i), "base64", fmt.Sprintf("changes[%d].content is not base64: %v", i, err)))
				return
			}
		}
		changes = append(changes, backend.Change{Path: ch.Path, Content: content})
	}
	s.commit(c, http.StatusCreated, backend.CommitInput{
		Changes: changes, Message: req.Message, Expected: req.ExpectedRevision, IfMatch: c.GetHeader("If-Match"),
	})
}

func (s *Server) draftHistory(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	out, next, err := s.backend.History(c.Request.Context(), principal(c), c.Param("id"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next)})
}

// ---- typed views ----

func (s *Server) listTyped(c *gin.Context) {
	kind, err := backend.Kind(c.Param("kind"))
	if err != nil {
		fail(c, err)
		return
	}
	list, err := s.backend.Typed(c.Request.Context(), principal(c), c.Param("id"), kind)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+list.Revision+`"`)
	writeJSON(c, 200, list.Items)
}

func (s *Server) readTyped(c *gin.Context, kind compile.Kind, slug string) {
	out, err := s.backend.TypedFile(c.Request.Context(), principal(c), c.Param("id"), kind, slug)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

func (s *Server) writeTyped(c *gin.Context, kind compile.Kind, slug string) {
	body, err := readBody(c, maxJSONFileBody)
	if err != nil {
		fail(c, err)
		return
	}
	if err := checkJSONContentType(c.Request, body); err != nil {
		fail(c, err)
		return
	}
	out, rev, err := s.backend.PutTyped(c.Request.Context(), principal(c), c.Param("id"), backend.TypedWrite{
		Kind: kind, Slug: slug, Body: body, Message: c.Query("message"), IfMatch: c.GetHeader("If-Match"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+rev+`"`)
	writeJSON(c, 200, out)
}

func (s *Server) getSettings(c *gin.Context) { s.readTyped(c, compile.KindSettings, "") }

func (s *Server) putSettings(c *gin.Context) { s.writeTyped(c, compile.KindSettings, "") }

// typedTarget resolves :kind and :name.
func typedTarget(c *gin.Context) (compile.Kind, string, error) {
	kind, err := backend.Kind(c.Param("kind"))
	if err != nil {
		return "", "", err
	}
	slug := c.Param("name")
	if err := backend.TypedTarget(kind, slug); err != nil {
		return "", "", err
	}
	return kind, slug, nil
}

func (s *Server) getTyped(c *gin.Context) {
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.readTyped(c, kind, slug)
}

func (s *Server) putTyped(c *gin.Context) {
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.writeTyped(c, kind, slug)
}

func (s *Server) deleteTyped(c *gin.Context) {
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.commit(c, 200, backend.CommitInput{
		Changes: []backend.Change{{Path: compile.PathFor(kind, slug), Delete: true}},
		Message: c.Query("message"),
		IfMatch: c.GetHeader("If-Match"),
	})
}
