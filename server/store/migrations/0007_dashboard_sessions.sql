-- 0007_dashboard_sessions: dashboard sign-in sessions (CONTRACT §13), kept
-- in the database so every daemon behind a load balancer knows them and a
-- restart signs nobody out. The token itself is never stored: only its
-- SHA-256. key_ref is the hex SHA-256 of the API key the session was made
-- from (the hash api_keys already holds), re-validated on every request;
-- key_id lets revoking a key delete its sessions at once.
-- Times are INTEGER unix nanoseconds (UTC).
CREATE TABLE dashboard_sessions (
	token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
	key_ref    TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX dashboard_sessions_by_key ON dashboard_sessions (key_id);
