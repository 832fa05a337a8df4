package server

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

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
func (s *Server) resolveSide(ctx context.Context, a store.Agent, ref string, emptyIfUnpublished bool) (side, error) {
	switch ref {
	case "draft":
		return side{label: "draft", rev: repo.Rev{Kind: repo.RevDraft}}, nil
	case "published":
		if a.Published == 0 && emptyIfUnpublished {
			return side{label: nil, rev: repo.Rev{Kind: repo.RevEmpty}}, nil
		}
	}
	v, err := s.resolveVersion(ctx, a, ref)
	if err != nil {
		return side{}, err
	}
	return side{label: versionID(v.Number), rev: repo.Rev{Kind: repo.RevVersion, Number: v.Number}}, nil
}

// defaultBase is the base the contract names for a target.
func defaultBase(a store.Agent, target side) side {
	switch target.rev.Kind {
	case repo.RevDraft:
		if a.Published > 0 {
			return side{label: versionID(a.Published), rev: repo.Rev{Kind: repo.RevVersion, Number: a.Published}}
		}
	case repo.RevVersion:
		if n := target.rev.Number - 1; n > 0 {
			return side{label: versionID(n), rev: repo.Rev{Kind: repo.RevVersion, Number: n}}
		}
	}
	return side{label: nil, rev: repo.Rev{Kind: repo.RevEmpty}}
}

type diffStats struct {
	Files     int `json:"files"`
	Additions int `json:"additions"`
	Deletions int `json:"deletions"`
}

type diffFileJSON struct {
	Path      string `json:"path"`
	OldPath   string `json:"oldPath,omitempty"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Binary    bool   `json:"binary"`
	Patch     string `json:"patch"`
}

// kindChanges is the semantic change list of one kind.
type kindChanges struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// diffSummary is the semantic change list; Settings reports whether
// agent.yaml changed.
type diffSummary struct {
	Settings   bool        `json:"settings"`
	Knowledge  kindChanges `json:"knowledge"`
	Skills     kindChanges `json:"skills"`
	Guardrails kindChanges `json:"guardrails"`
	Playbooks  kindChanges `json:"playbooks"`
	Tests      kindChanges `json:"tests"`
}

// summarize derives the semantic change list from a file diff.
func summarize(files []repo.FileDiff) diffSummary {
	sum := diffSummary{}
	kinds := map[compile.Kind]*kindChanges{
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

func statsOf(d repo.Diff) diffStats {
	return diffStats{Files: len(d.Files), Additions: d.Additions, Deletions: d.Deletions}
}

func (s *Server) diff(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	format := c.Query("format")
	switch format {
	case "", "json", "patch":
	default:
		fail(c, problem(400, "invalid_request", "format must be json or patch, got %q", format))
		return
	}
	if strings.Contains(c.GetHeader("Accept"), "text/x-diff") || strings.Contains(c.GetHeader("Accept"), "text/x-patch") {
		if format == "" {
			format = "patch"
		}
	}
	pathsMode := c.Query("paths")
	if pathsMode != "" && pathsMode != "source" && pathsMode != "all" {
		fail(c, problem(400, "invalid_request", "paths must be source or all, got %q", pathsMode))
		return
	}
	target, err := s.resolveSide(ctx, a, c.Param("v"), false)
	if err != nil {
		fail(c, err)
		return
	}
	base := defaultBase(a, target)
	if b, ok := c.GetQuery("base"); ok {
		if base, err = s.resolveSide(ctx, a, b, true); err != nil {
			fail(c, err)
			return
		}
	}
	sourceOnly := pathsMode == "source" || base.rev.Kind == repo.RevDraft || target.rev.Kind == repo.RevDraft
	d, err := s.repos.Diff(ctx, a.ID, base.rev, target.rev, sourceOnly)
	if err != nil {
		fail(c, err)
		return
	}
	if format == "patch" {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/x-diff; charset=utf-8", d.Patch)
		return
	}
	files := make([]diffFileJSON, 0, len(d.Files))
	for _, f := range d.Files {
		files = append(files, diffFileJSON{Path: f.Path, OldPath: f.OldPath, Status: f.Status, Additions: f.Additions, Deletions: f.Deletions, Binary: f.Binary, Patch: f.Patch})
	}
	writeJSON(c, 200, gin.H{
		"base": base.label, "target": target.label,
		"baseCommit": nullableString(d.BaseCommit), "targetCommit": nullableString(d.TargetCommit),
		"stats": statsOf(d), "files": files, "summary": summarize(d.Files),
	})
}

type compileReport struct {
	OK       bool                 `json:"ok"`
	Errors   []compile.Diagnostic `json:"errors"`
	Warnings []compile.Diagnostic `json:"warnings"`
}

func (s *Server) prepublishReport(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	rev, tree, files, err := s.repos.DraftFiles(ctx, a.ID)
	if err != nil {
		fail(c, err)
		return
	}
	res := s.sandbox.compiled(tree, files)
	if !res.OK() {
		s.metrics.compileFailures.Inc()
	}
	blockers := []string{}
	if !res.OK() {
		blockers = append(blockers, "compile_failed")
	}
	if a.Latest > 0 {
		same, err := s.repos.Diff(ctx, a.ID, repo.Rev{Kind: repo.RevVersion, Number: a.Latest}, repo.Rev{Kind: repo.RevDraft}, true)
		if err != nil {
			fail(c, err)
			return
		}
		if len(same.Files) == 0 {
			blockers = append(blockers, "draft_unchanged")
		}
	}
	base := repo.Rev{Kind: repo.RevEmpty}
	if a.Published > 0 {
		base = repo.Rev{Kind: repo.RevVersion, Number: a.Published}
	}
	changes, err := s.repos.Diff(ctx, a.ID, base, repo.Rev{Kind: repo.RevDraft}, true)
	if err != nil {
		fail(c, err)
		return
	}
	var digest any
	if res.OK() {
		digest = res.Digest
	}
	writeJSON(c, 200, gin.H{
		"agentId":        a.ID,
		"draftRevision":  rev,
		"basedOn":        nullableVersion(a.Published),
		"latestVersion":  nullableVersion(a.Latest),
		"nextVersion":    versionID(a.Latest + 1),
		"publishable":    len(blockers) == 0,
		"blockers":       blockers,
		"compile":        compileReport{OK: res.OK(), Errors: diagList(res.Errors), Warnings: diagList(res.Warnings)},
		"compiledDigest": digest,
		"changes":        gin.H{"stats": statsOf(changes), "summary": summarize(changes.Files)},
	})
}
