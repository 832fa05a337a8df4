package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Trailer keys of the annotated tag message. The message of tag v<n> is
//
//	v<n>
//
//	<notes, omitted with its blank line when empty>
//
//	Publisher: <name> <<email>>
//	Draft-Revision: <draft commit id>
//	Compiled-Digest: sha256:<hex>
const (
	trailerPublisher = "Publisher"
	trailerDraft     = "Draft-Revision"
	trailerDigest    = "Compiled-Digest"
)

// tagMessage builds the message of tag v<n>; extra trailers (from a
// publish Gate) follow the standard ones.
func tagMessage(n int, notes string, publisher Signature, draft plumbing.Hash, digest string, extra []Trailer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v%d\n\n", n)
	if notes != "" {
		b.WriteString(notes)
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "%s: %s <%s>\n", trailerPublisher, publisher.Name, publisher.Email)
	fmt.Fprintf(&b, "%s: %s\n", trailerDraft, draft)
	fmt.Fprintf(&b, "%s: %s\n", trailerDigest, digest)
	for _, t := range extra {
		fmt.Fprintf(&b, "%s: %s\n", t.Key, t.Value)
	}
	return b.String()
}

// checkExtras rejects release extras that would corrupt the tree or the
// tag message.
func checkExtras(x ReleaseExtras) error {
	for name := range x.Files {
		if name == "" || name == "agent.json" || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
			return fmt.Errorf("release file compiled/%q not allowed", name)
		}
	}
	for _, t := range x.Trailers {
		switch {
		case t.Key == "" || strings.ContainsAny(t.Key, " \t\r\n:"),
			t.Key == trailerPublisher, t.Key == trailerDraft, t.Key == trailerDigest,
			t.Value == "" || strings.ContainsAny(t.Value, "\r\n"):
			return fmt.Errorf("release trailer %q: %q not allowed", t.Key, t.Value)
		}
	}
	return nil
}

// parseTagMessage splits a tag message into notes and trailers.
func parseTagMessage(msg string) (notes string, trailers map[string]string) {
	trailers = map[string]string{}
	_, body, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return "", trailers
	}
	body = strings.TrimRight(body, "\n")
	last := body
	if i := strings.LastIndex(body, "\n\n"); i >= 0 {
		notes, last = body[:i], body[i+2:]
	}
	parsed := map[string]string{}
	for _, line := range strings.Split(last, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(k, " \t") || k == "" {
			// Not a trailer block: all of it is notes.
			return strings.TrimRight(body, "\n"), trailers
		}
		parsed[k] = v
	}
	return notes, parsed
}

// cleanNotes trims surrounding blank lines and trailing spaces and drops NUL
// bytes, so notes survive the tag message round trip unchanged.
func cleanNotes(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Trim(strings.TrimRight(s, " \t\r\n"), "\n")
}

// rawTag is an annotated tag parsed from its raw bytes (go-git's decoder
// would treat a PGP block inside notes as a signature).
type rawTag struct {
	target  plumbing.Hash
	name    string
	tagger  object.Signature
	message string
}

func (h *handle) readTag(hash plumbing.Hash) (rawTag, error) {
	obj, err := h.object(plumbing.TagObject, hash)
	if err != nil {
		return rawTag{}, err
	}
	if obj.Type() != plumbing.TagObject {
		return rawTag{}, fmt.Errorf("object %s is a %s, not a tag", hash, obj.Type())
	}
	r, err := obj.Reader()
	if err != nil {
		return rawTag{}, err
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		return rawTag{}, err
	}
	head, msg, _ := bytes.Cut(raw, []byte("\n\n"))
	t := rawTag{message: string(msg)}
	for _, line := range bytes.Split(head, []byte("\n")) {
		k, v, _ := bytes.Cut(line, []byte(" "))
		switch string(k) {
		case "object":
			t.target = plumbing.NewHash(string(v))
		case "tag":
			t.name = string(v)
		case "tagger":
			t.tagger.Decode(v)
		}
	}
	if t.target.IsZero() {
		return rawTag{}, fmt.Errorf("tag %s: no object header", hash)
	}
	return t, nil
}

