package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoGit is returned by Housekeep when no git binary is available
// (Options.Git unset and none in PATH).
var ErrNoGit = errors.New("housekeeping needs the git binary")

// defaultPackThreshold is the number of new loose objects in one
// repository that starts a background pack: about 36 publishes of a
// one-file edit (7 objects each). Loose objects cost a 4 KiB block each,
// so the threshold bounds the disk they waste to about 1 MiB.
const defaultPackThreshold = 256

// Housekeeping reports one housekeeping run on one repository.
type Housekeeping struct {
	LooseBefore int           // loose objects before the run
	LooseAfter  int           // loose objects left (unreachable ones stay loose)
	Packs       int           // packfiles after the run
	Took        time.Duration // the whole run
	Locked      time.Duration // the part under the agent lock
}

// HousekeepingStats are counters for metrics, summed over all agents since
// Open.
type HousekeepingStats struct {
	// LooseObjects is the number of loose objects in the repositories
	// written or packed since Open, as last counted (new writes included).
	LooseObjects int64
	// Repacks counts completed housekeeping runs, automatic or on demand.
	Repacks uint64
	// RepackFailures counts runs that returned an error (a cancelled run
	// included); the repository is left as it was or partly packed, never
	// damaged.
	RepackFailures uint64
	// Running is the number of background housekeeping runs scheduled or
	// in progress.
	Running int
	// Locked is the total time housekeeping held agent locks (readers and
	// writers of that agent wait meanwhile).
	Locked time.Duration
}

// looseState is the housekeeping view of one agent, guarded by Store.mu.
type looseState struct {
	loose   int  // loose objects now, as counted plus written since
	floor   int  // loose objects the last run left (unreachable ones)
	running bool // a background run is scheduled or in progress
}

// HousekeepingStats returns the housekeeping counters.
func (s *Store) HousekeepingStats() HousekeepingStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := HousekeepingStats{Repacks: s.repacks, RepackFailures: s.repackFailures, Locked: s.repackLocked}
	for _, l := range s.loose {
		st.LooseObjects += int64(l.loose)
		if l.running {
			st.Running++
		}
	}
	return st
}

// countLoose counts the loose objects of the repository at dir.
func countLoose(dir string) (int, error) {
	objects := filepath.Join(dir, "objects")
	ents, err := os.ReadDir(objects)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if len(e.Name()) != 2 || !e.IsDir() {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(objects, e.Name()))
		if err != nil {
			return 0, err
		}
		for _, f := range sub {
			if len(f.Name()) == 38 {
				n++
			}
		}
	}
	return n, nil
}

