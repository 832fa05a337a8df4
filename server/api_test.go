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
)

var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

func git(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+tb.TempDir(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestReleaseFlow(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/agents", e.admin, map[string]any{"name": "Acme Support", "description": "front desk"})
	a := r.json(t)
	id := a["id"].(string)
	if !regexp.MustCompile(`^agt_[a-z2-7]{20}$`).MatchString(id) {
		t.Fatalf("id=%q, want agt_ + 20 base32", id)
	}
	if a["published"] != nil || a["latestVersion"] != nil {
		t.Fatalf("new agent published=%v latestVersion=%v, want null", a["published"], a["latestVersion"])
	}
	if got := r.Header.Get("Location"); got != "/agents/"+id {
		t.Fatalf("Location=%q", got)
	}
	if !strings.HasSuffix(a["cloneUrl"].(string), "/git/"+id+".git") {
		t.Fatalf("cloneUrl=%v", a["cloneUrl"])
	}
	draft := a["draft"].(map[string]any)
	if !hex40.MatchString(draft["revision"].(string)) {
		t.Fatalf("draft revision %v", draft["revision"])
	}

	rev := e.loadFixture(id, "acme-support")
	d := e.must(200, "GET", "/agents/"+id+"/draft", e.reader, nil)
	if d.Header.Get("ETag") != `"`+rev+`"` {
		t.Fatalf("ETag=%q, want %q", d.Header.Get("ETag"), rev)
	}
	if n := len(d.json(t)["files"].([]any)); n < 13 {
		t.Fatalf("draft has %d files, want the fixture's", n)
	}

	rep := e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	if rep["publishable"] != true || rep["nextVersion"] != "v1" || rep["basedOn"] != nil || rep["draftRevision"] != rev {
		t.Fatalf("report %v", rep)
	}

	pub := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "first", "expectedDraftRevision": rep["draftRevision"]})
	v1 := pub.json(t)
	if pub.Header.Get("Location") != "/agents/"+id+"/versions/v1" || v1["id"] != "v1" || v1["number"] != 1.0 ||
		v1["tag"] != "refs/tags/v1" || v1["published"] != true || v1["draftRevision"] != rev || v1["notes"] != "first" {
		t.Fatalf("publish: %s (Location %q)", pub.body, pub.Header.Get("Location"))
	}
	if !strings.HasPrefix(v1["compiledDigest"].(string), "sha256:") {
		t.Fatalf("digest %v", v1["compiledDigest"])
	}

	m := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil), 409, "draft_unchanged")
	if m["latestVersion"] != "v1" {
		t.Fatalf("latestVersion=%v", m["latestVersion"])
	}
	rep = e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	if rep["publishable"] != false || fmt.Sprint(rep["blockers"]) != "[draft_unchanged]" || rep["basedOn"] != "v1" {
		t.Fatalf("report after publish %v", rep)
	}

	// Edit: the draft moves, published does not.
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/returns.md?message=longer+window", e.admin, []byte("# Returns\n\nYou can return any item within 60 days.\n"))
	df := e.must(200, "GET", "/agents/"+id+"/versions/draft/diff", e.reader, nil).json(t)
	if df["base"] != "v1" || df["target"] != "draft" {
		t.Fatalf("draft diff base=%v target=%v", df["base"], df["target"])
	}
	sum := df["summary"].(map[string]any)["knowledge"].(map[string]any)
	if fmt.Sprint(sum["modified"]) != "[returns]" {
		t.Fatalf("summary %v", df["summary"])
	}
	for _, f := range df["files"].([]any) {
		if f.(map[string]any)["path"] == "compiled/agent.json" {
			t.Fatalf("draft diff carries compiled/agent.json")
		}
	}
	v2 := e.publish(id)
	if v2 != "v2" {
		t.Fatalf("second publish %s", v2)
	}
	vl := e.must(200, "GET", "/agents/"+id+"/versions", e.reader, nil).json(t)
	data := vl["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["id"] != "v2" || vl["published"] != "v2" || data[1].(map[string]any)["published"] != false {
		t.Fatalf("versions %s", vl)
	}

	// The diff between versions includes the compiled artifact, and its
	// patch applies with git.
	full := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff", e.reader, nil).json(t)
	if full["base"] != "v1" || !strings.Contains(fmt.Sprint(full["files"]), "compiled/agent.json") {
		t.Fatalf("v2 diff %v", full)
	}
	src := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff?paths=source", e.reader, nil).json(t)
	if strings.Contains(fmt.Sprint(src["files"]), "compiled/agent.json") {
		t.Fatalf("paths=source still has compiled/")
	}
	patch := e.must(200, "GET", "/agents/"+id+"/versions/v2/diff", e.reader, nil, "Accept", "text/x-diff")
	if !strings.HasPrefix(patch.Header.Get("Content-Type"), "text/x-diff") || !strings.Contains(string(patch.body), "diff --git a/") {
		t.Fatalf("patch %q", patch.body)
	}
	assertApplies(t, e.repos.Path(id), "v1", "v2", patch.body)

	// Roll back, then check every view agrees.
	rb := e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1", "expectedPublishedVersion": "v2"}).json(t)
	if rb["previous"] != "v2" || rb["published"].(map[string]any)["id"] != "v1" {
		t.Fatalf("rollback %v", rb)
	}
	problemCode(t, e.do("POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v2", "expectedPublishedVersion": "v2"}), 409, "published_version_mismatch")
	problemCode(t, e.do("POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v9"}), 404, "version_not_found")
	ag := e.must(200, "GET", "/agents/"+id, e.reader, nil).json(t)
	if ag["published"].(map[string]any)["version"] != "v1" || ag["latestVersion"] != "v2" {
		t.Fatalf("agent after rollback %v", ag)
	}
	ch := e.must(200, "GET", "/agents/"+id+"/channels", e.reader, nil)
	if !strings.Contains(string(ch.body), `"serves":"v1"`) {
		t.Fatalf("channels %s", ch.body)
	}
	deps := e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t)["data"].([]any)
	if len(deps) != 3 {
		t.Fatalf("deployments %v", deps)
	}
	first := deps[0].(map[string]any)
	if first["kind"] != "rollback" || first["from"] != "v2" || first["to"] != "v1" || first["by"] != "admin" {
		t.Fatalf("latest deployment %v", first)
	}
	if last := deps[2].(map[string]any); last["kind"] != "publish" || last["from"] != nil || last["to"] != "v1" {
		t.Fatalf("first deployment %v", last)
	}

	// The compiled artifact is immutable and its ETag is its digest.
	comp := e.must(200, "GET", "/agents/"+id+"/versions/v1/compiled", e.reader, nil)
	sumBytes := sha256.Sum256(comp.body)
	if digest := "sha256:" + hex.EncodeToString(sumBytes[:]); comp.Header.Get("ETag") != `"`+digest+`"` || digest != v1["compiledDigest"] {
		t.Fatalf("compiled ETag=%q digest=%s version digest=%v", comp.Header.Get("ETag"), digest, v1["compiledDigest"])
	}
	if !strings.Contains(comp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("Cache-Control=%q", comp.Header.Get("Cache-Control"))
	}
	old := e.must(200, "GET", "/agents/"+id+"/versions/v1/files/knowledge/returns.md", e.reader, nil)
	if strings.Contains(string(old.body), "60 days") {
		t.Fatalf("v1 shows the later edit: %s", old.body)
	}
	e.must(200, "GET", "/agents/"+id+"/versions/published", e.reader, nil)

	// The repository is what a git user expects.
	dir := e.repos.Path(id)
	git(t, dir, "fsck", "--strict")
	if got := strings.TrimSpace(git(t, dir, "rev-parse", "published")); got != v1["commit"] {
		t.Fatalf("published=%s, want v1's release commit %v", got, v1["commit"])
	}
	if got := strings.TrimSpace(git(t, dir, "rev-parse", "v2^{commit}^")); got == "" {
		t.Fatalf("no parent")
	}
	if typ := strings.TrimSpace(git(t, dir, "cat-file", "-t", "v1")); typ != "tag" {
		t.Fatalf("v1 is a %s, want an annotated tag", typ)
	}
	if head := strings.TrimSpace(git(t, dir, "symbolic-ref", "HEAD")); head != "refs/heads/draft" {
		t.Fatalf("HEAD=%s", head)
	}
	if got := strings.TrimSpace(git(t, dir, "diff", "--stat", "v1", "v2")); !strings.Contains(got, "compiled/agent.json") {
		t.Fatalf("git diff v1 v2: %s", got)
	}
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
	if err := os.WriteFile(pf, patch, 0o644); err != nil {
		tb.Fatal(err)
	}
	git(tb, w, "apply", "--index", pf)
	got := strings.TrimSpace(git(tb, w, "write-tree"))
	want := strings.TrimSpace(git(tb, w, "rev-parse", target+"^{tree}"))
	if got != want {
		tb.Fatalf("git apply gave tree %s, want %s's %s", got, target, want)
	}
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
	os.RemoveAll(filepath.Join(w, "compiled"))
	pf := filepath.Join(work, "p.diff")
	os.WriteFile(pf, patch.body, 0o644)
	git(t, w, "apply", "--index", pf)
	got := strings.TrimSpace(git(t, w, "write-tree"))
	want := strings.TrimSpace(git(t, w, "rev-parse", "origin/draft^{tree}"))
	if got != want {
		t.Fatalf("applied tree %s, want draft tree %s\n%s", got, want, patch.body)
	}
	js := e.must(200, "GET", "/agents/"+id+"/versions/draft/diff", e.reader, nil).json(t)
	s := js["summary"].(map[string]any)
	if s["settings"] != true ||
		fmt.Sprint(s["knowledge"].(map[string]any)["added"]) != "[new-article]" ||
		fmt.Sprint(s["knowledge"].(map[string]any)["removed"]) != "[returns]" {
		t.Fatalf("summary %v", s)
	}
	// The agent follows agent.yaml's name.
	if n := e.must(200, "GET", "/agents/"+id, e.reader, nil).json(t)["name"]; n != "Renamed" {
		t.Fatalf("name=%v", n)
	}
}

