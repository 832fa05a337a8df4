package backend

import (
	"context"
	"errors"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// ErrDashboardSessionNotFound is returned for an unknown dashboard session
// token hash.
var ErrDashboardSessionNotFound = errors.New("dashboard session not found")

// DashboardSession is one stored dashboard sign-in session (CONTRACT §13):
// the SHA-256 of its token (never the token), the API key it was made
// from, and its times. Every daemon over the same database sees it.
type DashboardSession struct {
	TokenHash [32]byte
	// KeyRef is the hex SHA-256 of the session's API key.
	KeyRef    string
	KeyID     string
	CreatedAt time.Time
	LastSeen  time.Time
}

// dashboardErr turns the store's ErrNotFound into ErrDashboardSessionNotFound.
func dashboardErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrDashboardSessionNotFound
	}
	return err
}

// CreateDashboardSession stores a new session.
func (b *Backend) CreateDashboardSession(ctx context.Context, d DashboardSession) error {
	return b.store.CreateDashboardSession(ctx, store.DashboardSession{
		TokenHash: d.TokenHash[:], KeyRef: d.KeyRef, KeyID: d.KeyID, CreatedAt: d.CreatedAt, LastSeen: d.LastSeen,
	})
}

// DashboardSession returns the session whose token hashes to tokenHash, or
// ErrDashboardSessionNotFound.
func (b *Backend) DashboardSession(ctx context.Context, tokenHash [32]byte) (DashboardSession, error) {
	s, err := b.store.DashboardSession(ctx, tokenHash[:])
	if err != nil {
		return DashboardSession{}, dashboardErr(err)
	}
	return DashboardSession{TokenHash: tokenHash, KeyRef: s.KeyRef, KeyID: s.KeyID, CreatedAt: s.CreatedAt, LastSeen: s.LastSeen}, nil
}

// TouchDashboardSession records that the session was seen at at (never
// moving LastSeen back); ErrDashboardSessionNotFound for an unknown one.
func (b *Backend) TouchDashboardSession(ctx context.Context, tokenHash [32]byte, at time.Time) error {
	return dashboardErr(b.store.TouchDashboardSession(ctx, tokenHash[:], at))
}

// DeleteDashboardSession ends a session; ErrDashboardSessionNotFound for
// an unknown one.
func (b *Backend) DeleteDashboardSession(ctx context.Context, tokenHash [32]byte) error {
	return dashboardErr(b.store.DeleteDashboardSession(ctx, tokenHash[:]))
}

// PruneDashboardSessions deletes the sessions idle longer than idle or
// older than maxAge, and returns how many.
func (b *Backend) PruneDashboardSessions(ctx context.Context, idle, maxAge time.Duration) (int, error) {
	now := b.now()
	return b.store.PruneDashboardSessions(ctx, now.Add(-idle), now.Add(-maxAge))
}