// version reads and parses tag v<n>.
func (h *handle) version(n int) (Version, error) {
	if n < 1 {
		return Version{}, ErrVersionNotFound
	}
	ref := tagRef(n)
	th, err := h.refHash(ref)
	if err != nil {
		return Version{}, err
	}
	if th.IsZero() {
		return Version{}, fmt.Errorf("v%d: %w", n, ErrVersionNotFound)
	}
	t, err := h.readTag(th)
	if err != nil {
		return Version{}, fmt.Errorf("tag v%d: %w", n, err)
	}
	notes, tr := parseTagMessage(t.message)
	v := Version{
		Number:        n,
		Tag:           ref.String(),
		Commit:        t.target.String(),
		DraftRevision: tr[trailerDraft],
		Digest:        tr[trailerDigest],
		Notes:         notes,
		PublishedBy:   t.tagger.Name,
		CreatedAt:     t.tagger.When.UTC(),
	}
	for k, val := range tr {
		if k != trailerPublisher && k != trailerDraft && k != trailerDigest {
			if v.Trailers == nil {
				v.Trailers = map[string]string{}
			}
			v.Trailers[k] = val
		}
	}
	if v.DraftRevision == "" {
		if c, err := h.commit(t.target); err == nil && len(c.ParentHashes) > 0 {
			v.DraftRevision = c.ParentHashes[0].String()
		}
	}
	return v, nil
}

// releaseCommit returns the release commit of version n.
func (h *handle) releaseCommit(n int) (*object.Commit, error) {
	if n < 1 {
		return nil, fmt.Errorf("v%d: %w", n, ErrVersionNotFound)
	}
	th, err := h.refHash(tagRef(n))
	if err != nil {
		return nil, err
	}
	if th.IsZero() {
		return nil, fmt.Errorf("v%d: %w", n, ErrVersionNotFound)
	}
	t, err := h.readTag(th)
	if err != nil {
		return nil, fmt.Errorf("tag v%d: %w", n, err)
	}
	c, err := h.commit(t.target)
	if err != nil {
		return nil, fmt.Errorf("release commit of v%d: %w", n, err)
	}
	return c, nil
}

// publishedNumber resolves refs/heads/published to a version number (0 if
// the ref does not exist), cached while the ref does not move.
func (h *handle) publishedNumber() (int, plumbing.Hash, error) {
	p, err := h.refHash(publishedRef)
	if err != nil {
		return 0, p, err
	}
	if p.IsZero() {
		return 0, p, nil
	}
	if p == h.pub && h.pubNum > 0 {
		return h.pubNum, p, nil
	}
	n := 0
	// The release commit's subject names its version; confirm with the tag.
	if c, err := h.commit(p); err == nil {
		subj, _, _ := strings.Cut(c.Message, "\n")
		if k, err := strconv.Atoi(strings.TrimPrefix(subj, "Release v")); err == nil && strings.HasPrefix(subj, "Release v") {
			if rc, err := h.releaseCommit(k); err == nil && rc.Hash == p {
				n = k
			}
		}
	}
	for k := h.latest; n == 0 && k >= 1; k-- {
		if rc, err := h.releaseCommit(k); err == nil && rc.Hash == p {
			n = k
		}
	}
	if n == 0 {
		return 0, p, fmt.Errorf("published ref %s is no version's release commit", p)
	}
	h.pub, h.pubNum = p, n
	return n, p, nil
}

