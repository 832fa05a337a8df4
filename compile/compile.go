package compile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-playground/validator/v10"
)

// DefaultLanguage is the language of an agent whose agent.yaml sets none.
const DefaultLanguage = "en-US"

// Compile checks a draft tree (path → content, paths relative to the agent
// root with forward slashes) and builds its artifact. It is pure and
// deterministic: the same files give the same Result, whatever the map
// order, machine or time. A release tree's compiled/agent.json and
// compiled/tests.json are ignored, so recompiling a release gives the
// artifact it holds. Compile parses every file; a Compiler with a Cache
// parses only the files it has not seen.
func Compile(files map[string][]byte) Result {
	return NewCompiler(nil).Compile(files)
}

// Compiler compiles drafts like Compile, reusing the per-file results held
// in its Cache: after a one-file edit only that file is parsed again, and
// the cross-file checks and the encoding of the artifact reuse the rest.
// It gives exactly the Result Compile gives. A Compiler is safe for
// concurrent use.
//
// The Artifact and Tests of its Results share memory with the cache:
// callers must treat them as read-only.
type Compiler struct {
	cache *Cache
	val   *validator.Validate
}

// NewCompiler returns a Compiler using cache, which may be nil (then every
// file is parsed on every call, as Compile does).
func NewCompiler(cache *Cache) *Compiler {
	return &Compiler{cache: cache, val: newValidator()}
}

// fileResult is what compiling one file gives, whatever the other files.
type fileResult struct {
	pf    *parsedFile
	diags Diagnostics
	// warns are the warnings about the file alone (an empty article).
	warns Diagnostics
	// part is the file's canonical JSON inside the artifact (see
	// encodePart), with its deflated form; empty for tests and for files
	// with problems.
	part Part
}

// size estimates the memory r holds, in bytes.
func (r *fileResult) size() int64 {
	n := 1024 + len(r.pf.path) + len(r.part.Data) + len(r.part.Deflated)
	for _, d := range r.diags {
		n += 64 + len(d.Message)
	}
	for _, d := range r.warns {
		n += 64 + len(d.Message)
	}
	if r.pf.tree != nil {
		n += 2 * r.pf.source // the view and the tree hold about the file twice
	}
	return int64(n)
}

// file compiles one file, or takes it from the cache.
func (c *Compiler) file(kind Kind, slug, path string, data []byte) *fileResult {
	var k cacheKey
	if c.cache != nil {
		k = c.cache.key(path, data)
		if r := c.cache.get(k); r != nil {
			return r
		}
	}
	pf := parseFile(c.val, kind, slug, data)
	if a, ok := pf.view.(*Article); ok {
		a.Blob = BlobID(data)
	}
	r := &fileResult{pf: pf, diags: pf.diagnostics(), warns: fileWarnings(pf)}
	if len(r.diags) == 0 {
		part, err := encodePart(pf)
		if err != nil {
			// Views hold only JSON-encodable values; this would be a bug.
			r.diags = Diagnostics{{File: path, Code: CodeInvalidValue, Message: fmt.Sprintf("encode: %v", err)}}
		}
		if part != nil {
			r.part = deflatedPart(part)
		}
	}
	if c.cache != nil {
		c.cache.put(k, r)
	}
	return r
}

// Compile checks a draft tree and builds its artifact; see the function
// Compile.
func (c *Compiler) Compile(files map[string][]byte) Result {
	res := c.CompileDraft(files)
	if res.OK() {
		res.JSON = res.Encode()
		res.Digest = Digest(res.JSON)
	}
	return res
}

