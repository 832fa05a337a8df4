package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// MaxFileBytes caps one draft file (CONTRACT §4).
const MaxFileBytes = 256 << 10

// Draft is GET .../draft: the draft head and its files.
type Draft struct {
	Revision  string      `json:"revision"`
	UpdatedAt time.Time   `json:"updatedAt"`
	Files     []DraftFile `json:"files"`
}

// DraftFile is one entry of a Draft.
type DraftFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Blob string `json:"blob"`
}

// Draft returns the draft's head and file list.
func (b *Backend) Draft(ctx context.Context, p Principal, agentID string) (Draft, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Draft{}, err
	}
	d, err := b.repos.Draft(ctx, a.ID)
	if err != nil {
		return Draft{}, err
	}
	files := make([]DraftFile, 0, len(d.Files))
	for _, f := range d.Files {
		files = append(files, DraftFile{Path: f.Path, Size: f.Size, Blob: f.Blob})
	}
	return Draft{Revision: d.Revision, UpdatedAt: d.UpdatedAt.UTC(), Files: files}, nil
}

// CheckDraftPath reports invalid_path unless p is a path of the draft format.
func CheckDraftPath(p string) error {
	if _, _, err := compile.ParsePath(p); err != nil {
		return Errorf("invalid_path", "%q is not a draft path: %v", p, err).
			With("errors", []FieldError{{Pointer: "/path", Code: "invalid_path", Message: err.Error()}})
	}
	return nil
}

// DraftFileData returns one draft file's bytes and blob id.
func (b *Backend) DraftFileData(ctx context.Context, p Principal, agentID, path string) ([]byte, string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, "", err
	}
	if err := CheckDraftPath(path); err != nil {
		return nil, "", err
	}
	return b.repos.ReadFile(ctx, a.ID, repo.Rev{Kind: repo.RevDraft}, path)
}

// Change is one file write (Content) or removal (Delete) of a draft commit.
type Change = repo.Change

// CommitInput is one draft change set, from any of the editing routes.
type CommitInput struct {
	Changes []Change
	Message string
	// Expected is expectedRevision: stale → draft_revision_mismatch.
	Expected string
	// IfMatch is an If-Match header: stale → precondition_failed.
	IfMatch string
}

// Commit validates and writes one draft commit and its rows. It returns
// the new revision.
func (b *Backend) Commit(ctx context.Context, p Principal, agentID string, in CommitInput) (string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return "", err
	}
	cm, err := b.commit(ctx, p, a, in)
	return cm.Revision, err
}

func (b *Backend) commit(ctx context.Context, p Principal, a store.Agent, in CommitInput) (repo.Commit, error) {
	seen := make(map[string]bool, len(in.Changes))
	for i, ch := range in.Changes {
		if _, _, err := compile.ParsePath(ch.Path); err != nil {
			return repo.Commit{}, Errorf("invalid_path", "%q is not a draft path: %v", ch.Path, err).
				With("errors", []FieldError{{Pointer: fmt.Sprintf("/changes/%d/path", i), Code: "invalid_path", Message: err.Error()}})
		}
		if seen[ch.Path] {
			return repo.Commit{}, Errorf("validation_failed", "%s appears twice", ch.Path).
				With("errors", []FieldError{{Pointer: fmt.Sprintf("/changes/%d/path", i), Code: "duplicate_path", Message: ch.Path + " appears twice in one commit"}})
		}
		seen[ch.Path] = true
		if ch.Delete && ch.Path == "agent.yaml" {
			return repo.Commit{}, Errorf("invalid_path", "agent.yaml cannot be deleted: every agent has settings")
		}
		if len(ch.Content) > MaxFileBytes {
			return repo.Commit{}, Errorf("payload_too_large", "%s is %d bytes; one file may hold at most %d", ch.Path, len(ch.Content), MaxFileBytes)
		}
	}
	expected := strings.ToLower(in.Expected)
	if in.IfMatch != "" {
		rev, err := b.resolveIfMatch(ctx, a.ID, in.IfMatch, in.Changes)
		if err != nil {
			return repo.Commit{}, err
		}
		if expected != "" && expected != rev {
			return repo.Commit{}, &repo.RevisionMismatchError{Current: rev}
		}
		expected = rev
	}
	now := b.now()
	msg := in.Message
	if strings.TrimSpace(msg) == "" {
		msg = defaultMessage(in.Changes)
	}
	// agent.yaml is parsed here, before any lock or transaction: a costly
	// file slows only the request that sent it.
	name, desc, metaChanged := settingsMeta(in.Changes)
	req := repo.CommitRequest{ExpectedRevision: expected, Changes: in.Changes, Message: msg, Author: signature(p, now)}
	var wrote bool
	bg := context.WithoutCancel(ctx)
	var commit repo.Commit
	err := b.writeLocked(ctx, a.ID, func() (err error) {
		if b.opts.Cluster != nil {
			// Another daemon may have moved this agent since a was read.
			if a, err = b.store.AgentByID(ctx, a.ID); err != nil {
				return err
			}
		}
		commit, err = b.repos.CommitDraft(ctx, a.ID, req, func(cm repo.Commit) error {
			if cm.Revision == a.DraftRevision {
				return nil
			}
			wrote = true
			ctx := bg // git moved: the rows follow even if the client left
			return b.writeAgent(ctx, a.ID, func(tx store.Tx) error {
				if err := tx.SetDraft(ctx, a.ID, cm.Revision, now); err != nil {
					return err
				}
				if metaChanged {
					if err := tx.UpdateAgentMeta(ctx, a.ID, name, desc); err != nil {
						return err
					}
				}
				return b.insertDraftEvent(ctx, tx, a, cm, p, now)
			})
		})
		return err
	})
	if err != nil {
		if wrote {
			b.reconcileAgent(a.ID)
		}
		var rm *repo.RevisionMismatchError
		if in.IfMatch != "" && errors.As(err, &rm) {
			return repo.Commit{}, Errorf("precondition_failed", "If-Match does not match the draft at %s", rm.Current).With("currentRevision", rm.Current)
		}
		return repo.Commit{}, err
	}
	if wrote {
		b.metrics.draftCommits.Inc()
		b.notifyWebhooks()
	}
	return commit, nil
}

