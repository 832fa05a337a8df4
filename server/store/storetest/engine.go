// Package storetest is the conformance suite of flowyte's metadata stores:
// one set of behavioural tests that every engine (SQLite in server/store,
// PostgreSQL in server/store/postgres) must pass, in the spirit of go-git's
// storage/tests. An engine's test calls [Run] with a function opening a
// fresh, empty store.
package storetest

import (
	"context"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// Engine is the method set both engines implement: what the server calls
// on a store, plus what the suite needs to inspect it. Write hands fn a
// [store.Tx].
type Engine interface {
	Close() error
	Ping(ctx context.Context) error
	Write(ctx context.Context, fn func(tx store.Tx) error) error
	AppliedMigrations(ctx context.Context) ([]string, error)

	// Workspaces and keys.
	WorkspaceByName(ctx context.Context, name string) (store.Workspace, error)
	KeyByHash(ctx context.Context, hash []byte) (store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	RevokeKey(ctx context.Context, id string, now time.Time) error
	KeysStamp() string
	CountKeys(ctx context.Context) (int, error)
	TouchKey(ctx context.Context, id string, now time.Time) error

	// Agents.
	Agent(ctx context.Context, workspaceID, id string) (store.Agent, error)
	AgentByID(ctx context.Context, id string) (store.Agent, error)
	ListAgents(ctx context.Context, workspaceID, cursor string, limit int) ([]store.Agent, string, error)
	AllAgentIDs(ctx context.Context) ([]string, error)
	AgentDeleted(ctx context.Context, id string) (bool, error)
	Channels(ctx context.Context, agentID string) ([]store.ChannelMode, error)
	TestRun(ctx context.Context, agentID, id string) (store.TestRun, error)
	ListTestRuns(ctx context.Context, agentID, cursor string, limit int) ([]store.TestRun, string, error)
	Outcomes(ctx context.Context, agentID string, versions []int, from, to time.Time) ([]store.Outcome, error)
	AppendTurnCounted(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte, d store.OutcomeDelta) error

	// Versions and deployments.
	Version(ctx context.Context, agentID string, n int) (store.Version, error)
	ListVersions(ctx context.Context, agentID string, before int, limit int) ([]store.Version, error)
	VersionNumbers(ctx context.Context, agentID string) ([]int, error)
	ListDeployments(ctx context.Context, agentID string, before int64, limit int) ([]store.Deployment, error)
	LastDeployment(ctx context.Context, agentID string) (store.Deployment, error)

	// Events (the outbox).
	EventByID(ctx context.Context, id string) (store.Event, error)
	EventsAfter(ctx context.Context, afterSeq int64, limit int) ([]store.Event, int64, error)

	// Idempotency keys.
	BeginIdempotent(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error)
	FinishIdempotent(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error
	AbandonIdempotent(ctx context.Context, workspaceID, key string) error
	PruneIdempotency(ctx context.Context, olderThan time.Time) (int, error)
	AbandonRunningIdempotency(ctx context.Context) error
	AbandonStaleIdempotency(ctx context.Context, olderThan time.Time) (int, error)

	// Sessions.
	Session(ctx context.Context, workspaceID, id string) (store.Session, error)
	CreateSessionCounted(ctx context.Context, s store.Session, d *store.OutcomeDelta) error
	AppendTurn(ctx context.Context, sessionID string, user, agent store.Message, state []byte) error
	AppendTurnAfter(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte) error
	Messages(ctx context.Context, sessionID string) ([]store.Message, error)
	Usage(ctx context.Context, workspaceID, agentID string, from, to time.Time) (store.Usage, error)
	CountSessionsByAgent(ctx context.Context, workspaceID string) (map[string]int, error)

	// Dashboard sign-in sessions.
	CreateDashboardSession(ctx context.Context, d store.DashboardSession) error
	DashboardSession(ctx context.Context, tokenHash []byte) (store.DashboardSession, error)
	TouchDashboardSession(ctx context.Context, tokenHash []byte, at time.Time) error
	DeleteDashboardSession(ctx context.Context, tokenHash []byte) error
	PruneDashboardSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error)

	// Webhooks.
	Webhook(ctx context.Context, workspaceID, id string) (store.Webhook, error)
	WebhookByID(ctx context.Context, id string) (store.Webhook, error)
	ListWebhooks(ctx context.Context, workspaceID string) ([]store.Webhook, error)
	DeleteWebhook(ctx context.Context, workspaceID, id string) error
	ListDeliveries(ctx context.Context, webhookID string, cursor string, limit int) ([]store.Delivery, string, error)
	PruneDeliveries(ctx context.Context, olderThan time.Time) (int, error)
	FanOutWebhookEvents(ctx context.Context, now time.Time, limit int) (store.WebhookFanOut, error)
	DueWebhookMessages(ctx context.Context, webhookID string, now time.Time, limit int) ([]store.WebhookMessage, error)
	ClaimWebhookMessages(ctx context.Context, webhookID string, now time.Time, lease time.Duration, limit int) ([]store.WebhookMessage, error)
	WebhookMessage(ctx context.Context, webhookID, eventID string) (store.WebhookMessage, error)
	NextWebhookMessageAt(ctx context.Context, webhookID string, notBefore time.Time) (time.Time, bool, error)
	PendingWebhooks(ctx context.Context) (map[string]time.Time, error)
	RecordWebhookAttempts(ctx context.Context, attempts []store.WebhookAttempt) error
	RequeueWebhookMessage(ctx context.Context, workspaceID, webhookID, eventID string, now time.Time) error
}
