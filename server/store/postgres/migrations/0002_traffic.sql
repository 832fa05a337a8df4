-- 0002_traffic: channel modes, deployments of channels, and outcome
-- counters per version (CONTRACT §12), as SQLite's 0006_traffic.
-- Times are BIGINT unix nanoseconds (UTC); version 0 means "none".

CREATE TABLE channels (
	agent_id   TEXT NOT NULL REFERENCES agents (id),
	channel    TEXT NOT NULL CHECK (channel IN ('chat', 'phone')),
	mode       TEXT NOT NULL CHECK (mode IN ('pin', 'split')),
	split      TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (agent_id, channel)
);

ALTER TABLE deployments DROP CONSTRAINT IF EXISTS deployments_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_kind_check
	CHECK (kind IN ('publish', 'rollback', 'recovered', 'pin', 'split', 'follow'));
ALTER TABLE deployments ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN split TEXT;

CREATE TABLE outcome_counters (
	agent_id            TEXT NOT NULL,
	version             INTEGER NOT NULL CHECK (version > 0),
	hour                BIGINT NOT NULL,
	sessions            BIGINT NOT NULL DEFAULT 0,
	messages            BIGINT NOT NULL DEFAULT 0,
	fallbacks           BIGINT NOT NULL DEFAULT 0,
	guardrail_blocks    BIGINT NOT NULL DEFAULT 0,
	playbooks_completed BIGINT NOT NULL DEFAULT 0,
	handoffs            BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (agent_id, version, hour)
);