// CompileDraft is Compile without the artifact's bytes: the Result has
// everything but JSON and Digest (nil and ""), which Encode and Digest
// make when something needs them. A sandbox that only answers with the
// draft's responder never pays for encoding and hashing the artifact.
//
// The Result also keeps what CompileEdit needs to compile an edit of this
// draft.
func (c *Compiler) CompileDraft(files map[string][]byte) Result {
	paths := make([]string, 0, len(files))
	for p := range files {
		if p != ArtifactPath && p != TestsPath {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	srcs := make([]source, len(paths))
	for i, p := range paths {
		srcs[i] = c.source(p, files[p])
	}
	return c.finish(srcs, nil)
}

// CompileEdit compiles, as CompileDraft, the draft that prev's draft
// becomes once every path of changed has its new content and every path
// of removed is gone (a path in both is changed). Only the changed files
// are looked up in the cache or parsed; the rest of the work is a pass
// over prev's per-file results, so the cost follows the edit, not the
// size of the draft. ok is false when prev was not made by CompileDraft,
// CompileEdit or Compile (a zero Result): then nothing is compiled.
func (c *Compiler) CompileEdit(prev Result, changed map[string][]byte, removed []string) (res Result, ok bool) {
	if prev.state == nil {
		return Result{}, false
	}
	edits := make([]source, 0, len(changed))
	for p, data := range changed {
		if p != ArtifactPath && p != TestsPath {
			edits = append(edits, c.source(p, data))
		}
	}
	slices.SortFunc(edits, func(a, b source) int { return strings.Compare(a.path, b.path) })
	gone := make(map[string]bool, len(removed))
	for _, p := range removed {
		gone[p] = true
	}
	old := prev.state.sources
	srcs := make([]source, 0, len(old)+len(edits))
	// A kind whose files only changed content keeps its lists from prev,
	// patched where they changed (patch: slug → new result); one that
	// gained or lost a file has them rebuilt.
	patch := map[Kind]map[string]*fileResult{}
	rebuild := map[Kind]bool{}
	for i, j := 0, 0; i < len(old) || j < len(edits); {
		var cmp int
		switch {
		case i == len(old):
			cmp = 1
		case j == len(edits):
			cmp = -1
		default:
			cmp = strings.Compare(old[i].path, edits[j].path)
		}
		switch {
		case cmp < 0:
			if !gone[old[i].path] {
				srcs = append(srcs, old[i])
			} else if old[i].fr != nil {
				rebuild[old[i].kind] = true
			}
			i++
		case cmp > 0:
			srcs = append(srcs, edits[j])
			if edits[j].fr != nil {
				rebuild[edits[j].kind] = true
			}
			j++
		default:
			e := edits[j]
			srcs = append(srcs, e)
			if e.fr != nil && e.fr != old[i].fr {
				if patch[e.kind] == nil {
					patch[e.kind] = map[string]*fileResult{}
				}
				patch[e.kind][e.fr.pf.slug] = e.fr
			}
			i, j = i+1, j+1
		}
	}
	for kind := range rebuild {
		delete(patch, kind)
	}
	return c.finish(srcs, &edit{prev: prev.state, prevArt: prev.Artifact, patch: patch, rebuild: rebuild}), true
}

// edit is how CompileEdit's draft differs from the one it starts from,
// kind by kind (see finish).
type edit struct {
	prev    *draftState
	prevArt *Artifact // nil when prev did not compile cleanly
	patch   map[Kind]map[string]*fileResult
	rebuild map[Kind]bool
}

// reuses reports whether kind's lists are prev's, patched.
func (e *edit) reuses(kind Kind) bool {
	return e != nil && !e.rebuild[kind]
}

// source is one file of a compiled draft: its result, or the diagnostic
// of a path outside the draft format.
type source struct {
	path string
	size int // bytes of path and content
	kind Kind
	fr   *fileResult // nil when the path is invalid
	bad  *Diagnostic // when fr is nil
}

// source compiles the file at path p.
func (c *Compiler) source(p string, data []byte) source {
	s := source{path: p, size: len(p) + len(data)}
	kind, slug, err := ParsePath(p)
	if err != nil {
		s.bad = &Diagnostic{File: p, Code: CodeInvalidPath, Message: strings.TrimPrefix(err.Error(), ErrInvalidPath.Error()+" ")}
		return s
	}
	s.kind, s.fr = kind, c.file(kind, slug, p, data)
	return s
}

// draftState is what a Result keeps of its compile: every file's result
// (for CompileEdit) and the artifact's parts in order (for Encode). It is
// never modified once made.
type draftState struct {
	sources []source // sorted by path
	bytes   int      // of every path and content
	// kinds are the files of each kind (settings aside) in slug order,
	// for every kind that has files with a valid path.
	kinds    map[Kind]kindFiles
	settings *fileResult
}

// kindFiles are the files of one kind, in slug order.
type kindFiles struct {
	results []*fileResult
	parsed  []*parsedFile
}

// finish compiles a draft from the results of its files, in path order:
// the cross-file checks, the diagnostics and the artifact (not encoded).
// With an edit (from CompileEdit), each kind whose files only changed
// content takes its lists and views from the previous compile, patched,
// instead of gathering and sorting them again.
func (c *Compiler) finish(srcs []source, ed *edit) Result {
	res := Result{Errors: Diagnostics{}, Warnings: Diagnostics{}}
	st := &draftState{sources: srcs, kinds: map[Kind]kindFiles{}}
	res.state = st
	var settings *fileResult
	results := map[Kind][]*fileResult{}
	for _, s := range srcs {
		st.bytes += s.size
		if s.fr == nil {
			res.Errors = append(res.Errors, *s.bad)
			continue
		}
		switch {
		case s.kind == KindSettings:
			settings = s.fr
		case !ed.reuses(s.kind):
			results[s.kind] = append(results[s.kind], s.fr)
		}
		res.Errors = append(res.Errors, s.fr.diags...)
		res.Warnings = append(res.Warnings, s.fr.warns...)
	}
	for kind, rs := range results {
		// "a-b.md" sorts before "a.md" but slug "a" before "a-b".
		slugOrder := func(a, b *fileResult) int { return strings.Compare(a.pf.slug, b.pf.slug) }
		if !slices.IsSortedFunc(rs, slugOrder) {
			slices.SortFunc(rs, slugOrder)
		}
		pfs := make([]*parsedFile, len(rs))
		for i, r := range rs {
			pfs[i] = r.pf
		}
		st.kinds[kind] = kindFiles{results: rs, parsed: pfs}
	}
	if ed != nil {
		for kind, prev := range ed.prev.kinds {
			if ed.reuses(kind) {
				st.kinds[kind] = prev.patched(ed.patch[kind])
			}
		}
	}
	byKind := make(map[Kind][]*parsedFile, len(st.kinds))
	for kind, kf := range st.kinds {
		byKind[kind] = kf.parsed
	}
	if settings == nil {
		res.Errors = append(res.Errors, Diagnostic{File: SettingsPath, Code: CodeMissingSettings, Message: "agent.yaml is missing; it must set at least name"})
	}

	res.Errors = append(res.Errors, checkReferences(byKind[KindPlaybooks], byKind[KindSkills])...)
	res.Errors = append(res.Errors, checkPatternBudget(byKind[KindGuardrails])...)
	res.Errors = append(res.Errors, checkTestReferences(byKind[KindTests], byKind)...)
	res.Warnings = append(res.Warnings, lint(byKind)...)
	sortDiagnostics(res.Errors)
	sortDiagnostics(res.Warnings)
	if len(res.Errors) > 0 {
		return res
	}

	var prevArt *Artifact
	var patch map[Kind]map[string]*fileResult
	if ed != nil {
		prevArt, patch = ed.prevArt, ed.patch
	}
	kindViews := func(kind Kind, prev func(*Artifact) any) any {
		if prevArt != nil && ed.reuses(kind) {
			return patchViews(prev(prevArt), st.kinds[kind], patch[kind])
		}
		return nil
	}
	art := &Artifact{
		Format:     FormatVersion,
		Settings:   *settings.pf.view.(*Settings),
		Knowledge:  viewsOf[Article](byKind[KindKnowledge], kindViews(KindKnowledge, func(a *Artifact) any { return a.Knowledge })),
		Skills:     viewsOf[Skill](byKind[KindSkills], kindViews(KindSkills, func(a *Artifact) any { return a.Skills })),
		Guardrails: viewsOf[Guardrail](byKind[KindGuardrails], kindViews(KindGuardrails, func(a *Artifact) any { return a.Guardrails })),
		Playbooks:  viewsOf[Playbook](byKind[KindPlaybooks], kindViews(KindPlaybooks, func(a *Artifact) any { return a.Playbooks })),
	}
	if art.Settings.Language == "" {
		art.Settings.Language = DefaultLanguage
	}
	res.Artifact = art
	st.settings = settings
	if tests := byKind[KindTests]; len(tests) > 0 {
		res.Tests = views[Test](tests)
	}
	return res
}

// patched returns the lists of kf with the files of patch (by slug, each
// already in kf) in place of the old ones; kf is not modified.
func (kf kindFiles) patched(patch map[string]*fileResult) kindFiles {
	if len(patch) == 0 {
		return kf
	}
	out := kindFiles{results: slices.Clone(kf.results), parsed: slices.Clone(kf.parsed)}
	for slug, fr := range patch {
		i := kf.index(slug)
		out.results[i], out.parsed[i] = fr, fr.pf
	}
	return out
}

// index returns the position of slug in kf, which must have it.
func (kf kindFiles) index(slug string) int {
	i, _ := slices.BinarySearchFunc(kf.parsed, slug, func(pf *parsedFile, s string) int { return strings.Compare(pf.slug, s) })
	return i
}

// patchViews returns a copy of prev (a []T of the previous artifact, the
// views of kf's files before patch) with the patched files' views; a
// patch has the kind's views only when every file parsed cleanly, which
// holds once the compile has no errors.
func patchViews(prev any, kf kindFiles, patch map[string]*fileResult) any {
	switch p := prev.(type) {
	case []Article:
		return patchSlice(p, kf, patch)
	case []Skill:
		return patchSlice(p, kf, patch)
	case []Guardrail:
		return patchSlice(p, kf, patch)
	case []Playbook:
		return patchSlice(p, kf, patch)
	}
	return nil
}

func patchSlice[T any](prev []T, kf kindFiles, patch map[string]*fileResult) []T {
	out := slices.Clone(prev)
	for slug, fr := range patch {
		out[kf.index(slug)] = *fr.pf.view.(*T)
	}
	return out
}

// viewsOf returns patched (from patchViews) when it is a []T, else the
// views of pfs.
func viewsOf[T any](pfs []*parsedFile, patched any) []T {
	if v, ok := patched.([]T); ok {
		return v
	}
	return views[T](pfs)
}

// Encode returns the artifact's bytes, compiled/agent.json: r.JSON when
// set, else assembled from the per-file parts r keeps (a new slice each
// call, not kept). It returns nil when r has errors or was not made by a
// Compiler.
func (r Result) Encode() []byte {
	if r.JSON != nil {
		return r.JSON
	}
	files, ok := r.artifactFiles()
	if !ok {
		return nil
	}
	n := 0
	artifactParts(r.state.settings.part, files, func(p Part) { n += len(p.Data) })
	b := make([]byte, 0, n)
	artifactParts(r.state.settings.part, files, func(p Part) { b = append(b, p.Data...) })
	return b
}

// EncodeParts is Encode in pieces, whose Data in order is the artifact:
// the per-file parts r keeps (shared: read only), with their deflated
// form, and the text between them. A writer of the artifact (hashing,
// compressing) reads them in turn instead of a copy of the whole. nil
// when r has errors or was not made by a Compiler.
func (r Result) EncodeParts() []Part {
	if r.JSON != nil {
		return []Part{{Data: r.JSON}}
	}
	files, ok := r.artifactFiles()
	if !ok {
		return nil
	}
	n := 16
	for _, rs := range files {
		n += 2 * len(rs)
	}
	out := make([]Part, 0, n)
	artifactParts(r.state.settings.part, files, func(p Part) { out = append(out, p) })
	return out
}

// artifactFiles returns the results of the artifact's files by kind, in
// slug order; false when r has no artifact to encode.
func (r Result) artifactFiles() (map[Kind][]*fileResult, bool) {
	if !r.OK() || r.state == nil || r.state.settings == nil {
		return nil, false
	}
	files := make(map[Kind][]*fileResult, len(r.state.kinds))
	for kind, kf := range r.state.kinds {
		files[kind] = kf.results
	}
	return files, true
}

// SourceBytes is the size of the compiled draft: the bytes of every path
// and file content (0 for a Result not made by a Compiler).
func (r Result) SourceBytes() int {
	if r.state == nil {
		return 0
	}
	return r.state.bytes
}

// views returns the parsed views of files (in slug order), never nil.
func views[T any](pfs []*parsedFile) []T {
	out := make([]T, 0, len(pfs))
	for _, pf := range pfs {
		out = append(out, *pf.view.(*T))
	}
	return out
}

// diag makes a diagnostic for the value at ptr in pf.
func (pf *parsedFile) diag(ptr, code, format string, args ...any) Diagnostic {
	return Diagnostic{File: pf.path, Line: pf.tree.lineAt(ptr), Code: code, Message: fmt.Sprintf(format, args...)}
}

// checkReferences checks the skill steps of playbooks against the skills:
// the skill exists, with names only declared parameters and gives every
// required one.
func checkReferences(playbooks, skills []*parsedFile) Diagnostics {
	var ds Diagnostics
	bySlug := map[string]*parsedFile{}
	for _, s := range skills {
		bySlug[s.slug] = s
	}
	for _, pf := range playbooks {
		p, ok := pf.view.(*Playbook)
		if !ok {
			continue
		}
		for i, st := range p.Steps {
			if st.Skill == "" {
				continue
			}
			sp := fmt.Sprintf("/steps/%d", i)
			sf, ok := bySlug[st.Skill]
			if !ok {
				ds = append(ds, pf.diag(sp+"/skill", CodeUnknownSkill, "skill %q does not exist (no skills/%s.yaml)", st.Skill, st.Skill))
				continue
			}
			sk, ok := sf.view.(*Skill)
			if !ok {
				continue // the skill file is broken and reported on its own
			}
			props := skillProperties(sk)
			for _, k := range sortedKeys(st.With) {
				if !props[k] {
					ds = append(ds, pf.diag(sp+"/with/"+escapePointer(k), CodeUnknownParameter, "skill %q has no parameter %q", st.Skill, k))
				}
			}
			for _, req := range skillRequired(sk) {
				if _, ok := st.With[req]; !ok {
					at := sp + "/with"
					if st.With == nil {
						at = sp + "/skill"
					}
					ds = append(ds, pf.diag(at, CodeMissingParameter, "skill %q requires parameter %q in with", st.Skill, req))
				}
			}
		}
	}
	return ds
}

// checkPatternBudget reports the guardrail (in slug order) whose patterns
// take the agent's RE2 programs over MaxAgentPatternProgram.
func checkPatternBudget(guardrails []*parsedFile) Diagnostics {
	total := 0
	for _, pf := range guardrails {
		total += pf.patternInsts
		if total > MaxAgentPatternProgram {
			return Diagnostics{pf.diag("", CodeLimitExceeded, "the guardrail patterns of this agent compile to %d RE2 instructions up to this file; at most %d are allowed in all", total, MaxAgentPatternProgram)}
		}
	}
	return nil
}

// lint finds the warnings about several files: unused skills, duplicate
// triggers (those about one file, an empty article, come with its result).
func lint(byKind map[Kind][]*parsedFile) Diagnostics {
	var ds Diagnostics
	used := map[string]bool{}
	type seenTrigger struct {
		playbook string
		index    int
	}
	triggers := map[string]seenTrigger{}
	for _, pf := range byKind[KindPlaybooks] {
		p, ok := pf.view.(*Playbook)
		if !ok {
			continue
		}
		for _, st := range p.Steps {
			if st.Skill != "" {
				used[st.Skill] = true
			}
		}
		for i, t := range p.Triggers {
			key := strings.Join(strings.Fields(strings.ToLower(t)), " ")
			if key == "" {
				continue
			}
			if first, dup := triggers[key]; dup {
				where := fmt.Sprintf("playbook %q", first.playbook)
				if first.playbook == pf.slug {
					where = fmt.Sprintf("triggers[%d] of this playbook", first.index)
				}
				ds = append(ds, pf.diag(fmt.Sprintf("/triggers/%d", i), CodeDuplicateTrigger, "trigger %q is also a trigger of %s", t, where))
				continue
			}
			triggers[key] = seenTrigger{playbook: pf.slug, index: i}
		}
	}
	for _, sf := range byKind[KindSkills] {
		if sf.view != nil && !used[sf.slug] {
			ds = append(ds, Diagnostic{File: sf.path, Line: 1, Code: CodeUnusedSkill, Message: fmt.Sprintf("skill %q is not used by any playbook", sf.slug)})
		}
	}
	return slices.Clip(ds)
}

// fileWarnings are the warnings about one file that do not depend on the
// others (kept with its cached result): an empty article.
func fileWarnings(pf *parsedFile) Diagnostics {
	if a, ok := pf.view.(*Article); ok && strings.TrimSpace(a.Content) == "" {
		return Diagnostics{{File: pf.path, Line: 1, Code: CodeEmptyArticle, Message: fmt.Sprintf("knowledge article %q has no content", pf.slug)}}
	}
	return nil
}

// bySlug returns the file of pfs (sorted by slug) with slug, or nil.
func bySlug(pfs []*parsedFile, slug string) *parsedFile {
	i, ok := slices.BinarySearchFunc(pfs, slug, func(pf *parsedFile, s string) int { return strings.Compare(pf.slug, s) })
	if !ok {
		return nil
	}
	return pfs[i]
}
