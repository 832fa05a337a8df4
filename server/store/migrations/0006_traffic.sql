-- 0006_traffic: channel modes, deployments of channels, and outcome
-- counters per version (CONTRACT §12).
-- Times are INTEGER unix nanoseconds (UTC); version 0 means "none".

-- A channel without a row follows the published version. A row pins the
-- channel (one entry, weight 100) or splits it over 2..5 versions; split is
-- a JSON array [{"version": n, "weight": w}] in ascending version order.
CREATE TABLE channels (
	agent_id   TEXT NOT NULL REFERENCES agents (id),
	channel    TEXT NOT NULL CHECK (channel IN ('chat', 'phone')),
	mode       TEXT NOT NULL CHECK (mode IN ('pin', 'split')),
	split      TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (agent_id, channel)
) STRICT, WITHOUT ROWID;

-- Deployments gain the channel kinds (pin, split, follow), the channel and
-- the split. SQLite cannot alter a CHECK constraint: the table is rebuilt,
-- keeping its ids and its AUTOINCREMENT high-water mark (event dedupe keys
-- name deployment ids).
CREATE TABLE deployments_v2 (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	agent_id     TEXT NOT NULL REFERENCES agents (id),
	at           INTEGER NOT NULL,
	actor        TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL CHECK (kind IN ('publish', 'rollback', 'recovered', 'pin', 'split', 'follow')),
	from_version INTEGER NOT NULL DEFAULT 0,
	to_version   INTEGER NOT NULL,
	channel      TEXT NOT NULL DEFAULT '', -- '' for moves of the published pointer
	split        TEXT                      -- JSON as in channels.split; NULL unless kind = 'split'
) STRICT;

INSERT INTO deployments_v2 (id, agent_id, at, actor, kind, from_version, to_version)
	SELECT id, agent_id, at, actor, kind, from_version, to_version FROM deployments;
DELETE FROM sqlite_sequence WHERE name = 'deployments_v2';
INSERT INTO sqlite_sequence (name, seq) SELECT 'deployments_v2', seq FROM sqlite_sequence WHERE name = 'deployments';
DROP TABLE deployments;
ALTER TABLE deployments_v2 RENAME TO deployments;
CREATE INDEX deployments_by_agent ON deployments (agent_id, id);

-- Outcomes per version, counted as they happen: one row per agent, version
-- and hour (unix seconds / 3600), bumped in the transaction that creates a
-- published session or appends one of its turns. Reading a range is one
-- range scan of the key per version, whatever the number of messages.
CREATE TABLE outcome_counters (
	agent_id            TEXT NOT NULL,
	version             INTEGER NOT NULL CHECK (version > 0),
	hour                INTEGER NOT NULL,
	sessions            INTEGER NOT NULL DEFAULT 0,
	messages            INTEGER NOT NULL DEFAULT 0,
	fallbacks           INTEGER NOT NULL DEFAULT 0,
	guardrail_blocks    INTEGER NOT NULL DEFAULT 0,
	playbooks_completed INTEGER NOT NULL DEFAULT 0,
	handoffs            INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (agent_id, version, hour)
) STRICT, WITHOUT ROWID;
