-- 0001_core: workspaces, API keys, agents, versions, deployments,
-- idempotency records and the event outbox.
-- Times are INTEGER unix nanoseconds (UTC). Version 0 means "none".

CREATE TABLE workspaces (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
	id           TEXT PRIMARY KEY,
	workspace_id TEXT NOT NULL REFERENCES workspaces (id),
	name         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE, -- sha256 of the secret
	scopes       TEXT NOT NULL,        -- space-separated
	created_at   INTEGER NOT NULL,
	revoked_at   INTEGER,
	last_used_at INTEGER
) STRICT;

CREATE TABLE agents (
	id               TEXT PRIMARY KEY,
	workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
	name             TEXT NOT NULL,
	description      TEXT NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	draft_revision   TEXT NOT NULL DEFAULT '',
	draft_updated_at INTEGER NOT NULL,
	published        INTEGER NOT NULL DEFAULT 0,
	latest           INTEGER NOT NULL DEFAULT 0,
	deleted_at       INTEGER
) STRICT;

CREATE INDEX agents_live_by_workspace
	ON agents (workspace_id, created_at, id) WHERE deleted_at IS NULL;

-- WITHOUT ROWID: the primary key is the table's b-tree, so a page of
-- versions newest-first is one range scan whatever the history length.
CREATE TABLE versions (
	agent_id       TEXT NOT NULL REFERENCES agents (id),
	number         INTEGER NOT NULL CHECK (number > 0),
	commit_hash    TEXT NOT NULL,
	draft_revision TEXT NOT NULL,
	digest         TEXT NOT NULL,
	notes          TEXT NOT NULL DEFAULT '',
	published_by   TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	PRIMARY KEY (agent_id, number)
) STRICT, WITHOUT ROWID;

CREATE TABLE deployments (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	agent_id     TEXT NOT NULL REFERENCES agents (id),
	at           INTEGER NOT NULL,
	actor        TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL CHECK (kind IN ('publish', 'rollback', 'recovered')),
	from_version INTEGER NOT NULL DEFAULT 0,
	to_version   INTEGER NOT NULL
) STRICT;

CREATE INDEX deployments_by_agent ON deployments (agent_id, id);

CREATE TABLE idempotency (
	workspace_id TEXT NOT NULL,
	key          TEXT NOT NULL,
	scope        TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('running', 'done')),
	status       INTEGER NOT NULL DEFAULT 0,
	headers      TEXT NOT NULL DEFAULT '{}', -- JSON object
	body         BLOB,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (workspace_id, key)
) STRICT;

CREATE INDEX idempotency_by_created ON idempotency (created_at);

-- seq is AUTOINCREMENT so it is never reused, even after pruning: the
-- webhook dispatcher keeps "last seq seen" as its cursor.
CREATE TABLE events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE, -- "evt_...", the webhook-id
	workspace_id TEXT NOT NULL,
	agent_id     TEXT NOT NULL DEFAULT '',
	type         TEXT NOT NULL,
	payload      BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	dedupe       TEXT UNIQUE -- NULL: no dedupe
) STRICT;
