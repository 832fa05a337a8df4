// Package postgres is flowyte's PostgreSQL metadata store: the same method
// set, row types and sentinels as the SQLite [store.Store], for several
// daemons sharing one database (CONTRACT §14).
//
// Writes go through [Store.Write], which runs a function in one READ
// COMMITTED transaction and hands it a [store.Tx]. Session creations, the
// hot write, go through [Store.CreateSessionCounted] instead, which
// group-commits concurrent ones: one statement inserts a batch and adds its
// outcome counts. Reads run on the pool.
// Where SQLite relied on its single writer, this engine takes row locks
// (SELECT ... FOR UPDATE, FOR UPDATE SKIP LOCKED for webhook work) so the
// same guarantees hold across daemons. Inserts that may collide use
// ON CONFLICT DO NOTHING and report [store.ErrConflict] themselves, so a
// caller can go on with its transaction after a conflict, as it can on
// SQLite (a failed statement aborts a PostgreSQL transaction). Other driver
// errors map to the store sentinels by SQLSTATE code (pgconn.PgError.Code),
// never by message.
//
// Cross-daemon coordination the backend builds on:
//   - [Store.LockAgent]: a per-agent advisory lock, released when its
//     connection dies (a SIGKILLed daemon never leaves an agent locked);
//   - [Store.Watch], [Store.Broadcast] and [Store.Leased] (watch.go): a
//     daemon's lease (a daemons row it renews every 0.5 s on the
//     connection that LISTENs) under which it trusts what it holds in
//     memory; [Store.RevokeKey] and [Store.Broadcast] return once every
//     live lease has acknowledged them (or ran out), so a revocation or a
//     cache invalidation is seen by every daemon at its next request;
//   - [Store.KeysStamp]: a revision row bumped by every key revocation,
//     answered from memory under the lease, read on every call without one
//     (concurrent calls share a read that started after all of them);
//   - [Store.Notify], the Tx's Notify and [Store.Listen]: plain
//     LISTEN/NOTIFY (webhook wake-ups), delivered at commit, with a reset
//     after every reconnection;
//   - [Store.ClaimWebhookMessages]: FOR UPDATE SKIP LOCKED plus a lease, so
//     one daemon attempts each delivery and another takes over if it dies.
//
// The schema is plain SQL (embedded, versioned migrations under
// migrations/). Times are BIGINT unix nanoseconds, as in SQLite, so rows copy
// between engines unchanged ([ImportSQLite]).
//
// On CockroachDB the schema and the row-lock paths run as they are; what
// would need work: advisory locks (a lock table held by an open
// transaction instead), LISTEN/NOTIFY (absent: the watch's messages and
// pings would come from a changefeed, or every request would read version
// stamps, as it does today without a lease), SERIALIZABLE retries (Write would need a retry loop, so
// its functions must be safe to run twice), and ImportSQLite's setval.
package postgres
