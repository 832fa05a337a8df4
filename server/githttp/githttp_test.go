package githttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// protocol is a client protocol setting a test runs with.
type protocol struct {
	name string
	pre  []string // git arguments before the command
}

// protocols returns the client protocols each protocol test runs with.
func protocols() []protocol {
	return []protocol{
		{"v0", []string{"-c", "protocol.version=0"}},
		{"v2", []string{"-c", "protocol.version=2"}},
	}
}

func TestCloneShowsLayout(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := t.TempDir()
			args := append(append([]string{}, p.pre...), "clone", cloneURL(srv, testKey, testID), dst)
			_, trace, err := gitRun(t, "", []string{"GIT_TRACE_PACKET=1"}, nil, args...)
			if err != nil {
				t.Fatalf("clone: %v\n%s", err, trace)
			}
			// The protocol really used: v2 lists refs with ls-refs, v0
			// gets the service line first.
			usedV2 := strings.Contains(trace, "command=ls-refs")
			if want := p.name == "v2"; usedV2 != want {
				t.Errorf("ls-refs used=%v, want %v", usedV2, want)
			}
			if p.name == "v0" && !strings.Contains(trace, "# service=git-upload-pack") {
				t.Errorf("v0 trace lacks the service line")
			}

			if got, want := mustGit(t, dst, "symbolic-ref", "HEAD"), "refs/heads/draft"; got != want {
				t.Errorf("HEAD=%s, want %s", got, want)
			}
			if got, want := mustGit(t, dst, "rev-parse", "HEAD"), mustGit(t, repo, "rev-parse", "refs/heads/draft"); got != want {
				t.Errorf("HEAD commit=%s, want %s", got, want)
			}
			if got, want := mustGit(t, dst, "rev-parse", "origin/published"), mustGit(t, repo, "rev-parse", "refs/heads/published"); got != want {
				t.Errorf("origin/published=%s, want %s", got, want)
			}
			if got, want := mustGit(t, dst, "tag", "-l"), "v1\nv2\nv3"; got != want {
				t.Errorf("tags=%q, want %q", got, want)
			}
			for _, tag := range []string{"v1", "v3"} {
				if got := mustGit(t, dst, "cat-file", "-t", tag); got != "tag" {
					t.Errorf("cat-file -t %s=%s, want tag", tag, got)
				}
			}
			if got, want := mustGit(t, dst, "rev-parse", "v3^{commit}"), mustGit(t, repo, "rev-parse", "refs/heads/published"); got != want {
				t.Errorf("v3^{commit}=%s, want %s", got, want)
			}
			mustGit(t, dst, "fsck", "--no-progress")
		})
	}
}

func TestCloneWithBearerHeader(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	dst := mustClone(t, srv.URL+"/git/"+testID+".git",
		[]string{"-c", "http.extraHeader=Authorization: Bearer " + testKey})
	if got, want := mustGit(t, dst, "rev-parse", "HEAD"), mustGit(t, repo, "rev-parse", "draft"); got != want {
		t.Errorf("HEAD=%s, want %s", got, want)
	}
}

func TestCloneWithKeyAsUserName(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	url := strings.Replace(srv.URL, "http://", "http://"+testKey+"@", 1) + "/git/" + testID
	dst := mustClone(t, url, nil)
	if got := mustGit(t, dst, "tag", "-l"); got != "v1" {
		t.Errorf("tags=%q, want v1", got)
	}
}

