package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/dashboard"
)

// dashboardPruneEvery bounds how often a daemon deletes expired dashboard
// sessions (on a sign-in).
const dashboardPruneEvery = time.Hour

// dashboardStore keeps dashboard sessions in the database, through the
// backend: a session made on one daemon is known to every daemon over the
// same database, and a restart signs nobody out. The dashboard package
// defines the interface and never sees the store.
type dashboardStore struct {
	b            *backend.Backend
	log          zerolog.Logger
	idle, maxAge time.Duration

	mu        sync.Mutex
	lastPrune time.Time
}

var _ dashboard.SessionStore = (*dashboardStore)(nil)

// sessionErr maps the backend's not-found to the dashboard's.
func sessionErr(err error) error {
	if errors.Is(err, backend.ErrDashboardSessionNotFound) {
		return dashboard.ErrSessionNotFound
	}
	return err
}

// Create implements dashboard.SessionStore; it also prunes expired
// sessions, at most once per dashboardPruneEvery.
func (d *dashboardStore) Create(ctx context.Context, rec dashboard.Record) error {
	err := d.b.CreateDashboardSession(ctx, backend.DashboardSession{
		TokenHash: rec.TokenHash, KeyRef: rec.Ref, KeyID: rec.KeyID, CreatedAt: rec.CreatedAt, LastSeen: rec.LastSeen,
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	due := rec.CreatedAt.Sub(d.lastPrune) >= dashboardPruneEvery
	if due {
		d.lastPrune = rec.CreatedAt
	}
	d.mu.Unlock()
	if due {
		if n, err := d.b.PruneDashboardSessions(ctx, d.idle, d.maxAge); err != nil {
			d.log.Warn().Err(err).Msg("prune dashboard sessions")
		} else if n > 0 {
			d.log.Info().Int("pruned", n).Msg("expired dashboard sessions deleted")
		}
	}
	return nil
}

// Get implements dashboard.SessionStore.
func (d *dashboardStore) Get(ctx context.Context, h [32]byte) (dashboard.Record, error) {
	s, err := d.b.DashboardSession(ctx, h)
	if err != nil {
		return dashboard.Record{}, sessionErr(err)
	}
	return dashboard.Record{TokenHash: s.TokenHash, Ref: s.KeyRef, KeyID: s.KeyID, CreatedAt: s.CreatedAt, LastSeen: s.LastSeen}, nil
}

// Touch implements dashboard.SessionStore.
func (d *dashboardStore) Touch(ctx context.Context, h [32]byte, at time.Time) error {
	return sessionErr(d.b.TouchDashboardSession(ctx, h, at))
}

// Delete implements dashboard.SessionStore.
func (d *dashboardStore) Delete(ctx context.Context, h [32]byte) error {
	return sessionErr(d.b.DeleteDashboardSession(ctx, h))
}
