package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// versionJSON is the Version resource (CONTRACT §5).
type versionJSON struct {
	ID             string    `json:"id"`
	Number         int       `json:"number"`
	AgentID        string    `json:"agentId"`
	Tag            string    `json:"tag"`
	Commit         string    `json:"commit"`
	DraftRevision  string    `json:"draftRevision"`
	CompiledDigest string    `json:"compiledDigest"`
	Notes          string    `json:"notes"`
	PublishedBy    string    `json:"publishedBy"`
	CreatedAt      time.Time `json:"createdAt"`
	Published      bool      `json:"published"`
}

func versionView(v store.Version, published int) versionJSON {
	return versionJSON{
		ID: versionID(v.Number), Number: v.Number, AgentID: v.AgentID, Tag: "refs/tags/" + versionID(v.Number),
		Commit: v.Commit, DraftRevision: v.DraftRevision, CompiledDigest: v.Digest, Notes: v.Notes,
		PublishedBy: v.PublishedBy, CreatedAt: v.CreatedAt.UTC(), Published: v.Number == published,
	}
}

// storeVersion converts a git version to its database row.
func storeVersion(agentID string, v repo.Version) store.Version {
	return store.Version{
		AgentID: agentID, Number: v.Number, Commit: v.Commit, DraftRevision: v.DraftRevision,
		Digest: v.Digest, Notes: v.Notes, PublishedBy: v.PublishedBy, CreatedAt: v.CreatedAt.UTC(),
	}
}

// parseVersionNumber parses "v<n>" (n ≥ 1, no leading zeros).
func parseVersionNumber(s string) (int, bool) {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' || len(s) > 12 {
		return 0, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 1 || strconv.Itoa(n) != s[1:] {
		return 0, false
	}
	return n, true
}

// resolveVersion turns "v<n>" or "published" into a version number that
// exists, or a 404 version_not_found.
func (s *Server) resolveVersion(ctx context.Context, a store.Agent, ref string) (store.Version, error) {
	n, ok := parseVersionNumber(ref)
	if ref == "published" {
		if a.Published == 0 {
			return store.Version{}, problem(404, "version_not_found", "agent %s has no published version", a.ID)
		}
		n, ok = a.Published, true
	}
	if !ok {
		return store.Version{}, problem(404, "version_not_found", "%q is not a version id (v<n> or published)", ref)
	}
	v, err := s.store.Version(ctx, a.ID, n)
	if errors.Is(err, store.ErrNotFound) {
		return store.Version{}, problem(404, "version_not_found", "agent %s has no version %s", a.ID, ref)
	}
	return v, err
}

type publishRequest struct {
	Notes                 string `json:"notes" validate:"max=10000"`
	ExpectedDraftRevision string `json:"expectedDraftRevision" validate:"omitempty,hexadecimal,len=40"`
}