func TestPublishRefusals(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("broken")
	e.loadFixture(id, "broken")
	m := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil), 422, "compile_failed")
	errs := m["errors"].([]any)
	if len(errs) < 5 {
		t.Fatalf("errors %v, want the fixture's many", errs)
	}
	for _, x := range errs {
		d := x.(map[string]any)
		if d["file"] == "" || d["code"] == "" || d["message"] == "" {
			t.Fatalf("diagnostic missing fields: %v", d)
		}
	}
	if tags := git(t, e.repos.Path(id), "tag"); strings.TrimSpace(tags) != "" {
		t.Fatalf("failed publish wrote tags %q", tags)
	}
	rep := e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	if rep["publishable"] != false || !strings.Contains(fmt.Sprint(rep["blockers"]), "compile_failed") || rep["compiledDigest"] != nil {
		t.Fatalf("report %v", rep)
	}

	ok := e.createAgent("fine")
	m = problemCode(t, e.do("POST", "/agents/"+ok+"/publish", e.admin, map[string]any{"expectedDraftRevision": strings.Repeat("a", 40)}), 409, "draft_revision_mismatch")
	if !hex40.MatchString(fmt.Sprint(m["currentRevision"])) {
		t.Fatalf("currentRevision=%v", m["currentRevision"])
	}
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
			if codes[i] != "publish_conflict" && codes[i] != "draft_unchanged" {
				t.Fatalf("409 with %s", codes[i])
			}
		default:
			t.Fatalf("publish %d: status %d (%s)", i, st, codes[i])
		}
	}
	if created == 0 {
		t.Fatal("no publish succeeded")
	}
	vs := e.must(200, "GET", "/agents/"+id+"/versions?limit=200", e.reader, nil).json(t)["data"].([]any)
	if len(vs) != created {
		t.Fatalf("%d versions listed, %d publishes succeeded", len(vs), created)
	}
	for i, v := range vs {
		if want := float64(created - i); v.(map[string]any)["number"] != want {
			t.Fatalf("versions not contiguous: position %d is %v, want %v", i, v.(map[string]any)["number"], want)
		}
	}
	tags := strings.Fields(git(t, e.repos.Path(id), "tag"))
	if len(tags) != created {
		t.Fatalf("git has %d tags, want %d", len(tags), created)
	}
	git(t, e.repos.Path(id), "fsck", "--strict")
}

