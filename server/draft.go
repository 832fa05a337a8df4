package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// draftFileJSON is one entry of GET .../draft.
type draftFileJSON struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Blob string `json:"blob"`
}

func (s *Server) getDraft(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	d, err := s.repos.Draft(c.Request.Context(), a.ID)
	if err != nil {
		fail(c, err)
		return
	}
	files := make([]draftFileJSON, 0, len(d.Files))
	for _, f := range d.Files {
		files = append(files, draftFileJSON{Path: f.Path, Size: f.Size, Blob: f.Blob})
	}
	etag := `"` + d.Revision + `"`
	c.Header("ETag", etag)
	if match(c.GetHeader("If-None-Match"), d.Revision) {
		c.Status(http.StatusNotModified)
		return
	}
	writeJSON(c, 200, gin.H{"revision": d.Revision, "updatedAt": d.UpdatedAt.UTC(), "files": files})
}

// match reports whether an If-Match / If-None-Match header names one of
// the given entity tags (quoted or bare, weak or strong), or is "*".
func match(header string, tags ...string) bool {
	if header == "" {
		return false
	}
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" {
			return true
		}
		part = strings.TrimPrefix(part, "W/")
		part = strings.Trim(part, `"`)
		for _, t := range tags {
			if t != "" && part == t {
				return true
			}
		}
	}
	return false
}

// draftPath validates the *path parameter of the file routes.
func draftPath(c *gin.Context) (string, error) {
	p := strings.TrimPrefix(c.Param("path"), "/")
	if _, _, err := compile.ParsePath(p); err != nil {
		return "", problem(422, "invalid_path", "%q is not a draft path: %v", p, err).
			with("errors", []fieldError{{Pointer: "/path", Code: "invalid_path", Message: err.Error()}})
	}
	return p, nil
}

func (s *Server) getDraftFile(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := draftPath(c)
	if err != nil {
		fail(c, err)
		return
	}
	data, blob, err := s.repos.ReadFile(c.Request.Context(), a.ID, repo.Rev{Kind: repo.RevDraft}, p)
	if err != nil {
		fail(c, err)
		return
	}
	serveFile(c, p, data, `"`+blob+`"`, "no-cache")
}

