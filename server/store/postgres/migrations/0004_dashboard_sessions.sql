-- 0004_dashboard_sessions: dashboard sign-in sessions (CONTRACT §13), as
-- SQLite's 0007_dashboard_sessions: only the SHA-256 of the token is
-- stored; key_ref is the hex SHA-256 of the session's API key.
CREATE TABLE dashboard_sessions (
	token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
	key_ref    TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);

CREATE INDEX dashboard_sessions_by_key ON dashboard_sessions (key_id);