func TestIdempotentPublish(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("idem")
	first := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "n"}, "Idempotency-Key", "k-1")
	again := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "n"}, "Idempotency-Key", "k-1")
	if string(first.body) != string(again.body) || again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
	}
	problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "other"}, "Idempotency-Key", "k-1"), 422, "idempotency_key_reused")
	// A refused first request replays its refusal.
	p1 := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil, "Idempotency-Key", "k-2"), 409, "draft_unchanged")
	p2 := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, nil, "Idempotency-Key", "k-2"), 409, "draft_unchanged")
	if p1["latestVersion"] != p2["latestVersion"] {
		t.Fatalf("replayed problem differs")
	}
	if vs := e.must(200, "GET", "/agents/"+id+"/versions", e.reader, nil).json(t)["data"].([]any); len(vs) != 1 {
		t.Fatalf("%d versions, want 1", len(vs))
	}
}

func TestDraftEditing(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("edits")
	base := e.must(200, "GET", "/agents/"+id+"/draft", e.reader, nil)
	etag := base.Header.Get("ETag")
	put := e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("# FAQ\n"), "If-Match", etag)
	rev := put.json(t)["revision"].(string)
	problemCode(t, e.do("PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("x"), "If-Match", etag), 412, "precondition_failed")
	// The file's own ETag (its blob) is a valid If-Match too.
	f := e.must(200, "GET", "/agents/"+id+"/draft/files/knowledge/faq.md", e.reader, nil)
	if string(f.body) != "# FAQ\n" {
		t.Fatalf("file %q", f.body)
	}
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, []byte("# FAQ v2\n"), "If-Match", f.Header.Get("ETag"))
	m := problemCode(t, e.do("POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"expectedRevision": rev, "changes": []map[string]any{{"path": "knowledge/a.md", "content": "a"}}}), 409, "draft_revision_mismatch")
	if m["currentRevision"] == rev {
		t.Fatalf("currentRevision not current")
	}
	// All or nothing: one bad path refuses the whole commit.
	problemCode(t, e.do("POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"changes": []map[string]any{{"path": "knowledge/ok.md", "content": "a"}, {"path": "../evil", "content": "x"}}}), 422, "invalid_path")
	problemCode(t, e.do("GET", "/agents/"+id+"/draft/files/knowledge/ok.md", e.reader, nil), 404, "file_not_found")
	problemCode(t, e.do("DELETE", "/agents/"+id+"/draft/files/knowledge/missing.md", e.admin, nil), 404, "file_not_found")
	e.must(200, "DELETE", "/agents/"+id+"/draft/files/knowledge/faq.md", e.admin, nil)

	h := e.must(200, "GET", "/agents/"+id+"/draft/history?limit=2", e.reader, nil).json(t)
	items := h["data"].([]any)
	if len(items) != 2 || h["nextCursor"] == nil {
		t.Fatalf("history page %v", h)
	}
	top := items[0].(map[string]any)
	if top["author"] != "admin" || fmt.Sprint(top["paths"]) != "[knowledge/faq.md]" {
		t.Fatalf("history entry %v", top)
	}
	rest := e.must(200, "GET", "/agents/"+id+"/draft/history?cursor="+h["nextCursor"].(string), e.reader, nil).json(t)["data"].([]any)
	if len(rest) != 2 { // faq.md created + agent created
		t.Fatalf("second page %v", rest)
	}
	git(t, e.repos.Path(id), "fsck", "--strict")
	if log := git(t, e.repos.Path(id), "log", "--format=%an", "draft"); !strings.HasPrefix(log, "admin\n") {
		t.Fatalf("git author %q", log)
	}
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
	if got["description"] != "Look up an order" || got["name"] != "order-status" {
		t.Fatalf("typed skill %v", got)
	}
	raw := e.must(200, "GET", "/agents/"+id+"/draft/files/skills/order-status.yaml", e.reader, nil)
	if !strings.Contains(string(raw.body), "url: https://api.example.com/orders/{orderId}") {
		t.Fatalf("canonical file:\n%s", raw.body)
	}
	var list []map[string]any
	lr := e.must(200, "GET", "/agents/"+id+"/draft/skills", e.reader, nil)
	if err := json.Unmarshal(lr.body, &list); err != nil {
		t.Fatalf("list is not a JSON array: %v", err)
	}
	if len(list) != 1 || list[0]["name"] != "order-status" || list[0]["http"] == nil {
		t.Fatalf("list %v", list)
	}
	bad := map[string]any{"description": "x", "parameters": map[string]any{"type": "object"}, "http": map[string]any{"method": "GET", "url": "https://x.example/{nope}", "timeoutMs": 10}}
	m := problemCode(t, e.do("PUT", "/agents/"+id+"/draft/skills/bad", e.admin, bad), 422, "validation_failed")
	if !strings.Contains(fmt.Sprint(m["errors"]), "/http/url") {
		t.Fatalf("errors %v, want a pointer at /http/url", m["errors"])
	}
	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Hours", "tags": []string{"store"}, "content": "Open 9 to 5.\n"})
	k := e.must(200, "GET", "/agents/"+id+"/draft/knowledge/hours", e.reader, nil).json(t)
	if k["title"] != "Hours" || !strings.Contains(fmt.Sprint(k["content"]), "Open 9 to 5.") {
		t.Fatalf("knowledge view %v", k)
	}
	st := e.must(200, "GET", "/agents/"+id+"/draft/settings", e.reader, nil).json(t)
	if st["name"] != "typed" {
		t.Fatalf("settings %v", st)
	}
	st["greeting"] = "Hello!"
	e.must(200, "PUT", "/agents/"+id+"/draft/settings", e.admin, st)
	if g := e.must(200, "GET", "/agents/"+id+"/draft/settings", e.reader, nil).json(t)["greeting"]; g != "Hello!" {
		t.Fatalf("greeting %v", g)
	}
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
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("repository still at %s", dir)
	}
	trash, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".trash", id+"*"))
	if len(trash) != 1 {
		t.Fatalf("repository not moved aside: %v", trash)
	}
}

func TestListAgentsPaginates(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.createAgent(fmt.Sprintf("a%d", i))
	}
	p1 := e.must(200, "GET", "/agents?limit=3", e.reader, nil).json(t)
	p2 := e.must(200, "GET", "/agents?limit=3&cursor="+p1["nextCursor"].(string), e.reader, nil).json(t)
	if len(p1["data"].([]any)) != 3 || len(p2["data"].([]any)) != 2 || p2["nextCursor"] != nil {
		t.Fatalf("pages %v / %v", p1, p2)
	}
	if n := len(e.must(200, "GET", "/agents", e.other, nil).json(t)["data"].([]any)); n != 0 {
		t.Fatalf("other workspace sees %d agents", n)
	}
}