// serveFile answers raw file bytes with their entity tag.
func serveFile(c *gin.Context, p string, data []byte, etag, cacheControl string) {
	c.Header("ETag", etag)
	c.Header("Cache-Control", cacheControl)
	if match(c.GetHeader("If-None-Match"), strings.Trim(etag, `"`)) {
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

// commitInput is one draft change set, from any of the editing routes.
type commitInput struct {
	changes  []repo.Change
	message  string
	expected string // expectedRevision: stale → 409
	ifMatch  string // If-Match header: stale → 412
}

// commitDraftChanges validates and writes one draft commit and its rows.
func (s *Server) commitDraftChanges(c *gin.Context, a store.Agent, in commitInput) (repo.Commit, error) {
	ctx := c.Request.Context()
	p := principal(c)
	for i, ch := range in.changes {
		if _, _, err := compile.ParsePath(ch.Path); err != nil {
			return repo.Commit{}, problem(422, "invalid_path", "%q is not a draft path: %v", ch.Path, err).
				with("errors", []fieldError{{Pointer: fmt.Sprintf("/changes/%d/path", i), Code: "invalid_path", Message: err.Error()}})
		}
		if len(ch.Content) > maxFileBytes {
			return repo.Commit{}, problem(413, "payload_too_large", "%s is %d bytes; one file may hold at most %d", ch.Path, len(ch.Content), maxFileBytes)
		}
	}
	expected := in.expected
	if in.ifMatch != "" {
		rev, err := s.resolveIfMatch(ctx, a.ID, in.ifMatch, in.changes)
		if err != nil {
			return repo.Commit{}, err
		}
		if expected != "" && expected != rev {
			return repo.Commit{}, &repo.RevisionMismatchError{Current: rev}
		}
		expected = rev
	}
	now := s.now()
	msg := in.message
	if strings.TrimSpace(msg) == "" {
		msg = defaultMessage(in.changes)
	}
	req := repo.CommitRequest{ExpectedRevision: expected, Changes: in.changes, Message: msg, Author: s.signature(p, now)}
	var wrote bool
	bg := context.WithoutCancel(ctx)
	commit, err := s.repos.CommitDraft(ctx, a.ID, req, func(cm repo.Commit) error {
		if cm.Revision == a.DraftRevision {
			return nil
		}
		wrote = true
		ctx := bg // git moved: the rows follow even if the client left
		return s.writeAgent(ctx, a.ID, func(tx store.Tx) error {
			if err := tx.SetDraft(ctx, a.ID, cm.Revision, now); err != nil {
				return err
			}
			if name, desc, ok := settingsMeta(in.changes); ok {
				if err := tx.UpdateAgentMeta(ctx, a.ID, name, desc); err != nil {
					return err
				}
			}
			return s.insertDraftEvent(ctx, tx, a, cm, p, now, c.Request)
		})
	})
	if err != nil {
		if wrote {
			s.reconcileAgent(a.ID)
		}
		var rm *repo.RevisionMismatchError
		if in.ifMatch != "" && errors.As(err, &rm) {
			return repo.Commit{}, problem(412, "precondition_failed", "If-Match does not match the draft at %s", rm.Current).with("currentRevision", rm.Current)
		}
		return repo.Commit{}, err
	}
	if wrote {
		s.metrics.draftCommits.Inc()
		s.notifyWebhooks()
	}
	return commit, nil
}

// resolveIfMatch turns an If-Match header into the draft revision the write
// must apply to. The tag may be the draft revision (GET .../draft) or, for a
// one-file write, the file's blob id (GET .../draft/files/{path}).
func (s *Server) resolveIfMatch(ctx context.Context, id, header string, changes []repo.Change) (string, error) {
	d, err := s.repos.Draft(ctx, id)
	if err != nil {
		return "", err
	}
	tags := []string{d.Revision}
	if len(changes) == 1 {
		for _, f := range d.Files {
			if f.Path == changes[0].Path {
				tags = append(tags, f.Blob)
			}
		}
		if strings.TrimSpace(header) == "*" && len(tags) == 1 {
			return "", problem(412, "precondition_failed", "If-Match: * but %s does not exist", changes[0].Path).with("currentRevision", d.Revision)
		}
	}
	if !match(header, tags...) {
		return "", problem(412, "precondition_failed", "If-Match does not match the draft at %s", d.Revision).with("currentRevision", d.Revision)
	}
	return d.Revision, nil
}

// settingsMeta returns agent.yaml's name and description when a change
// set writes a valid agent.yaml, to keep the agent's summary in step.
func settingsMeta(changes []repo.Change) (name, desc string, ok bool) {
	for _, ch := range changes {
		if ch.Path != "agent.yaml" || ch.Delete {
			continue
		}
		v, diags := compile.ReadView(compile.KindSettings, "", ch.Content)
		st, isSettings := v.(*compile.Settings)
		if len(diags) > 0 || !isSettings || strings.TrimSpace(st.Name) == "" {
			return "", "", false
		}
		return st.Name, st.Description, true
	}
	return "", "", false
}

func defaultMessage(changes []repo.Change) string {
	if len(changes) == 1 {
		if changes[0].Delete {
			return "Delete " + changes[0].Path
		}
		return "Update " + changes[0].Path
	}
	return fmt.Sprintf("Update %d files", len(changes))
}

func (s *Server) putDraftFile(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := draftPath(c)
	if err != nil {
		fail(c, err)
		return
	}
	data, err := readBody(c, maxFileBytes)
	if err != nil {
		fail(c, err)
		return
	}
	cm, err := s.commitDraftChanges(c, a, commitInput{
		changes: []repo.Change{{Path: p, Content: data}},
		message: c.Query("message"),
		ifMatch: c.GetHeader("If-Match"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+cm.Revision+`"`)
	writeJSON(c, 200, gin.H{"revision": cm.Revision})
}

func (s *Server) deleteDraftFile(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := draftPath(c)
	if err != nil {
		fail(c, err)
		return
	}
	if p == "agent.yaml" {
		fail(c, problem(422, "invalid_path", "agent.yaml cannot be deleted: every agent has settings"))
		return
	}
	cm, err := s.commitDraftChanges(c, a, commitInput{
		changes: []repo.Change{{Path: p, Delete: true}},
		message: c.Query("message"),
		ifMatch: c.GetHeader("If-Match"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"revision": cm.Revision})
}

type changeRequest struct {
	Path     string  `json:"path" validate:"required"`
	Content  *string `json:"content"`
	Encoding string  `json:"encoding" validate:"omitempty,oneof=utf-8 base64"`
}

type commitRequest struct {
	Message          string          `json:"message" validate:"max=10000"`
	ExpectedRevision string          `json:"expectedRevision" validate:"omitempty,hexadecimal,len=40"`
	Changes          []changeRequest `json:"changes" validate:"required,min=1,max=2000,dive"`
}

func (s *Server) commitDraft(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req commitRequest
	if _, err := s.bindJSONLimit(c, &req, false, maxJSONFileBody); err != nil {
		fail(c, err)
		return
	}
	seen := map[string]bool{}
	changes := make([]repo.Change, 0, len(req.Changes))
	for i, ch := range req.Changes {
		if seen[ch.Path] {
			fail(c, problem(422, "validation_failed", "%s appears twice", ch.Path).
				with("errors", []fieldError{{Pointer: fmt.Sprintf("/changes/%d/path", i), Code: "duplicate_path", Message: ch.Path + " appears twice in one commit"}}))
			return
		}
		seen[ch.Path] = true
		if ch.Content == nil {
			if ch.Path == "agent.yaml" {
				fail(c, problem(422, "invalid_path", "agent.yaml cannot be deleted: every agent has settings"))
				return
			}
			changes = append(changes, repo.Change{Path: ch.Path, Delete: true})
			continue
		}
		content := []byte(*ch.Content)
		if ch.Encoding == "base64" {
			content, err = base64.StdEncoding.DecodeString(*ch.Content)
			if err != nil {
				fail(c, problem(422, "validation_failed", "changes[%d].content is not base64", i).
					with("errors", []fieldError{{Pointer: fmt.Sprintf("/changes/%d/content", i), Code: "base64", Message: err.Error()}}))
				return
			}
		}
		changes = append(changes, repo.Change{Path: ch.Path, Content: content})
	}
	cm, err := s.commitDraftChanges(c, a, commitInput{changes: changes, message: req.Message, expected: strings.ToLower(req.ExpectedRevision), ifMatch: c.GetHeader("If-Match")})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", `"`+cm.Revision+`"`)
	writeJSON(c, http.StatusCreated, gin.H{"revision": cm.Revision})
}

type historyEntry struct {
	Revision string    `json:"revision"`
	Message  string    `json:"message"`
	Author   string    `json:"author"`
	At       time.Time `json:"at"`
	Paths    []string  `json:"paths"`
}

func (s *Server) draftHistory(c *gin.Context) {
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
	cursor := c.Query("cursor")
	if cursor != "" && !isHex40(cursor) {
		fail(c, problem(400, "invalid_request", "bad cursor"))
		return
	}
	commits, next, err := s.repos.History(c.Request.Context(), a.ID, cursor, limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]historyEntry, 0, len(commits))
	for _, cm := range commits {
		paths := cm.Paths
		if paths == nil {
			paths = []string{}
		}
		out = append(out, historyEntry{Revision: cm.Revision, Message: strings.TrimRight(cm.Message, "\n"), Author: cm.Author.Name, At: cm.Author.When.UTC(), Paths: paths})
	}
	writeJSON(c, 200, gin.H{"data": out, "nextCursor": nullableString(next)})
}

func isHex40(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, ch := range s {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

// ---- typed views ----

// typedKind resolves the :kind segment.
func typedKind(c *gin.Context) (compile.Kind, error) {
	k, ok := compile.KindFromPlural(c.Param("kind"))
	if !ok {
		return "", problem(404, "not_found", "no draft kind %q (knowledge, skills, guardrails, playbooks, settings)", c.Param("kind"))
	}
	return k, nil
}

// viewJSON merges a typed view with its name and path.
func viewJSON(view any, extra map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(view)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	delete(out, "slug")
	for k, v := range extra {
		out[k] = v
	}
	return out, nil
}

func (s *Server) listTyped(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	kind, err := typedKind(c)
	if err != nil {
		fail(c, err)
		return
	}
	rev, _, files, err := s.repos.DraftFiles(c.Request.Context(), a.ID)
	if err != nil {
		fail(c, err)
		return
	}
	paths := make([]string, 0)
	for p := range files {
		if k, _, err := compile.ParsePath(p); err == nil && k == kind {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	items := make([]map[string]any, 0, len(paths))
	for _, p := range paths {
		_, slug, _ := compile.ParsePath(p)
		view, diags := compile.ReadView(kind, slug, files[p])
		extra := map[string]any{"name": slug, "path": p}
		if len(diags) > 0 {
			extra["errors"] = []compile.Diagnostic(diags)
		}
		item := map[string]any{"name": slug, "path": p}
		if view != nil {
			if item, err = viewJSON(view, extra); err != nil {
				fail(c, err)
				return
			}
		} else {
			item["errors"] = extra["errors"]
		}
		items = append(items, item)
	}
	c.Header("ETag", `"`+rev+`"`)
	writeJSON(c, 200, items)
}

// readTyped reads one typed file of the draft.
func (s *Server) readTyped(c *gin.Context, a store.Agent, kind compile.Kind, slug string) {
	p := compile.PathFor(kind, slug)
	data, _, err := s.repos.ReadFile(c.Request.Context(), a.ID, repo.Rev{Kind: repo.RevDraft}, p)
	if err != nil {
		fail(c, err)
		return
	}
	view, diags := compile.ReadView(kind, slug, data)
	if view == nil || len(diags) > 0 {
		fail(c, problem(422, "compile_failed", "%s does not parse as %s", p, kind).with("errors", diagList(diags)))
		return
	}
	extra := map[string]any{"name": slug, "path": p}
	if kind == compile.KindSettings {
		extra = nil // settings' own name field is the agent's name
	}
	out, err := viewJSON(view, extra)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, out)
}

// writeTyped validates a typed JSON body and stores its canonical file.
func (s *Server) writeTyped(c *gin.Context, a store.Agent, kind compile.Kind, slug string) {
	body, err := readBody(c, maxJSONFileBody)
	if err != nil {
		fail(c, err)
		return
	}
	if err := checkJSONContentType(c.Request, body); err != nil {
		fail(c, err)
		return
	}
	body, err = stripEcho(body, kind, slug)
	if err != nil {
		fail(c, err)
		return
	}
	view, ferrs := compile.DecodeView(kind, slug, body)
	if len(ferrs) > 0 {
		code := "validation_failed"
		status := 422
		if len(ferrs) == 1 && ferrs[0].Pointer == "" && ferrs[0].Code == "invalid_json" {
			status, code = 400, "invalid_request"
		}
		fail(c, problem(status, code, "%s", ferrs[0].Message).with("errors", ferrs))
		return
	}
	data, err := compile.EncodeFile(kind, view)
	if err != nil {
		fail(c, problem(422, "validation_failed", "%v", err))
		return
	}
	p := compile.PathFor(kind, slug)
	cm, err := s.commitDraftChanges(c, a, commitInput{
		changes: []repo.Change{{Path: p, Content: data}},
		message: c.Query("message"),
		ifMatch: c.GetHeader("If-Match"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	out, err := viewJSON(view, map[string]any{"revision": cm.Revision, "path": p})
	if err != nil {
		fail(c, err)
		return
	}
	if kind != compile.KindSettings {
		out["name"] = slug
	}
	c.Header("ETag", `"`+cm.Revision+`"`)
	writeJSON(c, 200, out)
}

// stripEcho drops the read-only members a GET returns (name, path,
// revision, errors) so a client can PUT back what it read. A name that
// disagrees with the URL is refused.
func stripEcho(body []byte, kind compile.Kind, slug string) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) == 0 {
			return nil, problem(400, "invalid_request", "a JSON body is required")
		}
		if json.Valid(trimmed) {
			return nil, problem(422, "validation_failed", "the body must be a JSON object").
				with("errors", []fieldError{{Pointer: "", Code: "invalid_type", Message: "expected a JSON object"}})
		}
		return nil, problem(400, "invalid_request", "malformed JSON")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, jsonProblem(err)
	}
	changed := false
	for _, k := range []string{"name", "path", "revision", "errors"} {
		raw, ok := m[k]
		if !ok {
			continue
		}
		if k == "name" && kind == compile.KindSettings {
			continue // settings has a real name field
		}
		if k == "name" {
			var n string
			if json.Unmarshal(raw, &n) != nil || n != slug {
				return nil, problem(422, "validation_failed", "name must be %q, the name in the URL", slug).
					with("errors", []fieldError{{Pointer: "/name", Code: "mismatch", Message: "name must equal the name in the URL"}})
			}
		}
		delete(m, k)
		changed = true
	}
	if !changed {
		return body, nil
	}
	return json.Marshal(m)
}

func (s *Server) getSettings(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.readTyped(c, a, compile.KindSettings, "")
}

func (s *Server) putSettings(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.writeTyped(c, a, compile.KindSettings, "")
}

// typedTarget resolves :kind and :name.
func typedTarget(c *gin.Context) (compile.Kind, string, error) {
	kind, err := typedKind(c)
	if err != nil {
		return "", "", err
	}
	slug := c.Param("name")
	p := compile.PathFor(kind, slug)
	if k, sl, err := compile.ParsePath(p); err != nil || k != kind || sl != slug {
		return "", "", problem(422, "invalid_path", "%q is not a valid name: use ^[a-z0-9][a-z0-9-]{0,63}$", slug).
			with("errors", []fieldError{{Pointer: "/name", Code: "invalid_path", Message: "names match ^[a-z0-9][a-z0-9-]{0,63}$"}})
	}
	return kind, slug, nil
}

func (s *Server) getTyped(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.readTyped(c, a, kind, slug)
}

func (s *Server) putTyped(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	s.writeTyped(c, a, kind, slug)
}

func (s *Server) deleteTyped(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	kind, slug, err := typedTarget(c)
	if err != nil {
		fail(c, err)
		return
	}
	cm, err := s.commitDraftChanges(c, a, commitInput{
		changes: []repo.Change{{Path: compile.PathFor(kind, slug), Delete: true}},
		message: c.Query("message"),
		ifMatch: c.GetHeader("If-Match"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, 200, gin.H{"revision": cm.Revision})
}
