package postgres

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/flowyte/flowyte/server/store"
)

func TestStaleConn(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"admin shutdown", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{"crash shutdown", fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P02"}), true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, false},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"other", errors.New("boom"), false},
	} {
		assert.Equal(t, c.want, staleConn(c.err), c.name)
	}
}

// TestWrapErrorUnavailable: a server gone away is store.ErrUnavailable
// (503 unavailable), other failures are not.
func TestWrapErrorUnavailable(t *testing.T) {
	assert.ErrorIs(t, wrapError(&pgconn.PgError{Severity: "FATAL", Code: "57P01"}), store.ErrUnavailable)
	assert.ErrorIs(t, wrapError(fmt.Errorf("dial: %w", syscall.ECONNRESET)), store.ErrUnavailable)
	assert.NotErrorIs(t, wrapError(&pgconn.PgError{Code: "23505"}), store.ErrUnavailable)
	assert.NotErrorIs(t, wrapError(errors.New("boom")), store.ErrUnavailable)
}