// idempotencyKey validates the Idempotency-Key header.
func idempotencyKey(c *gin.Context) (string, error) {
	k := c.GetHeader("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > 255 {
		return "", problem(400, "invalid_request", "Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", problem(400, "invalid_request", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return k, nil
}

func (s *Server) publish(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	idem, err := idempotencyKey(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req publishRequest
	_, err = s.bindJSON(c, &req, true)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	now := s.now()
	var rec *store.Idempotency
	if idem != "" {
		canon, _ := json.Marshal(req)
		sum := sha256.Sum256(append([]byte("POST /agents/"+a.ID+"/publish\n"), canon...))
		rec = &store.Idempotency{WorkspaceID: p.Key.WorkspaceID, Key: idem, Scope: "publish:" + a.ID,
			RequestHash: hex.EncodeToString(sum[:]), State: "running", CreatedAt: now}
		existing, err := s.store.BeginIdempotent(ctx, *rec)
		if err != nil {
			fail(c, err)
			return
		}
		if existing != nil {
			switch {
			case existing.RequestHash != rec.RequestHash || existing.Scope != rec.Scope:
				fail(c, problem(422, "idempotency_key_reused", "this Idempotency-Key was used with a different request"))
			case existing.State != "done":
				fail(c, problem(409, "idempotency_key_in_use", "the first request with this Idempotency-Key is still running"))
			default:
				for k, v := range existing.Headers {
					c.Header(k, v)
				}
				c.Header("Idempotent-Replayed", "true")
				c.Status(existing.Status)
				_, _ = c.Writer.Write(existing.Body)
			}
			return
		}
	}

	var out versionJSON
	var headers map[string]string
	var body []byte
	// Once git has moved, the database must follow whether or not the
	// client is still there.
	bg := context.WithoutCancel(ctx)
	gitMoved := false
	_, err = s.repos.Publish(ctx, a.ID, repo.PublishRequest{
		ExpectedDraftRevision: strings.ToLower(req.ExpectedDraftRevision),
		Notes:                 req.Notes,
		Publisher:             s.signature(p, now),
	}, func(v repo.Version) error {
		// Under the agent lock, after the tag and the published ref moved:
		// the rows that mirror them, the deployment and the event commit
		// together (reconcileAgent redoes them if this fails).
		gitMoved = true
		ctx := bg
		cur, err := s.store.AgentByID(ctx, a.ID)
		if err != nil {
			return err
		}
		sv := storeVersion(a.ID, v)
		out = versionView(sv, v.Number)
		loc := "/agents/" + a.ID + "/versions/" + versionID(v.Number)
		headers = map[string]string{"Location": loc, "Content-Type": "application/json; charset=utf-8"}
		body, err = json.Marshal(out)
		if err != nil {
			return err
		}
		body = append(body, '\n')
		return s.writeAgent(ctx, a.ID, func(tx store.Tx) error {
			return s.recordPublish(ctx, tx, cur, sv, p.Key.Name, now, c.Request, rec, headers, body)
		})
	})
	if err != nil {
		if gitMoved {
			s.reconcileAgent(a.ID)
		}
		pr := problemFor(err)
		result := pr.Code
		if errors.As(err, new(compile.Diagnostics)) {
			s.metrics.compileFailures.Inc()
		}
		s.metrics.publishes.WithLabelValues(result).Inc()
		if rec != nil {
			s.finishIdempotencyWithProblem(c, rec, pr)
		}
		fail(c, err)
		return
	}
	s.metrics.publishes.WithLabelValues("ok").Inc()
	s.notifyWebhooks()
	c.Header("Location", headers["Location"])
	writeJSON(c, http.StatusCreated, out)
}

// recordPublish writes the database side of a publish in one transaction.
func (s *Server) recordPublish(ctx context.Context, tx store.Tx, a store.Agent, v store.Version, by string, now time.Time, r *http.Request, rec *store.Idempotency, headers map[string]string, body []byte) error {
	if err := tx.InsertVersion(ctx, v); err != nil {
		return err
	}
	if _, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: a.ID, At: now, By: by, Kind: "publish", From: a.Published, To: v.Number}); err != nil {
		return err
	}
	if err := tx.SetPublished(ctx, a.ID, v.Number, max(v.Number, a.Latest)); err != nil {
		return err
	}
	if err := s.insertVersionEvent(ctx, tx, EventVersionPublished, a, v, a.Published, by, now, r, publishDedupe(a.ID, v.Number)); err != nil {
		return err
	}
	if rec != nil {
		return tx.FinishIdempotentTx(ctx, rec.WorkspaceID, rec.Key, http.StatusCreated, headers, body)
	}
	return nil
}

// finishIdempotencyWithProblem records a failed first request so a replay
// answers the same; server errors are not recorded (a retry re-runs).
func (s *Server) finishIdempotencyWithProblem(c *gin.Context, rec *store.Idempotency, p *Problem) {
	ctx := context.WithoutCancel(c.Request.Context())
	if p.Status >= 500 {
		_ = s.store.AbandonIdempotent(ctx, rec.WorkspaceID, rec.Key)
		return
	}
	// No request id: a replay answers with the first response's body,
	// and the replay's own id is in its X-Request-Id header.
	data, err := json.Marshal(p.body(c.Request.URL.Path, ""))
	if err != nil {
		_ = s.store.AbandonIdempotent(ctx, rec.WorkspaceID, rec.Key)
		return
	}
	data = append(data, '\n')
	if err := s.store.FinishIdempotent(ctx, rec.WorkspaceID, rec.Key, p.Status, map[string]string{"Content-Type": "application/problem+json"}, data); err != nil {
		s.log.Warn().Err(err).Msg("record idempotent response")
	}
}

type rollbackRequest struct {
	Version                  string  `json:"version" validate:"required"`
	ExpectedPublishedVersion *string `json:"expectedPublishedVersion"`
}

func (s *Server) rollback(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req rollbackRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	target, ok := parseVersionNumber(req.Version)
	if !ok {
		fail(c, problem(422, "validation_failed", "version must look like v3").
			with("errors", []fieldError{{Pointer: "/version", Code: "invalid_version", Message: "version must look like v<n>"}}))
		return
	}
	var expected *int
	if req.ExpectedPublishedVersion != nil {
		n, ok := parseVersionNumber(*req.ExpectedPublishedVersion)
		if !ok {
			fail(c, problem(422, "validation_failed", "expectedPublishedVersion must look like v3").
				with("errors", []fieldError{{Pointer: "/expectedPublishedVersion", Code: "invalid_version", Message: "expectedPublishedVersion must look like v<n>"}}))
			return
		}
		expected = &n
	}
	ctx := c.Request.Context()
	p := principal(c)
	now := s.now()
	if _, err := s.resolveVersion(ctx, a, req.Version); err != nil {
		fail(c, err)
		return
	}
	bg := context.WithoutCancel(ctx)
	gitMoved := false
	var published store.Version
	from, err := s.repos.Rollback(ctx, a.ID, target, expected, func(from, to int) error {
		gitMoved = from != to
		ctx := bg
		v, err := s.store.Version(ctx, a.ID, to)
		if err != nil {
			return err
		}
		published = v
		if from == to {
			return nil // already live: the pointer did not move, nothing to record
		}
		cur, err := s.store.AgentByID(ctx, a.ID)
		if err != nil {
			return err
		}
		return s.writeAgent(ctx, a.ID, func(tx store.Tx) error {
			did, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: a.ID, At: now, By: p.Key.Name, Kind: "rollback", From: from, To: to})
			if err != nil {
				return err
			}
			if err := tx.SetPublished(ctx, a.ID, to, cur.Latest); err != nil {
				return err
			}
			return s.insertVersionEvent(ctx, tx, EventVersionRolledBack, cur, v, from, p.Key.Name, now, c.Request, deploymentDedupe(a.ID, did))
		})
	})
	if err != nil {
		if gitMoved {
			s.reconcileAgent(a.ID)
		}
		fail(c, err)
		return
	}
	s.metrics.rollbacks.Inc()
	s.notifyWebhooks()
	writeJSON(c, 200, gin.H{"published": versionView(published, published.Number), "previous": nullableVersion(from)})
}

