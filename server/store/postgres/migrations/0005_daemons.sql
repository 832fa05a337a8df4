-- 0005_daemons: the daemons watching the cluster (watch.go). Each row is
-- one running daemon: the newest key revision and the newest broadcast
-- ping it has acknowledged, and the lease (on the database's clock) until
-- which it may trust what it holds in memory. A key revocation or a
-- broadcast waits until every daemon with a live lease has acknowledged
-- it. Rows of daemons that stopped expire; a clean stop deletes its own.
CREATE TABLE daemons (
	id          TEXT PRIMARY KEY,
	key_rev     BIGINT NOT NULL,
	ping_ack    BIGINT NOT NULL DEFAULT 0,
	lease_until TIMESTAMPTZ NOT NULL
);

-- Broadcast pings, numbered after the message they follow has committed.
CREATE SEQUENCE cluster_pings;
