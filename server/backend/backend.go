package backend

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
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

// Options is everything the backend needs. Repos and Store are required.
type Options struct {
	Repos *repo.Store
	Store Store
	Log   zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PublicURL is the base URL clients reach the daemon at. Events
	// (signed webhook payloads) take cloneUrl from it and never from a
	// request's Host header.
	PublicURL string
	// Webhooks is told about new events; nil disables the wake-up.
	Webhooks Notifier
	// Redeliver queues redeliveries; nil answers unavailable.
	Redeliver Redeliverer
	// AllowPrivateWebhooks lets webhooks target loopback and private
	// addresses (tests, single-host setups).
	AllowPrivateWebhooks bool
	// Cluster coordinates several daemons over one database (locks across
	// daemons, cache invalidation); nil for a single daemon.
	Cluster Cluster
	// Keys journals API keys beside the database (nil: no journal).
	Keys *KeyJournal
	// AdoptOrphansInto names the workspace that adopts repositories with
	// neither an agent row nor a recorded owner; empty refuses to start.
	AdoptOrphansInto string
	// Compiler compiles drafts for the sandbox and the report; share it
	// with the repositories' publish compiler so one cache serves both.
	// A private one when nil.
	Compiler *compile.Compiler
	// CacheBytes is the memory budget of the backend's caches (compiled
	// drafts, responders, immutable version files); DefaultCacheBytes
	// when zero.
	CacheBytes int64
	// MaxWebhooksPerWorkspace caps registrations; 50 when zero.
	MaxWebhooksPerWorkspace int
	// Registry receives the backend's metrics; a new one when nil.
	Registry *prometheus.Registry
}

// Backend is flowyte's use cases over the repositories and the database.
// It is safe for concurrent use.
type Backend struct {
	repos   *repo.Store
	store   Store
	log     zerolog.Logger
	now     func() time.Time
	opts    Options
	metrics *metrics
	cache   *caches

	keys   keyCache
	agents agentCache
	chans  channelCache

	touchMu sync.Mutex
	touched map[string]time.Time

	// pending are the agents startup recovery has yet to check.
	pendingMu sync.Mutex
	pending   map[string]*checkState
	bg        sync.WaitGroup
}

// New returns a Backend.
func New(o Options) *Backend {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.MaxWebhooksPerWorkspace <= 0 {
		o.MaxWebhooksPerWorkspace = 50
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	registerRepoMetrics(o.Registry, o.Repos)
	b := &Backend{
		repos:   o.Repos,
		store:   o.Store,
		log:     o.Log,
		now:     func() time.Time { return o.Now().UTC() },
		opts:    o,
		metrics: newMetrics(o.Registry),
		cache:   newCaches(o.CacheBytes, o.Compiler, o.Registry),
		touched: map[string]time.Time{},
	}
	if o.Cluster != nil {
		// Rows other daemons may change are cached only under the lease.
		b.agents.trusted = o.Cluster.Leased
		b.chans.trusted = o.Cluster.Leased
		_ = o.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowyte_cluster_leased",
			Help: "1 while this daemon holds its cluster lease (caches trusted), 0 while it reads the database instead.",
		}, func() float64 {
			if o.Cluster.Leased() {
				return 1
			}
			return 0
		}))
	}
	return b
}

// Ping reports whether the database answers.
func (b *Backend) Ping(ctx context.Context) error { return b.store.Ping(ctx) }

// PublicURL is the configured base URL ("" when none was configured).
func (b *Backend) PublicURL() string { return b.opts.PublicURL }

// metrics is the backend's Prometheus instrumentation.
type metrics struct {
	publishes       *prometheus.CounterVec
	compileFailures prometheus.Counter
	rollbacks       prometheus.Counter
	draftCommits    prometheus.Counter
	sessions        *prometheus.CounterVec
	turns           prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowyte_publishes_total", Help: "Publish attempts by result (ok or the problem code).",
		}, []string{"result"}),
		compileFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowyte_compile_failures_total", Help: "Compilations that ended with errors (publish, report, sandbox).",
		}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowyte_rollbacks_total", Help: "Successful rollbacks.",
		}),
		draftCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowyte_draft_commits_total", Help: "Draft commits written.",
		}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowyte_chat_sessions_total", Help: "Chat sessions created by mode.",
		}, []string{"mode"}),
		turns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowyte_chat_turns_total", Help: "Chat message turns answered.",
		}),
	}
	m.publishes.WithLabelValues("ok")
	m.sessions.WithLabelValues("draft")
	m.sessions.WithLabelValues("published")
	reg.MustRegister(m.publishes, m.compileFailures, m.rollbacks, m.draftCommits, m.sessions, m.turns)
	return m
}

// notifyWebhooks wakes this daemon's delivery workers after a commit
// (other daemons' are woken by the commit itself, see clusterWrite).
func (b *Backend) notifyWebhooks() {
	if b.opts.Webhooks != nil {
		b.opts.Webhooks.Notify()
	}
}

// Registry is the Prometheus registry the backend's metrics are in.
func (b *Backend) Registry() *prometheus.Registry { return b.opts.Registry }

// registerRepoMetrics exposes the repositories' housekeeping.
func registerRepoMetrics(reg *prometheus.Registry, repos *repo.Store) {
	if repos == nil {
		return
	}
	gauge := func(name, help string, f func(repo.HousekeepingStats) float64) {
		_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(repos.HousekeepingStats()) }))
	}
	counter := func(name, help string, f func(repo.HousekeepingStats) float64) {
		_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return f(repos.HousekeepingStats()) }))
	}
	gauge("flowyte_repo_loose_objects", "Loose objects written since each repository's last packing, summed.",
		func(s repo.HousekeepingStats) float64 { return float64(s.LooseObjects) })
	counter("flowyte_repo_repacks_total", "Background packings of agent repositories.",
		func(s repo.HousekeepingStats) float64 { return float64(s.Repacks) })
	counter("flowyte_repo_repack_failures_total", "Packings that failed (the repository is left as it was).",
		func(s repo.HousekeepingStats) float64 { return float64(s.RepackFailures) })
	gauge("flowyte_repo_repacks_running", "Packings running now.",
		func(s repo.HousekeepingStats) float64 { return float64(s.Running) })
}
