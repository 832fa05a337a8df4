package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// Version is the Version resource (CONTRACT §5).
type Version struct {
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
	// Tests are the totals of the run the version was published with;
	// null when its draft had no tests.
	Tests *TestTotals `json:"tests"`
}

func versionView(v store.Version, published int) Version {
	return Version{
		ID: VersionID(v.Number), Number: v.Number, AgentID: v.AgentID, Tag: "refs/tags/" + VersionID(v.Number),
		Commit: v.Commit, DraftRevision: v.DraftRevision, CompiledDigest: v.Digest, Notes: v.Notes,
		PublishedBy: v.PublishedBy, CreatedAt: v.CreatedAt.UTC(), Published: v.Number == published,
		Tests: testTotalsView(v.Tests),
	}
}

// storeVersion converts a git version to its database row.
func storeVersion(agentID string, v repo.Version) store.Version {
	return store.Version{
		AgentID: agentID, Number: v.Number, Commit: v.Commit, DraftRevision: v.DraftRevision,
		Digest: v.Digest, Notes: v.Notes, PublishedBy: v.PublishedBy, CreatedAt: v.CreatedAt.UTC(),
		Tests: parseTestsTrailer(v.Trailers[trailerTests]),
	}
}

// ParseVersionNumber parses "v<n>" (n ≥ 1, no leading zeros).
func ParseVersionNumber(s string) (int, bool) {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' || len(s) > 12 {
		return 0, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 1 || strconv.Itoa(n) != s[1:] {
		return 0, false
	}
	return n, true
}

// resolveVersion turns "v<n>" or "published" into a version that exists,
// or version_not_found.
func (b *Backend) resolveVersion(ctx context.Context, a store.Agent, ref string) (store.Version, error) {
	n, ok := ParseVersionNumber(ref)
	if ref == "published" {
		if a.Published == 0 {
			return store.Version{}, Errorf("version_not_found", "agent %s has no published version", a.ID)
		}
		n, ok = a.Published, true
	}
	if !ok {
		return store.Version{}, Errorf("version_not_found", "%q is not a version id (v<n> or published)", ref)
	}
	v, err := b.store.Version(ctx, a.ID, n)
	if errors.Is(err, store.ErrNotFound) {
		return store.Version{}, Errorf("version_not_found", "agent %s has no version %s", a.ID, ref)
	}
	return v, err
}

// PublishInput is one publish request.
type PublishInput struct {
	Notes                 string `json:"notes"`
	ExpectedDraftRevision string `json:"expectedDraftRevision"`
	// Force publishes a draft whose tests fail (the tag then carries
	// Tests-Forced: true).
	Force bool `json:"force,omitempty"`
	// IdempotencyKey, when set, makes a replay within 24 h return the
	// first outcome.
	IdempotencyKey string `json:"-"`
}

// Published is the outcome of a publish: the new version, and whether it
// is the replay of an earlier request with the same Idempotency-Key.
type Published struct {
	Version  Version
	Replayed bool
}

// ReplayedError is a client error replayed from an earlier request with
// the same Idempotency-Key.
type ReplayedError struct{ Err *Error }

// Error implements error.
func (r *ReplayedError) Error() string { return r.Err.Error() }

// Unwrap returns the replayed error.
func (r *ReplayedError) Unwrap() error { return r.Err }

// idempotency outcomes as recorded: a created version, or a client error.
const (
	outcomeCreated = 201
	outcomeError   = 0
)