func TestCloneRefusedWithoutGoodCredentials(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	tests := []struct {
		name, url, want string
	}{
		// 401 with a Basic challenge makes git ask for credentials.
		{"none", srv.URL + "/git/" + testID + ".git", "could not read Username"},
		{"wrong key", cloneURL(srv, "flowyte_sk_wrong", testID), "Authentication failed"},
		{"no scope", cloneURL(srv, scopelessKey, testID), "403"},
		{"other workspace", cloneURL(srv, otherWSKey, testID), "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := gitRun(t, "", nil, nil, "clone", tt.url, t.TempDir())
			if err == nil {
				t.Fatalf("clone succeeded, want failure")
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr=%q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

// problemOf decodes a problem body and checks its framing.
func problemOf(tb testing.TB, resp *http.Response, body []byte) map[string]any {
	tb.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type=%q, want application/problem+json (body %q)", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", body, err)
	}
	if got, want := p["status"], float64(resp.StatusCode); got != want {
		tb.Errorf("problem status=%v, want %v", got, want)
	}
	if got, want := p["type"], "/problems/"+fmt.Sprint(p["detail"]); got != want {
		tb.Errorf("problem type=%v, want %v", got, want)
	}
	if got, want := p["title"], http.StatusText(resp.StatusCode); got != want {
		tb.Errorf("problem title=%v, want %v", got, want)
	}
	return p
}

func basic(key string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("anyone", key)
	return http.Header{"Authorization": req.Header["Authorization"]}
}

func bearer(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}}
}

func TestAuthResponses(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	refs := "/git/" + testID + ".git/info/refs?service=git-upload-pack"
	tests := []struct {
		name   string
		path   string
		hdr    http.Header
		status int
		detail string
	}{
		{"basic", refs, basic(testKey), 200, ""},
		{"bearer", refs, bearer(testKey), 200, ""},
		{"no credentials", refs, nil, 401, "unauthorized"},
		{"wrong key", refs, basic("flowyte_sk_wrong"), 401, "unauthorized"},
		{"wrong bearer", refs, bearer("flowyte_sk_wrong"), 401, "unauthorized"},
		{"bad basic encoding", refs, http.Header{"Authorization": {"Basic !!!"}}, 401, "unauthorized"},
		{"unknown scheme", refs, http.Header{"Authorization": {"Digest x"}}, 401, "unauthorized"},
		{"no scope", refs, basic(scopelessKey), 403, "insufficient_scope"},
		{"other workspace", refs, basic(otherWSKey), 404, "not_found"},
		{"unknown repo", "/git/agt_nosuchagent.git/info/refs?service=git-upload-pack", basic(testKey), 404, "not_found"},
		{"unknown repo post", "/git/agt_nosuchagent.git/git-upload-pack", basic(testKey), 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if strings.HasSuffix(tt.path, ".git/git-upload-pack") {
				method = http.MethodPost
			}
			resp, body := do(t, srv, method, tt.path, tt.hdr, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status=%d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				return
			}
			if got := problemOf(t, resp, body)["detail"]; got != tt.detail {
				t.Errorf("detail=%v, want %s", got, tt.detail)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if want := `Basic realm="flowyte"`; tt.status == 401 && challenge != want {
				t.Errorf("WWW-Authenticate=%q, want %q", challenge, want)
			}
			if tt.status != 401 && challenge != "" {
				t.Errorf("WWW-Authenticate=%q on %d, want none", challenge, tt.status)
			}
		})
	}
}

