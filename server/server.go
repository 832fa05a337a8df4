package server

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/dashboard"
)

// Deps is everything the HTTP transport needs. Backend is required.
type Deps struct {
	Backend *backend.Backend
	Log     zerolog.Logger
	// PublicURL is the base URL clients reach the daemon at (cloneUrl of
	// Agent resources). Requests use their own Host when it is empty.
	PublicURL string
	// GitPath is the git binary serving clones; "git" when empty.
	GitPath string
	// Registry receives the transport's metrics; the backend's when nil.
	Registry *prometheus.Registry
	// GitProcesses caps the git upload-pack processes serving clones at
	// once; the number of CPUs (at least 2) when zero.
	GitProcesses int
	// BodyTimeout bounds how long a request may take to send its body
	// (API and git routes); 30s when zero.
	BodyTimeout time.Duration
	// Ready reports whether the daemon can serve (data dir and database
	// usable); nil means ready when the database answers a ping.
	Ready func(ctx context.Context) error
}

// Server is the flowyte HTTP API: a thin gin transport over the backend.
type Server struct {
	backend *backend.Backend
	log     zerolog.Logger
	deps    Deps
	metrics *metrics
	engine  *gin.Engine
	valid   *validator.Validate
	// sessions are the dashboard's sign-in sessions (§13).
	sessions *dashboard.Sessions
}

// New returns the daemon's HTTP handler.
func New(d Deps) *Server {
	if d.Registry == nil && d.Backend != nil {
		d.Registry = d.Backend.Registry()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.GitProcesses <= 0 {
		d.GitProcesses = max(2, runtime.NumCPU())
	}
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = 30 * time.Second
	}
	if d.GitPath == "" {
		d.GitPath = "git"
	}
	s := &Server{
		backend: d.Backend,
		log:     d.Log,
		deps:    d,
		metrics: newMetrics(d.Registry),
		valid:   newValidator(),
	}
	// Sessions live in the database, so every daemon over it knows them
	// and a restart signs nobody out.
	var sessions dashboard.SessionStore
	if d.Backend != nil {
		sessions = &dashboardStore{b: d.Backend, log: d.Log, idle: dashboard.DefaultIdleTimeout, maxAge: dashboard.DefaultMaxAge}
	}
	s.sessions = dashboard.NewSessions(dashboard.SessionsOptions{Verifier: dashboardKeys{s}, Store: sessions})
	s.engine = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}
