package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeDiagnostics stands in for compile.Diagnostics.
type fakeDiagnostics struct{ File string }

func (d *fakeDiagnostics) Error() string { return "compile failed: " + d.File }

var _ error = (*fakeDiagnostics)(nil)

// fakeCompile returns the JSON of the sorted file list with content
// digests; a file named broken.yaml makes it fail.
func fakeCompile(files map[string][]byte) ([]byte, error) {
	if _, ok := files["broken.yaml"]; ok {
		return nil, &fakeDiagnostics{File: "broken.yaml"}
	}
	type item struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	}
	items := make([]item, 0, len(files))
	for p, data := range files {
		sum := sha256.Sum256(data)
		items = append(items, item{p, hex.EncodeToString(sum[:])})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	return json.Marshal(map[string]any{"files": items})
}

// testClock returns a clock that starts at a fixed instant and advances one
// second per call.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func mustOpenStore(tb testing.TB, mod ...func(*Options)) *Store {
	tb.Helper()
	o := Options{Root: tb.TempDir(), Now: testClock(), Compile: fakeCompile}
	for _, m := range mod {
		m(&o)
	}
	s, err := Open(o)
	require.NoError(tb, err, "open")
	return s
}

var alice = Signature{Name: "Alice Example", Email: "alice@example.com"}

const testID = "agt_abcdefghijklmnopqrst"

func mustCreate(tb testing.TB, s *Store, id string, files map[string][]byte) Commit {
	tb.Helper()
	c, err := s.Create(context.Background(), id, files, "Create agent", alice)
	require.NoError(tb, err, "create %s", id)
	return c
}

func mustCommit(tb testing.TB, s *Store, id string, changes ...Change) Commit {
	tb.Helper()
	c, err := s.CommitDraft(context.Background(), id, CommitRequest{Changes: changes, Author: alice}, nil)
	require.NoError(tb, err, "commit")
	return c
}

func mustPublish(tb testing.TB, s *Store, id, notes string) Version {
	tb.Helper()
	v, err := s.Publish(context.Background(), id, PublishRequest{Notes: notes, Publisher: alice}, nil)
	require.NoError(tb, err, "publish")
	return v
}

func set(path, content string) Change { return Change{Path: path, Content: []byte(content)} }

func del(path string) Change { return Change{Path: path, Delete: true} }

// gitCmd runs the git CLI with an isolated configuration and returns its
// stdout.
func gitCmd(tb testing.TB, dir string, stdin []byte, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command("/usr/bin/git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), errors.New(err.Error() + ": " + errb.String())
	}
	return out.String(), nil
}

// mustGit runs git against the bare repository dir and fails on error.
func mustGit(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := gitCmd(tb, dir, nil, append([]string{"--git-dir=" + dir}, args...)...)
	require.NoError(tb, err, "git %s", strings.Join(args, " "))
	return out
}

// mustFsck runs git fsck --strict and fails on any error or warning.
func mustFsck(tb testing.TB, dir string) {
	tb.Helper()
	cmd := exec.Command("/usr/bin/git", "--git-dir="+dir, "fsck", "--strict", "--no-progress")
	cmd.Env = []string{"HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "git fsck --strict: %s", out)
	for _, line := range strings.Split(string(out), "\n") {
		bad := strings.HasPrefix(line, "error") || strings.HasPrefix(line, "warning") || strings.HasPrefix(line, "missing") || strings.HasPrefix(line, "broken")
		require.False(tb, bad, "git fsck --strict reported: %s", out)
	}
}

// readDirFiles reads every file below dir as path → content.
func readDirFiles(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	require.NoError(tb, err, "read %s", dir)
	return out
}

// checkoutTree extracts the tree of rev (or nothing for "") from the bare
// repository into a new temporary directory.
func checkoutTree(tb testing.TB, repoDir, rev string) string {
	tb.Helper()
	wt := tb.TempDir()
	if rev == "" {
		return wt
	}
	tar := mustGit(tb, repoDir, "archive", "--format=tar", rev)
	cmd := exec.Command("tar", "-x", "-C", wt)
	cmd.Stdin = strings.NewReader(tar)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "tar: %s", out)
	return wt
}

func looseObjects(tb testing.TB, dir string) int {
	tb.Helper()
	n := 0
	ents, _ := os.ReadDir(filepath.Join(dir, "objects"))
	for _, e := range ents {
		if len(e.Name()) == 2 {
			sub, _ := os.ReadDir(filepath.Join(dir, "objects", e.Name()))
			n += len(sub)
		}
	}
	return n
}