func TestPushRefused(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	tests := []struct {
		name, method, path string
		hdr                http.Header
		status             int
		detail             string
	}{
		{"advertise unauthenticated", "GET", "/git/" + testID + ".git/info/refs?service=git-receive-pack", nil, 401, "unauthorized"},
		{"advertise wrong key", "GET", "/git/" + testID + ".git/info/refs?service=git-receive-pack", basic("flowyte_sk_bad"), 401, "unauthorized"},
		{"advertise", "GET", "/git/" + testID + ".git/info/refs?service=git-receive-pack", basic(testKey), 403, "read_only"},
		// Same answer for a repository that does not exist: nothing revealed.
		{"advertise unknown repo", "GET", "/git/agt_nosuch.git/info/refs?service=git-receive-pack", basic(testKey), 403, "read_only"},
		{"advertise other workspace", "GET", "/git/" + testID + ".git/info/refs?service=git-receive-pack", basic(otherWSKey), 403, "read_only"},
		{"receive-pack unauthenticated", "POST", "/git/" + testID + ".git/git-receive-pack", nil, 401, "unauthorized"},
		{"receive-pack", "POST", "/git/" + testID + ".git/git-receive-pack", basic(testKey), 403, "read_only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.path, tt.hdr, []byte("0000"))
			if resp.StatusCode != tt.status {
				t.Fatalf("status=%d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if got := problemOf(t, resp, body)["detail"]; got != tt.detail {
				t.Errorf("detail=%v, want %s", got, tt.detail)
			}
		})
	}

	t.Run("git push", func(t *testing.T) {
		dst := mustClone(t, cloneURL(srv, testKey, testID), nil)
		if err := os.WriteFile(filepath.Join(dst, "knowledge", "new.md"), []byte("# New\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mustGit(t, dst, "add", ".")
		mustGit(t, dst, "commit", "-q", "-m", "sneaky")
		before := mustGit(t, repo, "rev-parse", "draft")
		_, stderr, err := gitRun(t, dst, nil, nil, "push", "origin", "HEAD:refs/heads/draft")
		if err == nil {
			t.Fatalf("push succeeded, want refusal")
		}
		if !strings.Contains(stderr, "403") {
			t.Errorf("push stderr=%q, want it to show the 403", stderr)
		}
		if after := mustGit(t, repo, "rev-parse", "draft"); after != before {
			t.Errorf("draft=%s after refused push, want %s", after, before)
		}
	})
}

func TestShallowClone(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre, "--depth", "1")
			if got := mustGit(t, dst, "rev-list", "--count", "HEAD"); got != "1" {
				t.Errorf("commits in shallow clone=%s, want 1", got)
			}
			if got := mustGit(t, dst, "rev-parse", "--is-shallow-repository"); got != "true" {
				t.Errorf("is-shallow=%s, want true", got)
			}
			if got, want := mustGit(t, dst, "rev-parse", "HEAD"), mustGit(t, repo, "rev-parse", "draft"); got != want {
				t.Errorf("HEAD=%s, want %s", got, want)
			}
		})
	}
}

func TestIncrementalFetch(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			repo := newRepo(t, 5)
			srv := newServer(t, map[string]string{testID: repo}, nil)
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre)
			before := objectCount(t, dst)

			addVersion(t, repo, 6)
			args := append(append([]string{}, p.pre...), "fetch", "-v", "--progress")
			if _, stderr, err := gitRun(t, dst, nil, nil, args...); err != nil {
				t.Fatalf("fetch: %v\n%s", err, stderr)
			}
			got := objectCount(t, dst) - before
			// Draft commit, tree, blob; release commit, tree, compiled tree
			// and blob; the tag: 8 new objects, nothing of the history.
			if got <= 0 || got >= 20 {
				t.Errorf("objects fetched=%d, want 1..19", got)
			}
			t.Logf("objects fetched=%d", got)
			if got := mustGit(t, dst, "cat-file", "-t", "v6"); got != "tag" {
				t.Errorf("cat-file -t v6=%s, want tag (auto-followed)", got)
			}
			if got, want := mustGit(t, dst, "rev-parse", "origin/published"), mustGit(t, repo, "rev-parse", "published"); got != want {
				t.Errorf("origin/published=%s, want %s", got, want)
			}
			if got, want := mustGit(t, dst, "rev-parse", "origin/draft"), mustGit(t, repo, "rev-parse", "draft"); got != want {
				t.Errorf("origin/draft=%s, want %s", got, want)
			}
			mustGit(t, dst, "fsck", "--no-progress")
		})
	}
}

func TestOnlyLayoutRefsAdvertised(t *testing.T) {
	repo := newRepo(t, 2)
	draft := mustGit(t, repo, "rev-parse", "draft")
	for _, ref := range []string{"refs/flowyte/internal", "refs/heads/other", "refs/keep/a", "refs/notes/commits", "refs/heads/draft-old"} {
		mustGit(t, repo, "update-ref", ref, draft)
	}
	srv := newServer(t, map[string]string{testID: repo}, nil)
	want := []string{"HEAD", "refs/heads/draft", "refs/heads/published", "refs/tags/v1", "refs/tags/v1^{}", "refs/tags/v2", "refs/tags/v2^{}"}
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			args := append(append([]string{}, p.pre...), "ls-remote", cloneURL(srv, testKey, testID))
			out, stderr, err := gitRun(t, "", nil, nil, args...)
			if err != nil {
				t.Fatalf("ls-remote: %v\n%s", err, stderr)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				_, ref, _ := strings.Cut(line, "\t")
				got = append(got, ref)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("advertised refs=%v, want %v", got, want)
			}
		})
	}
}

