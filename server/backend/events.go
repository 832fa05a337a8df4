package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// Event types (CONTRACT §9).
const (
	EventVersionPublished  = "version.published"
	EventVersionRolledBack = "version.rolled_back"
	EventDraftUpdated      = "draft.updated"
	EventChannelUpdated    = "channel.updated"
)

// EventTypes lists every event type a webhook may subscribe to.
var EventTypes = []string{EventVersionPublished, EventVersionRolledBack, EventDraftUpdated, EventChannelUpdated}

// eventBody is the JSON body of every webhook delivery.
type eventBody struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// versionEventData is the data of version.published and version.rolled_back.
type versionEventData struct {
	AgentID         string `json:"agentId"`
	Version         string `json:"version"`
	Number          int    `json:"number"`
	PreviousVersion any    `json:"previousVersion"`
	Tag             string `json:"tag"`
	Commit          string `json:"commit"`
	CompiledDigest  string `json:"compiledDigest"`
	By              string `json:"by"`
	CloneURL        string `json:"cloneUrl"`
}

// draftEventData is the data of draft.updated: the members every event
// carries (version, number, tag and compiledDigest are null: a draft is
// not a version; commit is the draft revision; previousVersion is what is
// published), plus the draft's revision, message and paths.
type draftEventData struct {
	AgentID         string   `json:"agentId"`
	Version         any      `json:"version"`
	Number          any      `json:"number"`
	PreviousVersion any      `json:"previousVersion"`
	Tag             any      `json:"tag"`
	Commit          string   `json:"commit"`
	CompiledDigest  any      `json:"compiledDigest"`
	By              string   `json:"by"`
	CloneURL        string   `json:"cloneUrl"`
	Revision        string   `json:"revision"`
	Message         string   `json:"message"`
	Paths           []string `json:"paths"`
}

// newEvent builds an outbox row.
func newEvent(ws, agentID, typ, dedupe string, now time.Time, data any) (store.Event, error) {
	body, err := json.Marshal(eventBody{Type: typ, Timestamp: now.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return store.Event{}, fmt.Errorf("encode event: %w", err)
	}
	return store.Event{
		ID: store.NewID("msg_"), WorkspaceID: ws, AgentID: agentID, Type: typ,
		Payload: body, CreatedAt: now.UTC(), Dedupe: dedupe,
	}, nil
}

// eventCloneURL is the cloneUrl of signed events: always from the
// configured public URL, never from a request (a forged Host header must
// not reach consumers that clone with their own key).
func (b *Backend) eventCloneURL(id string) string {
	return cloneURL(b.opts.PublicURL, id)
}

// insertVersionEvent writes a version event in tx. dedupe makes recovery's
// re-insert a no-op.
func (b *Backend) insertVersionEvent(ctx context.Context, tx store.Tx, typ string, a store.Agent, v store.Version, previous int, by string, now time.Time, dedupe string) error {
	ev, err := newEvent(a.WorkspaceID, a.ID, typ, dedupe, now, versionEventData{
		AgentID: a.ID, Version: VersionID(v.Number), Number: v.Number, PreviousVersion: nullableVersion(previous),
		Tag: "refs/tags/" + VersionID(v.Number), Commit: v.Commit, CompiledDigest: v.Digest, By: by,
		CloneURL: b.eventCloneURL(a.ID),
	})
	if err != nil {
		return err
	}
	return tx.InsertEvent(ctx, ev)
}

// insertDraftEvent writes a draft.updated event in tx.
func (b *Backend) insertDraftEvent(ctx context.Context, tx store.Tx, a store.Agent, cm repo.Commit, p Principal, now time.Time) error {
	paths := cm.Paths
	if paths == nil {
		paths = []string{}
	}
	ev, err := newEvent(a.WorkspaceID, a.ID, EventDraftUpdated, "draft:"+a.ID+":"+cm.Revision, now, draftEventData{
		AgentID: a.ID, PreviousVersion: nullableVersion(a.Published), Commit: cm.Revision,
		Revision: cm.Revision, Message: cm.Message, Paths: paths, By: p.Key.Name, CloneURL: b.eventCloneURL(a.ID),
	})
	if err != nil {
		return err
	}
	return tx.InsertEvent(ctx, ev)
}

// publishDedupe and deploymentDedupe key events so each exists once.
func publishDedupe(agentID string, n int) string {
	return fmt.Sprintf("%s:%s:v%d", EventVersionPublished, agentID, n)
}

func deploymentDedupe(agentID string, deploymentID int64) string {
	return fmt.Sprintf("deployment:%s:%d", agentID, deploymentID)
}
