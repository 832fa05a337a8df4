package repo

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sergi/go-diff/diffmatchpatch"
)

// change is one path that differs between two trees; a zero hash means the
// side does not have the path.
type change struct {
	path     string
	from, to entry
}

// diffTrees lists the blobs that differ between trees a and b (zero = the
// empty tree), sorted by path, recursing only into subtrees that differ.
// A top-level entry named skip is ignored on both sides.
func (h *handle) diffTrees(a, b plumbing.Hash, skip string) ([]change, error) {
	var out []change
	if err := h.diffInto(&out, a, b, "", skip); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

func (h *handle) entries(t plumbing.Hash) (map[string]object.TreeEntry, error) {
	m := map[string]object.TreeEntry{}
	if t.IsZero() {
		return m, nil
	}
	tr, err := h.tree(t)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", t, err)
	}
	for _, e := range tr.Entries {
		if e.Mode != filemode.Submodule {
			m[e.Name] = e
		}
	}
	return m, nil
}

// diffInto appends the blob changes between trees a and b below prefix,
// recursing only into subtrees that differ. It merges the two entry lists
// in git order, so a directory costs its entry count, not map building.
func (h *handle) diffInto(out *[]change, a, b plumbing.Hash, prefix, skip string) error {
	if a == b {
		return nil
	}
	ea, err := h.treeEntries(a)
	if err != nil {
		return err
	}
	eb, err := h.treeEntries(b)
	if err != nil {
		return err
	}
	if !strictlySorted(ea) || !strictlySorted(eb) {
		return h.diffMaps(out, a, b, prefix, skip)
	}
	for i, j := 0, 0; i < len(ea) || j < len(eb); {
		var x, y object.TreeEntry
		var okx, oky bool
		var c int
		switch {
		case i == len(ea):
			c = 1
		case j == len(eb):
			c = -1
		default:
			c = compareEntries(ea[i], eb[j])
		}
		if c <= 0 {
			x, okx, i = ea[i], true, i+1
		}
		if c >= 0 {
			y, oky, j = eb[j], true, j+1
		}
		okx = okx && x.Mode != filemode.Submodule
		oky = oky && y.Mode != filemode.Submodule
		name := x.Name
		if !okx {
			name = y.Name
		}
		if prefix == "" && skip != "" && name == skip || !okx && !oky {
			continue
		}
		if err := h.diffEntry(out, x, y, okx, oky, prefix, name); err != nil {
			return err
		}
	}
	return nil
}

// treeEntries returns the entries of tree t (zero: none).
func (h *handle) treeEntries(t plumbing.Hash) ([]object.TreeEntry, error) {
	if t.IsZero() {
		return nil, nil
	}
	tr, err := h.tree(t)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", t, err)
	}
	return tr.Entries, nil
}

// strictlySorted reports whether entries are in git order without
// repeats, as every tree written by git or this package is.
func strictlySorted(entries []object.TreeEntry) bool {
	for i := 1; i < len(entries); i++ {
		if compareEntries(entries[i-1], entries[i]) >= 0 {
			return false
		}
	}
	return true
}

// diffMaps is diffInto for trees not in git order, matching entries by
// name.
func (h *handle) diffMaps(out *[]change, a, b plumbing.Hash, prefix, skip string) error {
	ea, err := h.entries(a)
	if err != nil {
		return err
	}
	eb, err := h.entries(b)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ea)+len(eb))
	for n := range ea {
		names = append(names, n)
	}
	for n := range eb {
		if _, ok := ea[n]; !ok {
			names = append(names, n)
		}
	}
	for _, name := range names {
		if prefix == "" && skip != "" && name == skip {
			continue
		}
		x, okx := ea[name]
		y, oky := eb[name]
		if err := h.diffEntry(out, x, y, okx, oky, prefix, name); err != nil {
			return err
		}
	}
	return nil
}