func TestAdvertisementHeaders(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	path := "/git/" + testID + ".git/info/refs?service=git-upload-pack"
	tests := []struct {
		name, proto, prefix string
	}{
		{"v0", "", "001e# service=git-upload-pack\n0000"},
		{"v1", "version=1", "001e# service=git-upload-pack\n0000000eversion 1\n"},
		{"v2", "version=2", "000eversion 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := basic(testKey)
			if tt.proto != "" {
				hdr.Set("Git-Protocol", tt.proto)
			}
			resp, body := do(t, srv, "GET", path, hdr, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status=%d, want 200 (body %q)", resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/x-git-upload-pack-advertisement"; got != want {
				t.Errorf("Content-Type=%q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
				t.Errorf("Cache-Control=%q, want %q", got, want)
			}
			if !bytes.HasPrefix(body, []byte(tt.prefix)) {
				t.Errorf("body starts %q, want %q", body[:min(len(body), 40)], tt.prefix)
			}
			if err := validatePktLines(body); err != nil {
				t.Errorf("advertisement framing: %v", err)
			}
		})
	}
}

// uploadRequest is a v0 request for everything reachable from want.
func uploadRequest(want string) []byte {
	return []byte(pkt("want "+want+" ofs-delta side-band-64k no-progress\n") + "0000" + pkt("done\n"))
}

func TestGzipRequestBody(t *testing.T) {
	repo := newRepo(t, 2)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	draft := mustGit(t, repo, "rev-parse", "draft")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(uploadRequest(draft)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	hdr := basic(testKey)
	hdr.Set("Content-Type", "application/x-git-upload-pack-request")
	hdr.Set("Content-Encoding", "gzip")
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, gz.Bytes())
	if resp.StatusCode != 200 {
		t.Fatalf("status=%d, want 200 (body %q)", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/x-git-upload-pack-result"; got != want {
		t.Errorf("Content-Type=%q, want %q", got, want)
	}
	if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
		t.Errorf("Cache-Control=%q, want %q", got, want)
	}
	if !bytes.HasPrefix(body, []byte("0008NAK\n")) || !bytes.Contains(body, []byte("PACK")) {
		t.Errorf("body starts %q, want NAK then a pack", body[:min(len(body), 40)])
	}
}

func TestBadInput(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, func(o *Options) { o.MaxBodyBytes = 4 << 10 })
	draft := mustGit(t, repo, "rev-parse", "draft")
	base := "/git/" + testID + ".git"
	post := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set("Content-Type", "application/x-git-upload-pack-request")
		return h
	}
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	withEnc := func(h http.Header, enc string) http.Header {
		h = h.Clone()
		h.Set("Content-Encoding", enc)
		return h
	}
	auth := basic(testKey)
	huge := []byte(strings.Repeat(pkt("have "+draft+"\n"), 200))

	tests := []struct {
		name, method, path string
		hdr                http.Header
		body               []byte
		status             int
		detail             string
		allow              string
	}{
		{"not hex", "POST", base + "/git-upload-pack", post(auth), []byte("zzzz0000"), 400, "invalid_request", ""},
		{"empty body", "POST", base + "/git-upload-pack", post(auth), nil, 400, "invalid_request", ""},
		{"truncated packet", "POST", base + "/git-upload-pack", post(auth), []byte("0032want " + draft[:10]), 400, "invalid_request", ""},
		{"truncated header", "POST", base + "/git-upload-pack", post(auth), []byte("0000003"), 400, "invalid_request", ""},
		{"length 3", "POST", base + "/git-upload-pack", post(auth), []byte("0003"), 400, "invalid_request", ""},
		{"well framed nonsense", "POST", base + "/git-upload-pack", post(auth), []byte(pkt("hello world\n") + "0000"), 400, "invalid_request", ""},
		{"bad object id", "POST", base + "/git-upload-pack", post(auth), []byte(pkt("want nothex\n") + "0000" + pkt("done\n")), 400, "invalid_request", ""},
		{"v2 unknown command", "POST", base + "/git-upload-pack", func() http.Header { h := post(auth); h.Set("Git-Protocol", "version=2"); return h }(), []byte(pkt("command=frobnicate\n") + "0000"), 400, "invalid_request", ""},
		{"corrupt gzip", "POST", base + "/git-upload-pack", withEnc(post(auth), "gzip"), []byte("not gzip at all"), 400, "invalid_request", ""},
		{"gzip of bad framing", "POST", base + "/git-upload-pack", withEnc(post(auth), "gzip"), gzipped([]byte("xyz")), 400, "invalid_request", ""},
		{"unknown encoding", "POST", base + "/git-upload-pack", withEnc(post(auth), "br"), uploadRequest(draft), 415, "unsupported_media_type", ""},
		{"wrong content type", "POST", base + "/git-upload-pack", func() http.Header { h := auth.Clone(); h.Set("Content-Type", "text/plain"); return h }(), uploadRequest(draft), 415, "unsupported_media_type", ""},
		{"huge body", "POST", base + "/git-upload-pack", post(auth), huge, 413, "payload_too_large", ""},
		{"huge gzip body", "POST", base + "/git-upload-pack", withEnc(post(auth), "gzip"), gzipped(huge), 413, "payload_too_large", ""},
		{"unknown service", "GET", base + "/info/refs?service=git-foo", auth, nil, 400, "invalid_request", ""},
		{"unknown service unauthenticated", "GET", base + "/info/refs?service=git-foo", nil, nil, 400, "invalid_request", ""},
		{"dumb protocol", "GET", base + "/info/refs", auth, nil, 400, "invalid_request", ""},
		{"two services", "GET", base + "/info/refs?service=git-upload-pack&service=git-receive-pack", auth, nil, 400, "invalid_request", ""},
		{"dot dot", "GET", "/git/../../etc.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"encoded dot dot", "GET", "/git/%2e%2e/%2e%2e/etc.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"encoded dot dot id", "GET", "/git/%2e%2e.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"encoded slash in id", "GET", "/git/agt%2Fx.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"id with slashes", "GET", "/git/a/" + testID + ".git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"option-like id", "GET", "/git/--upload-pack=x.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"empty id", "GET", "/git/.git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"dumb file", "GET", base + "/HEAD", auth, nil, 404, "not_found", ""},
		{"dumb objects", "GET", base + "/objects/info/packs", auth, nil, 404, "not_found", ""},
		{"outside /git", "GET", "/other/" + testID + ".git/info/refs?service=git-upload-pack", auth, nil, 404, "not_found", ""},
		{"post info/refs", "POST", base + "/info/refs?service=git-upload-pack", auth, nil, 405, "method_not_allowed", "GET"},
		{"get upload-pack", "GET", base + "/git-upload-pack", auth, nil, 405, "method_not_allowed", "POST"},
		{"put receive-pack", "PUT", base + "/git-receive-pack", auth, nil, 405, "method_not_allowed", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.path, tt.hdr, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status=%d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if got := problemOf(t, resp, body)["detail"]; got != tt.detail {
				t.Errorf("detail=%v, want %s", got, tt.detail)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow=%q, want %q", got, tt.allow)
			}
		})
	}
}