// Publish releases the current draft as version latest+1.
//
// Under the agent lock: a stale req.ExpectedDraftRevision returns
// *RevisionMismatchError; a draft tree equal to the source tree of the
// latest version returns *DraftUnchangedError; a gate's error, then a
// Compile error (when the gate did not hand over its own compile of the
// tree, see [ReleaseExtras]), is returned (wrapped) with nothing written. Otherwise it writes the compiled blob, the
// release trees, the release commit (whose only parent is the draft commit)
// and the annotated tag object, fsyncs them, creates refs/tags/v<n> (which
// must not exist), moves refs/heads/published by compare-and-swap, and
// calls then (if not nil) under the lock. Version numbers are contiguous
// from 1. An error from then is returned but the version stays.
func (s *Store) Publish(ctx context.Context, id string, req PublishRequest, then func(Version) error) (Version, error) {
	var out Version
	err := s.with(ctx, id, func(h *handle) error {
		if s.o.Compile == nil {
			return errors.New("no compile function")
		}
		head, err := h.draftHead()
		if err != nil {
			return err
		}
		if req.ExpectedDraftRevision != "" && req.ExpectedDraftRevision != head.Hash.String() {
			return &RevisionMismatchError{Current: head.Hash.String()}
		}
		latest := h.latest
		if latest > 0 {
			rc, err := h.releaseCommit(latest)
			if err != nil {
				return err
			}
			if len(rc.ParentHashes) > 0 {
				src, err := h.commit(rc.ParentHashes[0])
				if err != nil {
					return fmt.Errorf("source of v%d: %w", latest, err)
				}
				if src.TreeHash == head.TreeHash {
					return &DraftUnchangedError{Latest: latest}
				}
			}
		}
		draft := &gateRead{h: h, tree: head.TreeHash}
		var extras ReleaseExtras
		if req.Gate != nil {
			if extras, err = req.Gate(GateInput{Revision: head.Hash.String(), Tree: head.TreeHash.String(), read: draft}); err != nil {
				return fmt.Errorf("gate: %w", err)
			}
			if err := checkExtras(extras); err != nil {
				return err
			}
		}
		// The gate's compile of this tree, when it made one, is the
		// artifact: the tree is compiled once per publish, from the
		// changes since an earlier compile, and its files are not read.
		artifact, digest := extras.Artifact, extras.Digest
		if artifact == nil {
			digest = ""
			files, err := draft.all()
			if err != nil {
				return err
			}
			whole, err := s.o.Compile(files)
			if err != nil {
				return fmt.Errorf("compile: %w", err)
			}
			artifact = []Part{{Data: whole}}
		}
		// The digest is computed while the artifact is hashed and written.
		digested := make(chan string, 1)
		if digest != "" {
			digested <- digest
		} else {
			go func() {
				sum := sha256.New()
				for _, p := range artifact {
					sum.Write(p.Data)
				}
				digested <- "sha256:" + hex.EncodeToString(sum.Sum(nil))
			}()
		}
		n := latest + 1
		publisher := s.sig(req.Publisher)
		notes := cleanNotes(req.Notes)

		w := newWriteSet(h, s.o.Sync)
		defer w.discard()
		blob, err := w.putBlobParts(artifact)
		if err != nil {
			return err
		}
		centries := []object.TreeEntry{{Name: "agent.json", Mode: modeFile, Hash: blob}}
		for name, data := range extras.Files {
			h, err := w.putBlob(data)
			if err != nil {
				return err
			}
			centries = append(centries, object.TreeEntry{Name: name, Mode: modeFile, Hash: h})
		}
		ctree, err := w.putEntries(centries)
		if err != nil {
			return err
		}
		root, err := h.tree(head.TreeHash)
		if err != nil {
			return err
		}
		entries := make([]object.TreeEntry, 0, len(root.Entries)+1)
		for _, e := range root.Entries {
			if e.Name != compiledDir {
				entries = append(entries, e)
			}
		}
		entries = append(entries, object.TreeEntry{Name: compiledDir, Mode: filemode.Dir, Hash: ctree})
		rtree, err := w.putEntries(entries)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("Release v%d", n)
		if notes != "" {
			msg += "\n\n" + notes
		}
		rc, err := w.putCommit(rtree, []plumbing.Hash{head.Hash}, msg, publisher, publisher)
		if err != nil {
			return err
		}
		digest = <-digested
		tag, err := w.putTag(fmt.Sprintf("v%d", n), rc, tagMessage(n, notes, publisher, head.Hash, digest, extras.Trailers), publisher)
		if err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		oldPub, err := h.refHash(publishedRef)
		if err != nil {
			return err
		}
		// setRef with a zero old hash refuses an existing tag.
		if err := h.setRef(tagRef(n), tag, plumbing.ZeroHash, s.o.Sync); err != nil {
			// Someone else made the tag: refresh the cached number so the
			// next attempt picks the next free one.
			_ = h.loadLatest()
			return fmt.Errorf("tag v%d: %w", n, err)
		}
		h.latest = n
		s.afterWrite(id, h.dir, w.written)
		if err := h.setRef(publishedRef, rc, oldPub, s.o.Sync); err != nil {
			return fmt.Errorf("publish v%d: %w", n, err)
		}
		h.pub, h.pubNum = rc, n
		out = Version{
			Number:        n,
			Tag:           tagRef(n).String(),
			Commit:        rc.String(),
			DraftRevision: head.Hash.String(),
			Digest:        digest,
			Notes:         notes,
			PublishedBy:   publisher.Name,
			CreatedAt:     publisher.When,
		}
		for _, t := range extras.Trailers {
			if out.Trailers == nil {
				out.Trailers = map[string]string{}
			}
			out.Trailers[t.Key] = t.Value
		}
		if then != nil {
			return then(out)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("publish %s: %w", id, err)
	}
	return out, nil
}

// Rollback moves refs/heads/published to the release commit of version
// target (earlier or later than the current one) and returns the version
// it was at (0 if none). An unknown target returns ErrVersionNotFound; a
// stale expectedPublished returns *PublishedMismatchError. then (if not
// nil) runs under the agent lock after the ref moved; its error is returned
// but the move stays. Rolling back to the current version moves nothing
// and still calls then.
func (s *Store) Rollback(ctx context.Context, id string, target int, expectedPublished *int, then func(from, to int) error) (from int, err error) {
	err = s.with(ctx, id, func(h *handle) error {
		rc, err := h.releaseCommit(target)
		if err != nil {
			return err
		}
		cur, curHash, err := h.publishedNumber()
		if err != nil {
			return err
		}
		from = cur
		if expectedPublished != nil && *expectedPublished != cur {
			return &PublishedMismatchError{Current: cur}
		}
		if rc.Hash != curHash {
			if err := h.setRef(publishedRef, rc.Hash, curHash, s.o.Sync); err != nil {
				return err
			}
			h.pub, h.pubNum = rc.Hash, target
		}
		if then != nil {
			return then(from, target)
		}
		return nil
	})
	if err != nil {
		return from, fmt.Errorf("rollback %s to v%d: %w", id, target, err)
	}
	return from, nil
}

// Published returns the number of the live version, 0 if never published.
func (s *Store) Published(ctx context.Context, id string) (number int, err error) {
	err = s.with(ctx, id, func(h *handle) error {
		number, _, err = h.publishedNumber()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("published %s: %w", id, err)
	}
	return number, nil
}

// Latest returns the highest version number, 0 if none. It is kept in
// memory and costs no tag scan.
func (s *Store) Latest(ctx context.Context, id string) (number int, err error) {
	err = s.with(ctx, id, func(h *handle) error {
		number = h.latest
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("latest %s: %w", id, err)
	}
	return number, nil
}

// Version returns version n parsed from its tag, or ErrVersionNotFound.
func (s *Store) Version(ctx context.Context, id string, n int) (Version, error) {
	var v Version
	err := s.read(ctx, id, func(h *handle) (err error) {
		v, err = h.version(n)
		return err
	})
	if err != nil {
		return Version{}, fmt.Errorf("version %s v%d: %w", id, n, err)
	}
	return v, nil
}

// Versions returns every version, ascending. It reads every tag and is
// meant for startup reconciliation.
func (s *Store) Versions(ctx context.Context, id string) ([]Version, error) {
	var vs []Version
	err := s.read(ctx, id, func(h *handle) error {
		refs, err := listRefs(h.dir)
		if err != nil {
			return err
		}
		var nums []int
		for name := range refs {
			if n, ok := tagNumber(name); ok {
				nums = append(nums, n)
			}
		}
		sort.Ints(nums)
		for _, n := range nums {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := h.version(n)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("versions %s: %w", id, err)
	}
	return vs, nil
}
