package repo

import (
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Signature identifies who made a commit, tag or publish.
type Signature struct {
	Name, Email string
	When        time.Time // zero means Options.Now()
}

// Commit describes one commit of refs/heads/draft.
type Commit struct {
	Revision string // commit id
	Message  string // without the trailing newline git stores
	Author   Signature
	Paths    []string // paths changed vs the first parent (all paths for the root commit), sorted
	// Unchanged reports that CommitDraft made no commit because the change
	// set left the draft tree identical; Revision is then the current head.
	Unchanged bool
}

// File is one file of a tree.
type File struct {
	Path string
	Size int64
	Blob string // blob id
}

// Draft describes the head of refs/heads/draft.
type Draft struct {
	Revision  string
	Tree      string
	UpdatedAt time.Time // committer time of the head commit
	Files     []File    // sorted by path
}

// Change sets (Content) or removes (Delete) one draft file.
type Change struct {
	Path    string
	Content []byte
	Delete  bool
}

// CommitRequest is one atomic change set on the draft.
type CommitRequest struct {
	ExpectedRevision string // "" means don't check
	Changes          []Change
	Message          string
	Author           Signature
}

// Version is one published version, parsed from its annotated tag.
type Version struct {
	Number        int
	Tag           string // "refs/tags/v3"
	Commit        string // release commit id
	DraftRevision string // the draft commit the release was compiled from
	Digest        string // "sha256:<hex>" of compiled/agent.json
	Notes         string
	PublishedBy   string // the publisher's name
	CreatedAt     time.Time
	// Trailers are the tag message's trailers other than Publisher,
	// Draft-Revision and Compiled-Digest (those a Gate added), by key;
	// nil when there are none.
	Trailers map[string]string
}

// PublishRequest asks Publish to release the current draft.
type PublishRequest struct {
	ExpectedDraftRevision string // "" means don't check
	Notes                 string
	Publisher             Signature
	// Gate, when set, runs under the agent lock once the draft compiled,
	// on exactly the draft being frozen. Its error aborts the publish with
	// nothing written (returned wrapped, so errors.As finds it); what it
	// returns is added to the release.
	Gate func(GateInput) (ReleaseExtras, error)
}

// GateInput is the draft a publish is about to freeze. Its methods read
// the draft under the agent lock: they may be called only while the Gate
// runs.
type GateInput struct {
	Revision string // draft commit id
	Tree     string // its tree id

	read *gateRead
}

// gateRead reads the draft for a Gate, and its files once for the Gate
// and Publish.
type gateRead struct {
	h     *handle
	tree  plumbing.Hash
	files map[string][]byte
}

// Files returns the draft's files, as Publish compiles them when the gate
// hands over no artifact (shared with the object cache: not to be
// modified).
func (g GateInput) Files() (map[string][]byte, error) {
	return g.read.all()
}

// Changes is Store.TreeChanges from tree from (of this repository) to the
// draft's tree: what a gate compiling the draft from an earlier compile
// reads instead of every file.
func (g GateInput) Changes(from string) (changed map[string][]byte, removed []string, err error) {
	fh, ok := parseTreeID(from)
	if !ok {
		return nil, nil, fmt.Errorf("changes: bad tree id %q", from)
	}
	return g.read.h.changes(fh, g.read.tree)
}

func (r *gateRead) all() (map[string][]byte, error) {
	if r.files == nil {
		files, err := r.h.readAll(r.tree, "")
		if err != nil {
			return nil, err
		}
		r.files = files
	}
	return r.files, nil
}

// ReleaseExtras is what a Gate adds to a release.
type ReleaseExtras struct {
	// Files are written into the release tree's compiled/ directory by
	// name (e.g. "tests.json"); a name must be a plain file name other
	// than agent.json.
	Files map[string][]byte
	// Artifact, when not nil, is compiled/agent.json as the gate already
	// compiled it from the draft's files (GateInput.Files): its bytes are
	// the Data of these parts in turn (never assembled: hashing and
	// compressing read them one by one, and the Deflated ones are copied
	// into the loose object as they are). Digest is its "sha256:<hex>"
	// ("" to have it computed while the artifact is written). Publish then
	// neither reads nor compiles the tree. The gate must have compiled
	// exactly those files with the store's compiler.
	Artifact []Part
	Digest   string
	// Trailers are appended, in order, to the tag message's trailers.
	// A key is a token without spaces or colons, not one of the standard
	// three; a value is one line.
	Trailers []Trailer
}

// Part is a piece of a blob's content.
type Part struct {
	// Data is the piece's bytes (not modified).
	Data []byte
	// Deflated, when not nil, is Data as raw deflate (RFC 1951) blocks,
	// none of them final, ending on a byte boundary and referring to
	// nothing before them, and Adler32 is Data's Adler-32: the loose
	// object's zlib stream copies them instead of compressing Data.
	Deflated []byte
	Adler32  uint32
}

// Trailer is one "Key: value" line of a tag message.
type Trailer struct {
	Key, Value string
}

// RevKind says which tree a Rev names.
type RevKind int

const (
	// RevEmpty names the empty tree.
	RevEmpty RevKind = iota
	// RevDraft names the tree of refs/heads/draft.
	RevDraft
	// RevVersion names the release tree of version Rev.Number.
	RevVersion
)

// Rev names a tree to read or diff: a version number, the draft, or the
// empty tree.
type Rev struct {
	Kind   RevKind
	Number int // for RevVersion
}

// Diff is the difference between two trees.
type Diff struct {
	BaseCommit, TargetCommit string // "" for the empty tree
	Files                    []FileDiff
	Additions, Deletions     int
	Patch                    []byte // unified diff of all files, as git writes it
	// Truncated reports that some file's exact line diff was over
	// Options.DiffBudget (see FileDiff.Truncated).
	Truncated bool
}

// FileDiff is the difference of one path.
type FileDiff struct {
	Path, OldPath        string
	Status               string // added|modified|deleted|renamed
	Additions, Deletions int
	Binary               bool
	Patch                string // this file's section of Diff.Patch
	// Truncated reports that the exact line diff was over budget: the
	// patch replaces the whole changed region (between the lines common
	// to the start and end of both sides) and still applies exactly;
	// Additions and Deletions count every line of that region.
	Truncated bool
}
