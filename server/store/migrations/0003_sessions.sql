-- 0003_sessions: chat sessions and their messages (CONTRACT §8).
-- Times are INTEGER unix nanoseconds (UTC). A session is pinned at creation:
-- a draft session has version 0 and the draft revision it compiled; a
-- published session has version > 0 and no draft revision.

CREATE TABLE sessions (
	id             TEXT PRIMARY KEY,                 -- "ses_..."
	workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
	agent_id       TEXT NOT NULL REFERENCES agents (id),
	channel        TEXT NOT NULL,
	draft_mode     INTEGER NOT NULL CHECK (draft_mode IN (0, 1)),
	version        INTEGER NOT NULL DEFAULT 0,
	draft_revision TEXT NOT NULL DEFAULT '',
	billable       INTEGER NOT NULL CHECK (billable IN (0, 1)),
	created_at     INTEGER NOT NULL,
	state          BLOB,                             -- responder state JSON, NULL = none
	last_seq       INTEGER NOT NULL DEFAULT 0,       -- seq of the newest message, 0 = none
	CHECK ((draft_mode = 1 AND version = 0) OR (draft_mode = 0 AND version > 0 AND draft_revision = ''))
) STRICT;

-- Usage queries: per workspace or per agent, bounded by creation time.
CREATE INDEX sessions_by_workspace ON sessions (workspace_id, created_at);
CREATE INDEX sessions_by_agent ON sessions (agent_id, created_at);

-- WITHOUT ROWID: a session's transcript is one range scan of the key.
CREATE TABLE session_messages (
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL CHECK (seq > 0),
	role       TEXT NOT NULL CHECK (role IN ('user', 'agent')),
	text       TEXT NOT NULL,
	trace      BLOB,                                 -- JSON, NULL = none
	at         INTEGER NOT NULL,
	PRIMARY KEY (session_id, seq)
) STRICT, WITHOUT ROWID;
