package server

import (
	"context"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/githttp"
)

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) healthz(c *gin.Context) {
	writeJSON(c, 200, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	var err error
	if s.deps.Ready != nil {
		err = s.deps.Ready(ctx)
	} else {
		err = s.backend.Ping(ctx)
	}
	if err != nil {
		s.log.Warn().Err(err).Msg("not ready")
		fail(c, problem("unavailable", "not ready"))
		return
	}
	writeJSON(c, 200, gin.H{"status": "ready"})
}

func (s *Server) metricsHandler() gin.HandlerFunc {
	reg := s.deps.Registry
	// Process and Go runtime metrics ride along, registered once.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

func (s *Server) openAPI(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(200, "application/json", openAPIDoc)
}

var problemPage = template.Must(template.New("problem").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Code}} — flowyte</title></head>
<body><h1>{{.Code}}</h1><p>HTTP {{.Status}} {{.Title}}</p><p>{{.About}}</p>
<p>Problem bodies are RFC 9457 <code>application/problem+json</code>; <code>detail</code> carries this code.</p></body></html>
`))

func (s *Server) problemPage(c *gin.Context) {
	code := c.Param("code")
	pc, ok := problemCodes[code]
	if !ok {
		fail(c, problem("not_found", "no problem type %q", code))
		return
	}
	data := map[string]any{"Code": code, "Status": pc.Status, "Title": http.StatusText(pc.Status), "About": pc.About}
	if strings.Contains(c.GetHeader("Accept"), "application/json") {
		writeJSON(c, 200, gin.H{"type": "/problems/" + code, "status": pc.Status, "title": http.StatusText(pc.Status), "description": pc.About})
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(200)
	_ = problemPage.Execute(c.Writer, data)
}

// noMethod answers 405 with the Allow header gin computed.
func (s *Server) noMethod(c *gin.Context) {
	fail(c, problem("method_not_allowed", "%s is not allowed here", c.Request.Method))
}

// gitHandler serves read-only smart HTTP clones. Its error bodies are
// text/plain (CONTRACT §7), written by githttp itself.
func (s *Server) gitHandler() *githttp.Handler {
	return githttp.New(githttp.Options{
		GitPath:      s.deps.GitPath,
		BodyTimeout:  s.deps.BodyTimeout,
		MaxProcesses: s.deps.GitProcesses,
		Authorize: func(ctx context.Context, token, agentID string) (githttp.Grant, error) {
			p, err := s.backend.Authenticate(ctx, token)
			switch {
			case errors.Is(err, backend.ErrUnauthenticated), errors.Is(err, backend.ErrInvalidKey):
				return githttp.Grant{}, githttp.ErrUnauthorized
			case err != nil:
				return githttp.Grant{}, err
			}
			g := githttp.Grant{KeyID: p.Key.ID}
			if !p.Has(ScopeAgentsRead) {
				return g, githttp.ErrForbidden
			}
			dir, err := s.backend.RepoPath(ctx, p, agentID)
			if err != nil {
				return g, githttp.ErrNotFound
			}
			g.RepoDir = dir
			return g, nil
		},
		Logger: func(msg string, err error) { s.log.Warn().Err(err).Msg(msg) },
	})
}

// ---- API keys (addition: manage keys over HTTP with keys:write) ----

type createKeyRequest struct {
	Name   string   `json:"name" validate:"required,max=200"`
	Scopes []string `json:"scopes" validate:"required,min=1,dive,oneof=agents:read agents:write chat:write webhooks:write keys:write"`
}

func (s *Server) createKey(c *gin.Context) {
	var req createKeyRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	k, err := s.backend.NewKey(c.Request.Context(), principal(c), req.Name, req.Scopes)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, k)
}

func (s *Server) listKeys(c *gin.Context) {
	keys, err := s.backend.Keys(c.Request.Context(), principal(c))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"data": keys})
}

func (s *Server) revokeKey(c *gin.Context) {
	if err := s.backend.RevokeKey(c.Request.Context(), principal(c), c.Param("kid")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
