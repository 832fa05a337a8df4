package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"
)

// mustOpen opens a fresh store on a file in a temp dir and closes it at the
// end of the test.
func mustOpen(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "flowyte.db"), opts...)
}

// mustOpenPath opens the store at path and closes it at the end of the test.
func mustOpenPath(tb testing.TB, path string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(path, opts...)
	require.NoError(tb, err, "Open(%q)", path)
	tb.Cleanup(func() {
		assert.NoError(tb, s.Close(), "Close")
	})
	return s
}

func TestOpenPragmas(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	require.NoError(t, s.Ping(ctx), "Ping")
	checks := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "5000"},
		{"foreign_keys", "1"},
	}
	for _, c := range checks {
		var got string
		require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got), "PRAGMA %s (reader)", c.pragma)
		assert.Equal(t, c.want, got, "reader PRAGMA %s=%s, want %s", c.pragma, got, c.want)
		require.NoError(t, s.wdb.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got), "PRAGMA %s (writer)", c.pragma)
		assert.Equal(t, c.want, got, "writer PRAGMA %s=%s, want %s", c.pragma, got, c.want)
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Write(ctx, func(tx Tx) error {
		if _, err := tx.(*sqliteTx).tx.ExecContext(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES ('ws_x', 'x', 1)`); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom, "Write err=%v, want %v", err, boom)
	var n int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM workspaces`).Scan(&n))
	require.EqualValues(t, 0, n, "workspaces=%d after rollback, want 0", n)
}

// t0 is a fixed clock reading with nanoseconds, for deterministic rows.
var t0 = time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.UTC)

// mustWrite runs fn in a write transaction and fails the test on error.
func mustWrite(tb testing.TB, s *Store, fn func(tx Tx) error) {
	tb.Helper()
	require.NoError(tb, s.Write(context.Background(), fn), "Write")
}

// mustWorkspace creates (or finds) the workspace called name.
func mustWorkspace(tb testing.TB, s *Store, name string) Workspace {
	tb.Helper()
	var w Workspace
	mustWrite(tb, s, func(tx Tx) error {
		var err error
		w, err = tx.EnsureWorkspace(context.Background(), name, t0)
		return err
	})
	return w
}

// mustAgent creates a live agent in workspace ws created at the given time.
func mustAgent(tb testing.TB, s *Store, ws, id string, created time.Time) Agent {
	tb.Helper()
	a := Agent{
		ID: id, WorkspaceID: ws, Name: "name-" + id, Description: "desc",
		CreatedAt: created, DraftRevision: "rev0", DraftUpdatedAt: created,
	}
	mustWrite(tb, s, func(tx Tx) error { return tx.CreateAgent(context.Background(), a) })
	return a
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowyte.db")
	ctx := context.Background()
	s1, err := Open(path)
	require.NoError(t, err)
	ws := mustWorkspace(t, s1, "default")
	first, err := s1.AppliedMigrations(ctx)
	require.NoError(t, err)
	require.NotEqual(t, 0, len(first), "applied=%v, want 0001_core.sql first", first)
	require.Equal(t, "0001_core.sql", first[0], "applied=%v, want 0001_core.sql first", first)
	ms, err := migrations()
	require.NoError(t, err)
	require.Len(t, first, len(ms), "applied %d migrations, want %d", len(first), len(ms))
	require.NoError(t, s1.Close())
	s2 := mustOpenPath(t, path) // would fail on "table already exists" if re-applied
	again, err := s2.AppliedMigrations(ctx)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(first), fmt.Sprint(again), "applied after reopen=%v, want %v", again, first)
	got, err := s2.WorkspaceByName(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, ws.ID, got.ID, "workspace id after reopen=%s, want %s", got.ID, ws.ID)
}

func TestMigrationsOrdered(t *testing.T) {
	ms, err := migrations()
	require.NoError(t, err)
	require.True(t, sort.SliceIsSorted(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name }), "migrations not in name order: %v", ms)
}

func TestOpenCreatesParentDir(t *testing.T) {
	// Characters that mean something in a file: URI must be escaped.
	path := filepath.Join(t.TempDir(), "a b#c?d%20", "b", "flowyte.db")
	mustOpenPath(t, path)
	_, err := os.Stat(path)
	require.NoError(t, err, "stat %s", path)
}

func TestOpenRejectsBadSynchronous(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "x.db"), WithSynchronous("sometimes"))
	require.Error(t, err, "Open with bad synchronous: got nil error, want one")
}

