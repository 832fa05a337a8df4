package repo

import (
	"bufio"
	"cmp"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// fastCompressionSize is the object size from which loose objects are
// compressed with zlib's fastest level (blobs) or not at all (trees, see
// compressionLevel): a big blob (compiled/agent.json embeds every
// knowledge body) costs a fraction of the time to write, for a file about
// 15% bigger on prose until housekeeping packs it (git reads any level,
// and packing compresses again).
const fastCompressionSize = 16 << 10

// zlibPools hold zlib writers by level; a writer is some hundreds of KiB of
// compressor state, too much to allocate per object.
var zlibPools = map[int]*sync.Pool{
	zlib.DefaultCompression: {New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.DefaultCompression); return w }},
	zlib.BestSpeed:          {New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed); return w }},
	zlib.NoCompression:      {New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.NoCompression); return w }},
}

var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// compressionLevel is the zlib level of a loose object of type typ and
// size bytes. A big tree (a directory of thousands of articles, rewritten
// by every edit in it) is written uncompressed, as zlib stored blocks:
// it is mostly object ids, which do not compress, and even the fastest
// level spent about 3 ms per edit at 5,000 articles for a file a third
// smaller; housekeeping packs it later like any other.
func compressionLevel(typ plumbing.ObjectType, size int) int {
	switch {
	case size < fastCompressionSize:
		return zlib.DefaultCompression
	case typ == plumbing.TreeObject:
		return zlib.NoCompression
	}
	return zlib.BestSpeed
}

// pendingObject is a loose object written to a temporary file that flush
// fsyncs and renames into place.
type pendingObject struct {
	tmp, final string
}

// writeSet writes loose objects into a repository.
//
// Each object goes to a temporary file next to its final name (tmp_obj_*,
// which git fsck ignores and Recover deletes) and is renamed into place, so
// an object file is never seen half written. Without sync it is renamed at
// once. With sync, flush fsyncs the temporary files (concurrently, so the
// filesystem batches them into few journal commits), then renames them and
// fsyncs their directories: an object is visible only once its content is
// durable, so a power loss cannot leave an empty or truncated object under
// its final name. Until flush the objects of a sync writeSet are invisible;
// discard removes what was not flushed.
type writeSet struct {
	h       *handle
	sync    bool
	pending []pendingObject
	queued  map[plumbing.Hash]bool // written to pending, not yet renamed
	dirs    map[string]bool        // fan-out directories that gained objects
	newDir  bool                   // an objects/xx directory was created
	written int                    // loose objects written, flushed or not
}

func newWriteSet(h *handle, sync bool) *writeSet {
	return &writeSet{h: h, sync: sync, queued: map[plumbing.Hash]bool{}, dirs: map[string]bool{}}
}

// put stores object (typ, data) unless the repository already has it and
// returns its id. From fastCompressionSize up the object is hashed while
// it is compressed (into a temporary file in objects/, as its name is not
// known yet), on two cores in about the time of one.
func (w *writeSet) put(typ plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	if len(data) < fastCompressionSize {
		return w.putHashed(typ, data, plumbing.ComputeHash(typ, data))
	}
	return w.putParts(typ, []Part{{Data: data}})
}

// putParts is put for an object whose content is the Data of parts in
// turn, never assembled: hashing and compressing read the parts one by
// one, and the Deflated parts are copied rather than compressed.
func (w *writeSet) putParts(typ plumbing.ObjectType, parts []Part) (plumbing.Hash, error) {
	size := 0
	for _, p := range parts {
		size += len(p.Data)
	}
	hashed := make(chan plumbing.Hash, 1)
	go func() {
		h := plumbing.NewHasher(typ, int64(size))
		for _, p := range parts {
			h.Write(p.Data)
		}
		hashed <- h.Sum()
	}()
	tmp, err := w.writeTemp(filepath.Join(w.h.dir, "objects"), typ, size, parts)
	hash := <-hashed
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write %s %s: %w", typ, hash, err)
	}
	known, err := w.has(hash)
	if err != nil || known {
		_ = os.Remove(tmp)
		return hash, err
	}
	return hash, w.place(typ, hash, tmp)
}