// diffEntry appends the changes between entry x of one tree and entry y
// of the other (either may be missing) for the same name.
func (h *handle) diffEntry(out *[]change, x, y object.TreeEntry, okx, oky bool, prefix, name string) error {
	if okx && oky && x.Hash == y.Hash && x.Mode == y.Mode {
		return nil
	}
	xd, yd := okx && x.Mode == filemode.Dir, oky && y.Mode == filemode.Dir
	if xd || yd {
		var da, db plumbing.Hash
		if xd {
			da = x.Hash
		}
		if yd {
			db = y.Hash
		}
		if err := h.diffInto(out, da, db, prefix+name+"/", ""); err != nil {
			return err
		}
	}
	var fa, fb entry
	if okx && !xd {
		fa = entry{hash: x.Hash, mode: x.Mode}
	}
	if oky && !yd {
		fb = entry{hash: y.Hash, mode: y.Mode}
	}
	if fa != fb {
		*out = append(*out, change{path: prefix + name, from: fa, to: fb})
	}
	return nil
}

// diffItem is one path of a diff with the contents it needs, read under
// the agent lock and rendered after it.
type diffItem struct {
	c        change
	oldPath  string // set for the added side of an exact rename
	old, cur []byte // shared with the object cache: read only
}

// Diff compares the trees named by base and target.
//
// Between versions the release trees are compared, compiled/ included
// unless sourceOnly. With the draft on either side only sources are
// compared (compiled/ is left out). Patch is a unified diff as git writes
// it, with "diff --git" headers, index lines and file modes; binary files
// use "GIT binary patch" literals, so `git apply` on a checkout of base
// reproduces target exactly. Exact renames (same content and mode) are
// reported as renamed with oldPath; a move with edits shows as a deletion
// and an addition.
//
// The exact line diff (Myers) of a file runs only within what is left of
// Options.DiffBudget; a file over it gets one hunk that replaces its whole
// changed region (still exact for `git apply`, Additions and Deletions
// then count every line of that region) and is marked Truncated, as is
// the Diff. Trees and blobs are read under the agent lock; the line diffs
// run after it is released.
func (s *Store) Diff(ctx context.Context, id string, base, target Rev, sourceOnly bool) (Diff, error) {
	return s.diff(ctx, id, base, target, sourceOnly, true)
}

// DiffStat is Diff without the patch text: Files with their status, line
// counts, Binary and Truncated, and the totals, but Patch and every
// FileDiff.Patch empty. It costs the line diffs (within the same budget)
// but neither the hunk text nor binary literals.
func (s *Store) DiffStat(ctx context.Context, id string, base, target Rev, sourceOnly bool) (Diff, error) {
	return s.diff(ctx, id, base, target, sourceOnly, false)
}

func (s *Store) diff(ctx context.Context, id string, base, target Rev, sourceOnly, withPatch bool) (Diff, error) {
	var d Diff
	var items []diffItem
	err := s.read(ctx, id, func(h *handle) error {
		bc, bt, err := h.resolve(base)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		tc, tt, err := h.resolve(target)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if base.Kind == RevDraft || target.Kind == RevDraft {
			sourceOnly = true
		}
		skip := ""
		if sourceOnly {
			skip = compiledDir
		}
		changes, err := h.diffTrees(bt, tt, skip)
		if err != nil {
			return err
		}
		if !bc.IsZero() {
			d.BaseCommit = bc.String()
		}
		if !tc.IsZero() {
			d.TargetCommit = tc.String()
		}
		renamedFrom := exactRenames(changes)
		hashes := make([]plumbing.Hash, 0, 2*len(changes))
		for _, c := range changes {
			hashes = append(hashes, c.from.hash, c.to.hash)
		}
		h.prefetch(hashes)
		items = make([]diffItem, 0, len(changes))
		for _, c := range changes {
			if err := ctx.Err(); err != nil {
				return err
			}
			it := diffItem{c: c}
			if old, ok := renamedFrom[c.path]; ok {
				if old == "" {
					continue // the deleted side of a rename
				}
				it.oldPath = old
			} else if !c.from.hash.IsZero() {
				if it.old, err = h.blob(c.from.hash); err != nil {
					return err
				}
			}
			if !c.to.hash.IsZero() {
				if it.cur, err = h.blob(c.to.hash); err != nil {
					return err
				}
			}
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return Diff{}, fmt.Errorf("diff %s: %w", id, err)
	}
	budget := s.o.DiffBudget
	if budget < 0 {
		budget = math.MaxInt64
	}
	var patch bytes.Buffer
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return Diff{}, fmt.Errorf("diff %s: %w", id, err)
		}
		var fd FileDiff
		if it.oldPath != "" {
			fd = renamePatch(it.oldPath, it.c.path)
			fd.Binary = isBinary(it.cur)
		} else {
			fd = filePatch(it.c, it.old, it.cur, &budget, withPatch)
		}
		d.Additions += fd.Additions
		d.Deletions += fd.Deletions
		d.Truncated = d.Truncated || fd.Truncated
		if withPatch {
			patch.WriteString(fd.Patch)
		} else {
			fd.Patch = ""
		}
		d.Files = append(d.Files, fd)
	}
	if withPatch {
		d.Patch = patch.Bytes()
	}
	return d, nil
}