func TestNotOurRefIsAProtocolError(t *testing.T) {
	// A want the server does not have is answered in-protocol, as git
	// http-backend does, so the client shows "remote error".
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	hdr := basic(testKey)
	hdr.Set("Content-Type", "application/x-git-upload-pack-request")
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, uploadRequest(strings.Repeat("1", 40)))
	if resp.StatusCode != 200 {
		t.Fatalf("status=%d, want 200", resp.StatusCode)
	}
	if !bytes.Contains(body, []byte("ERR upload-pack: not our ref")) {
		t.Errorf("body=%q, want an ERR packet", body)
	}
}

func TestLoggerAndProblemHooks(t *testing.T) {
	repo := newRepo(t, 1)
	var mu sync.Mutex
	var logged []string
	var problems []string
	srv := newServer(t, map[string]string{testID: repo}, func(o *Options) {
		o.Logger = func(msg string, err error) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, msg+": "+err.Error())
		}
		o.Problem = func(w http.ResponseWriter, r *http.Request, status int, code string) {
			mu.Lock()
			problems = append(problems, strconv.Itoa(status)+" "+code)
			mu.Unlock()
			w.WriteHeader(status)
		}
	})
	hdr := basic(testKey)
	hdr.Set("Content-Type", "application/x-git-upload-pack-request")
	resp, _ := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, []byte(pkt("hello\n")+"0000"))
	if resp.StatusCode != 400 {
		t.Fatalf("status=%d, want 400", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"400 invalid_request"}; !slices.Equal(problems, want) {
		t.Errorf("problems=%v, want %v", problems, want)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "protocol error") {
		t.Errorf("logged=%q, want one entry with upload-pack's stderr", logged)
	}
}