// Publish compiles the draft and freezes it as the next version, moves
// the published pointer to it, and records the deployment and the event.
func (b *Backend) Publish(ctx context.Context, p Principal, agentID string, in PublishInput) (Published, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Published{}, err
	}
	now := b.now()
	in.ExpectedDraftRevision = strings.ToLower(in.ExpectedDraftRevision)
	var rec *store.Idempotency
	if in.IdempotencyKey != "" {
		canon, _ := json.Marshal(in)
		sum := sha256.Sum256(append([]byte("POST /agents/"+a.ID+"/publish\n"), canon...))
		rec = &store.Idempotency{WorkspaceID: p.Key.WorkspaceID, Key: in.IdempotencyKey, Scope: "publish:" + a.ID,
			RequestHash: hex.EncodeToString(sum[:]), State: "running", CreatedAt: now}
		existing, err := b.store.BeginIdempotent(ctx, *rec)
		if err != nil {
			return Published{}, err
		}
		if existing != nil {
			return replay(existing, rec)
		}
	}

	var out Version
	var body []byte
	// Once git has moved, the database must follow whether or not the
	// client is still there.
	bg := context.WithoutCancel(ctx)
	gitMoved := false
	var compiled *compiledDraft
	err = b.writeLocked(ctx, a.ID, func() error {
		_, err := b.repos.Publish(ctx, a.ID, repo.PublishRequest{
			ExpectedDraftRevision: in.ExpectedDraftRevision,
			Notes:                 in.Notes,
			Publisher:             signature(p, now),
			Gate:                  b.publishGate(ctx, a.ID, in.Force, &compiled),
		}, func(v repo.Version) error {
			// Under the agent lock, after the tag and the published ref moved:
			// the rows that mirror them, the deployment and the event commit
			// together (reconcileAgent redoes them if this fails).
			gitMoved = true
			if compiled != nil {
				// The version's live sessions use the draft's responder.
				b.cache.published(compiled, v.Digest)
			}
			ctx := bg
			cur, err := b.store.AgentByID(ctx, a.ID)
			if err != nil {
				return err
			}
			sv := storeVersion(a.ID, v)
			out = versionView(sv, v.Number)
			body, err = json.Marshal(out)
			if err != nil {
				return err
			}
			return b.writeAgent(ctx, a.ID, func(tx store.Tx) error {
				return b.recordPublish(ctx, tx, cur, sv, p.Key.Name, now, rec, body)
			})
		})
		return err
	})
	if err != nil {
		if gitMoved {
			b.reconcileAgent(a.ID)
		}
		ce := ErrorOf(err)
		result := "internal"
		if ce != nil {
			result = ce.Code
		}
		if errors.As(err, new(compile.Diagnostics)) {
			b.metrics.compileFailures.Inc()
		}
		b.metrics.publishes.WithLabelValues(result).Inc()
		if rec != nil {
			b.finishIdempotencyWithError(bg, rec, ce)
		}
		return Published{}, err
	}
	b.metrics.publishes.WithLabelValues("ok").Inc()
	b.notifyWebhooks()
	return Published{Version: out}, nil
}

// replay answers a request whose Idempotency-Key was seen before.
func replay(existing, rec *store.Idempotency) (Published, error) {
	switch {
	case existing.RequestHash != rec.RequestHash || existing.Scope != rec.Scope:
		return Published{}, Errorf("idempotency_key_reused", "this Idempotency-Key was used with a different request")
	case existing.State != "done":
		return Published{}, Errorf("idempotency_key_in_use", "the first request with this Idempotency-Key is still running")
	case existing.Status == outcomeCreated:
		var v Version
		if err := json.Unmarshal(existing.Body, &v); err != nil {
			return Published{}, err
		}
		return Published{Version: v, Replayed: true}, nil
	default:
		var e Error
		if err := json.Unmarshal(existing.Body, &e); err != nil {
			return Published{}, err
		}
		return Published{}, &ReplayedError{Err: &e}
	}
}

// recordPublish writes the database side of a publish in one transaction.
func (b *Backend) recordPublish(ctx context.Context, tx store.Tx, a store.Agent, v store.Version, by string, now time.Time, rec *store.Idempotency, body []byte) error {
	if err := tx.InsertVersion(ctx, v); err != nil {
		return err
	}
	if _, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: a.ID, At: now, By: by, Kind: "publish", From: a.Published, To: v.Number}); err != nil {
		return err
	}
	if err := tx.SetPublished(ctx, a.ID, v.Number, max(v.Number, a.Latest)); err != nil {
		return err
	}
	if err := b.insertVersionEvent(ctx, tx, EventVersionPublished, a, v, a.Published, by, now, publishDedupe(a.ID, v.Number)); err != nil {
		return err
	}
	if rec != nil {
		return tx.FinishIdempotentTx(ctx, rec.WorkspaceID, rec.Key, outcomeCreated, nil, body)
	}
	return nil
}

