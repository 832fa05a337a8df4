package backend

import (
	"fmt"

	"context"
	"sort"

	"github.com/maypok86/otter/v2"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// side is one resolved end of a diff.
type side struct {
	label any // "v3", "draft", or nil for the empty tree
	rev   repo.Rev
}

// resolveSide parses "v<n>", "published" or "draft".
func (b *Backend) resolveSide(ctx context.Context, a store.Agent, ref string, emptyIfUnpublished bool) (side, error) {
	switch ref {
	case "draft":
		return side{label: "draft", rev: repo.Rev{Kind: repo.RevDraft}}, nil
	case "published":
		if a.Published == 0 && emptyIfUnpublished {
			return side{label: nil, rev: repo.Rev{Kind: repo.RevEmpty}}, nil
		}
	}
	v, err := b.resolveVersion(ctx, a, ref)
	if err != nil {
		return side{}, err
	}
	return side{label: VersionID(v.Number), rev: repo.Rev{Kind: repo.RevVersion, Number: v.Number}}, nil
}

// defaultBase is the base the contract names for a target.
func defaultBase(a store.Agent, target side) side {
	switch target.rev.Kind {
	case repo.RevDraft:
		if a.Published > 0 {
			return side{label: VersionID(a.Published), rev: repo.Rev{Kind: repo.RevVersion, Number: a.Published}}
		}
	case repo.RevVersion:
		if n := target.rev.Number - 1; n > 0 {
			return side{label: VersionID(n), rev: repo.Rev{Kind: repo.RevVersion, Number: n}}
		}
	}
	return side{label: nil, rev: repo.Rev{Kind: repo.RevEmpty}}
}

// DiffStats counts a diff's files and lines.
type DiffStats struct {
	Files     int `json:"files"`
	Additions int `json:"additions"`
	Deletions int `json:"deletions"`
}

// DiffFile is one file of a diff.
type DiffFile struct {
	Path      string `json:"path"`
	OldPath   string `json:"oldPath,omitempty"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Binary    bool   `json:"binary"`
	Patch     string `json:"patch"`
	// Truncated reports that the exact line diff of this file was over
	// the diff budget: the counts cover the whole changed region, Patch
	// is empty, and ?format=patch serves a whole-region patch (still
	// exact for git apply).
	Truncated bool `json:"truncated,omitempty"`
}

// KindChanges is the semantic change list of one kind.
type KindChanges struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// DiffSummary is the semantic change list; Settings reports whether
// agent.yaml changed.
type DiffSummary struct {
	Settings   bool        `json:"settings"`
	Knowledge  KindChanges `json:"knowledge"`
	Skills     KindChanges `json:"skills"`
	Guardrails KindChanges `json:"guardrails"`
	Playbooks  KindChanges `json:"playbooks"`
	Tests      KindChanges `json:"tests"`
}

// summarize derives the semantic change list from a file diff.
func summarize(files []repo.FileDiff) DiffSummary {
	sum := DiffSummary{}
	kinds := map[compile.Kind]*KindChanges{
		compile.KindKnowledge: &sum.Knowledge, compile.KindSkills: &sum.Skills,
		compile.KindGuardrails: &sum.Guardrails, compile.KindPlaybooks: &sum.Playbooks,
		compile.KindTests: &sum.Tests,
	}
	add := func(p, how string) {
		kind, slug, err := compile.ParsePath(p)
		if err != nil {
			return
		}
		if kind == compile.KindSettings {
			sum.Settings = true
			return
		}
		kc := kinds[kind]
		if kc == nil {
			return
		}
		switch how {
		case "added":
			kc.Added = append(kc.Added, slug)
		case "deleted":
			kc.Removed = append(kc.Removed, slug)
		default:
			kc.Modified = append(kc.Modified, slug)
		}
	}
	for _, f := range files {
		if f.Status == "renamed" {
			add(f.OldPath, "deleted")
			add(f.Path, "added")
			continue
		}
		add(f.Path, f.Status)
	}
	for _, kc := range kinds {
		for _, l := range []*[]string{&kc.Added, &kc.Removed, &kc.Modified} {
			if *l == nil {
				*l = []string{}
			}
			sort.Strings(*l)
		}
	}
	return sum
}

func statsOf(d repo.Diff) DiffStats {
	return DiffStats{Files: len(d.Files), Additions: d.Additions, Deletions: d.Deletions}
}

// DiffInput names the two sides of a diff.
type DiffInput struct {
	// Target is "v<n>", "published" or "draft".
	Target string
	// Base is the same, or empty for the contract's default base.
	Base string
	// SourceOnly leaves compiled/ out (always so when the draft is a side).
	SourceOnly bool
}

// Diff is the diff resource (CONTRACT §5); Patch is the whole unified diff.
type Diff struct {
	Base         any         `json:"base"`
	Target       any         `json:"target"`
	BaseCommit   any         `json:"baseCommit"`
	TargetCommit any         `json:"targetCommit"`
	Stats        DiffStats   `json:"stats"`
	Files        []DiffFile  `json:"files"`
	Summary      DiffSummary `json:"summary"`
	// Truncated reports that some file is Truncated.
	Truncated bool   `json:"truncated"`
	Patch     []byte `json:"-"`
}

// Diff compares two versions, the draft or the published version.
func (b *Backend) Diff(ctx context.Context, p Principal, agentID string, in DiffInput) (Diff, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Diff{}, err
	}
	target, err := b.resolveSide(ctx, a, in.Target, false)
	if err != nil {
		return Diff{}, err
	}
	base := defaultBase(a, target)
	if in.Base != "" {
		if base, err = b.resolveSide(ctx, a, in.Base, true); err != nil {
			return Diff{}, err
		}
	}
	sourceOnly := in.SourceOnly || base.rev.Kind == repo.RevDraft || target.rev.Kind == repo.RevDraft
	d, err := b.repoDiff(ctx, a.ID, base.rev, target.rev, sourceOnly)
	if err != nil {
		return Diff{}, err
	}
	files := make([]DiffFile, 0, len(d.Files))
	for _, f := range d.Files {
		patch := f.Patch
		if f.Truncated {
			// Over the diff budget: the JSON leaves the (whole-region)
			// patch out; ?format=patch still serves it, exact for git apply.
			patch = ""
		}
		files = append(files, DiffFile{Path: f.Path, OldPath: f.OldPath, Status: f.Status, Additions: f.Additions, Deletions: f.Deletions, Binary: f.Binary, Patch: patch, Truncated: f.Truncated})
	}
	return Diff{
		Base: base.label, Target: target.label,
		BaseCommit: NullableString(d.BaseCommit), TargetCommit: NullableString(d.TargetCommit),
		Stats: statsOf(d), Files: files, Summary: summarize(d.Files), Truncated: d.Truncated, Patch: d.Patch,
	}, nil
}

// repoDiff is repos.Diff, kept in memory when neither side is the draft:
// versions never change, so asking again (the review page, a client
// polling) costs nothing.
func (b *Backend) repoDiff(ctx context.Context, agentID string, base, target repo.Rev, sourceOnly bool) (repo.Diff, error) {
	if base.Kind == repo.RevDraft || target.Kind == repo.RevDraft {
		return b.repos.Diff(ctx, agentID, base, target, sourceOnly)
	}
	key := fmt.Sprintf("%s|%d:%d|%d:%d|%t", agentID, base.Kind, base.Number, target.Kind, target.Number, sourceOnly)
	return b.cache.diffs.Get(ctx, key, otter.LoaderFunc[string, repo.Diff](func(ctx context.Context, _ string) (repo.Diff, error) {
		return b.repos.Diff(ctx, agentID, base, target, sourceOnly)
	}))
}

// CompileReport is the compile section of the pre-publish report.
type CompileReport struct {
	OK       bool                 `json:"ok"`
	Errors   []compile.Diagnostic `json:"errors"`
	Warnings []compile.Diagnostic `json:"warnings"`
}

// Changes is the change section of the pre-publish report.
type Changes struct {
	Stats   DiffStats   `json:"stats"`
	Summary DiffSummary `json:"summary"`
}

// Report is the pre-publish report (CONTRACT §5).
type Report struct {
	AgentID        string        `json:"agentId"`
	DraftRevision  string        `json:"draftRevision"`
	BasedOn        any           `json:"basedOn"`
	LatestVersion  any           `json:"latestVersion"`
	NextVersion    string        `json:"nextVersion"`
	Publishable    bool          `json:"publishable"`
	Blockers       []string      `json:"blockers"`
	Compile        CompileReport `json:"compile"`
	CompiledDigest any           `json:"compiledDigest"`
	Changes        Changes       `json:"changes"`
	// Tests is the run of the draft's tests (null when it has none or
	// does not compile).
	Tests *ReportTests `json:"tests"`
}

// Report is what publishing the draft now would do.
func (b *Backend) Report(ctx context.Context, p Principal, agentID string) (Report, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Report{}, err
	}
	rev, _, cd, err := b.currentDraft(ctx, a.ID)
	if err != nil {
		return Report{}, err
	}
	res := cd.result
	if !res.OK() {
		b.metrics.compileFailures.Inc()
	}
	blockers := []string{}
	if !res.OK() {
		blockers = append(blockers, "compile_failed")
	}
	tests, err := b.reportTests(ctx, a.ID, rev, cd)
	if err != nil {
		return Report{}, err
	}
	if tests != nil && tests.Failed > 0 {
		blockers = append(blockers, "tests_failed")
	}
	if a.Latest > 0 {
		same, err := b.repos.DiffStat(ctx, a.ID, repo.Rev{Kind: repo.RevVersion, Number: a.Latest}, repo.Rev{Kind: repo.RevDraft}, true)
		if err != nil {
			return Report{}, err
		}
		if len(same.Files) == 0 {
			blockers = append(blockers, "draft_unchanged")
		}
	}
	base := repo.Rev{Kind: repo.RevEmpty}
	if a.Published > 0 {
		base = repo.Rev{Kind: repo.RevVersion, Number: a.Published}
	}
	changes, err := b.repos.DiffStat(ctx, a.ID, base, repo.Rev{Kind: repo.RevDraft}, true)
	if err != nil {
		return Report{}, err
	}
	var digest any
	if res.OK() {
		digest = b.cache.artifactDigest(cd)
	}
	return Report{
		AgentID: a.ID, DraftRevision: rev, BasedOn: nullableVersion(a.Published), LatestVersion: nullableVersion(a.Latest),
		NextVersion: VersionID(a.Latest + 1), Publishable: len(blockers) == 0, Blockers: blockers,
		Compile:        CompileReport{OK: res.OK(), Errors: diagList(res.Errors), Warnings: diagList(res.Warnings)},
		CompiledDigest: digest,
		Changes:        Changes{Stats: statsOf(changes), Summary: summarize(changes.Files)},
		Tests:          tests,
	}, nil
}
