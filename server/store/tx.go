package store

import (
	"context"
	"time"
)

// Tx is one write transaction, handed to the function given to a store's
// Write method. Its writes commit together if the function returns nil and
// are rolled back otherwise; its reads see them. Every engine (SQLite here,
// PostgreSQL in server/store/postgres) implements it, with the same
// behaviour and the same sentinels.
type Tx interface {
	// EnsureWorkspace returns the workspace called name, creating it (with
	// id "ws_" + random) if it does not exist yet.
	EnsureWorkspace(ctx context.Context, name string, now time.Time) (Workspace, error)
	// CreateKey inserts k with the secret's hash (sha256, unique). k.ID and
	// k.WorkspaceID are required; a duplicate id or hash is ErrConflict.
	CreateKey(ctx context.Context, k Key, hash []byte) error

	// CreateAgent inserts a. A duplicate id is ErrConflict.
	CreateAgent(ctx context.Context, a Agent) error
	// AgentByID returns the live agent id of any workspace, or ErrNotFound.
	AgentByID(ctx context.Context, id string) (Agent, error)
	// MarkAgentDeleted soft-deletes the agent at time at. An unknown or
	// already deleted agent is ErrNotFound.
	MarkAgentDeleted(ctx context.Context, id string, at time.Time) error
	// SetDraft records the draft revision and when it changed.
	SetDraft(ctx context.Context, id, revision string, at time.Time) error
	// SetPublished records the published and the latest version numbers.
	SetPublished(ctx context.Context, id string, published, latest int) error
	// UpdateAgentMeta sets the agent's name and description.
	UpdateAgentMeta(ctx context.Context, id, name, description string) error

	// InsertVersion inserts v; an existing (agent, number) is ErrConflict.
	InsertVersion(ctx context.Context, v Version) error
	// Version returns version n of the agent, or ErrNotFound.
	Version(ctx context.Context, agentID string, n int) (Version, error)
	// VersionNumbers returns every version number of the agent, ascending.
	VersionNumbers(ctx context.Context, agentID string) ([]int, error)
	// InsertDeployment records d and returns its id (d.ID is ignored).
	InsertDeployment(ctx context.Context, d Deployment) (int64, error)
	// LastDeployment returns the agent's newest deployment, or ErrNotFound.
	LastDeployment(ctx context.Context, agentID string) (Deployment, error)

	// InsertEvent appends e to the outbox (e.Seq is ignored). A duplicate
	// ID or Dedupe is ErrConflict.
	InsertEvent(ctx context.Context, e Event) error
	// FinishIdempotentTx records the response of an idempotent request
	// and marks its record done. No record is ErrNotFound.
	FinishIdempotentTx(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error

	// CreateSession inserts s. A duplicate id is ErrConflict.
	CreateSession(ctx context.Context, s Session) error
	// CreateWebhook inserts w. A duplicate id is ErrConflict.
	CreateWebhook(ctx context.Context, w Webhook) error

	// Channels returns the agent's non-follow channel modes.
	Channels(ctx context.Context, agentID string) ([]ChannelMode, error)
	// SetChannel stores c (pin or split) for its agent and channel.
	SetChannel(ctx context.Context, c ChannelMode) error
	// FollowChannel returns the channel to follow mode.
	FollowChannel(ctx context.Context, agentID, channel string) error
	// InsertTestRun stores a test run (its cases as JSON). A duplicate id
	// is ErrConflict.
	InsertTestRun(ctx context.Context, r TestRun) error
	// AddOutcomes adds d to the outcome counters of its agent, version and
	// hour.
	AddOutcomes(ctx context.Context, d OutcomeDelta) error
}

var _ Tx = (*sqliteTx)(nil)
