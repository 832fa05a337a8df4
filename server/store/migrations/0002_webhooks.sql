-- 0002_webhooks: webhook endpoints, the delivery queue (one message per
-- webhook and event), the delivery log (one row per attempt) and the
-- fan-out cursor over the event outbox (CONTRACT §9).
-- Times are INTEGER unix nanoseconds (UTC).

CREATE TABLE webhooks (
	id              TEXT PRIMARY KEY,                  -- "wh_..."
	workspace_id    TEXT NOT NULL REFERENCES workspaces (id),
	url             TEXT NOT NULL,
	events          TEXT NOT NULL,                     -- JSON array of event types
	agent_id        TEXT NOT NULL DEFAULT '',          -- '' = every agent
	description     TEXT NOT NULL DEFAULT '',
	secret          TEXT NOT NULL,                     -- "whsec_..."
	created_at      INTEGER NOT NULL,
	-- events.seq when the webhook was created: only later events are
	-- delivered to it (no backlog of history on registration).
	after_seq       INTEGER NOT NULL,
	disabled_at     INTEGER,
	disabled_reason TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, created_at, id);

-- One row per (webhook, event) the fan-out matched. status 'pending' rows
-- are the queue; the others are kept (and pruned) so a redelivery can tell
-- whether an event ever targeted the webhook.
CREATE TABLE webhook_messages (
	webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id   TEXT NOT NULL,
	event_seq  INTEGER NOT NULL,
	event_type TEXT NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
	attempts   INTEGER NOT NULL DEFAULT 0, -- attempts made so far, redeliveries included
	step       INTEGER NOT NULL DEFAULT 0, -- failures in the current series: index into the schedule
	manual     INTEGER NOT NULL DEFAULT 0, -- 1: a one-off redelivery, not retried
	rev        INTEGER NOT NULL DEFAULT 0, -- bumped by a redelivery, so an in-flight result cannot undo it
	next_at    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (webhook_id, event_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX webhook_messages_pending
	ON webhook_messages (webhook_id, next_at, event_seq) WHERE status = 'pending';
CREATE INDEX webhook_messages_done
	ON webhook_messages (updated_at) WHERE status <> 'pending';

CREATE TABLE webhook_deliveries (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	id            TEXT NOT NULL UNIQUE,                -- "dlv_..."
	webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id      TEXT NOT NULL,
	type          TEXT NOT NULL,
	attempt       INTEGER NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'pending')),
	response_code INTEGER NOT NULL DEFAULT 0,
	error         TEXT NOT NULL DEFAULT '',
	at            INTEGER NOT NULL,
	duration_ms   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_by_at ON webhook_deliveries (at);

-- The fan-out cursor: the last events.seq turned into messages. It moves in
-- the same transaction that inserts the messages, so fan-out is at least once
-- (exactly once, given the primary key) across crashes. It starts at the
-- newest existing event: history before webhooks existed is not delivered.
CREATE TABLE webhook_fanout (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	after_seq INTEGER NOT NULL
) STRICT;

INSERT INTO webhook_fanout (id, after_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM events;
