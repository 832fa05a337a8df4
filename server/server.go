package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/dashboard"
	"github.com/flowyte/flowyte/server/store"
)

// Notifier is told when a transaction that wrote events has committed, so
// webhook delivery starts at once rather than at its next poll.
type Notifier interface {
	Notify()
}

// Redeliverer queues a fresh delivery attempt of one event to one webhook.
type Redeliverer interface {
	Redeliver(ctx context.Context, workspaceID, webhookID, eventID string) error
}

// Deps is everything the HTTP server needs. Repos and Store are required.
type Deps struct {
	Repos *repo.Store
	Store *store.Store
	Log   zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PublicURL is the base URL clients reach the daemon at, used for
	// cloneUrl in events written without a request (startup recovery).
	// Requests use their own Host when it is empty.
	PublicURL string
	// DefaultURL stands in for PublicURL when there is no request to take
	// a Host from (events written by startup recovery).
	DefaultURL string
	// GitPath is the git binary serving clones; "git" when empty.
	GitPath string
	// Webhooks is told about new events; nil disables the wake-up.
	Webhooks Notifier
	// Redeliver queues redeliveries; nil answers 503 unavailable.
	Redeliver Redeliverer
	// AllowPrivateWebhooks lets webhooks target loopback and private
	// addresses (tests, single-host setups).
	AllowPrivateWebhooks bool
	// Registry receives the daemon's metrics; a new one when nil.
	Registry *prometheus.Registry
	// Ready reports whether the daemon can serve (data dir and database
	// usable); nil means ready when the database answers a ping.
	Ready func(ctx context.Context) error
}

// Server is the flowyte HTTP API.
type Server struct {
	repos   *repo.Store
	store   *store.Store
	log     zerolog.Logger
	now     func() time.Time
	deps    Deps
	metrics *metrics
	sandbox *sandboxCache
	engine  *gin.Engine

	keys         keyCache
	agents       agentCache
	valid        *validator.Validate
	sessionLocks sessionLocks

	sessions *dashboard.Sessions // dashboard sign-in sessions (§13)

	touchMu sync.Mutex
	touched map[string]time.Time
}

// validator returns the request validator.
func (s *Server) validator() *validator.Validate { return s.valid }

// New returns the daemon's HTTP handler.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.GitPath == "" {
		d.GitPath = "git"
	}
	s := &Server{
		repos:   d.Repos,
		store:   d.Store,
		log:     d.Log,
		now:     func() time.Time { return d.Now().UTC() },
		deps:    d,
		metrics: newMetrics(d.Registry),
		sandbox: newSandboxCache(256),
		touched: map[string]time.Time{},
		valid:   newValidator(),
	}
	s.sessions = dashboard.NewSessions(dashboard.SessionsOptions{Verifier: dashboardKeys{s}, Now: s.now})
	s.engine = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}
