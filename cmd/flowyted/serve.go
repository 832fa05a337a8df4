package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/webhook"
)

// serveConfig is the daemon's configuration: flags over environment over
// embedded defaults.
type serveConfig struct {
	addr          string
	data          string
	logLevel      string
	logFormat     string
	allowPrivate  bool
	retrySchedule string
	publicURL     string
	adoptOrphans  string
	debugAddr     string
	database      string
	gitPath       string
	limits        limits
}

// limits are the sizes and budgets an operator may change.
type limits struct {
	maxDraftFiles   int
	maxDraftBytes   int64
	cacheBytes      int64
	bodyTimeout     time.Duration
	hooksConcurrent int
	hooksPerWS      int
	packThreshold   int
	gitProcesses    int
}

func parseServe(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	cfg := serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", env("FLOWYTE_ADDR", "127.0.0.1:8080"), "listen address (FLOWYTE_ADDR)")
	fs.StringVar(&cfg.data, "data", env("FLOWYTE_DATA", "./data"), "data directory (FLOWYTE_DATA)")
	fs.StringVar(&cfg.logLevel, "log-level", env("FLOWYTE_LOG_LEVEL", "info"), "debug, info, warn or error (FLOWYTE_LOG_LEVEL)")
	fs.StringVar(&cfg.logFormat, "log-format", env("FLOWYTE_LOG_FORMAT", "console"), "console or json (FLOWYTE_LOG_FORMAT)")
	allow := getenv("FLOWYTE_WEBHOOK_ALLOW_PRIVATE")
	fs.BoolVar(&cfg.allowPrivate, "webhook-allow-private", allow == "1" || strings.EqualFold(allow, "true"), "let webhooks target loopback and private addresses (FLOWYTE_WEBHOOK_ALLOW_PRIVATE=1)")
	fs.StringVar(&cfg.retrySchedule, "webhook-retry-schedule", env("FLOWYTE_WEBHOOK_RETRY_SCHEDULE", ""), "comma-separated retry delays (FLOWYTE_WEBHOOK_RETRY_SCHEDULE); default about 3 days")
	fs.StringVar(&cfg.adoptOrphans, "adopt-orphans", env("FLOWYTE_ADOPT_ORPHANS", ""), "workspace that adopts agent repositories with no database row and no recorded owner (FLOWYTE_ADOPT_ORPHANS); by default such repositories stop startup")
	fs.StringVar(&cfg.publicURL, "public-url", env("FLOWYTE_PUBLIC_URL", ""), "base URL clients reach the daemon at, for cloneUrl (FLOWYTE_PUBLIC_URL); default: the request's Host")
	fs.StringVar(&cfg.database, "database", env("FLOWYTE_DATABASE", "sqlite"), "metadata store: sqlite (one file under the data dir) or postgres://user:pass@host:port/db?sslmode=disable for several daemons sharing the data dir (FLOWYTE_DATABASE)")
	fs.StringVar(&cfg.debugAddr, "debug-addr", env("FLOWYTE_DEBUG_ADDR", ""), "serve net/http/pprof on this address, e.g. 127.0.0.1:6060 (FLOWYTE_DEBUG_ADDR); off when empty; keep it on loopback")
	fs.IntVar(&cfg.limits.maxDraftFiles, "max-draft-files", envInt(getenv, "FLOWYTE_MAX_DRAFT_FILES", 20000), "files one draft may hold (FLOWYTE_MAX_DRAFT_FILES)")
	fs.Int64Var(&cfg.limits.maxDraftBytes, "max-draft-bytes", int64(envInt(getenv, "FLOWYTE_MAX_DRAFT_BYTES", 256<<20)), "bytes one draft may hold (FLOWYTE_MAX_DRAFT_BYTES)")
	fs.Int64Var(&cfg.limits.cacheBytes, "cache-bytes", int64(envInt(getenv, "FLOWYTE_CACHE_BYTES", 384<<20)), "memory budget of all caches: compiled drafts, responders, version files, git objects (FLOWYTE_CACHE_BYTES)")
	fs.DurationVar(&cfg.limits.bodyTimeout, "body-timeout", envDuration(getenv, "FLOWYTE_BODY_TIMEOUT", 30*time.Second), "time a client has to send a request body (FLOWYTE_BODY_TIMEOUT)")
	fs.IntVar(&cfg.limits.gitProcesses, "git-max-processes", envInt(getenv, "FLOWYTE_GIT_MAX_PROCESSES", 0), "git upload-pack processes serving clones at once, others wait (FLOWYTE_GIT_MAX_PROCESSES); default: the number of CPUs, at least 2")
	fs.IntVar(&cfg.limits.packThreshold, "pack-threshold", envInt(getenv, "FLOWYTE_PACK_THRESHOLD", 256), "loose objects written to a repository before it is packed in the background; negative turns packing off (FLOWYTE_PACK_THRESHOLD)")
	fs.IntVar(&cfg.limits.hooksConcurrent, "webhook-max-concurrent", envInt(getenv, "FLOWYTE_WEBHOOK_MAX_CONCURRENT", 64), "webhook attempts in flight across all workspaces (FLOWYTE_WEBHOOK_MAX_CONCURRENT)")
	fs.IntVar(&cfg.limits.hooksPerWS, "webhook-per-workspace", envInt(getenv, "FLOWYTE_WEBHOOK_PER_WORKSPACE", webhook.DefaultPerWorkspace), "webhook attempts in flight of one workspace (FLOWYTE_WEBHOOK_PER_WORKSPACE)")
	if err := fs.Parse(args); err != nil {
		return cfg, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.logFormat != "console" && cfg.logFormat != "json" {
		return cfg, usageError{fmt.Sprintf("--log-format must be console or json, got %q", cfg.logFormat)}
	}
	if _, err := zerolog.ParseLevel(cfg.logLevel); err != nil || cfg.logLevel == "" {
		return cfg, usageError{fmt.Sprintf("--log-level: unknown level %q", cfg.logLevel)}
	}
	if err := checkDatabase(cfg.database); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// envInt reads an integer variable, or def when unset or malformed.
func envInt(getenv func(string) string, k string, def int) int {
	if v, err := strconv.Atoi(getenv(k)); err == nil {
		return v
	}
	return def
}

// envDuration reads a duration variable, or def when unset or malformed.
func envDuration(getenv func(string) string, k string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(getenv(k)); err == nil {
		return v
	}
	return def
}

func newLogger(cfg serveConfig, stderr io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.logLevel)
	var w io.Writer = stderr
	if cfg.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339, NoColor: true}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// openData opens the metadata database and the repositories, with one
// compiler (and its per-file cache) for publish and the sandbox. With
// PostgreSQL the repositories are shared with other daemons.
func openData(ctx context.Context, cfg serveConfig, compiler *compile.Compiler) (metaStore, backend.Cluster, *repo.Store, error) {
	if err := os.MkdirAll(filepath.Join(cfg.data, "agents"), 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	st, cluster, err := openStore(ctx, cfg.database, cfg.data)
	if err != nil {
		return nil, nil, nil, err
	}
	lim := cfg.limits
	repos, err := repo.Open(repo.Options{
		Root:          filepath.Join(cfg.data, "agents"),
		Sync:          true,
		Shared:        cluster != nil,
		Git:           cfg.gitPath,
		PackThreshold: lim.packThreshold,
		MaxFiles:      lim.maxDraftFiles,
		MaxDraftBytes: lim.maxDraftBytes,
		CacheBytes:    lim.cacheBytes / 6,
		Compile: func(files map[string][]byte) ([]byte, error) {
			res := compiler.Compile(files)
			if !res.OK() {
				return nil, res.Errors
			}
			return res.JSON, nil
		},
	})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, cluster, repos, nil
}

// ready reports whether the data directory is writable and the database
// answers.
func ready(ctx context.Context, dir string, st metaStore) error {
	f, err := os.CreateTemp(filepath.Join(dir, "agents"), ".ready-*")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	return st.Ping(ctx)
}

// keysDir is the key journal beside the database.
func keysDir(data string) string { return filepath.Join(data, "keys") }

// bootstrap creates workspace default and key bootstrap on an empty
// database and writes the secret to DATA/bootstrap.key (0600). A key file
// that exists is never overwritten: if the database lost every key (and
// the journal could not restore them), the key in the file is put back.
func bootstrap(ctx context.Context, st metaStore, journal *backend.KeyJournal, dir string, log zerolog.Logger) error {
	n, err := st.CountKeys(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	path := filepath.Join(dir, "bootstrap.key")
	if raw, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(raw))
		if backend.ParseKey(secret) != nil {
			return fmt.Errorf("%s exists but holds no valid key: refusing to replace it", path)
		}
		key, err := backend.RestoreKey(ctx, st, journal, secret, "default", "bootstrap", backend.AllScopes, time.Now())
		if err != nil {
			return err
		}
		log.Warn().Str("keyId", key.ID).Str("file", path).Msg("the database has no keys: restored the bootstrap key from its file")
		return nil
	}
	secret, key, err := backend.CreateJournaledKey(ctx, st, journal, "default", "bootstrap", backend.AllScopes, time.Now())
	if err != nil {
		return err
	}
	if err := backend.WriteFileSync(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write bootstrap key: %w", err)
	}
	log.Info().Str("keyId", key.ID).Str("file", path).Msg("created workspace default and key bootstrap (secret in file)")
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	schedule := webhook.DefaultSchedule()
	if cfg.retrySchedule != "" {
		if schedule, err = webhook.ParseSchedule(cfg.retrySchedule); err != nil {
			return usageError{fmt.Sprintf("--webhook-retry-schedule: %v", err)}
		}
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		log.Error().Msg("git is not installed: clones over HTTP will fail until it is (apt-get install git)")
		gitPath = "git"
	}
	cfg.gitPath = gitPath
	compiler := compile.NewCompiler(compile.NewCache(cfg.limits.cacheBytes / 6))
	st, cluster, repos, err := openData(ctx, cfg, compiler)
	if err != nil {
		return err
	}
	defer st.Close()
	defer repos.Close() // stops background housekeeping first (a killed git is safe)
	journal := backend.NewKeyJournal(keysDir(cfg.data))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defaultURL := "http://" + ln.Addr().String()
	if cfg.publicURL != "" {
		defaultURL = cfg.publicURL
	}
	// Other daemons' events wake this one's webhook dispatcher.
	wake := make(chan struct{}, 1)
	disp := webhook.New(webhook.Options{
		Store:         st,
		Wake:          wake,
		Client:        webhook.NewClient(cfg.allowPrivate, 15*time.Second),
		Schedule:      schedule,
		MaxConcurrent: cfg.limits.hooksConcurrent,
		PerWorkspace:  cfg.limits.hooksPerWS,
		Logger:        log.With().Str("component", "webhook").Logger(),
	})
	be := backend.New(backend.Options{
		Repos: repos, Store: st, Log: log, PublicURL: defaultURL, Keys: journal, AdoptOrphansInto: cfg.adoptOrphans,
		Compiler: compiler, CacheBytes: cfg.limits.cacheBytes * 4 / 6, Cluster: cluster,
		Webhooks: disp, Redeliver: disp, AllowPrivateWebhooks: cfg.allowPrivate,
	})
	srv := server.New(server.Deps{
		Backend: be, Log: log, PublicURL: cfg.publicURL, GitPath: gitPath, BodyTimeout: cfg.limits.bodyTimeout, GitProcesses: cfg.limits.gitProcesses,
		Ready: func(ctx context.Context) error { return ready(ctx, cfg.data, st) },
	})
	// A clean stop left a marker: the database was in step with git, and
	// no agent needs checking. The marker is gone (durably) before any
	// write, so a crash from here on is never taken for a clean stop.
	clean, err := takeCleanMarker(cfg.data)
	if err != nil {
		ln.Close()
		return err
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	rep, err := be.Start(bg, clean)
	if err != nil {
		ln.Close()
		return fmt.Errorf("startup recovery: %w", err)
	}
	if err := bootstrap(ctx, st, journal, cfg.data, log); err != nil {
		ln.Close()
		return err
	}
	log.Info().Int("agents", rep.Agents).Int("versions", rep.Versions).Int("deployments", rep.Deployments).
		Int("rolledForward", rep.RolledForward).Int("orphans", rep.OrphansMovedOut).Int("drafts", rep.Drafts).Int("failed", rep.Failed).Int("adopted", rep.Adopted).Int("keysRestored", rep.KeysRestored).Bool("cleanStop", clean).Msg("recovery started (agents are checked in the background, each before its first write)")

	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopDebug()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := disp.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			log.Error().Err(err).Msg("webhook dispatcher stopped")
		}
	}()
	if cluster != nil {
		// Other daemons' writes: key revocations and changed agent rows
		// (the cluster watch, under a lease), new events for the webhook
		// dispatcher.
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := be.Listen(bg); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("cluster listener stopped")
			}
		}()
		go func() {
			defer wg.Done()
			poke := func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
			if err := cluster.Listen(bg, backend.ChannelEvents, func(string) { poke() }, poke); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("cluster event listener stopped")
			}
		}()
	}

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		// A client that stops sending its body mid-request is cut off
		// rather than holding a goroutine forever. No WriteTimeout: clone
		// responses stream for as long as the pack takes.
		ReadTimeout:    2 * time.Minute,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("data", cfg.data).Msg("flowyted listening")
	fmt.Fprintf(stdout, "flowyted listening on http://%s (data %s)\n", ln.Addr(), cfg.data)

	select {
	case err := <-errc:
		stopBG()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: finishing in-flight requests (up to 10s)")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	stopBG()
	wg.Wait()
	be.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn().Err(err).Msg("shutdown deadline passed")
	} else if n := be.Unchecked(); n > 0 {
		log.Info().Int("unchecked", n).Msg("stopped before recovery checked every agent: the next start checks them")
	} else if err := putCleanMarker(cfg.data); err != nil {
		log.Warn().Err(err).Msg("write clean-stop marker")
	}
	log.Info().Msg("stopped")
	return nil
}

// cleanMarker is written by a clean stop and removed at start.
const cleanMarker = ".clean-stop"

// takeCleanMarker reports whether the last stop was clean, removing the
// marker durably.
func takeCleanMarker(dir string) (bool, error) {
	path := filepath.Join(dir, cleanMarker)
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean-stop marker: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return true, nil
}

// putCleanMarker records a clean stop.
func putCleanMarker(dir string) error {
	return backend.WriteFileSync(filepath.Join(dir, cleanMarker), []byte("clean\n"), 0o600)
}
