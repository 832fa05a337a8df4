package repo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Options configures a Store.
type Options struct {
	Root          string           // directory holding <id>.git bare repos
	Now           func() time.Time // default time.Now
	MaxOpen       int              // open repositories kept in an LRU, default 128
	Sync          bool             // fsync objects and refs before returning
	MaxFiles      int              // per draft, default 2000
	MaxDraftBytes int64            // per draft, default 16 MiB
	// Compile turns draft files into the bytes of compiled/agent.json. Its
	// error is returned by Publish wrapped, so errors.As still finds it.
	// The contents of files are shared with the object cache (not copied
	// for each publish) and must not be modified.
	Compile func(files map[string][]byte) (artifact []byte, err error)
	// CacheBytes bounds the cache of decoded blobs and trees shared by all
	// repositories, default 64 MiB.
	CacheBytes int64
	// Shared says other processes write these repositories too (several
	// daemons over a shared filesystem, each operation under a lock they
	// share): every operation re-reads refs and pack indexes.
	Shared bool
	// PackThreshold is the number of loose objects written to one
	// repository since its last housekeeping that starts a background
	// Housekeep after a draft commit or publish; default 256, negative
	// disables automatic housekeeping (Housekeep still works on demand).
	PackThreshold int
	// DiffBudget bounds the exact line diffs of one Diff or DiffStat, in
	// line comparisons: each file costs (changed-region lines of both
	// sides) × (edit distance), and a file over what is left falls back to
	// a whole-region replacement marked Truncated. Default 100,000,000
	// (about half a second of diffing); negative means unlimited.
	DiffBudget int64
	// Git is the git binary housekeeping runs: an absolute path, or a name
	// looked up in PATH; default "git". Without one, housekeeping is off.
	Git string
}

// Store manages the bare repositories of all agents under Options.Root.
// A Store assumes it is the only writer of Root.
type Store struct {
	o Options

	mu     sync.Mutex
	agents map[string]*agent // entries in use or idle with an open handle
	idle   *list.List        // of *agent with users == 0 and h != nil, most recent first
	cache  *objectCache

	// Housekeeping, guarded by mu.
	loose          map[string]*looseState
	repacks        uint64
	repackFailures uint64
	repackLocked   time.Duration
	closed         bool          // no new background runs
	packing        chan struct{} // one git repack at a time, store-wide
	bg             sync.WaitGroup
	bgCtx          context.Context
	bgCancel       context.CancelFunc
}

// agent is the locks and cached state of one agent. An entry lives in
// Store.agents while some goroutine uses it (pin), or while it keeps an open
// writer handle or idle read-only handles in the idle LRU, so the map is
// bounded by MaxOpen plus the number of in-flight operations.
type agent struct {
	id string
	mu sync.Mutex // the agent lock
	hk sync.Mutex // held by housekeeping and Recover, taken before mu
	// layout is read-held by readers and write-held (after mu) by what
	// deletes objects or refs: housekeeping's second step, Recover, Remove.
	layout  sync.RWMutex
	gen     int           // bumped under layout: pooled readers older than it are stale; guarded by Store.mu
	readers []*handle     // idle read-only handles of generation gen, guarded by Store.mu
	users   int           // guarded by Store.mu
	elem    *list.Element // guarded by Store.mu
	h       *handle       // guarded by mu
}

// handle is an open repository with its in-memory caches.
type handle struct {
	dir    string
	st     *filesystem.Storage
	latest int // highest tag number
	pub    plumbing.Hash
	pubNum int
	sizes  map[plumbing.Hash]int64
	cache  *objectCache
	pr     *packedRefs // packed-refs as last read, nil before the first read
	gen    int         // for a read-only handle: the agent generation it was opened at
}

// maxReaders bounds the idle read-only handles kept per agent.
const maxReaders = 4

// goGitCacheBytes bounds go-git's own per-repository object cache; blobs
// and trees are cached in the shared objectCache instead.
const goGitCacheBytes = 256 << 10

const (
	trashDir = ".trash"
	tmpDir   = ".tmp"
)

var idPattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// validID reports whether id is an acceptable agent id.
func validID(id string) bool { return idPattern.MatchString(id) }