// MatchETag reports whether an If-Match / If-None-Match header names one
// of the given entity tags (quoted or bare, weak or strong), or is "*".
func MatchETag(header string, tags ...string) bool {
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

// resolveIfMatch turns an If-Match header into the draft revision the write
// must apply to. The tag may be the draft revision (GET .../draft) or, for a
// one-file write, the file's blob id (GET .../draft/files/{path}).
func (b *Backend) resolveIfMatch(ctx context.Context, id, header string, changes []repo.Change) (string, error) {
	// Only the revision and the one file's blob id: never the whole draft.
	var rev, blob string
	var err error
	if len(changes) == 1 {
		rev, blob, err = b.repos.DraftBlob(ctx, id, changes[0].Path)
	} else {
		rev, _, err = b.repos.DraftHead(ctx, id)
	}
	if err != nil {
		return "", err
	}
	tags := []string{rev}
	if blob != "" {
		tags = append(tags, blob)
	}
	if len(changes) == 1 && blob == "" && strings.TrimSpace(header) == "*" {
		return "", Errorf("precondition_failed", "If-Match: * but %s does not exist", changes[0].Path).With("currentRevision", rev)
	}
	if !MatchETag(header, tags...) {
		return "", Errorf("precondition_failed", "If-Match does not match the draft at %s", rev).With("currentRevision", rev)
	}
	return rev, nil
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

// HistoryEntry is one draft commit.
type HistoryEntry struct {
	Revision string    `json:"revision"`
	Message  string    `json:"message"`
	Author   string    `json:"author"`
	At       time.Time `json:"at"`
	Paths    []string  `json:"paths"`
}

// History lists draft commits, newest first; cursor is a revision.
func (b *Backend) History(ctx context.Context, p Principal, agentID, cursor string, limit int) ([]HistoryEntry, string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, "", err
	}
	if cursor != "" && !isHex40(cursor) {
		return nil, "", Errorf("invalid_request", "bad cursor")
	}
	commits, next, err := b.repos.History(ctx, a.ID, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]HistoryEntry, 0, len(commits))
	for _, cm := range commits {
		paths := cm.Paths
		if paths == nil {
			paths = []string{}
		}
		out = append(out, HistoryEntry{Revision: cm.Revision, Message: strings.TrimRight(cm.Message, "\n"), Author: cm.Author.Name, At: cm.Author.When.UTC(), Paths: paths})
	}
	return out, next, nil
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

// Kind resolves a plural kind segment ("knowledge", "skills", ...).
func Kind(plural string) (compile.Kind, error) {
	k, ok := compile.KindFromPlural(plural)
	if !ok {
		return "", Errorf("not_found", "no draft kind %q (knowledge, skills, guardrails, playbooks, settings)", plural)
	}
	return k, nil
}

// TypedTarget checks that slug names a file of kind.
func TypedTarget(kind compile.Kind, slug string) error {
	p := compile.PathFor(kind, slug)
	if k, sl, err := compile.ParsePath(p); err != nil || k != kind || sl != slug {
		return Errorf("invalid_path", "%q is not a valid name: use ^[a-z0-9][a-z0-9-]{0,63}$", slug).
			With("errors", []FieldError{{Pointer: "/name", Code: "invalid_path", Message: "names match ^[a-z0-9][a-z0-9-]{0,63}$"}})
	}
	return nil
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

// TypedList is every file of one kind as its typed view; Revision is the
// draft revision read.
type TypedList struct {
	Revision string
	Items    []json.RawMessage
}

// Typed lists the draft's files of one kind as typed views. Each view is
// kept by its file's blob id, so listing again parses only files that
// changed; the client hanging up stops the work.
func (b *Backend) Typed(ctx context.Context, p Principal, agentID string, kind compile.Kind) (TypedList, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return TypedList{}, err
	}
	d, err := b.repos.Draft(ctx, a.ID)
	if err != nil {
		return TypedList{}, err
	}
	items := make([]json.RawMessage, 0)
	for _, f := range d.Files { // sorted by path
		k, slug, err := compile.ParsePath(f.Path)
		if err != nil || k != kind {
			continue
		}
		if err := ctx.Err(); err != nil {
			return TypedList{}, err
		}
		item, err := b.typedItem(ctx, a.ID, kind, slug, f.Path, f.Blob)
		if err != nil {
			return TypedList{}, err
		}
		items = append(items, item)
	}
	return TypedList{Revision: d.Revision, Items: items}, nil
}

// typedItem is one entry of a typed list, from the cache by blob id or
// parsed once.
func (b *Backend) typedItem(ctx context.Context, agentID string, kind compile.Kind, slug, path, blob string) (json.RawMessage, error) {
	key := string(kind) + ":" + slug + ":" + blob
	if v, ok := b.cache.views.GetIfPresent(key); ok {
		return v, nil
	}
	data, readBlob, err := b.repos.ReadFile(ctx, agentID, repo.Rev{Kind: repo.RevDraft}, path)
	if err != nil {
		return nil, err
	}
	view, diags := compile.ReadView(kind, slug, data)
	extra := map[string]any{"name": slug, "path": path}
	if len(diags) > 0 {
		extra["errors"] = []compile.Diagnostic(diags)
	}
	item := map[string]any{"name": slug, "path": path}
	if view != nil {
		if item, err = viewJSON(view, extra); err != nil {
			return nil, err
		}
	} else {
		item["errors"] = extra["errors"]
	}
	raw, err := json.Marshal(item)
	if err != nil {
		return nil, err
	}
	b.cache.views.Set(string(kind)+":"+slug+":"+readBlob, raw)
	return raw, nil
}

// TypedFile returns one draft file as its typed view (slug is "" for
// settings).
func (b *Backend) TypedFile(ctx context.Context, p Principal, agentID string, kind compile.Kind, slug string) (map[string]any, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, err
	}
	path := compile.PathFor(kind, slug)
	data, _, err := b.repos.ReadFile(ctx, a.ID, repo.Rev{Kind: repo.RevDraft}, path)
	if err != nil {
		return nil, err
	}
	view, diags := compile.ReadView(kind, slug, data)
	if view == nil || len(diags) > 0 {
		return nil, Errorf("compile_failed", "%s does not parse as %s", path, kind).With("errors", diagList(diags))
	}
	extra := map[string]any{"name": slug, "path": path}
	if kind == compile.KindSettings {
		extra = nil // settings' own name field is the agent's name
	}
	return viewJSON(view, extra)
}

