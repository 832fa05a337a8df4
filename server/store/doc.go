// Package store is flowyte's SQLite metadata database: workspaces, API keys,
// the agent index, versions, deployments, idempotency records and the event
// outbox (plus sessions, webhooks, channel modes and outcome counters in
// sibling files).
//
// Git is the source of truth for drafts and versions; the rows here are
// derived indexes that startup recovery can rebuild, plus data git does not
// know about. The database runs in WAL mode with synchronous=FULL, so a
// committed write survives power loss and reads never wait for writes.
//
// Writes go through [Store.Write], which runs a function in one
// BEGIN IMMEDIATE transaction on a single writer connection; write methods
// live on [Tx], an interface so that other engines (package
// server/store/postgres) hand the same shape to the same callers. Read methods live on [Store] and run concurrently on a pool of
// reader connections. Driver errors are mapped to the sentinels
// [ErrNotFound] and [ErrConflict] by SQLite result code, never by message.
//
// Times are stored as INTEGER unix nanoseconds and come back in UTC.
//
// The PostgreSQL engine (server/store/postgres) implements the same method
// set with the same row types and sentinels; server/store/storetest is the
// conformance suite both pass, and server/store/pgtest starts throwaway
// PostgreSQL clusters for tests.
package store
