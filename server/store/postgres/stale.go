package postgres

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// staleConn reports whether err says a pooled connection was dead before
// its statement could take effect: the server restarted or shut down
// (57P01..57P03), or the socket was closed under it. Pools keep such
// connections idle until their next use, so after a database restart the
// first statement on each fails this way.
func staleConn(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// unreachable reports whether err says the server could not be reached or
// went away: a failed connection attempt or a stale connection.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || staleConn(err)
}

// retryStale runs fn once more after dropping every connection of pool
// when fn failed on a stale connection (see staleConn). fn must be safe to
// repeat after such a failure: a BEGIN, a lock taken on a session that
// died with its connection.
func retryStale(pool *pgxpool.Pool, fn func() error) error {
	err := fn()
	if !staleConn(err) {
		return err
	}
	pool.Reset() // idle connections close now, busy ones when released
	return fn()
}
