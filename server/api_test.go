package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+tb.TempDir(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "git %s\n%s", strings.Join(args, " "), out)
	return string(out)
}

func TestReleaseFlow(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/agents", e.admin, map[string]any{"name": "Acme Support", "description": "front desk"})
	a := r.json(t)
	id := str(t, a, "id")
	assert.Regexp(t, `^agt_[a-z2-7]{20}$`, id, "id: want agt_ + 20 base32")
	assert.Nil(t, a["published"], "new agent published")
	assert.Nil(t, a["latestVersion"], "new agent latestVersion")
	assert.Equal(t, "/agents/"+id, r.Header.Get("Location"), "Location")
	assert.True(t, strings.HasSuffix(str(t, a, "cloneUrl"), "/git/"+id+".git"), "cloneUrl=%v", a["cloneUrl"])
	assert.Regexp(t, hex40, obj(t, a, "draft")["revision"], "draft revision")

	rev := e.loadFixture(id, "acme-support")
	d := e.must(200, "GET", "/agents/"+id+"/draft", e.reader, nil)
	assert.Equal(t, `"`+rev+`"`, d.Header.Get("ETag"), "draft ETag")
	assert.GreaterOrEqual(t, len(arr(t, d.json(t), "files")), 13, "draft files, want the fixture's")

	rep := e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	assert.Equal(t, true, rep["publishable"], "report %v", rep)
	assert.Equal(t, "v1", rep["nextVersion"], "report %v", rep)
	assert.Nil(t, rep["basedOn"], "report %v", rep)
	assert.Equal(t, rev, rep["draftRevision"], "report %v", rep)

	pub := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "first", "expectedDraftRevision": rep["draftRevision"]})
	v1 := pub.json(t)
	assert.Equal(t, "/agents/"+id+"/versions/v1", pub.Header.Get("Location"), "publish Location")
	assert.Equal(t, "v1", v1["id"], "publish: %s", pub.body)
	assert.Equal(t, 1.0, v1["number"], "publish: %s", pub.body)
	assert.Equal(t, "refs/tags/v1", v1["tag"], "publish: %s", pub.body)
	assert.Equal(t, true, v1["published"], "publish: %s", pub.body)
	assert.Equal(t, rev, v1["draftRevision"], "publish: %s", pub.body)
	assert.Equal(t, "first", v1["notes"], "publish: %s", pub.body)
	assert.True(t, strings.HasPrefix(str(t, v1, "compiledDigest"), "sha256:"), "digest %v", v1["compiledDigest"])

	m := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil), 409, "draft_unchanged")
	assert.Equal(t, "v1", m["latestVersion"], "latestVersion")
	rep = e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	assert.Equal(t, false, rep["publishable"], "report after publish %v", rep)
	assert.Equal(t, []any{"draft_unchanged"}, rep["blockers"], "report after publish %v", rep)
	assert.Equal(t, "v1", rep["basedOn"], "report after publish %v", rep)

	// Edit: the draft moves, published does not.
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/returns.md?message=longer+window", e.admin, []byte("# Returns\n\nYou can return any item within 60 days.\n"))
	df := e.must(200, "GET", "/agents/"+id+"/versions/draft/diff", e.reader, nil).json(t)
	assert.Equal(t, "v1", df["base"], "draft diff base")
	assert.Equal(t, "draft", df["target"], "draft diff target")
	sum := obj(t, obj(t, df, "summary"), "knowledge")
	assert.Equal(t, []any{"returns"}, sum["modified"], "summary %v", df["summary"])
	files := arr(t, df, "files")
	for i := range files {
		assert.NotEqual(t, "compiled/agent.json", elem(t, files, i)["path"], "draft diff carries compiled/agent.json")
	}
	v2 := e.publish(id)
	assert.Equal(t, "v2", v2, "second publish")
	vl := e.must(200, "GET", "/agents/"+id+"/versions", e.reader, nil).json(t)
	data := arr(t, vl, "data")
	require.Len(t, data, 2, "versions %v", vl)
	assert.Equal(t, "v2", elem(t, data, 0)["id"], "versions %v", vl)
	assert.Equal(t, "v2", vl["published"], "versions %v", vl)
	assert.Equal(t, false, elem(t, data, 1)["published"], "versions %v", vl)

	// The diff between versions includes the compiled artifact, and its
	// patch applies with git.
	full := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff", e.reader, nil).json(t)
	assert.Equal(t, "v1", full["base"], "v2 diff base")
	assert.Contains(t, fmt.Sprint(full["files"]), "compiled/agent.json", "v2 diff files")
	src := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff?paths=source", e.reader, nil).json(t)
	assert.NotContains(t, fmt.Sprint(src["files"]), "compiled/agent.json", "paths=source still has compiled/")
	patch := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff", e.reader, nil, "Accept", "text/x-diff")
	assert.True(t, strings.HasPrefix(patch.Header.Get("Content-Type"), "text/x-diff"), "patch Content-Type=%q", patch.Header.Get("Content-Type"))
	require.Contains(t, string(patch.body), "diff --git a/", "patch body")
	assertApplies(t, e.repos.Path(id), "v1", "v2", patch.body)

	// Roll back, then check every view agrees.
	rb := e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1", "expectedPublishedVersion": "v2"}).json(t)
	assert.Equal(t, "v2", rb["previous"], "rollback %v", rb)
	assert.Equal(t, "v1", obj(t, rb, "published")["id"], "rollback %v", rb)
	problemCode(t, e.do("POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v2", "expectedPublishedVersion": "v2"}), 409, "published_version_mismatch")
	problemCode(t, e.do("POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v9"}), 404, "version_not_found")
	ag := e.must(200, "GET", "/agents/"+id, e.reader, nil).json(t)
	assert.Equal(t, "v1", obj(t, ag, "published")["version"], "agent after rollback %v", ag)
	assert.Equal(t, "v2", ag["latestVersion"], "agent after rollback %v", ag)
	ch := e.must(200, "GET", "/agents/"+id+"/channels", e.reader, nil)
	assert.Contains(t, string(ch.body), `"serves":"v1"`, "channels")
	deps := arr(t, e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t), "data")
	require.Len(t, deps, 3, "deployments %v", deps)
	first := elem(t, deps, 0)
	assert.Equal(t, "rollback", first["kind"], "latest deployment %v", first)
	assert.Equal(t, "v2", first["from"], "latest deployment %v", first)
	assert.Equal(t, "v1", first["to"], "latest deployment %v", first)
	assert.Equal(t, "admin", first["by"], "latest deployment %v", first)
	last := elem(t, deps, 2)
	assert.Equal(t, "publish", last["kind"], "first deployment %v", last)
	assert.Nil(t, last["from"], "first deployment %v", last)
	assert.Equal(t, "v1", last["to"], "first deployment %v", last)

	// The compiled artifact is immutable and its ETag is its digest.
	comp := e.must(200, "GET", "/agents/"+id+"/versions/v1/compiled", e.reader, nil)
	sumBytes := sha256.Sum256(comp.body)
	digest := "sha256:" + hex.EncodeToString(sumBytes[:])
	assert.Equal(t, `"`+digest+`"`, comp.Header.Get("ETag"), "compiled ETag")
	assert.Equal(t, digest, v1["compiledDigest"], "version digest of the compiled bytes")
	assert.Contains(t, comp.Header.Get("Cache-Control"), "immutable", "Cache-Control")
	old := e.must(200, "GET", "/agents/"+id+"/versions/v1/files/knowledge/returns.md", e.reader, nil)
	assert.NotContains(t, string(old.body), "60 days", "v1 shows the later edit")
	e.must(200, "GET", "/agents/"+id+"/versions/published", e.reader, nil)

	// The repository is what a git user expects.
	dir := e.repos.Path(id)
	git(t, dir, "fsck", "--strict")
	assert.Equal(t, v1["commit"], strings.TrimSpace(git(t, dir, "rev-parse", "published")), "published, want v1's release commit")
	assert.NotEmpty(t, strings.TrimSpace(git(t, dir, "rev-parse", "v2^{commit}^")), "v2's release commit has no parent")
	assert.Equal(t, "tag", strings.TrimSpace(git(t, dir, "cat-file", "-t", "v1")), "v1 must be an annotated tag")
	assert.Equal(t, "refs/heads/draft", strings.TrimSpace(git(t, dir, "symbolic-ref", "HEAD")), "HEAD")
	assert.Contains(t, strings.TrimSpace(git(t, dir, "diff", "--stat", "v1", "v2")), "compiled/agent.json", "git diff v1 v2")
}