// afterWrite accounts for created new loose objects of agent id (under its
// lock) and starts a background housekeeping run once the loose objects
// written since the last run reach Options.PackThreshold.
func (s *Store) afterWrite(id, dir string, created int) {
	if s.o.PackThreshold < 0 || s.o.Git == "" {
		return
	}
	s.mu.Lock()
	l := s.loose[id]
	s.mu.Unlock()
	if l == nil {
		// First write since Open: count what is there (under the agent
		// lock, so nothing else writes this repository meanwhile).
		n, err := countLoose(dir)
		if err != nil {
			return
		}
		l = &looseState{loose: n - created}
		s.mu.Lock()
		if cur := s.loose[id]; cur != nil {
			l = cur
		} else {
			s.loose[id] = l
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l.loose += created
	if l.running || s.closed || l.loose-l.floor < s.o.PackThreshold {
		return
	}
	l.running = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		_, err := s.Housekeep(s.bgCtx, id)
		s.mu.Lock()
		l.running = false
		if err != nil {
			// Try again only after another threshold of writes.
			l.floor = l.loose
		}
		s.mu.Unlock()
	}()
}

// Housekeep packs the repository of id in two steps. First, without the
// agent lock (reads and writes go on), `git pack-objects` writes the loose
// objects into a new pack in a staging directory and deletes nothing, so
// every object stays where readers look for it; this delta search is the
// expensive part. Then, under the agent lock, the new pack is moved into
// objects/pack and `git repack -d --geometric=2` merges packs so
// their sizes stay a geometric progression (reusing the deltas, so it
// costs little more than copying the merged packs) and deletes the packed
// loose objects and merged packs, and `git pack-refs --all` moves tags and
// branches into packed-refs. The cached go-git handle is dropped, so the
// next operation opens the repository afresh and sees the new packs and
// packed refs. One repack runs at a time in a Store; Recover of the same
// agent waits for it.
//
// Crash safety is git's: repack writes each new pack under a temporary
// name, renames the pack and then its index into place, and deletes old
// packs and the now packed loose objects only after every new pack is
// complete; pack-refs writes packed-refs.new under packed-refs.lock,
// renames it over packed-refs, then deletes the loose refs. A SIGKILL at
// any instant loses nothing; Recover removes the leftovers. With
// Options.Sync git fsyncs everything it writes (core.fsync=all). On Linux
// git dies with this process, so no repack outlives a crash.
//
// Unreachable objects (left by a write that failed before its ref moved)
// stay loose; nothing is pruned. A cancelled ctx kills git, which is as
// safe as a crash. It returns ErrNoGit when no git binary is configured.
func (s *Store) Housekeep(ctx context.Context, id string) (Housekeeping, error) {
	var out Housekeeping
	err := s.housekeep(ctx, id, &out)
	s.mu.Lock()
	if err != nil {
		s.repackFailures++
	} else {
		s.repacks++
	}
	s.repackLocked += out.Locked
	s.mu.Unlock()
	if err != nil {
		return out, fmt.Errorf("housekeep %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) housekeep(ctx context.Context, id string, out *Housekeeping) error {
	if s.o.Git == "" {
		return ErrNoGit
	}
	if !validID(id) || !s.Exists(id) {
		return ErrNotFound
	}
	start := time.Now()
	defer func() { out.Took = time.Since(start) }()
	a := s.pin(id)
	defer s.release(a)
	a.hk.Lock()
	defer a.hk.Unlock()
	select {
	case s.packing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.packing }()
	dir := s.Path(id)
	var err error
	if out.LooseBefore, err = countLoose(dir); err != nil {
		return err
	}
	// Pack the loose objects into a staging directory that neither git nor
	// go-git looks into: go-git finds packs by their .pack file and git
	// renames the index in after the pack, so a pack appearing in
	// objects/pack while a reader opens the repository could be seen
	// without its index.
	staging := filepath.Join(dir, repackDir)
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	if err := os.Mkdir(staging, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	name, err := s.gitOutput(ctx, dir, "pack-objects", "--all", "--reflog", "--indexed-objects", "--unpacked",
		"--incremental", "--non-empty", "-q", filepath.Join(staging, "pack"))
	if err != nil {
		return err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.layout.Lock() // readers wait too: objects and packs are deleted below
	defer a.layout.Unlock()
	s.invalidateReaders(a)
	locked := time.Now()
	defer func() { out.Locked = time.Since(locked) }()
	if !s.Exists(id) {
		return ErrNotFound
	}
	// go-git keeps pack indexes and packed refs in memory: drop the handle
	// whatever happens below, so the next operation reopens the repository.
	if a.h != nil {
		a.h.close()
		a.h = nil
	}
	if name = strings.TrimSpace(name); name != "" {
		// Like git: the pack first, its index last.
		packDir := filepath.Join(dir, "objects", "pack")
		if err := os.MkdirAll(packDir, 0o755); err != nil {
			return err
		}
		for _, ext := range []string{".pack", ".idx"} {
			if err := os.Rename(filepath.Join(staging, "pack-"+name+ext), filepath.Join(packDir, "pack-"+name+ext)); err != nil {
				return err
			}
		}
		if s.o.Sync {
			if err := syncDir(packDir); err != nil {
				return err
			}
		}
	}
	// A repack killed with this process may have left a pack-objects child
	// that finished later: its temporary files are garbage.
	for _, pat := range []string{".tmp-*", "tmp_pack_*", "tmp_idx_*"} {
		old, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", pat))
		for _, p := range old {
			_ = os.Remove(p)
		}
	}
	// Now every loose object is also packed: this merges packs (reusing
	// their deltas) and deletes the redundant packs and loose objects.
	if err := s.git(ctx, dir, "repack", "-d", "-q", "-n", "--geometric=2", "--no-write-bitmap-index"); err != nil {
		return err
	}
	if err := s.git(ctx, dir, "pack-refs", "--all"); err != nil {
		return err
	}
	if out.LooseAfter, err = countLoose(dir); err != nil {
		return err
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
	out.Packs = len(packs)
	s.mu.Lock()
	l := s.loose[id]
	if l == nil {
		l = &looseState{}
		s.loose[id] = l
	}
	l.loose, l.floor = out.LooseAfter, out.LooseAfter
	s.mu.Unlock()
	return nil
}

// gitConfig is the configuration every housekeeping git command runs with,
// whatever the user's or system's configuration says.
var gitConfig = []string{
	"gc.auto=0",
	"core.bare=true",
	"repack.writeBitmaps=false",
	"repack.updateServerInfo=false",
	"pack.writeReverseIndex=false",
	"core.multiPackIndex=false",
}

// repackDir is the directory of a repository where Housekeep stages a new
// pack before moving it into objects/pack.
const repackDir = "flowyte-repack"

// git runs the git binary in the bare repository dir with a minimal
// environment and fixed configuration.
func (s *Store) git(ctx context.Context, dir string, args ...string) error {
	_, err := s.gitOutput(ctx, dir, args...)
	return err
}

// gitOutput is git returning the standard output.
func (s *Store) gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	full := []string{"--git-dir=" + dir}
	for _, c := range gitConfig {
		full = append(full, "-c", c)
	}
	if s.o.Sync {
		full = append(full, "-c", "core.fsync=all", "-c", "core.fsyncMethod=fsync")
	}
	cmd := exec.CommandContext(ctx, s.o.Git, append(full, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + dir, // no ~/.gitconfig
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
		"PATH=" + filepath.Dir(s.o.Git) + ":/usr/bin:/bin",
	}
	isolate(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
