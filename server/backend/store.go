package backend

import (
	"context"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// Store is the metadata database as the backend uses it. The SQLite
// engine (server/store) implements it; a second engine is a second
// implementation of the same interface, checked by one conformance suite.
// Writes go through Write, whose transaction the engine commits (or rolls
// back when fn fails).
type Store interface {
	Ping(ctx context.Context) error
	Write(ctx context.Context, fn func(tx store.Tx) error) error

	// Keys.
	KeysStamp() string
	KeyByHash(ctx context.Context, hash []byte) (store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	RevokeKey(ctx context.Context, id string, now time.Time) error
	TouchKey(ctx context.Context, id string, now time.Time) error

	// Agents, versions, deployments.
	Agent(ctx context.Context, workspaceID, id string) (store.Agent, error)
	AgentByID(ctx context.Context, id string) (store.Agent, error)
	ListAgents(ctx context.Context, workspaceID, cursor string, limit int) ([]store.Agent, string, error)
	AllAgentIDs(ctx context.Context) ([]string, error)
	AgentDeleted(ctx context.Context, id string) (bool, error)
	Version(ctx context.Context, agentID string, n int) (store.Version, error)
	ListVersions(ctx context.Context, agentID string, before int, limit int) ([]store.Version, error)
	VersionNumbers(ctx context.Context, agentID string) ([]int, error)
	ListDeployments(ctx context.Context, agentID string, before int64, limit int) ([]store.Deployment, error)

	// Channels and outcomes (writes: Tx.SetChannel, Tx.FollowChannel,
	// Tx.AddOutcomes).
	Channels(ctx context.Context, agentID string) ([]store.ChannelMode, error)
	Outcomes(ctx context.Context, agentID string, versions []int, from, to time.Time) ([]store.Outcome, error)

	// Idempotency keys.
	BeginIdempotent(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error)
	FinishIdempotent(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error
	AbandonIdempotent(ctx context.Context, workspaceID, key string) error
	AbandonRunningIdempotency(ctx context.Context) error

	// Sessions.
	Session(ctx context.Context, workspaceID, id string) (store.Session, error)
	CreateSessionCounted(ctx context.Context, s store.Session, d *store.OutcomeDelta) error
	AppendTurnAfter(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte) error
	AppendTurnCounted(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte, d store.OutcomeDelta) error
	Messages(ctx context.Context, sessionID string) ([]store.Message, error)
	Usage(ctx context.Context, workspaceID, agentID string, from, to time.Time) (store.Usage, error)

	// Test runs (InsertTestRun is on store.Tx).
	TestRun(ctx context.Context, agentID, id string) (store.TestRun, error)
	ListTestRuns(ctx context.Context, agentID, cursor string, limit int) ([]store.TestRun, string, error)

	// Dashboard sign-in sessions.
	CreateDashboardSession(ctx context.Context, d store.DashboardSession) error
	DashboardSession(ctx context.Context, tokenHash []byte) (store.DashboardSession, error)
	TouchDashboardSession(ctx context.Context, tokenHash []byte, at time.Time) error
	DeleteDashboardSession(ctx context.Context, tokenHash []byte) error
	PruneDashboardSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error)

	// Webhooks.
	Webhook(ctx context.Context, workspaceID, id string) (store.Webhook, error)
	ListWebhooks(ctx context.Context, workspaceID string) ([]store.Webhook, error)
	DeleteWebhook(ctx context.Context, workspaceID, id string) error
	ListDeliveries(ctx context.Context, webhookID string, cursor string, limit int) ([]store.Delivery, string, error)
}

var _ Store = (*store.Store)(nil)