// finishIdempotencyWithError records a failed first request so a replay
// answers the same; server errors (ce == nil) are not recorded: a retry
// re-runs.
func (b *Backend) finishIdempotencyWithError(ctx context.Context, rec *store.Idempotency, ce *Error) {
	if ce == nil {
		_ = b.store.AbandonIdempotent(ctx, rec.WorkspaceID, rec.Key)
		return
	}
	data, err := json.Marshal(ce)
	if err != nil {
		_ = b.store.AbandonIdempotent(ctx, rec.WorkspaceID, rec.Key)
		return
	}
	if err := b.store.FinishIdempotent(ctx, rec.WorkspaceID, rec.Key, outcomeError, nil, data); err != nil {
		b.log.Warn().Err(err).Msg("record idempotent response")
	}
}

// RollbackInput is one rollback request.
type RollbackInput struct {
	Version                  string
	ExpectedPublishedVersion *string
}

// RolledBack is the outcome of a rollback.
type RolledBack struct {
	Published Version `json:"published"`
	Previous  any     `json:"previous"`
}

// Rollback repoints published at any existing version.
func (b *Backend) Rollback(ctx context.Context, p Principal, agentID string, in RollbackInput) (RolledBack, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return RolledBack{}, err
	}
	target, ok := ParseVersionNumber(in.Version)
	if !ok {
		return RolledBack{}, Invalid("/version", "invalid_version", "version must look like v<n>")
	}
	var expected *int
	if in.ExpectedPublishedVersion != nil {
		n, ok := ParseVersionNumber(*in.ExpectedPublishedVersion)
		if !ok {
			return RolledBack{}, Invalid("/expectedPublishedVersion", "invalid_version", "expectedPublishedVersion must look like v<n>")
		}
		expected = &n
	}
	now := b.now()
	if _, err := b.resolveVersion(ctx, a, in.Version); err != nil {
		return RolledBack{}, err
	}
	bg := context.WithoutCancel(ctx)
	gitMoved := false
	var published store.Version
	var from int
	err = b.writeLocked(ctx, a.ID, func() (err error) {
		from, err = b.repos.Rollback(ctx, a.ID, target, expected, func(from, to int) error {
			gitMoved = from != to
			ctx := bg
			v, err := b.store.Version(ctx, a.ID, to)
			if err != nil {
				return err
			}
			published = v
			cur, err := b.store.AgentByID(ctx, a.ID)
			if err != nil {
				return err
			}
			// Every channel returns to follow (the emergency brake), also
			// when the pointer is already on the target.
			return b.writeAgent(ctx, a.ID, func(tx store.Tx) error {
				if from != to {
					did, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: a.ID, At: now, By: p.Key.Name, Kind: "rollback", From: from, To: to})
					if err != nil {
						return err
					}
					if err := tx.SetPublished(ctx, a.ID, to, cur.Latest); err != nil {
						return err
					}
					if err := b.insertVersionEvent(ctx, tx, EventVersionRolledBack, cur, v, from, p.Key.Name, now, deploymentDedupe(a.ID, did)); err != nil {
						return err
					}
				}
				moved := cur
				moved.Published = to
				return b.followAll(ctx, tx, moved, p.Key.Name, now)
			})
		})
		return err
	})
	if err != nil {
		if gitMoved {
			b.reconcileAgent(a.ID)
		}
		return RolledBack{}, err
	}
	b.metrics.rollbacks.Inc()
	b.notifyWebhooks()
	return RolledBack{Published: versionView(published, published.Number), Previous: nullableVersion(from)}, nil
}

// VersionPage is one page of an agent's versions, newest first.
type VersionPage struct {
	Data       []Version `json:"data"`
	NextCursor any       `json:"nextCursor"`
	Published  any       `json:"published"`
}

// Versions lists an agent's versions; cursor is the "v<n>" to list below.
func (b *Backend) Versions(ctx context.Context, p Principal, agentID, cursor string, limit int) (VersionPage, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return VersionPage{}, err
	}
	before := 0
	if cursor != "" {
		n, ok := ParseVersionNumber(cursor)
		if !ok {
			return VersionPage{}, Errorf("invalid_request", "bad cursor %q", cursor)
		}
		before = n
	}
	vs, err := b.store.ListVersions(ctx, a.ID, before, limit+1)
	if err != nil {
		return VersionPage{}, err
	}
	next := ""
	if len(vs) > limit {
		vs = vs[:limit]
		next = VersionID(vs[len(vs)-1].Number)
	}
	out := make([]Version, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionView(v, a.Published))
	}
	return VersionPage{Data: out, NextCursor: NullableString(next), Published: nullableVersion(a.Published)}, nil
}