// TestCurlDefaultContentType: `curl -d '{...}'` without -H sends
// application/x-www-form-urlencoded; a JSON body is still accepted.
func TestCurlDefaultContentType(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/agents", e.admin, []byte(`{"name":"curl"}`), "Content-Type", "application/x-www-form-urlencoded")
	if r.json(t)["name"] != "curl" {
		t.Fatalf("agent %s", r.body)
	}
}

// TestRollbackToLiveVersionRecordsNothing: the pointer does not move, so
// there is no deployment and no event.
func TestRollbackToLiveVersionRecordsNothing(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("noop")
	e.publish(id)
	r := e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"}).json(t)
	if r["previous"] != "v1" {
		t.Fatalf("rollback %v", r)
	}
	if deps := e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t)["data"].([]any); len(deps) != 1 {
		t.Fatalf("deployments %v, want only the publish", deps)
	}
}

// TestGitMissingScopeSaysWhichScope: the git endpoint answers a key
// without agents:read like every other route.
func TestGitMissingScopeSaysWhichScope(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("git")
	r := e.do("GET", "/git/"+id+".git/info/refs?service=git-upload-pack", e.chatOnly, nil)
	// Errors on the git routes are text/plain (CONTRACT §7).
	if r.StatusCode != 403 || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.HasPrefix(string(r.body), "insufficient_scope: ") {
		t.Fatalf("status=%d Content-Type=%q body=%q, want 403 text/plain insufficient_scope", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	if h := r.Header.Get("WWW-Authenticate"); h != `Bearer error="insufficient_scope", scope="agents:read"` {
		t.Fatalf("WWW-Authenticate=%q", h)
	}
}

// TestPublishSurvivesClientDisconnect: a client that goes away after git
// wrote the version must not leave the database behind git.
func TestPublishSurvivesClientDisconnect(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("gone-client")
	e.loadFixture(id, "acme-support")
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/agents/"+id+"/publish", strings.NewReader(`{}`))
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
		if len(list["data"].([]any)) == len(tags) {
			if len(tags) > 0 && list["published"] == nil {
				t.Fatalf("git has %d tags but nothing is published in the API", len(tags))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("git has %d tags, the API lists %d versions", len(tags), len(list["data"].([]any)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