// assertApplies checks out base from the bare repository, applies patch
// with git apply and compares the result with target's tree.
func assertApplies(tb testing.TB, bare, base, target string, patch []byte) {
	tb.Helper()
	work := tb.TempDir()
	git(tb, work, "clone", "-q", bare, "w")
	w := filepath.Join(work, "w")
	git(tb, w, "checkout", "-q", base)
	pf := filepath.Join(work, "p.diff")
	require.NoError(tb, os.WriteFile(pf, patch, 0o644))
	git(tb, w, "apply", "--index", pf)
	got := strings.TrimSpace(git(tb, w, "write-tree"))
	want := strings.TrimSpace(git(tb, w, "rev-parse", target+"^{tree}"))
	assert.Equal(tb, want, got, "git apply gave a tree other than %s's", target)
}

func TestDraftDiffAppliesToPublished(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("diffs")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	e.must(201, "POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"changes": []map[string]any{
		{"path": "knowledge/returns.md", "content": nil},
		{"path": "knowledge/new-article.md", "content": "no trailing newline"},
		{"path": "agent.yaml", "content": "name: Renamed\n"},
	}})
	patch := e.must(200, "GET", "/agents/"+id+"/versions/draft/diff?format=patch", e.reader, nil)
	// The draft has no release commit: compare with its source tree.
	work := t.TempDir()
	git(t, work, "clone", "-q", e.repos.Path(id), "w")
	w := filepath.Join(work, "w")
	git(t, w, "checkout", "-q", "v1")
	git(t, w, "rm", "-q", "-r", "--cached", "compiled")
	require.NoError(t, os.RemoveAll(filepath.Join(w, "compiled")))
	pf := filepath.Join(work, "p.diff")
	require.NoError(t, os.WriteFile(pf, patch.body, 0o644))
	git(t, w, "apply", "--index", pf)
	got := strings.TrimSpace(git(t, w, "write-tree"))
	want := strings.TrimSpace(git(t, w, "rev-parse", "origin/draft^{tree}"))
	assert.Equal(t, want, got, "applied tree, want the draft tree\n%s", patch.body)
	js := e.must(200, "GET", "/agents/"+id+"/versions/draft/diff", e.reader, nil).json(t)
	s := obj(t, js, "summary")
	assert.Equal(t, true, s["settings"], "summary %v", s)
	k := obj(t, s, "knowledge")
	assert.Equal(t, []any{"new-article"}, k["added"], "summary %v", s)
	assert.Equal(t, []any{"returns"}, k["removed"], "summary %v", s)
	// The agent follows agent.yaml's name.
	assert.Equal(t, "Renamed", e.must(200, "GET", "/agents/"+id, e.reader, nil).json(t)["name"], "agent name")
}