// exactRenames pairs deleted and added paths with the same blob and mode
// (a move without edits). The result maps each added path to its old path
// and each deleted path so paired to "". Pairing is deterministic: deleted
// paths in order take the first unpaired added path with their blob.
func exactRenames(changes []change) map[string]string {
	added := map[entry][]string{}
	for _, c := range changes {
		// Like git, empty files are never paired as renames.
		if c.from.hash.IsZero() && !c.to.hash.IsZero() && c.to.hash.String() != emptyBlob {
			added[c.to] = append(added[c.to], c.path)
		}
	}
	out := map[string]string{}
	for _, c := range changes {
		if c.from.hash.IsZero() || !c.to.hash.IsZero() {
			continue
		}
		if cands := added[c.from]; len(cands) > 0 {
			out[cands[0]] = c.path
			out[c.path] = ""
			added[c.from] = cands[1:]
		}
	}
	return out
}

// emptyBlob is the id of the empty blob.
const emptyBlob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"

// renamePatch is git's text for a pure rename.
func renamePatch(oldPath, newPath string) FileDiff {
	var b strings.Builder
	fmt.Fprintf(&b, "diff --git %s %s\n", quotePath("a/", oldPath), quotePath("b/", newPath))
	b.WriteString("similarity index 100%\n")
	fmt.Fprintf(&b, "rename from %s\n", quotePath("", oldPath))
	fmt.Fprintf(&b, "rename to %s\n", quotePath("", newPath))
	return FileDiff{Path: newPath, OldPath: oldPath, Status: "renamed", Patch: b.String()}
}

// isBinary reports whether data looks binary to git: a NUL byte in the
// first 8000 bytes.
func isBinary(data []byte) bool {
	if len(data) > 8000 {
		data = data[:8000]
	}
	return bytes.IndexByte(data, 0) >= 0
}