func (s *Server) listVersions(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	before := 0
	if cur := c.Query("cursor"); cur != "" {
		n, ok := parseVersionNumber(cur)
		if !ok {
			fail(c, problem(400, "invalid_request", "bad cursor %q", cur))
			return
		}
		before = n
	}
	vs, err := s.store.ListVersions(c.Request.Context(), a.ID, before, limit+1)
	if err != nil {
		fail(c, err)
		return
	}
	next := ""
	if len(vs) > limit {
		vs = vs[:limit]
		next = versionID(vs[len(vs)-1].Number)
	}
	out := make([]versionJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionView(v, a.Published))
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next), "published": nullableVersion(a.Published)})
}

func (s *Server) getVersion(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	v, err := s.resolveVersion(c.Request.Context(), a, c.Param("v"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, versionView(v, a.Published))
}

func (s *Server) getCompiled(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	v, err := s.resolveVersion(c.Request.Context(), a, c.Param("v"))
	if err != nil {
		fail(c, err)
		return
	}
	data, _, err := s.repos.ReadFile(c.Request.Context(), a.ID, repo.Rev{Kind: repo.RevVersion, Number: v.Number}, compile.ArtifactPath)
	if err != nil {
		fail(c, err)
		return
	}
	cache := "public, max-age=31536000, immutable"
	if c.Param("v") == "published" {
		cache = "no-cache" // the alias moves; the bytes behind v<n> never do
	}
	c.Header("Content-Location", "/agents/"+a.ID+"/versions/"+versionID(v.Number)+"/compiled")
	serveFile(c, compile.ArtifactPath, data, `"`+v.Digest+`"`, cache)
}

func (s *Server) getVersionFile(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	v, err := s.resolveVersion(c.Request.Context(), a, c.Param("v"))
	if err != nil {
		fail(c, err)
		return
	}
	p := strings.TrimPrefix(c.Param("path"), "/")
	if p != compile.ArtifactPath {
		if _, _, err := compile.ParsePath(p); err != nil {
			fail(c, problem(422, "invalid_path", "%q is not a path of a version: %v", p, err))
			return
		}
	}
	data, blob, err := s.repos.ReadFile(c.Request.Context(), a.ID, repo.Rev{Kind: repo.RevVersion, Number: v.Number}, p)
	if err != nil {
		fail(c, err)
		return
	}
	cache := "public, max-age=31536000, immutable"
	if c.Param("v") == "published" {
		cache = "no-cache"
	}
	serveFile(c, p, data, `"`+blob+`"`, cache)
}

type deploymentJSON struct {
	ID   int64     `json:"id"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"`
	From any       `json:"from"`
	To   any       `json:"to"`
}

func (s *Server) listDeployments(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	var before int64
	if cur := c.Query("cursor"); cur != "" {
		n, err := strconv.ParseInt(cur, 10, 64)
		if err != nil || n < 1 {
			fail(c, problem(400, "invalid_request", "bad cursor %q", cur))
			return
		}
		before = n
	}
	ds, err := s.store.ListDeployments(c.Request.Context(), a.ID, before, limit+1)
	if err != nil {
		fail(c, err)
		return
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = strconv.FormatInt(ds[len(ds)-1].ID, 10)
	}
	out := make([]deploymentJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deploymentJSON{ID: d.ID, At: d.At.UTC(), By: d.By, Kind: d.Kind, From: nullableVersion(d.From), To: nullableVersion(d.To)})
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next)})
}