func TestPublishRefusals(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("broken")
	e.loadFixture(id, "broken")
	m := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil), 422, "compile_failed")
	errs := arr(t, m, "errors")
	assert.GreaterOrEqual(t, len(errs), 5, "errors %v, want the fixture's many", errs)
	for i := range errs {
		d := elem(t, errs, i)
		assert.NotEqual(t, "", d["file"], "diagnostic missing file: %v", d)
		assert.NotEqual(t, "", d["code"], "diagnostic missing code: %v", d)
		assert.NotEqual(t, "", d["message"], "diagnostic missing message: %v", d)
	}
	assert.Empty(t, strings.TrimSpace(git(t, e.repos.Path(id), "tag")), "failed publish wrote tags")
	rep := e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	assert.Equal(t, false, rep["publishable"], "report %v", rep)
	assert.Contains(t, fmt.Sprint(rep["blockers"]), "compile_failed", "report %v", rep)
	assert.Nil(t, rep["compiledDigest"], "report %v", rep)

	ok := e.createAgent("fine")
	m = problemCode(t, e.do("POST", "/agents/"+ok+"/publish", e.admin, map[string]any{"expectedDraftRevision": strings.Repeat("a", 40)}), 409, "draft_revision_mismatch")
	assert.Regexp(t, hex40, fmt.Sprint(m["currentRevision"]), "currentRevision")
}

