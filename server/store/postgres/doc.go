// Package postgres is flowyte's PostgreSQL metadata store: the same method
// set, row types and sentinels as the SQLite [store.Store], for several
// daemons sharing one database (CONTRACT §14).
//
// Writes go through [Store.Write], which runs a function in one READ
// COMMITTED transaction and hands it a [store.Tx]. Reads run on the pool.
// Where SQLite relied on its single writer, this engine takes row locks
// (SELECT ... FOR UPDATE, FOR UPDATE SKIP LOCKED for webhook work) so the
// same guarantees hold across daemons. Inserts that may collide use
// ON CONFLICT DO NOTHING and report [store.ErrConflict] themselves, so a
// caller can go on with its transaction after a conflict, as it can on
// SQLite (a failed statement aborts a PostgreSQL transaction). Other driver
// errors map to the store sentinels by SQLSTATE code (pgconn.PgError.Code),
// never by message.
//
// The schema is plain SQL (embedded, versioned migrations under
// migrations/). Times are BIGINT unix nanoseconds, as in SQLite, so rows copy
// between engines unchanged ([ImportSQLite]). Advisory locks
// ([Store.LockAgent]) are PostgreSQL-only; CockroachDB would need a lock
// table instead, and its SERIALIZABLE transactions a retry loop in Write.
package postgres