func TestWrapError(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	assert.ErrorIs(t, wrapError(sql.ErrNoRows), ErrNotFound, "wrapError(sql.ErrNoRows) is not ErrNotFound")
	assert.Nil(t, wrapError(nil), "wrapError(nil) != nil")
	other := errors.New("other")
	got := wrapError(other)
	assert.Equal(t, other, got, "wrapError(other)=%v, want it unchanged", got)
	// Primary key and unique violations, straight from the driver.
	mustWorkspace(t, s, "a")
	err := s.Write(ctx, func(tx Tx) error {
		_, err := tx.(*sqliteTx).tx.ExecContext(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'a', 0)`)
		return wrapError(err)
	})
	assert.ErrorIs(t, err, ErrConflict, "unique violation: err=%v, want ErrConflict", err)
	var se *sqlite.Error
	assert.True(t, errors.As(err, &se), "unique violation: driver error not kept in chain: %v", err)
	err = s.Write(ctx, func(tx Tx) error {
		_, err := tx.(*sqliteTx).tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ('0001_core.sql', 0)`)
		return wrapError(err)
	})
	assert.ErrorIs(t, err, ErrConflict, "primary key violation: err=%v, want ErrConflict", err)
	// A CHECK violation is a constraint error but not a conflict.
	err = s.Write(ctx, func(tx Tx) error {
		_, err := tx.(*sqliteTx).tx.ExecContext(ctx, `INSERT INTO idempotency (workspace_id, key, scope, request_hash, state, created_at) VALUES ('w','k','s','h','weird',0)`)
		return wrapError(err)
	})
	assert.Error(t, err, "check violation: err=%v, want a non-conflict error", err)
	assert.NotErrorIs(t, err, ErrConflict, "check violation: err=%v, want a non-conflict error", err)
}

func TestForeignKeysEnforced(t *testing.T) {
	s := mustOpen(t)
	err := s.Write(context.Background(), func(tx Tx) error {
		return tx.CreateAgent(context.Background(), Agent{ID: "agt_x", WorkspaceID: "ws_missing", CreatedAt: t0, DraftUpdatedAt: t0})
	})
	require.Error(t, err, "CreateAgent in a missing workspace: got nil error, want a foreign key error")
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^evt_[a-z2-7]{16}$`)
	are := regexp.MustCompile(`^agt_[a-z2-7]{20}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewID("evt_")
		require.True(t, re.MatchString(id), "NewID=%q, want %s", id, re)
		a := NewAgentID()
		require.True(t, are.MatchString(a), "NewAgentID=%q, want %s", a, are)
		require.False(t, seen[id], "duplicate id %q or %q", id, a)
		require.False(t, seen[a], "duplicate id %q or %q", id, a)
		seen[id], seen[a] = true, true
	}
}

func TestTimeRoundTrip(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "w")
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := time.Date(2026, 3, 1, 12, 0, 0, 987654321, loc)
	mustAgent(t, s, ws.ID, "agt_t", local)
	a, err := s.AgentByID(ctx, "agt_t")
	require.NoError(t, err)
	require.True(t, a.CreatedAt.Equal(local), "CreatedAt=%v, want %v in UTC with nanoseconds", a.CreatedAt, local.UTC())
	require.Equal(t, time.UTC, a.CreatedAt.Location(), "CreatedAt=%v, want %v in UTC with nanoseconds", a.CreatedAt, local.UTC())
	require.EqualValues(t, 987654321, a.CreatedAt.Nanosecond(), "CreatedAt=%v, want %v in UTC with nanoseconds", a.CreatedAt, local.UTC())
}

// TestSecondWriterProcess opens two Stores on one file (as the daemon and
// the CLI do) and writes from both at once: busy_timeout serialises them
// and every write succeeds.
func TestSecondWriterProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowyte.db")
	a := mustOpenPath(t, path)
	b := mustOpenPath(t, path)
	ws := mustWorkspace(t, a, "default")
	ctx := context.Background()
	const perWriter = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				err := s.Write(ctx, func(tx Tx) error {
					return tx.CreateKey(ctx, Key{
						ID: fmt.Sprintf("key_%d_%d", w, i), WorkspaceID: ws.ID, Name: "k",
						Scopes: []string{"agents:read"}, CreatedAt: t0,
					}, []byte(fmt.Sprintf("hash-%d-%d", w, i)))
				})
				if err != nil {
					errs <- err
				}
				// A concurrent read on the other store must not block.
				if _, err := s.CountKeys(ctx); err != nil {
					errs <- err
				}
				time.Sleep(time.Millisecond) // busy waiting is not fair; see TestSecondWriterRealProcess
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "concurrent write")
	}
	for _, s := range []*Store{a, b} {
		n, err := s.CountKeys(ctx)
		require.NoError(t, err)
		require.Equal(t, 2*perWriter, n, "CountKeys=%d, want %d", n, 2*perWriter)
	}
}