// quotePath quotes p the way git does when it holds control characters,
// quotes, backslashes or non-ASCII bytes (core.quotePath).
func quotePath(prefix, p string) string {
	full := prefix + p
	need := false
	for i := 0; i < len(full); i++ {
		if c := full[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			need = true
			break
		}
	}
	if !need {
		return full
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(full); i++ {
		c := full[i]
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\v':
			b.WriteString(`\v`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c >= 0x7f {
				fmt.Fprintf(&b, `\%03o`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fileName formats a path for the ---/+++ lines; like git, a name holding
// a space gets a trailing tab.
func fileName(prefix, p string) string {
	q := quotePath(prefix, p)
	if strings.ContainsRune(q, ' ') {
		q += "\t"
	}
	return q
}

func abbrev(h plumbing.Hash) string { return h.String()[:7] }

// modeString formats a mode as git prints it in diff headers.
func modeString(m filemode.FileMode) string { return fmt.Sprintf("%06o", uint32(m)) }

// filePatch renders the diff of one path, its exact line diff within
// *budget (which it decreases). Without withPatch only the counts are
// computed.
func filePatch(c change, old, cur []byte, budget *int64, withPatch bool) FileDiff {
	fd := FileDiff{Path: c.path}
	added, deleted := c.from.hash.IsZero(), c.to.hash.IsZero()
	switch {
	case added:
		fd.Status = "added"
	case deleted:
		fd.Status = "deleted"
	default:
		fd.Status = "modified"
	}
	fd.Binary = isBinary(old) || isBinary(cur)

	var b strings.Builder
	fmt.Fprintf(&b, "diff --git %s %s\n", quotePath("a/", c.path), quotePath("b/", c.path))
	oldHash, newHash := c.from.hash, c.to.hash
	idx := func(h plumbing.Hash) string {
		if fd.Binary {
			return h.String()
		}
		return abbrev(h)
	}
	switch {
	case added:
		fmt.Fprintf(&b, "new file mode %s\n", modeString(c.to.mode))
		fmt.Fprintf(&b, "index %s..%s\n", idx(plumbing.ZeroHash), idx(newHash))
	case deleted:
		fmt.Fprintf(&b, "deleted file mode %s\n", modeString(c.from.mode))
		fmt.Fprintf(&b, "index %s..%s\n", idx(oldHash), idx(plumbing.ZeroHash))
	case c.from.mode != c.to.mode:
		fmt.Fprintf(&b, "old mode %s\nnew mode %s\n", modeString(c.from.mode), modeString(c.to.mode))
		if oldHash != newHash {
			fmt.Fprintf(&b, "index %s..%s\n", idx(oldHash), idx(newHash))
		}
	default:
		fmt.Fprintf(&b, "index %s..%s %s\n", idx(oldHash), idx(newHash), modeString(c.to.mode))
	}
	if oldHash == newHash {
		fd.Patch = b.String()
		return fd
	}
	if fd.Binary {
		if withPatch {
			b.WriteString("GIT binary patch\n")
			writeLiteral(&b, cur)
			writeLiteral(&b, old)
		}
		fd.Patch = b.String()
		return fd
	}
	if len(old) == 0 && len(cur) == 0 {
		fd.Patch = b.String()
		return fd
	}
	ops, truncated := editScript(splitLines(old), splitLines(cur), budget)
	fd.Truncated = truncated
	if !withPatch {
		for _, op := range ops {
			switch op.kind {
			case '+':
				fd.Additions++
			case '-':
				fd.Deletions++
			}
		}
		return fd
	}
	if added {
		b.WriteString("--- /dev/null\n")
	} else {
		fmt.Fprintf(&b, "--- %s\n", fileName("a/", c.path))
	}
	if deleted {
		b.WriteString("+++ /dev/null\n")
	} else {
		fmt.Fprintf(&b, "+++ %s\n", fileName("b/", c.path))
	}
	fd.Additions, fd.Deletions = writeHunks(&b, ops)
	fd.Patch = b.String()
	return fd
}

// splitLines splits data into lines that keep their "\n"; the last line may
// lack it.
func splitLines(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, string(data))
			break
		}
		lines = append(lines, string(data[:i+1]))
		data = data[i+1:]
	}
	return lines
}

// lineOp is one line of an edit script: ' ' keep, '-' delete, '+' insert.
// a and b count the old and new lines before it.
type lineOp struct {
	kind byte
	a, b int
	line string
}

// editScript computes a line diff of old and cur: the common leading and
// trailing lines are kept, and the region between them is diffed exactly
// with go-diff's Myers implementation over one rune per distinct line when
// that costs at most *budget, else replaced whole (truncated). The cost of
// an exact diff is (old+new lines of the region) × (edit distance); the
// distance is first bounded by a greedy Myers pass that stops as soon as
// the budget is exceeded, so an over-budget region costs about the budget
// and no more. Whatever was spent is taken off *budget.
func editScript(old, cur []string, budget *int64) (ops []lineOp, truncated bool) {
	pre := 0
	for pre < len(old) && pre < len(cur) && old[pre] == cur[pre] {
		pre++
	}
	suf := 0
	for suf < len(old)-pre && suf < len(cur)-pre && old[len(old)-1-suf] == cur[len(cur)-1-suf] {
		suf++
	}
	ops = make([]lineOp, 0, len(old)+len(cur)-pre-suf)
	for i := 0; i < pre; i++ {
		ops = append(ops, lineOp{' ', i, i, old[i]})
	}
	ma, mb := old[pre:len(old)-suf], cur[pre:len(cur)-suf]
	ids := map[string]rune{}
	toRunes := func(lines []string) []rune {
		rs := make([]rune, len(lines))
		for i, l := range lines {
			r, ok := ids[l]
			if !ok {
				n := len(ids) + 1
				if n >= 0xD800 { // skip the surrogate range
					n += 0x800
				}
				r = rune(n)
				ids[l] = r
			}
			rs[i] = r
		}
		return rs
	}
	ra, rb := toRunes(ma), toRunes(mb)
	width := int64(len(ra) + len(rb))
	maxD := len(ra) + len(rb)
	if width > 0 && *budget/width < int64(maxD) {
		maxD = int(*budget / width)
	}
	d, ok := editDistance(ra, rb, maxD)
	a, b := pre, pre
	if !ok {
		*budget -= width * int64(maxD)
		truncated = true
		for _, l := range ma {
			ops = append(ops, lineOp{'-', a, b, l})
			a++
		}
		for _, l := range mb {
			ops = append(ops, lineOp{'+', a, b, l})
			b++
		}
	} else {
		*budget -= width * int64(d)
		dmp := diffmatchpatch.New()
		dmp.DiffTimeout = 0 // exact
		for _, df := range dmp.DiffMainRunes(ra, rb, false) {
			n := len([]rune(df.Text))
			for k := 0; k < n; k++ {
				switch df.Type {
				case diffmatchpatch.DiffEqual:
					ops = append(ops, lineOp{' ', a, b, old[a]})
					a++
					b++
				case diffmatchpatch.DiffDelete:
					ops = append(ops, lineOp{'-', a, b, old[a]})
					a++
				case diffmatchpatch.DiffInsert:
					ops = append(ops, lineOp{'+', a, b, cur[b]})
					b++
				}
			}
		}
	}
	for i := 0; i < suf; i++ {
		ops = append(ops, lineOp{' ', a, b, old[a]})
		a++
		b++
	}
	return ops, truncated
}

// editDistance returns the number of inserted plus deleted lines of the
// shortest edit script of a and b, or ok=false if it exceeds maxD, with
// Myers' greedy forward algorithm in O((len(a)+len(b))·maxD) time.
func editDistance(a, b []rune, maxD int) (d int, ok bool) {
	n, m := len(a), len(b)
	if n+m == 0 {
		return 0, true
	}
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	for d := 0; d <= maxD; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return d, true
			}
		}
	}
	return 0, false
}