func TestConcurrentPublishesStayContiguous(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("race")
	const n = 24
	var wg sync.WaitGroup
	statuses := make([]int, n)
	codes := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				e.do("PUT", fmt.Sprintf("/agents/%s/draft/files/knowledge/k%d.md", id, i), e.admin, []byte(fmt.Sprintf("article %d\n", i)))
			}
			r := e.do("POST", "/agents/"+id+"/publish", e.admin, nil)
			statuses[i] = r.StatusCode
			if r.StatusCode != 201 {
				codes[i] = fmt.Sprint(r.json(t)["detail"])
			}
		}()
	}
	wg.Wait()
	created := 0
	for i, st := range statuses {
		switch st {
		case 201:
			created++
		case 409:
			assert.Contains(t, []string{"publish_conflict", "draft_unchanged"}, codes[i], "publish %d: 409 code", i)
		default:
			assert.Failf(t, "unexpected status", "publish %d: status=%d (%s), want 201 or 409", i, st, codes[i])
		}
	}
	require.NotZero(t, created, "no publish succeeded")
	vs := arr(t, e.must(200, "GET", "/agents/"+id+"/versions?limit=200", e.reader, nil).json(t), "data")
	require.Len(t, vs, created, "versions listed, want one per successful publish")
	for i := range vs {
		assert.Equal(t, float64(created-i), elem(t, vs, i)["number"], "versions not contiguous at position %d", i)
	}
	tags := strings.Fields(git(t, e.repos.Path(id), "tag"))
	assert.Len(t, tags, created, "git tags, want one per successful publish")
	git(t, e.repos.Path(id), "fsck", "--strict")
}

func TestIdempotentPublish(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("idem")
	first := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "n"}, "Idempotency-Key", "k-1")
	again := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "n"}, "Idempotency-Key", "k-1")
	assert.Equal(t, string(first.body), string(again.body), "replayed body differs")
	assert.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"), "replayed Location differs")
	problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "other"}, "Idempotency-Key", "k-1"), 422, "idempotency_key_reused")
	// A refused first request replays its refusal.
	p1 := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil, "Idempotency-Key", "k-2"), 409, "draft_unchanged")
	p2 := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil, "Idempotency-Key", "k-2"), 409, "draft_unchanged")
	assert.Equal(t, p1["latestVersion"], p2["latestVersion"], "replayed problem differs")
	assert.Len(t, arr(t, e.must(200, "GET", "/agents/"+id+"/versions", e.reader, nil).json(t), "data"), 1, "versions")
}