// Version returns one version ("v<n>" or "published").
func (b *Backend) Version(ctx context.Context, p Principal, agentID, ref string) (Version, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Version{}, err
	}
	v, err := b.resolveVersion(ctx, a, ref)
	if err != nil {
		return Version{}, err
	}
	return versionView(v, a.Published), nil
}

// FrozenFile is a file as frozen in a version: immutable behind
// "v<n>", so ETag is its digest or blob id.
type FrozenFile struct {
	Number int
	Data   []byte
	// ETag is the bare entity tag (the artifact's digest, or the blob id).
	ETag string
	// NotModified reports that the caller's If-None-Match matched: Data
	// is nil and no file was read.
	NotModified bool
}

// VersionFile returns one file of a version. Path may also be the
// compiled artifact, compiled/agent.json. A matching ifNoneMatch on the
// artifact is answered from the version row, before any git or lock work;
// bytes come from a cache by digest (or by version and path), so repeated
// reads never touch git.
func (b *Backend) VersionFile(ctx context.Context, p Principal, agentID, ref, path, ifNoneMatch string) (FrozenFile, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return FrozenFile{}, err
	}
	if path != compile.ArtifactPath && path != compile.TestsPath {
		if _, _, err := compile.ParsePath(path); err != nil {
			return FrozenFile{}, Errorf("invalid_path", "%q is not a path of a version: %v", path, err)
		}
	}
	n, ok := ParseVersionNumber(ref)
	if ref == "published" {
		n, ok = a.Published, a.Published > 0
	}
	if !ok {
		return FrozenFile{}, Errorf("version_not_found", "%q is not a version of agent %s (v<n> or published)", ref, a.ID)
	}
	v, err := b.versionRow(ctx, a.ID, n)
	if errors.Is(err, store.ErrNotFound) {
		return FrozenFile{}, Errorf("version_not_found", "agent %s has no version %s", a.ID, ref)
	}
	if err != nil {
		return FrozenFile{}, err
	}
	if path == compile.ArtifactPath && MatchETag(ifNoneMatch, v.Digest) {
		return FrozenFile{Number: n, ETag: v.Digest, NotModified: true}, nil
	}
	f, err := b.frozen(ctx, v, path)
	if err != nil {
		return FrozenFile{}, err
	}
	return FrozenFile{Number: n, Data: f.data, ETag: f.blob, NotModified: MatchETag(ifNoneMatch, f.blob)}, nil
}

// Deployment is one move of the published pointer (kind publish or
// rollback), or one change of a channel (kind pin, split or follow: from
// and to are what the channel served before and after).
type Deployment struct {
	ID   int64     `json:"id"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"`
	From any       `json:"from"`
	To   any       `json:"to"`
	// Channel is the channel changed (null for publish and rollback).
	Channel any `json:"channel"`
	// Split is the split of a split deployment (null otherwise).
	Split []SplitShare `json:"split"`
}

// Deployments lists the moves of the published pointer, newest first;
// cursor is the id to list below.
func (b *Backend) Deployments(ctx context.Context, p Principal, agentID, cursor string, limit int) ([]Deployment, string, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, "", err
	}
	var before int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 1 {
			return nil, "", Errorf("invalid_request", "bad cursor %q", cursor)
		}
		before = n
	}
	ds, err := b.store.ListDeployments(ctx, a.ID, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = strconv.FormatInt(ds[len(ds)-1].ID, 10)
	}
	out := make([]Deployment, 0, len(ds))
	for _, d := range ds {
		dv := Deployment{ID: d.ID, At: d.At.UTC(), By: d.By, Kind: d.Kind, From: nullableVersion(d.From), To: nullableVersion(d.To), Channel: NullableString(d.Channel)}
		for _, e := range d.Split {
			dv.Split = append(dv.Split, SplitShare{Version: VersionID(e.Version), Weight: e.Weight})
		}
		out = append(out, dv)
	}
	return out, next, nil
}
