package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// agentJSON is the Agent resource (CONTRACT §4).
type agentJSON struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Description   string        `json:"description"`
	CreatedAt     time.Time     `json:"createdAt"`
	Draft         draftRef      `json:"draft"`
	Published     *publishedRef `json:"published"`
	LatestVersion *string       `json:"latestVersion"`
	CloneURL      string        `json:"cloneUrl"`
}

type draftRef struct {
	Revision  string    `json:"revision"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type publishedRef struct {
	Version string `json:"version"`
	Number  int    `json:"number"`
}

// versionID is "v<n>".
func versionID(n int) string { return "v" + strconv.Itoa(n) }

// nullableVersion is "v<n>", or nil for 0.
func nullableVersion(n int) any {
	if n <= 0 {
		return nil
	}
	return versionID(n)
}

// baseURL is where clients reach the daemon.
func (s *Server) baseURL(r *http.Request) string {
	if s.deps.PublicURL != "" {
		return strings.TrimRight(s.deps.PublicURL, "/")
	}
	if r == nil {
		return strings.TrimRight(s.deps.DefaultURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) cloneURL(r *http.Request, id string) string {
	return s.baseURL(r) + "/git/" + id + ".git"
}

func (s *Server) agentView(r *http.Request, a store.Agent) agentJSON {
	out := agentJSON{
		ID: a.ID, Name: a.Name, Description: a.Description, CreatedAt: a.CreatedAt.UTC(),
		Draft:    draftRef{Revision: a.DraftRevision, UpdatedAt: a.DraftUpdatedAt.UTC()},
		CloneURL: s.cloneURL(r, a.ID),
	}
	if a.Published > 0 {
		out.Published = &publishedRef{Version: versionID(a.Published), Number: a.Published}
	}
	if a.Latest > 0 {
		v := versionID(a.Latest)
		out.LatestVersion = &v
	}
	return out
}

// loadAgent finds the :id agent in the caller's workspace.
func (s *Server) loadAgent(c *gin.Context) (store.Agent, error) {
	return s.agentInWorkspace(c.Request.Context(), principal(c).Key.WorkspaceID, c.Param("id"))
}

func (s *Server) agentInWorkspace(ctx context.Context, ws, id string) (store.Agent, error) {
	if !validAgentID(id) {
		return store.Agent{}, problem(404, "agent_not_found", "no agent %q", id)
	}
	if a, ok := s.agents.get(id); ok {
		if a.WorkspaceID != ws {
			return store.Agent{}, problem(404, "agent_not_found", "no agent %q", id)
		}
		return a, nil
	}
	gen := s.agents.generation(id)
	a, err := s.store.Agent(ctx, ws, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Agent{}, problem(404, "agent_not_found", "no agent %q", id)
	}
	if err == nil {
		s.agents.put(a, gen)
	}
	return a, err
}

// validAgentID reports whether id has the shape of a server-made agent id.
func validAgentID(id string) bool {
	if len(id) != 24 || !strings.HasPrefix(id, "agt_") {
		return false
	}
	for _, ch := range id[4:] {
		if !(ch >= 'a' && ch <= 'z' || ch >= '2' && ch <= '7') {
			return false
		}
	}
	return true
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
	if strings.TrimSpace(req.Name) == "" {
		fail(c, problem(422, "validation_failed", "name is required").with("errors", []fieldError{{Pointer: "/name", Code: "required", Message: "name is required"}}))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	now := s.now()
	settings, err := compile.EncodeFile(compile.KindSettings, &compile.Settings{Name: req.Name, Description: req.Description})
	if err != nil {
		fail(c, problem(422, "validation_failed", "%v", err))
		return
	}
	id := store.NewAgentID()
	// The repository is made first: a crash before the row is written
	// leaves an orphan repository that startup recovery moves aside, and
	// the client was never told it exists.
	commit, err := s.repos.Create(ctx, id, map[string][]byte{"agent.yaml": settings}, "Create agent "+req.Name, s.signature(p, now))
	if err != nil {
		fail(c, err)
		return
	}
	a := store.Agent{
		ID: id, WorkspaceID: p.Key.WorkspaceID, Name: req.Name, Description: req.Description,
		CreatedAt: now, DraftRevision: commit.Revision, DraftUpdatedAt: now,
	}
	if err := s.store.Write(ctx, func(tx store.Tx) error { return tx.CreateAgent(ctx, a) }); err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/agents/"+id)
	writeJSON(c, http.StatusCreated, s.agentView(c.Request, a))
}

// signature is the git identity of the caller.
func (s *Server) signature(p Principal, now time.Time) repo.Signature {
	return repo.Signature{Name: p.authorName(), Email: p.authorEmail(), When: now}
}

func (s *Server) listAgents(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	agents, next, err := s.store.ListAgents(c.Request.Context(), principal(c).Key.WorkspaceID, c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]agentJSON, 0, len(agents))
	for _, a := range agents {
		out = append(out, s.agentView(c.Request, a))
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next)})
}

func (s *Server) getAgent(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, s.agentView(c.Request, a))
}

func (s *Server) deleteAgent(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	// The row goes first: a crash before the repository moves leaves a
	// repository without a live row, which startup recovery moves aside.
	if err := s.writeAgent(ctx, a.ID, func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, a.ID, s.now()) }); err != nil {
		fail(c, err)
		return
	}
	if err := s.repos.Remove(ctx, a.ID); err != nil && !errors.Is(err, repo.ErrNotFound) {
		fail(c, err)
		return
	}
	s.sandbox.forget(a.ID)
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
		return 0, problem(400, "invalid_request", "limit must be an integer from 1 to 200, got %q", raw)
	}
	return n, nil
}

func nullableString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