func TestAuthorizeFailureIsInternal(t *testing.T) {
	srv := newServer(t, nil, func(o *Options) {
		o.Authorize = func(context.Context, string, string) (string, error) {
			return "", fmt.Errorf("database is locked")
		}
	})
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status=%d, want 500", resp.StatusCode)
	}
	p := problemOf(t, resp, body)
	if p["detail"] != "internal" {
		t.Errorf("detail=%v, want internal", p["detail"])
	}
	if bytes.Contains(body, []byte("database")) {
		t.Errorf("body %q leaks the internal error", body)
	}
}

func TestMissingRepositoryDirIsInternal(t *testing.T) {
	srv := newServer(t, map[string]string{testID: filepath.Join(t.TempDir(), "gone.git")}, nil)
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status=%d, want 500 (body %q)", resp.StatusCode, body)
	}
	if bytes.Contains(body, []byte("gone.git")) {
		t.Errorf("body %q leaks the path", body)
	}
}

func TestCloneWhileWriting(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	writerDone := make(chan error, 1)
	var written int
	go func() {
		defer close(writerDone)
		for n := 4; ctx.Err() == nil; n++ {
			if _, stderr, err := gitRun(t, repo, nil, versionStream(n), "fast-import", "--quiet", "--force"); err != nil {
				writerDone <- fmt.Errorf("version %d: %v: %s", n, err, stderr)
				return
			}
			written = n - 3
		}
	}()

	for i := 0; i < 10; i++ {
		p := protocols()[i%2]
		dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre)
		mustGit(t, dst, "fsck", "--no-progress", "--strict")
		tags := strings.Fields(mustGit(t, dst, "tag", "-l"))
		if len(tags) < 3 {
			t.Errorf("clone %d has %d tags, want at least 3", i, len(tags))
		}
		for _, tag := range tags {
			if got := mustGit(t, dst, "cat-file", "-t", tag+"^{commit}"); got != "commit" {
				t.Errorf("clone %d: %s^{commit} is %s, want commit", i, tag, got)
			}
		}
	}
	cancel()
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if written == 0 {
		t.Errorf("no version written during the clones, want some")
	}
	t.Logf("versions written while cloning: %d", written)
}

