-- 0005_daemons: the daemons watching key revocations (keywatch.go). Each
-- row is one running daemon: the newest key revision it has acknowledged,
-- and the lease (on the database's clock) until which it may answer
-- KeysStamp from memory. A revocation waits until every daemon with a live
-- lease has acknowledged it. Rows of daemons that stopped expire; a clean
-- stop deletes its own.
CREATE TABLE daemons (
	id          TEXT PRIMARY KEY,
	key_rev     BIGINT NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL
);