// Open returns a Store over o.Root, creating the directory if needed and
// removing leftovers of interrupted Create calls.
func Open(o Options) (*Store, error) {
	if o.Root == "" {
		return nil, errors.New("open store: empty root")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = 128
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 2000
	}
	if o.MaxDraftBytes <= 0 {
		o.MaxDraftBytes = 16 << 20
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.DiffBudget == 0 {
		o.DiffBudget = 100_000_000
	}
	if o.PackThreshold == 0 {
		o.PackThreshold = defaultPackThreshold
	}
	if o.Git == "" {
		o.Git = "git"
	}
	if !filepath.IsAbs(o.Git) {
		o.Git, _ = exec.LookPath(o.Git) // "" (housekeeping off) if not found
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	o.Root = root
	for _, d := range []string{root, filepath.Join(root, trashDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(root, tmpDir)); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if o.Sync {
		// Objects written before a crash may still sit unsynced in the page
		// cache; later operations treat existing objects as durable.
		syncAll()
	}
	s := &Store{o: o, agents: make(map[string]*agent), idle: list.New(), cache: newObjectCache(o.CacheBytes), loose: map[string]*looseState{}, packing: make(chan struct{}, 1)}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops background housekeeping (a run in progress is killed, which
// is as safe as a crash) and closes every open repository kept in the LRU.
// Operations still running keep their repository open until they finish;
// the Store stays usable and reopens repositories on demand, without
// automatic housekeeping.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.bgCancel()
	s.bg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.idle.Front(); e != nil; e = s.idle.Front() {
		a := s.idle.Remove(e).(*agent)
		a.elem = nil
		delete(s.agents, a.id)
		a.closeHandles()
	}
	return nil
}

// Path returns the directory of the bare repository of id, or "" if id is
// not a valid agent id.
func (s *Store) Path(id string) string {
	if !validID(id) {
		return ""
	}
	return filepath.Join(s.o.Root, id+".git")
}

// Exists reports whether the repository of id exists.
func (s *Store) Exists(id string) bool {
	p := s.Path(id)
	if p == "" {
		return false
	}
	fi, err := os.Stat(filepath.Join(p, "HEAD"))
	return err == nil && fi.Mode().IsRegular()
}

// List returns the ids of all agent repositories under Root, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.o.Root)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var ids []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".git")
		if ok && e.IsDir() && validID(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// pin keeps the entry of id in Store.agents, without taking its lock,
// until release.
func (s *Store) pin(id string) *agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[id]
	if a == nil {
		a = &agent{id: id}
		s.agents[id] = a
	}
	a.users++
	if a.elem != nil {
		s.idle.Remove(a.elem)
		a.elem = nil
	}
	return a
}

// lock takes the agent lock of id and returns its entry; unlock must follow.
func (s *Store) lock(ctx context.Context, id string) (*agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := s.pin(id)
	a.mu.Lock()
	return a, nil
}

// lockAll takes the housekeeping lock, the agent lock and the layout lock
// of id, so no repack is writing into the repository and nobody reads it;
// the read-only handles are invalidated. unlockAll must follow.
func (s *Store) lockAll(ctx context.Context, id string) (*agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := s.pin(id)
	a.hk.Lock()
	a.mu.Lock()
	a.layout.Lock()
	s.invalidateReaders(a)
	return a, nil
}

// unlockAll undoes lockAll.
func (s *Store) unlockAll(a *agent) {
	a.layout.Unlock()
	a.mu.Unlock()
	a.hk.Unlock()
	s.release(a)
}

// unlock releases the agent lock and the entry.
func (s *Store) unlock(a *agent) {
	a.mu.Unlock()
	s.release(a)
}

// release undoes pin: the last user parks an open handle in the idle LRU,
// closing the least recently used handles beyond MaxOpen.
func (s *Store) release(a *agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.users--
	if a.users > 0 {
		return
	}
	// Nobody holds or waits for a.mu: its fields are ours under s.mu.
	if a.h == nil && len(a.readers) == 0 {
		delete(s.agents, a.id)
		return
	}
	a.elem = s.idle.PushFront(a)
	for s.idle.Len() > s.o.MaxOpen {
		old := s.idle.Remove(s.idle.Back()).(*agent)
		old.elem = nil
		delete(s.agents, old.id)
		old.closeHandles()
	}
}

// closeHandles closes the writer and the idle read-only handles of a,
// which nobody uses.
func (a *agent) closeHandles() {
	if a.h != nil {
		a.h.close()
		a.h = nil
	}
	for _, r := range a.readers {
		r.close()
	}
	a.readers = nil
}

// invalidateReaders marks every read-only handle of a stale; it runs under
// a.layout held for writing, after objects or refs were deleted.
func (s *Store) invalidateReaders(a *agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.gen++
	for _, r := range a.readers {
		r.close()
	}
	a.readers = nil
}

// read runs fn with a read-only handle of id, without the agent lock:
// objects are immutable and every ref is replaced by a rename, so what fn
// reads is consistent; only the deletions of housekeeping, Recover and
// Remove are excluded, through a.layout. Each call has a handle of its
// own (go-git is not safe for concurrent use), taken from a small pool.
// fn must not write, and must not use the caches of the writer handle
// (latest, published).
func (s *Store) read(ctx context.Context, id string, fn func(h *handle) error) error {
	if !validID(id) {
		return ErrNotFound
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a := s.pin(id)
	defer s.release(a)
	a.layout.RLock()
	defer a.layout.RUnlock()
	s.mu.Lock()
	var h *handle
	if n := len(a.readers); n > 0 {
		h, a.readers = a.readers[n-1], a.readers[:n-1]
	}
	gen := a.gen
	s.mu.Unlock()
	if h == nil {
		if !s.Exists(id) {
			return ErrNotFound
		}
		h = s.newHandle(s.Path(id))
		h.gen = gen
	}
	err := fn(h)
	s.mu.Lock()
	if h.gen == a.gen && len(a.readers) < maxReaders {
		a.readers = append(a.readers, h)
		h = nil
	}
	s.mu.Unlock()
	if h != nil {
		h.close()
	}
	return err
}

// newHandle returns a handle on the repository at dir; nothing is read
// yet.
func (s *Store) newHandle(dir string) *handle {
	return s.newHandleWith(dir, filesystem.Options{})
}

// writerPacks is how many packfiles a writer handle keeps open between
// lookups. go-git otherwise opens (and closes) the packfile for every
// object it reads or sizes: counting the files and bytes of a packed
// 5,000-file draft (a writer's first commit after a restart) took three
// times as long. Housekeeping drops the writer handle when it changes
// packs, so no deleted pack stays open (with Shared, packs another daemon
// deleted stay open until they are among the least recently opened
// writerPacks, or the handle closes); a reader handle opens them per
// lookup.
const writerPacks = 4

// newHandleWith is newHandle with go-git storage options.
func (s *Store) newHandleWith(dir string, o filesystem.Options) *handle {
	return &handle{
		dir:   dir,
		st:    filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(goGitCacheBytes), o),
		sizes: make(map[plumbing.Hash]int64),
		cache: s.cache,
	}
}

// openHandle returns the open handle of a, opening the repository if
// needed. It must run under a.mu.
func (s *Store) openHandle(a *agent) (*handle, error) {
	if a.h != nil && s.o.Shared {
		// Other processes write this repository between our operations
		// (under a lock they share with us): forget what we read before.
		a.h.st.Reindex()
		if err := a.h.loadLatest(); err != nil {
			a.h.close()
			a.h = nil
			return nil, fmt.Errorf("open %s: %w", a.id, err)
		}
	}
	if a.h != nil {
		return a.h, nil
	}
	if !validID(a.id) || !s.Exists(a.id) {
		return nil, ErrNotFound
	}
	h := s.newHandleWith(s.Path(a.id), filesystem.Options{MaxOpenDescriptors: writerPacks})
	if err := h.loadLatest(); err != nil {
		h.close()
		return nil, fmt.Errorf("open %s: %w", a.id, err)
	}
	a.h = h
	return h, nil
}

// with runs fn under the agent lock of id with its open handle.
func (s *Store) with(ctx context.Context, id string, fn func(h *handle) error) error {
	if !validID(id) {
		return ErrNotFound
	}
	a, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer s.unlock(a)
	h, err := s.openHandle(a)
	if err != nil {
		return err
	}
	return fn(h)
}

func (h *handle) close() {
	if h.st != nil {
		_ = h.st.Close()
	}
}

// loadLatest finds the highest tag number by listing the tag refs once.
func (h *handle) loadLatest() error {
	refs, err := listRefs(h.dir)
	if err != nil {
		return err
	}
	h.latest = 0
	for name := range refs {
		if n, ok := tagNumber(name); ok && n > h.latest {
			h.latest = n
		}
	}
	return nil
}

// Create makes the repository of id with a first draft commit holding files.
// The repository is built in a temporary directory and renamed into place,
// so it appears complete or not at all. It returns ErrExists if id exists.
func (s *Store) Create(ctx context.Context, id string, files map[string][]byte, message string, author Signature) (Commit, error) {
	return s.CreateOwned(ctx, id, Owner{}, files, message, author)
}

// CreateOwned is Create that also records owner in the repository's
// config, so a metadata database that lost the agent's row can be rebuilt
// from the repository alone.
func (s *Store) CreateOwned(ctx context.Context, id string, owner Owner, files map[string][]byte, message string, author Signature) (Commit, error) {
	if !validID(id) {
		return Commit{}, ErrNotFound
	}
	a, err := s.lock(ctx, id)
	if err != nil {
		return Commit{}, err
	}
	defer s.unlock(a)
	if s.Exists(id) {
		return Commit{}, ErrExists
	}
	if a.h != nil { // stale: the directory vanished behind our back
		a.h.close()
		a.h = nil
	}
	flat := make(map[string]entry, len(files))
	var total int64
	for p, data := range files {
		if err := checkPath(p); err != nil {
			return Commit{}, err
		}
		flat[p] = entry{}
		total += int64(len(data))
	}
	if err := checkCollisions(flat); err != nil {
		return Commit{}, err
	}
	if len(files) > s.o.MaxFiles || total > s.o.MaxDraftBytes {
		return Commit{}, fmt.Errorf("create %s: %w", id, ErrDraftTooLarge)
	}

	tmpRoot := filepath.Join(s.o.Root, tmpDir)
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	tmp, err := os.MkdirTemp(tmpRoot, id+"-*.git")
	if err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := initBare(tmp); err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	if owner != (Owner{}) {
		if err := writeOwner(tmp, owner); err != nil {
			return Commit{}, fmt.Errorf("create %s: %w", id, err)
		}
	}
	h := s.newHandle(tmp)
	defer h.close()
	w := newWriteSet(h, false) // the whole directory is synced below
	for p, data := range files {
		bh, err := w.putBlob(data)
		if err != nil {
			return Commit{}, fmt.Errorf("create %s: %w", id, err)
		}
		flat[p] = entry{hash: bh, mode: modeFile}
	}
	tree, err := w.putTree(flat)
	if err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	if message == "" {
		message = "Create agent"
	}
	author = s.sig(author)
	ch, err := w.putCommit(tree, nil, message, author, s.sig(Signature{Name: author.Name, Email: author.Email}))
	if err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	if err := h.setRef(plumbing.NewBranchReferenceName(draftBranch), ch, plumbing.ZeroHash, false); err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	if s.o.Sync {
		if err := syncTree(tmp); err != nil {
			return Commit{}, fmt.Errorf("create %s: %w", id, err)
		}
	}
	dst := s.Path(id)
	if err := os.Rename(tmp, dst); err != nil {
		return Commit{}, fmt.Errorf("create %s: %w", id, err)
	}
	if s.o.Sync {
		if err := syncDir(s.o.Root); err != nil {
			return Commit{}, fmt.Errorf("create %s: %w", id, err)
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return Commit{Revision: ch.String(), Message: message, Author: author, Paths: paths}, nil
}

// Remove moves the repository of id aside to Root/.trash/<id>-<unixnano>.git;
// nothing is erased. It returns ErrNotFound if id does not exist.
func (s *Store) Remove(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	a, err := s.lockAll(ctx, id)
	if err != nil {
		return err
	}
	defer s.unlockAll(a)
	if !s.Exists(id) {
		return ErrNotFound
	}
	if a.h != nil {
		a.h.close()
		a.h = nil
	}
	trash := filepath.Join(s.o.Root, trashDir)
	if err := os.MkdirAll(trash, 0o755); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	dst := filepath.Join(trash, fmt.Sprintf("%s-%d.git", id, s.o.Now().UnixNano()))
	if err := os.Rename(s.Path(id), dst); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	s.mu.Lock()
	if l := s.loose[id]; l != nil && !l.running {
		delete(s.loose, id)
	}
	s.mu.Unlock()
	if s.o.Sync {
		if err := syncDir(s.o.Root); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		if err := syncDir(trash); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
	}
	return nil
}

// sig fills in a default name and time and normalizes When to UTC seconds.
func (s *Store) sig(g Signature) Signature {
	g.Name = cleanIdent(g.Name)
	g.Email = cleanIdent(g.Email)
	if g.Name == "" {
		g.Name = "flowyte"
	}
	if g.When.IsZero() {
		g.When = s.o.Now()
	}
	g.When = g.When.UTC().Truncate(time.Second)
	return g
}

// cleanIdent drops the characters git forbids in identities.
func cleanIdent(v string) string {
	v = strings.Map(func(r rune) rune {
		switch r {
		case '<', '>', '\n', '\r', 0:
			return -1
		}
		return r
	}, v)
	return strings.TrimSpace(v)
}

// initBare writes the skeleton of a bare repository whose HEAD is the draft.
func initBare(dir string) error {
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags", "info"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"HEAD":        "ref: refs/heads/" + draftBranch + "\n",
		"config":      "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
		"description": "flowyte agent\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