// fakeGit writes a shell script standing in for git: it prints out and
// then waits on a child sleep, whose pid it records in pidFile (a child,
// like upload-pack's pack-objects, must die with the request too). It
// returns the script's path.
func fakeGit(tb testing.TB, out string) (gitPath, pidFile string) {
	tb.Helper()
	dir := tb.TempDir()
	pidFile = filepath.Join(dir, "pid")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%s'\nsleep 30 &\necho $! > %s.tmp && mv %s.tmp %s\nwait\n", out, pidFile, pidFile, pidFile)
	gitPath = filepath.Join(dir, "git")
	if err := os.WriteFile(gitPath, []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
	return gitPath, pidFile
}

// waitPid waits for pidFile and returns the pid in it.
func waitPid(tb testing.TB, pidFile string) int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				tb.Fatalf("pid file %q: %v", b, err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("fake git never started")
	return 0
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitDead waits until pid is gone.
func waitDead(tb testing.TB, pid int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			tb.Fatalf("process %d still alive, want killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamsAndStopsOnDisconnect(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	gitPath, pidFile := fakeGit(t, "000eversion 2\\n")
	srv := newServer(t, map[string]string{testID: t.TempDir()}, func(o *Options) { o.GitPath = gitPath })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/git/"+testID+".git/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = basic(testKey)
	req.Header.Set("Git-Protocol", "version=2")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	// The first packet arrives while the process still runs: streamed,
	// not buffered until exit.
	first := make([]byte, 14)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("read first packet: %v", err)
	}
	if got, want := string(first), "000eversion 2\n"; got != want {
		t.Errorf("first packet=%q, want %q", got, want)
	}
	pid := waitPid(t, pidFile)
	if !alive(pid) {
		t.Fatalf("process %d gone before disconnect, want it running", pid)
	}
	cancel()
	waitDead(t, pid)
}

func TestTimeoutKillsUploadPack(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	gitPath, pidFile := fakeGit(t, "")
	srv := newServer(t, map[string]string{testID: t.TempDir()}, func(o *Options) {
		o.GitPath = gitPath
		o.Timeout = 500 * time.Millisecond
	})
	start := time.Now()
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	if resp.StatusCode != 503 {
		t.Fatalf("status=%d, want 503 (body %q)", resp.StatusCode, body)
	}
	if got := problemOf(t, resp, body)["detail"]; got != "unavailable" {
		t.Errorf("detail=%v, want unavailable", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("answered after %v, want about the 500ms timeout", d)
	}
	waitDead(t, waitPid(t, pidFile))
}

func TestValidatePktLines(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0000", true},
		{"0001", true},
		{"0004", true},
		{pkt("want x\n") + "0000" + pkt("done\n"), true},
		{pkt("command=ls-refs\n") + "0001" + pkt("peel\n") + "0000", true},
		{"", false},
		{"000", false},
		{"0003", false},
		{"00zz", false},
		{"fff1" + strings.Repeat("x", 0xfff1-4), false},
		{"0009abc", false},
		{pkt("a") + "0", false},
	}
	for _, tt := range tests {
		if err := validatePktLines([]byte(tt.in)); (err == nil) != tt.ok {
			t.Errorf("validatePktLines(%.20q)=%v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		id   string
		ep   endpoint
		ok   bool
	}{
		{"/git/agt_abc.git/info/refs", "agt_abc", infoRefs, true},
		{"/git/agt_abc/info/refs", "agt_abc", infoRefs, true},
		{"/git/agt_abc.git/git-upload-pack", "agt_abc", uploadPack, true},
		{"/git/agt_abc.git/git-receive-pack", "agt_abc", receivePack, true},
		{"/git/agt_abc.git/info/refs/", "", 0, false},
		{"/git/agt.abc.git/info/refs", "", 0, false},
		{"/git/../info/refs", "", 0, false},
		{"/git//info/refs", "", 0, false},
		{"/git/-x.git/info/refs", "", 0, false},
		{"/git/agt_abc.git", "", 0, false},
		{"/git/" + strings.Repeat("a", 129) + "/info/refs", "", 0, false},
	}
	for _, tt := range tests {
		id, ep, ok := parsePath(tt.path)
		if id != tt.id || ep != tt.ep || ok != tt.ok {
			t.Errorf("parsePath(%q)=(%q, %d, %v), want (%q, %d, %v)", tt.path, id, ep, ok, tt.id, tt.ep, tt.ok)
		}
	}
}