func TestDraftEditing(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("edits")
	base := e.must(200, "GET", "/agents/"+id+"/draft", e.reader, nil)
	etag := base.Header.Get("ETag")
	put := e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("# FAQ\n"), "If-Match", etag)
	rev := str(t, put.json(t), "revision")
	problemCode(t, e.do("PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("x"), "If-Match", etag), 412, "precondition_failed")
	// The file's own ETag (its blob) is a valid If-Match too.
	f := e.must(200, "GET", "/agents/"+id+"/draft/files/knowledge/faq.md", e.reader, nil)
	assert.Equal(t, "# FAQ\n", string(f.body), "file content")
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("# FAQ v2\n"), "If-Match", f.Header.Get("ETag"))
	m := problemCode(t, e.do("POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"expectedRevision": rev, "changes": []map[string]any{{"path": "knowledge/a.md", "content": "a"}}}), 409, "draft_revision_mismatch")
	assert.NotEqual(t, rev, m["currentRevision"], "currentRevision not current")
	// All or nothing: one bad path refuses the whole commit.
	problemCode(t, e.do("POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"changes": []map[string]any{{"path": "knowledge/ok.md", "content": "a"}, {"path": "../evil", "content": "x"}}}), 422, "invalid_path")
	problemCode(t, e.do("GET", "/agents/"+id+"/draft/files/knowledge/ok.md", e.reader, nil), 404, "file_not_found")
	problemCode(t, e.do("DELETE", "/agents/"+id+"/draft/files/knowledge/missing.md", e.admin, nil), 404, "file_not_found")
	e.must(200, "DELETE", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, nil)

	h := e.must(200, "GET", "/agents/"+id+"/draft/history?limit=2", e.reader, nil).json(t)
	items := arr(t, h, "data")
	assert.Len(t, items, 2, "history page %v", h)
	top := elem(t, items, 0)
	assert.Equal(t, "admin", top["author"], "history entry %v", top)
	assert.Equal(t, []any{"knowledge/faq.md"}, top["paths"], "history entry %v", top)
	rest := arr(t, e.must(200, "GET", "/agents/"+id+"/draft/history?cursor="+str(t, h, "nextCursor"), e.reader, nil).json(t), "data")
	assert.Len(t, rest, 2, "second page %v, want faq.md created + agent created", rest)
	git(t, e.repos.Path(id), "fsck", "--strict")
	assert.True(t, strings.HasPrefix(git(t, e.repos.Path(id), "log", "--format=%an", "draft"), "admin\n"), "git author of the last draft commit, want admin")
}

func TestTypedViews(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("typed")
	skill := map[string]any{
		"description": "Look up an order",
		"parameters":  map[string]any{"type": "object", "properties": map[string]any{"orderId": map[string]any{"type": "string"}}, "required": []string{"orderId"}},
		"http":        map[string]any{"method": "GET", "url": "https://api.example.com/orders/{orderId}", "timeoutMs": 3000},
	}
	e.must(200, "PUT", "/agents/"+id+"/draft/skills/order-status", e.admin, skill)
	got := e.must(200, "GET", "/agents/"+id+"/draft/skills/order-status", e.reader, nil).json(t)
	assert.Equal(t, "Look up an order", got["description"], "typed skill %v", got)
	assert.Equal(t, "order-status", got["name"], "typed skill %v", got)
	raw := e.must(200, "GET", "/agents/"+id+"/draft/files/skills/order-status.yaml", e.reader, nil)
	assert.Contains(t, string(raw.body), "url: https://api.example.com/orders/{orderId}", "canonical file")
	var list []map[string]any
	lr := e.must(200, "GET", "/agents/"+id+"/draft/skills", e.reader, nil)
	require.NoError(t, json.Unmarshal(lr.body, &list), "list is not a JSON array")
	require.Len(t, list, 1, "list %v", list)
	assert.Equal(t, "order-status", list[0]["name"], "list %v", list)
	assert.NotNil(t, list[0]["http"], "list %v", list)
	bad := map[string]any{"description": "x", "parameters": map[string]any{"type": "object"}, "http": map[string]any{"method": "GET", "url": "https://x.example/{nope}", "timeoutMs": 10}}
	m := problemCode(t, e.do("PUT", "/agents/"+id+"/draft/skills/bad", e.admin, bad), 422, "validation_failed")
	assert.Contains(t, fmt.Sprint(m["errors"]), "/http/url", "errors, want a pointer at /http/url")
	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Hours", "tags": []string{"store"}, "content": "Open 9 to 5.\n"})
	k := e.must(200, "GET", "/agents/"+id+"/draft/knowledge/hours", e.reader, nil).json(t)
	assert.Equal(t, "Hours", k["title"], "knowledge view %v", k)
	assert.Contains(t, fmt.Sprint(k["content"]), "Open 9 to 5.", "knowledge view %v", k)
	st := e.must(200, "GET", "/agents/"+id+"/draft/settings", e.reader, nil).json(t)
	assert.Equal(t, "typed", st["name"], "settings %v", st)
	st["greeting"] = "Hello!"
	e.must(200, "PUT", "/agents/"+id+"/draft/settings", e.admin, st)
	assert.Equal(t, "Hello!", e.must(200, "GET", "/agents/"+id+"/draft/settings", e.reader, nil).json(t)["greeting"], "greeting")
	problemCode(t, e.do("PUT", "/agents/"+id+"/draft/settings", e.admin, map[string]any{"name": "x", "model": map[string]any{"name": "m", "temperature": 7}}), 422, "validation_failed")
	e.must(200, "DELETE", "/agents/"+id+"/draft/skills/order-status", e.admin, nil)
	problemCode(t, e.do("GET", "/agents/"+id+"/draft/skills/order-status", e.reader, nil), 404, "file_not_found")
}

func TestDeleteAgentMovesRepoAside(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("gone")
	dir := e.repos.Path(id)
	e.must(204, "DELETE", "/agents/"+id, e.admin, nil)
	problemCode(t, e.do("GET", "/agents/"+id, e.admin, nil), 404, "agent_not_found")
	assert.NoDirExists(t, dir, "repository still in place")
	trash, err := filepath.Glob(filepath.Join(filepath.Dir(dir), ".trash", id+"*"))
	require.NoError(t, err)
	assert.Len(t, trash, 1, "repository not moved aside")
}

func TestListAgentsPaginates(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.createAgent(fmt.Sprintf("a%d", i))
	}
	p1 := e.must(200, "GET", "/agents?limit=3", e.reader, nil).json(t)
	assert.Len(t, arr(t, p1, "data"), 3, "first page %v", p1)
	p2 := e.must(200, "GET", "/agents?limit=3&cursor="+str(t, p1, "nextCursor"), e.reader, nil).json(t)
	assert.Len(t, arr(t, p2, "data"), 2, "second page %v", p2)
	assert.Nil(t, p2["nextCursor"], "second page %v", p2)
	assert.Empty(t, arr(t, e.must(200, "GET", "/agents", e.other, nil).json(t), "data"), "other workspace sees agents")
}

// TestCurlDefaultContentType: `curl -d '{...}'` without -H sends
// application/x-www-form-urlencoded; a JSON body is still accepted.
func TestCurlDefaultContentType(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/agents", e.admin, []byte(`{"name":"curl"}`), "Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, "curl", r.json(t)["name"], "agent %s", r.body)
}

// TestRollbackToLiveVersionRecordsNothing: the pointer does not move, so
// there is no deployment and no event.
func TestRollbackToLiveVersionRecordsNothing(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("noop")
	e.publish(id)
	r := e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"}).json(t)
	assert.Equal(t, "v1", r["previous"], "rollback %v", r)
	assert.Len(t, arr(t, e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t), "data"), 1, "deployments, want only the publish")
}

// TestGitMissingScopeSaysWhichScope: the git endpoint answers a key
// without agents:read like every other route.
func TestGitMissingScopeSaysWhichScope(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("git")
	r := e.do("GET", "/git/"+id+".git/info/refs?service=git-upload-pack", e.chatOnly, nil)
	// Errors on the git routes are text/plain (CONTRACT §7).
	assert.Equal(t, 403, r.StatusCode)
	assert.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(string(r.body), "insufficient_scope: "), "body %q", r.body)
	assert.Equal(t, `Bearer error="insufficient_scope", scope="agents:read"`, r.Header.Get("WWW-Authenticate"), "WWW-Authenticate")
}

// TestPublishSurvivesClientDisconnect: a client that goes away after git
// wrote the version must not leave the database behind git.
func TestPublishSurvivesClientDisconnect(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("gone-client")
	e.loadFixture(id, "acme-support")
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/agents/"+id+"/publish", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		go func() { time.Sleep(time.Duration(i) * time.Millisecond); cancel() }()
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
		e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/n.md", e.admin, []byte(fmt.Sprintf("edit %d\n", i)))
	}
	// Whatever git holds, the API agrees (reconciliation may run in the
	// background for a moment).
	deadline := time.Now().Add(5 * time.Second)
	for {
		tags := strings.Fields(git(t, e.repos.Path(id), "tag"))
		list := e.must(200, "GET", "/agents/"+id+"/versions?limit=200", e.reader, nil).json(t)
		listed := len(arr(t, list, "data"))
		if listed == len(tags) {
			if len(tags) > 0 {
				assert.NotNil(t, list["published"], "git has %d tags but nothing is published in the API", len(tags))
			}
			return
		}
		require.False(t, time.Now().After(deadline), "git has %d tags, the API lists %d versions", len(tags), listed)
		time.Sleep(20 * time.Millisecond)
	}
}