// putHashed is put for an object whose id hash is known.
func (w *writeSet) putHashed(typ plumbing.ObjectType, data []byte, hash plumbing.Hash) (plumbing.Hash, error) {
	known, err := w.has(hash)
	if err != nil || known {
		return hash, err
	}
	hex := hash.String()
	tmp, err := w.writeTemp(filepath.Join(w.h.dir, "objects", hex[:2]), typ, len(data), []Part{{Data: data}})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write %s %s: %w", typ, hash, err)
	}
	return hash, w.place(typ, hash, tmp)
}

// has reports whether the repository (or w, not yet flushed) holds object
// hash. A loose object file of length zero (what a power loss could leave
// of an unsynced write by an older version) is not trusted: it is removed
// and has reports false.
func (w *writeSet) has(hash plumbing.Hash) (bool, error) {
	if w.queued[hash] {
		return true, nil
	}
	hex := hash.String()
	loose := filepath.Join(w.h.dir, "objects", hex[:2], hex[2:])
	fi, err := os.Stat(loose)
	switch {
	case err == nil && fi.Size() > 0:
		return true, nil
	case err == nil:
		if err := os.Remove(loose); err != nil {
			return false, fmt.Errorf("remove empty object %s: %w", hex, err)
		}
		return false, nil
	}
	// The writer's handle is dropped whenever packs change (under the
	// agent lock), so its pack list is current: no retry needed.
	return w.h.st.HasEncodedObject(hash) == nil, nil
}

// place moves the temporary file tmp holding object hash to its loose
// object name: at once without sync, at flush with sync.
func (w *writeSet) place(typ plumbing.ObjectType, hash plumbing.Hash, tmp string) error {
	hex := hash.String()
	dir := filepath.Join(w.h.dir, "objects", hex[:2])
	loose := filepath.Join(dir, hex[2:])
	if filepath.Dir(tmp) != dir {
		if err := os.Mkdir(dir, 0o755); err == nil {
			w.newDir = true
		} else if !errors.Is(err, fs.ErrExist) {
			_ = os.Remove(tmp)
			return fmt.Errorf("write %s %s: %w", typ, hash, err)
		}
	}
	w.written++
	w.dirs[dir] = true
	if w.sync {
		w.pending = append(w.pending, pendingObject{tmp: tmp, final: loose})
		w.queued[hash] = true
		return nil
	}
	if err := os.Rename(tmp, loose); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s %s: %w", typ, hash, err)
	}
	return nil
}