// TestReadsDuringWrite checks WAL: a read completes while a write
// transaction is open and sees the last committed state.
func TestReadsDuringWrite(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "w")
	mustAgent(t, s, ws.ID, "agt_1", t0)
	inTx := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Write(ctx, func(tx Tx) error {
			if err := tx.UpdateAgentMeta(ctx, "agt_1", "renamed", ""); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	a, err := s.AgentByID(rctx, "agt_1")
	cancel()
	close(release)
	require.NoError(t, err, "read during write")
	require.Equal(t, "name-agt_1", a.Name, "name during write=%q, want the committed %q", a.Name, "name-agt_1")
	require.NoError(t, <-done)
	a, err = s.AgentByID(ctx, "agt_1")
	require.NoError(t, err)
	require.Equal(t, "renamed", a.Name, "name after commit=%q, want %q", a.Name, "renamed")
}

// BenchmarkCommit measures one small write transaction (one fsync'd commit)
// under synchronous=FULL and NORMAL.
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		b.Run(mode, func(b *testing.B) {
			s := mustOpen(b, WithSynchronous(mode))
			ws := mustWorkspace(b, s, "w")
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				err := s.Write(ctx, func(tx Tx) error {
					return tx.CreateKey(ctx, Key{ID: fmt.Sprintf("key_%d", i), WorkspaceID: ws.ID, CreatedAt: t0},
						[]byte(fmt.Sprintf("h%d", i)))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSecondWriterRealProcess runs a writer in a child process (this test
// binary re-executed) while this process writes to the same file, the way
// `flowyted keys create` runs next to the daemon.
func TestSecondWriterRealProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "flowyte.db")
	s := mustOpenPath(t, path)
	ws := mustWorkspace(t, s, "default")
	ctx := context.Background()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STORE_HELPER_DB="+path, "STORE_HELPER_WS="+ws.ID)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	// Keep writing until the child is done, so the two really overlap.
	var (
		written  int
		childErr error
	)
	for running := true; running; written++ {
		select {
		case childErr = <-waitErr:
			running = false
		default:
		}
		err := s.Write(ctx, func(tx Tx) error {
			return tx.CreateKey(ctx, Key{ID: fmt.Sprintf("key_parent_%d", written), WorkspaceID: ws.ID, CreatedAt: t0},
				[]byte(fmt.Sprintf("parent-%d", written)))
		})
		require.NoError(t, err, "parent write %d", written)
		// SQLite's busy handler polls (sleeps up to 100 ms) and is not
		// fair: a writer committing back to back could starve the other
		// process. Leave the lock free briefly, as a daemon always does.
		time.Sleep(2 * time.Millisecond)
	}
	require.Nil(t, childErr, "child: %v\n%s", childErr, out.String())
	require.True(t, strings.Contains(out.String(), "PASS"), "child did not run the helper:\n%s", out.String())
	n, err := s.CountKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, written+helperWrites, n, "CountKeys=%d, want %d (parent) + %d (child)", n, written, helperWrites)
	t.Logf("parent wrote %d keys while the child wrote %d", written, helperWrites)
}

// helperWrites is how many keys the child process writes.
const helperWrites = 200

// TestHelperWriterProcess is the child of TestSecondWriterRealProcess; it
// does nothing unless STORE_HELPER_DB is set.
func TestHelperWriterProcess(t *testing.T) {
	path := os.Getenv("STORE_HELPER_DB")
	if path == "" {
		t.Skip("helper process only")
	}
	s := mustOpenPath(t, path)
	ctx := context.Background()
	for i := range helperWrites {
		err := s.Write(ctx, func(tx Tx) error {
			return tx.CreateKey(ctx, Key{ID: fmt.Sprintf("key_child_%d", i), WorkspaceID: os.Getenv("STORE_HELPER_WS"), CreatedAt: t0},
				[]byte(fmt.Sprintf("child-%d", i)))
		})
		require.NoError(t, err, "child write %d", i)
		time.Sleep(2 * time.Millisecond) // see the parent
	}
}

func TestWriteReleasesWriterOnPanic(t *testing.T) {
	s := mustOpen(t)
	func() {
		defer func() {
			require.NotNil(t, recover(), "Write did not propagate the panic")
		}()
		_ = s.Write(context.Background(), func(tx Tx) error { panic("boom") })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, s.Write(ctx, func(tx Tx) error { return nil }), "Write after a panic (writer connection leaked?)")
}

// TestImports guards the import direction: the store never depends on the
// HTTP layer or the git layer.
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "go list: %v\n%s", err, out)
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/flowyte/flowyte/server",
			strings.HasPrefix(dep, "github.com/flowyte/flowyte/repo"),
			strings.HasPrefix(dep, "github.com/gin-gonic/"),
			strings.HasPrefix(dep, "github.com/go-git/"):
			assert.Failf(t, "forbidden import", "server/store imports %s, want no server, repo, gin or go-git", dep)
		}
	}
}
