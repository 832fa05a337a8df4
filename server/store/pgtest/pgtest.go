// Package pgtest gives tests a throwaway PostgreSQL database: a private
// cluster (initdb + pg_ctl on a free loopback port, in a temp dir) shared by
// every test of one test binary, and a fresh database per test.
//
// With FLOWYTE_TEST_DATABASE=postgres://... set, tests use that server
// instead (each still gets its own database); any other value (such as
// "postgres", which storetest.Open reads as "use PostgreSQL") keeps the
// private cluster. Without either, tests that
// need PostgreSQL skip with a message saying how to run them.
//
// Use it from TestMain so the cluster stops when the binary ends:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Without Main, each Start gets its own cluster, stopped by tb.Cleanup.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabase names the environment variable that points tests at an
// existing server instead of a private cluster.
const EnvDatabase = "FLOWYTE_TEST_DATABASE"

// EnvDurable, when set, keeps fsync and synchronous commits on in private
// clusters (for benchmarks that compare engines fairly).
const EnvDurable = "FLOWYTE_PGTEST_DURABLE"

// shared is the cluster of the test binary, started by the first Start
// after Main and stopped by Main.
var shared struct {
	mu      sync.Mutex
	main    bool     // Main is running the tests
	cluster *Cluster // started lazily
	err     error    // why it could not start
}

// Main runs the tests, then stops the shared cluster if one was started.
// It returns m.Run's exit code.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop cluster:", err)
		}
		os.RemoveAll(shared.cluster.dir)
		shared.cluster = nil
	}
	return code
}

// Start returns the URL of a new empty database, dropped when tb ends. It
// skips tb when PostgreSQL is not installed and EnvDatabase is not set.
func Start(tb testing.TB) (dsn string) {
	tb.Helper()
	base := os.Getenv(EnvDatabase)
	if !strings.Contains(base, "://") && !strings.Contains(base, "=") {
		// Unset, or a bare engine name ("postgres"): a private cluster.
		c := sharedCluster(tb)
		base = c.URL("postgres")
	}
	return CreateDatabase(tb, base)
}

// sharedCluster returns the binary's cluster, or a private one stopped at
// the end of tb when Main is not in use.
func sharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		return NewCluster(tb)
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = startCluster()
	}
	if shared.err != nil {
		skipOrFail(tb, shared.err)
	}
	return shared.cluster
}

// errNotInstalled is returned when no PostgreSQL binaries are found.
var errNotInstalled = errors.New("PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or in PATH); " +
	"install it (apt-get install postgresql) or set " + EnvDatabase + "=postgres://... to run these tests")

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNotInstalled) {
		tb.Skip("pgtest: " + err.Error())
	}
	tb.Fatalf("pgtest: %v", err)
}

// CreateDatabase creates a database with a fresh name on the server at
// base (any database URL of it), drops it when tb ends, and returns its URL.
func CreateDatabase(tb testing.TB, base string) string {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: bad database URL: %v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: connect %s: %v", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Cluster is a private PostgreSQL server in a temp dir, listening on a
// loopback port. Tests that restart the server (a daemon surviving a
// database restart, say) use it directly.
type Cluster struct {
	bin  string // directory of initdb and pg_ctl
	dir  string // temp dir: data/, the socket and the log
	port int
	asPG bool // run the binaries as the postgres user (we are root)
}

// NewCluster starts a private cluster for tb, stopped and removed when tb
// ends. It skips tb when PostgreSQL is not installed.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := startCluster()
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Logf("pgtest: stop cluster: %v", err)
		}
		os.RemoveAll(c.dir)
	})
	return c
}

// URL returns the URL of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Port returns the cluster's loopback TCP port.
func (c *Cluster) Port() int { return c.port }

func startCluster() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, asPG: os.Geteuid() == 0}
	c.dir, err = os.MkdirTemp("", "flowyte-pg-*")
	if err != nil {
		return nil, err
	}
	if c.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(c.dir)
			return nil, fmt.Errorf("running as root needs a postgres user for initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	c.port, err = freePort()
	if err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

// Start starts the server (again, after Stop), on the same port, and waits
// until it accepts connections.
func (c *Cluster) Start() error {
	// Durability off: a test cluster is thrown away, and fsync would make
	// every commit wait for the disk the other tests share. Benchmarks
	// comparing engines set EnvDurable=1 to keep PostgreSQL's defaults.
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -c max_connections=300", c.port, c.dir)
	if os.Getenv(EnvDurable) == "" {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if out, err := c.run("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"),
		"-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server (fast shutdown: open connections are closed).
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// findBin returns the directory of the newest installed initdb.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNotInstalled
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