// TypedWrite is a typed PUT: the JSON body of one file's view.
type TypedWrite struct {
	Kind    compile.Kind
	Slug    string
	Body    []byte
	Message string
	IfMatch string
}

// PutTyped validates a typed JSON view and stores its canonical file. It
// returns the view as stored, with the new revision.
func (b *Backend) PutTyped(ctx context.Context, p Principal, agentID string, in TypedWrite) (map[string]any, string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, "", err
	}
	body, err := stripEcho(in.Body, in.Kind, in.Slug)
	if err != nil {
		return nil, "", err
	}
	view, ferrs := compile.DecodeView(in.Kind, in.Slug, body)
	if len(ferrs) > 0 {
		code := "validation_failed"
		if len(ferrs) == 1 && ferrs[0].Pointer == "" && ferrs[0].Code == "invalid_json" {
			code = "invalid_request"
		}
		return nil, "", Errorf(code, "%s", ferrs[0].Message).With("errors", ferrs)
	}
	data, err := compile.EncodeFile(in.Kind, view)
	if err != nil {
		return nil, "", Errorf("validation_failed", "%v", err)
	}
	path := compile.PathFor(in.Kind, in.Slug)
	cm, err := b.commit(ctx, p, a, CommitInput{
		Changes: []repo.Change{{Path: path, Content: data}},
		Message: in.Message,
		IfMatch: in.IfMatch,
	})
	if err != nil {
		return nil, "", err
	}
	out, err := viewJSON(view, map[string]any{"revision": cm.Revision, "path": path})
	if err != nil {
		return nil, "", err
	}
	if in.Kind != compile.KindSettings {
		out["name"] = in.Slug
	}
	return out, cm.Revision, nil
}

// stripEcho drops the read-only members a GET returns (name, path,
// revision, errors) so a client can PUT back what it read. A name that
// disagrees with the URL is refused.
func stripEcho(body []byte, kind compile.Kind, slug string) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) == 0 {
			return nil, Errorf("invalid_request", "a JSON body is required")
		}
		if json.Valid(trimmed) {
			return nil, Invalid("", "invalid_type", "expected a JSON object")
		}
		return nil, Errorf("invalid_request", "malformed JSON")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, JSONError(err)
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
				return nil, Errorf("validation_failed", "name must be %q, the name in the URL", slug).
					With("errors", []FieldError{{Pointer: "/name", Code: "mismatch", Message: "name must equal the name in the URL"}})
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