// writeTemp writes the loose object encoding of (typ, the Data of parts
// in turn, size bytes), zlib compressed, to a new temporary file in dir
// (created if missing) and returns its path.
func (w *writeSet) writeTemp(dir string, typ plumbing.ObjectType, size int, parts []Part) (path string, err error) {
	f, err := createTemp(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.Mkdir(dir, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
			w.newDir = true
			f, err = createTemp(dir)
		}
	}
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(f)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()
	header := append(typ.Bytes(), ' ')
	header = strconv.AppendInt(header, int64(size), 10)
	header = append(header, 0)
	if slices.ContainsFunc(parts, func(p Part) bool { return p.Deflated != nil }) {
		err = writeZlibParts(bw, header, parts)
	} else {
		err = writeZlib(bw, compressionLevel(typ, size), header, parts)
	}
	if err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// writeZlib writes header and parts as one zlib stream at level.
func writeZlib(bw io.Writer, level int, header []byte, parts []Part) error {
	pool := zlibPools[level]
	zw := pool.Get().(*zlib.Writer)
	zw.Reset(bw)
	defer func() { zw.Reset(nil); pool.Put(zw) }()
	if _, err := zw.Write(header); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := zw.Write(p.Data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// storedPartSize is the size up to which a part that comes without its
// deflated form is written as a stored block rather than compressed.
const storedPartSize = 1 << 10

// writeZlibParts writes header and parts as one zlib stream (RFC 1950)
// whose deflate data is the Deflated of each part that has one, and for
// the others stored blocks (short text) or a compression of their own;
// each piece ends on a byte boundary and refers to nothing before it, so
// they concatenate. The checksum is combined from the parts' own.
func writeZlibParts(bw io.Writer, header []byte, parts []Part) error {
	// CMF: deflate, 32 KiB window; FLG: fastest level, no dictionary.
	if _, err := bw.Write([]byte{0x78, 0x01}); err != nil {
		return err
	}
	sum := adler32.Checksum(header)
	if err := writeStored(bw, header); err != nil {
		return err
	}
	var fw *flate.Writer
	defer func() {
		if fw != nil {
			fw.Reset(nil)
			deflaters.Put(fw)
		}
	}()
	for _, p := range parts {
		switch {
		case p.Deflated != nil:
			sum = adler32Combine(sum, p.Adler32, int64(len(p.Data)))
			if _, err := bw.Write(p.Deflated); err != nil {
				return err
			}
			continue
		case len(p.Data) <= storedPartSize:
			if err := writeStored(bw, p.Data); err != nil {
				return err
			}
		default:
			if fw == nil {
				fw = deflaters.Get().(*flate.Writer)
			}
			fw.Reset(bw) // a fresh window: nothing refers to what came before
			if _, err := fw.Write(p.Data); err != nil {
				return err
			}
			if err := fw.Flush(); err != nil {
				return err
			}
		}
		sum = adler32Combine(sum, adler32.Checksum(p.Data), int64(len(p.Data)))
	}
	// The final block, empty, then the checksum of everything.
	_, err := bw.Write([]byte{1, 0, 0, 0xff, 0xff, byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return err
}

// deflaters are raw deflate writers at the fastest level.
var deflaters = sync.Pool{New: func() any { w, _ := flate.NewWriter(nil, flate.BestSpeed); return w }}

// writeStored writes data as non-final stored deflate blocks.
func writeStored(w io.Writer, data []byte) error {
	for {
		n := min(len(data), 0xffff)
		if _, err := w.Write([]byte{0, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}); err != nil {
			return err
		}
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
		if len(data) == 0 {
			return nil
		}
	}
}

// adler32Combine returns the Adler-32 of a stream of two pieces from their
// checksums a and b and the length of the second (zlib's
// adler32_combine).
func adler32Combine(a, b uint32, lenB int64) uint32 {
	const base = 65521
	rem := uint32(lenB % base)
	sum1 := a & 0xffff
	sum2 := uint32((uint64(rem) * uint64(sum1)) % base)
	sum1 += (b & 0xffff) + base - 1
	sum2 += (a >> 16) + (b >> 16) + base - rem
	if sum1 >= base {
		sum1 -= base
	}
	if sum1 >= base {
		sum1 -= base
	}
	if sum2 >= base<<1 {
		sum2 -= base << 1
	}
	if sum2 >= base {
		sum2 -= base
	}
	return sum1 | sum2<<16
}

// createTemp creates a new read-only (as git makes loose objects)
// temporary object file tmp_obj_<random> in dir, open for writing.
func createTemp(dir string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, "tmp_obj_"+strconv.FormatUint(uint64(rand.Uint32()), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if !errors.Is(err, fs.ErrExist) || try == 100 {
			return f, err
		}
	}
}

// flush makes the objects of w durable and visible: with sync, it fsyncs
// the pending temporary files, renames them into place and fsyncs their
// directories (and objects/ itself when a fan-out directory was created).
// It returns once every one is durable.
func (w *writeSet) flush() error {
	if !w.sync || len(w.pending) == 0 {
		w.pending = w.pending[:0]
		return nil
	}
	tmps := make([]string, len(w.pending))
	for i, p := range w.pending {
		tmps[i] = p.tmp
	}
	if err := syncPaths(tmps); err != nil {
		return fmt.Errorf("sync objects: %w", err)
	}
	for len(w.pending) > 0 {
		p := w.pending[0]
		if err := os.Rename(p.tmp, p.final); err != nil {
			return fmt.Errorf("write object: %w", err)
		}
		w.pending = w.pending[1:]
	}
	dirs := make([]string, 0, len(w.dirs)+1)
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	if w.newDir {
		dirs = append(dirs, filepath.Join(w.h.dir, "objects"))
	}
	if err := syncPaths(dirs); err != nil {
		return fmt.Errorf("sync objects: %w", err)
	}
	clear(w.queued)
	clear(w.dirs)
	w.newDir = false
	return nil
}

// discard removes the temporary files of objects not flushed (after an
// error, or when nothing is to be committed).
func (w *writeSet) discard() {
	for _, p := range w.pending {
		_ = os.Remove(p.tmp)
	}
	w.pending = nil
	clear(w.queued)
}

func (w *writeSet) putBlob(data []byte) (plumbing.Hash, error) {
	h, err := w.put(plumbing.BlobObject, data)
	if err == nil {
		w.h.sizes[h] = int64(len(data))
	}
	return h, err
}

// putBlobParts is putBlob for the blob whose content is the Data of
// parts in turn.
func (w *writeSet) putBlobParts(parts []Part) (plumbing.Hash, error) {
	h, err := w.putParts(plumbing.BlobObject, parts)
	if err == nil {
		size := 0
		for _, p := range parts {
			size += len(p.Data)
		}
		w.h.sizes[h] = int64(size)
	}
	return h, err
}

// treeNode is one directory while building trees from a flat map.
type treeNode struct {
	files map[string]entry
	dirs  map[string]*treeNode
}

// putTree writes the trees of flat (path → blob) and returns the root tree.
func (w *writeSet) putTree(flat map[string]entry) (plumbing.Hash, error) {
	root := &treeNode{files: map[string]entry{}, dirs: map[string]*treeNode{}}
	for p, e := range flat {
		n := root
		segs := strings.Split(p, "/")
		for _, d := range segs[:len(segs)-1] {
			c := n.dirs[d]
			if c == nil {
				c = &treeNode{files: map[string]entry{}, dirs: map[string]*treeNode{}}
				n.dirs[d] = c
			}
			n = c
		}
		n.files[segs[len(segs)-1]] = e
	}
	return w.putNode(root)
}

func (w *writeSet) putNode(n *treeNode) (plumbing.Hash, error) {
	entries := make([]object.TreeEntry, 0, len(n.files)+len(n.dirs))
	for name, e := range n.files {
		entries = append(entries, object.TreeEntry{Name: name, Mode: e.mode, Hash: e.hash})
	}
	for name, c := range n.dirs {
		h, err := w.putNode(c)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	return w.putEntries(entries)
}

// putEntries writes one tree object with entries in git order. entries is
// kept by the shared cache and must not be modified afterwards.
func (w *writeSet) putEntries(entries []object.TreeEntry) (plumbing.Hash, error) {
	sortEntries(entries)
	h, err := w.put(plumbing.TreeObject, encodeTree(entries))
	if err == nil {
		w.h.cache.putTree(h, entries)
	}
	return h, err
}

// encodeTree returns the canonical content of a tree object with entries,
// which must be in git order.
func encodeTree(entries []object.TreeEntry) []byte {
	n := 0
	for _, e := range entries {
		n += len(e.Name) + 8 + len(e.Hash)
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = strconv.AppendUint(b, uint64(e.Mode), 8)
		b = append(b, ' ')
		b = append(b, e.Name...)
		b = append(b, 0)
		b = append(b, e.Hash[:]...)
	}
	return b
}

// compareEntries orders tree entries the way git does: by name, a
// directory comparing as if its name ended in "/".
func compareEntries(a, b object.TreeEntry) int {
	n := min(len(a.Name), len(b.Name))
	if c := strings.Compare(a.Name[:n], b.Name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(nameEnd(a, n), nameEnd(b, n))
}

// nameEnd is the byte of e's sort key at offset n, the length of the
// shorter name: the next name byte, "/" past a directory's name, or 0.
func nameEnd(e object.TreeEntry, n int) byte {
	switch {
	case len(e.Name) > n:
		return e.Name[n]
	case e.Mode == filemode.Dir:
		return '/'
	}
	return 0
}

// sortEntries sorts tree entries in git order.
func sortEntries(entries []object.TreeEntry) {
	if !slices.IsSortedFunc(entries, compareEntries) {
		slices.SortFunc(entries, compareEntries)
	}
}

func (w *writeSet) putCommit(tree plumbing.Hash, parents []plumbing.Hash, msg string, author, committer Signature) (plumbing.Hash, error) {
	c := &object.Commit{
		Author:       toSig(author),
		Committer:    toSig(committer),
		Message:      endLine(msg),
		TreeHash:     tree,
		ParentHashes: parents,
	}
	obj := &plumbing.MemoryObject{}
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.putObject(obj)
}

func (w *writeSet) putTag(name string, target plumbing.Hash, msg string, tagger Signature) (plumbing.Hash, error) {
	t := &object.Tag{
		Name:       name,
		Tagger:     toSig(tagger),
		Message:    endLine(msg),
		TargetType: plumbing.CommitObject,
		Target:     target,
	}
	obj := &plumbing.MemoryObject{}
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.putObject(obj)
}

// putObject writes an object encoded by go-git.
func (w *writeSet) putObject(obj *plumbing.MemoryObject) (plumbing.Hash, error) {
	r, err := obj.Reader()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer r.Close()
	data := make([]byte, obj.Size())
	if _, err := io.ReadFull(r, data); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.put(obj.Type(), data)
}
