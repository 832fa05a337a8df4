-- 0005_test_runs: conversation test runs (CONTRACT §11) and the test
-- totals of each version (NULL when the version's draft had no tests).

CREATE TABLE test_runs (
	seq            INTEGER PRIMARY KEY,      -- listing order, newest = highest
	id             TEXT NOT NULL UNIQUE,     -- "run_..."
	agent_id       TEXT NOT NULL REFERENCES agents (id),
	target         TEXT NOT NULL,            -- draft | published | v<n>, as asked
	draft_revision TEXT NOT NULL DEFAULT '', -- '' unless the target is the draft
	version        INTEGER NOT NULL DEFAULT 0, -- 0 when the target is the draft
	status         TEXT NOT NULL,
	total          INTEGER NOT NULL,
	passed         INTEGER NOT NULL,
	failed         INTEGER NOT NULL,
	duration_ms    INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	cases          BLOB NOT NULL             -- JSON array of cases
) STRICT;

CREATE INDEX test_runs_by_agent ON test_runs (agent_id, seq);

ALTER TABLE versions ADD COLUMN tests_total INTEGER;
ALTER TABLE versions ADD COLUMN tests_passed INTEGER;
ALTER TABLE versions ADD COLUMN tests_failed INTEGER;