const contextLines = 3

// hunkRange formats one side of a hunk header like git.
func hunkRange(start, count int) string {
	if count == 1 {
		return strconv.Itoa(start)
	}
	return strconv.Itoa(start) + "," + strconv.Itoa(count)
}

// writeHunks writes the unified hunks of the edit script ops and returns
// the numbers of added and deleted lines.
func writeHunks(b *strings.Builder, ops []lineOp) (adds, dels int) {
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-contextLines, 0)
		end := i
		for {
			for end < len(ops) && ops[end].kind != ' ' {
				end++
			}
			j := end
			for j < len(ops) && ops[j].kind == ' ' {
				j++
			}
			if j < len(ops) && j-end <= 2*contextLines {
				end = j
				continue
			}
			end = min(end+contextLines, j)
			break
		}
		oldCount, newCount := 0, 0
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				oldCount++
			}
			if op.kind != '-' {
				newCount++
			}
		}
		oldStart, newStart := ops[start].a, ops[start].b
		if oldCount > 0 {
			oldStart++
		}
		if newCount > 0 {
			newStart++
		}
		fmt.Fprintf(b, "@@ -%s +%s @@\n", hunkRange(oldStart, oldCount), hunkRange(newStart, newCount))
		for _, op := range ops[start:end] {
			b.WriteByte(op.kind)
			b.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				b.WriteString("\n\\ No newline at end of file\n")
			}
			switch op.kind {
			case '+':
				adds++
			case '-':
				dels++
			}
		}
		i = end
	}
	return adds, dels
}

// base85 is git's base85 alphabet.
const base85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"

// writeLiteral writes one "literal" hunk of a GIT binary patch: data
// deflated, in lines of up to 52 bytes, base85 encoded with a length
// character, followed by a blank line.
func writeLiteral(b *strings.Builder, data []byte) {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	_, _ = zw.Write(data)
	_ = zw.Close()
	fmt.Fprintf(b, "literal %d\n", len(data))
	buf := z.Bytes()
	for len(buf) > 0 {
		n := min(len(buf), 52)
		chunk := buf[:n]
		buf = buf[n:]
		if n <= 26 {
			b.WriteByte(byte('A' + n - 1))
		} else {
			b.WriteByte(byte('a' + n - 27))
		}
		for k := 0; k < n; k += 4 {
			var acc uint32
			for j := 0; j < 4; j++ {
				acc <<= 8
				if k+j < n {
					acc |= uint32(chunk[k+j])
				}
			}
			var enc [5]byte
			for j := 4; j >= 0; j-- {
				enc[j] = base85[acc%85]
				acc /= 85
			}
			b.Write(enc[:])
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}
