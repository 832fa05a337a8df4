package githttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		{"v1", []string{"-c", "protocol.version=1"}},
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
			require.NoError(t, err, trace)
			// The protocol really used: v2 lists refs with ls-refs, v1
			// announces itself, v0 gets the service line first.
			assert.Equal(t, p.name == "v2", strings.Contains(trace, "command=ls-refs"), "ls-refs used")
			assert.Equal(t, p.name == "v1", strings.Contains(trace, "< version 1"), "version 1 announced")
			if p.name != "v2" {
				assert.Contains(t, trace, "# service=git-upload-pack")
			}

			assert.Equal(t, "refs/heads/draft", mustGit(t, dst, "symbolic-ref", "HEAD"))
			assert.Equal(t, mustGit(t, repo, "rev-parse", "refs/heads/draft"), mustGit(t, dst, "rev-parse", "HEAD"))
			assert.Equal(t, mustGit(t, repo, "rev-parse", "refs/heads/published"), mustGit(t, dst, "rev-parse", "origin/published"))
			assert.Equal(t, "v1\nv2\nv3", mustGit(t, dst, "tag", "-l"))
			for _, tag := range []string{"v1", "v3"} {
				assert.Equal(t, "tag", mustGit(t, dst, "cat-file", "-t", tag), "cat-file -t %s", tag)
			}
			assert.Equal(t, mustGit(t, repo, "rev-parse", "refs/heads/published"), mustGit(t, dst, "rev-parse", "v3^{commit}"))
			mustGit(t, dst, "fsck", "--no-progress")
		})
	}
}

func TestCloneWithBearerHeader(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	dst := mustClone(t, srv.URL+"/git/"+testID+".git",
		[]string{"-c", "http.extraHeader=Authorization: Bearer " + testKey})
	assert.Equal(t, mustGit(t, repo, "rev-parse", "draft"), mustGit(t, dst, "rev-parse", "HEAD"))
}

func TestCloneWithKeyAsUserName(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	url := strings.Replace(srv.URL, "http://", "http://"+testKey+"@", 1) + "/git/" + testID
	dst := mustClone(t, url, nil)
	assert.Equal(t, "v1", mustGit(t, dst, "tag", "-l"))
}

// TestCloneRefusedWithoutGoodCredentials checks what a stock git client
// shows: the text/plain sentence as a "remote:" line.
func TestCloneRefusedWithoutGoodCredentials(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	tests := []struct {
		name, url string
		want      []string
	}{
		// 401 with a Basic challenge makes git ask for credentials (and
		// fail before showing the body, prompts being off).
		{"none", srv.URL + "/git/" + testID + ".git", []string{"could not read Username"}},
		{"wrong key", cloneURL(srv, "flowyte_sk_wrong", testID), []string{
			"remote: unauthorized: a valid flowyte key is required", "Authentication failed"}},
		{"no scope", cloneURL(srv, scopelessKey, testID), []string{
			"remote: insufficient_scope: this key lacks the agents:read scope.", "403"}},
		{"other workspace", cloneURL(srv, otherWSKey, testID), []string{
			"remote: not_found: no such agent repository.", "not found"}},
	}
	for _, tt := range tests {
		for _, p := range protocols() {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				args := append(append([]string{}, p.pre...), "clone", tt.url, t.TempDir())
				_, stderr, err := gitRun(t, "", nil, nil, args...)
				require.Error(t, err, "clone succeeded, want failure")
				for _, want := range tt.want {
					assert.Contains(t, stderr, want)
				}
			})
		}
	}
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
		name      string
		path      string
		hdr       http.Header
		status    int
		code      string
		challenge string
	}{
		{"basic", refs, basic(testKey), 200, "", ""},
		{"bearer", refs, bearer(testKey), 200, "", ""},
		{"no credentials", refs, nil, 401, "unauthorized", `Basic realm="flowyte"`},
		{"wrong key", refs, basic("flowyte_sk_wrong"), 401, "unauthorized", `Basic realm="flowyte"`},
		{"wrong bearer", refs, bearer("flowyte_sk_wrong"), 401, "unauthorized", `Basic realm="flowyte"`},
		{"bad basic encoding", refs, http.Header{"Authorization": {"Basic !!!"}}, 401, "unauthorized", `Basic realm="flowyte"`},
		{"unknown scheme", refs, http.Header{"Authorization": {"Digest x"}}, 401, "unauthorized", `Basic realm="flowyte"`},
		{"no scope", refs, basic(scopelessKey), 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="agents:read"`},
		{"other workspace", refs, basic(otherWSKey), 404, "not_found", ""},
		{"unknown repo", "/git/agt_nosuchagent.git/info/refs?service=git-upload-pack", basic(testKey), 404, "not_found", ""},
		{"unknown repo post", "/git/agt_nosuchagent.git/git-upload-pack", basic(testKey), 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if strings.HasSuffix(tt.path, ".git/git-upload-pack") {
				method = http.MethodPost
			}
			resp, body := do(t, srv, method, tt.path, tt.hdr, nil)
			require.Equal(t, tt.status, resp.StatusCode, "body %q", body)
			assert.Equal(t, tt.challenge, resp.Header.Get("WWW-Authenticate"))
			if tt.status == 200 {
				return
			}
			assert.Equal(t, tt.code, problemOf(t, resp, body))
		})
	}
}

// TestServeReturnsKeyID: the key id Authorize recognised comes back from
// Serve for the access log, refusals of a known key included.
func TestServeReturnsKeyID(t *testing.T) {
	repo := newRepo(t, 1)
	h := New(Options{Authorize: testAuthorize(map[string]string{testID: repo})})
	base := "/git/" + testID + ".git"
	tests := []struct {
		name, method, path string
		hdr                http.Header
		status             int
		keyID              string
	}{
		{"clone", "GET", base + "/info/refs?service=git-upload-pack", basic(testKey), 200, keyIDOf(testKey)},
		{"bearer", "GET", base + "/info/refs?service=git-upload-pack", bearer(testKey), 200, keyIDOf(testKey)},
		{"no scope", "GET", base + "/info/refs?service=git-upload-pack", basic(scopelessKey), 403, keyIDOf(scopelessKey)},
		{"other workspace", "GET", base + "/info/refs?service=git-upload-pack", basic(otherWSKey), 404, keyIDOf(otherWSKey)},
		{"push", "GET", base + "/info/refs?service=git-receive-pack", basic(testKey), 403, keyIDOf(testKey)},
		{"wrong key", "GET", base + "/info/refs?service=git-upload-pack", basic("flowyte_sk_wrong"), 401, ""},
		{"no credentials", "GET", base + "/info/refs?service=git-upload-pack", nil, 401, ""},
		{"bad path", "GET", "/git/../x/info/refs", basic(testKey), 404, ""},
		{"bad content type", "POST", base + "/git-upload-pack", basic(testKey), 415, keyIDOf(testKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, http.NoBody)
			for k, v := range tt.hdr {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			got := h.Serve(rec, req)
			assert.Equal(t, tt.status, rec.Code, "body %q", rec.Body.String())
			assert.Equal(t, tt.keyID, got)
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
		code               string
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
			require.Equal(t, tt.status, resp.StatusCode, "body %q", body)
			assert.Equal(t, tt.code, problemOf(t, resp, body))
		})
	}

	t.Run("git push", func(t *testing.T) {
		dst := mustClone(t, cloneURL(srv, testKey, testID), nil)
		require.NoError(t, os.WriteFile(filepath.Join(dst, "knowledge", "new.md"), []byte("# New\n"), 0o644))
		mustGit(t, dst, "add", ".")
		mustGit(t, dst, "commit", "-q", "-m", "sneaky")
		before := mustGit(t, repo, "rev-parse", "draft")
		_, stderr, err := gitRun(t, dst, nil, nil, "push", "origin", "HEAD:refs/heads/draft")
		require.Error(t, err, "push succeeded, want refusal")
		assert.Contains(t, stderr, "remote: read_only: this repository is read-only; change the agent through the API.")
		assert.Contains(t, stderr, "403")
		assert.Equal(t, before, mustGit(t, repo, "rev-parse", "draft"), "draft moved by a refused push")
	})
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
			_, stderr, err := gitRun(t, dst, nil, nil, args...)
			require.NoError(t, err, stderr)
			got := objectCount(t, dst) - before
			// Draft commit, tree, blob; release commit, tree, compiled tree
			// and blob; the tag: 8 new objects, nothing of the history.
			assert.True(t, got > 0 && got < 20, "objects fetched=%d, want 1..19", got)
			t.Logf("objects fetched=%d", got)
			assert.Equal(t, "tag", mustGit(t, dst, "cat-file", "-t", "v6"), "v6 auto-followed")
			assert.Equal(t, mustGit(t, repo, "rev-parse", "published"), mustGit(t, dst, "rev-parse", "origin/published"))
			assert.Equal(t, mustGit(t, repo, "rev-parse", "draft"), mustGit(t, dst, "rev-parse", "origin/draft"))
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
			require.NoError(t, err, stderr)
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				_, ref, _ := strings.Cut(line, "\t")
				got = append(got, ref)
			}
			slices.Sort(got)
			assert.Equal(t, want, got)
		})
	}
}

func TestAdvertisementHeaders(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	path := "/git/" + testID + ".git/info/refs?service=git-upload-pack"
	tests := []struct {
		name, proto, prefix string
		caps                []string // capabilities the advertisement must offer
	}{
		{"v0", "", "001e# service=git-upload-pack\n0000", []string{" filter ", " allow-reachable-sha1-in-want ", " shallow ", " deepen-since "}},
		{"v1", "version=1", "001e# service=git-upload-pack\n0000000eversion 1\n", []string{" filter ", " allow-reachable-sha1-in-want ", " shallow "}},
		{"v2", "version=2", "000eversion 2\n", []string{"fetch=shallow", " filter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := basic(testKey)
			if tt.proto != "" {
				hdr.Set("Git-Protocol", tt.proto)
			}
			resp, body := do(t, srv, "GET", path, hdr, nil)
			require.Equal(t, 200, resp.StatusCode, "body %q", body)
			assert.Equal(t, "application/x-git-upload-pack-advertisement", resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			assert.True(t, bytes.HasPrefix(body, []byte(tt.prefix)), "body starts %q, want %q", body[:min(len(body), 40)], tt.prefix)
			assert.NoError(t, validatePktLines(body), "advertisement framing")
			for _, c := range tt.caps {
				assert.Contains(t, strings.ReplaceAll(string(body), "\n", " "), c)
			}
			assert.NotContains(t, string(body), "allow-tip-sha1-in-want")
		})
	}
}

// uploadRequest is a v0 request for everything reachable from want.
func uploadRequest(want string) []byte {
	return []byte(pkt("want "+want+" ofs-delta side-band-64k no-progress\n") + "0000" + pkt("done\n"))
}

// gzipped compresses b.
func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

// postHeader is the header of an upload-pack POST with key's Basic auth.
func postHeader(key string) http.Header {
	h := basic(key)
	h.Set("Content-Type", "application/x-git-upload-pack-request")
	return h
}

func TestGzipRequestBody(t *testing.T) {
	repo := newRepo(t, 2)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	draft := mustGit(t, repo, "rev-parse", "draft")
	hdr := postHeader(testKey)
	hdr.Set("Content-Encoding", "gzip")
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", hdr, gzipped(t, uploadRequest(draft)))
	require.Equal(t, 200, resp.StatusCode, "body %q", body)
	assert.Equal(t, "application/x-git-upload-pack-result", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	assert.True(t, bytes.HasPrefix(body, []byte("0008NAK\n")), "body starts %q, want NAK", body[:min(len(body), 40)])
	assert.Contains(t, string(body), "PACK")
}

func TestBadInput(t *testing.T) {
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, func(o *Options) { o.MaxBodyBytes = 4 << 10 })
	draft := mustGit(t, repo, "rev-parse", "draft")
	base := "/git/" + testID + ".git"
	withEnc := func(h http.Header, enc string) http.Header {
		h = h.Clone()
		h.Set("Content-Encoding", enc)
		return h
	}
	withProto := func(h http.Header, proto string) http.Header {
		h = h.Clone()
		h.Set("Git-Protocol", proto)
		return h
	}
	auth, post := basic(testKey), postHeader(testKey)
	huge := []byte(strings.Repeat(pkt("have "+draft+"\n"), 200))

	tests := []struct {
		name, method, path string
		hdr                http.Header
		body               []byte
		status             int
		code               string
		allow              string
	}{
		{"not hex", "POST", base + "/git-upload-pack", post, []byte("zzzz0000"), 400, "invalid_request", ""},
		{"empty body", "POST", base + "/git-upload-pack", post, nil, 400, "invalid_request", ""},
		{"truncated packet", "POST", base + "/git-upload-pack", post, []byte("0032want " + draft[:10]), 400, "invalid_request", ""},
		{"truncated header", "POST", base + "/git-upload-pack", post, []byte("0000003"), 400, "invalid_request", ""},
		{"length 3", "POST", base + "/git-upload-pack", post, []byte("0003"), 400, "invalid_request", ""},
		{"well framed nonsense", "POST", base + "/git-upload-pack", post, []byte(pkt("hello world\n") + "0000"), 400, "invalid_request", ""},
		{"bad object id", "POST", base + "/git-upload-pack", post, []byte(pkt("want nothex\n") + "0000" + pkt("done\n")), 400, "invalid_request", ""},
		{"v2 unknown command", "POST", base + "/git-upload-pack", withProto(post, "version=2"), []byte(pkt("command=frobnicate\n") + "0000"), 400, "invalid_request", ""},
		{"corrupt gzip", "POST", base + "/git-upload-pack", withEnc(post, "gzip"), []byte("not gzip at all"), 400, "invalid_request", ""},
		{"truncated gzip", "POST", base + "/git-upload-pack", withEnc(post, "gzip"), gzipped(t, uploadRequest(draft))[:30], 400, "invalid_request", ""},
		{"gzip of bad framing", "POST", base + "/git-upload-pack", withEnc(post, "gzip"), gzipped(t, []byte("xyz")), 400, "invalid_request", ""},
		{"unknown encoding", "POST", base + "/git-upload-pack", withEnc(post, "br"), uploadRequest(draft), 415, "unsupported_media_type", ""},
		{"wrong content type", "POST", base + "/git-upload-pack", func() http.Header { h := auth.Clone(); h.Set("Content-Type", "text/plain"); return h }(), uploadRequest(draft), 415, "unsupported_media_type", ""},
		{"huge body", "POST", base + "/git-upload-pack", post, huge, 413, "payload_too_large", ""},
		{"huge gzip body", "POST", base + "/git-upload-pack", withEnc(post, "gzip"), gzipped(t, huge), 413, "payload_too_large", ""},
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
			require.Equal(t, tt.status, resp.StatusCode, "body %q", body)
			assert.Equal(t, tt.code, problemOf(t, resp, body))
			assert.Equal(t, tt.allow, resp.Header.Get("Allow"))
		})
	}
}

func TestNotOurRefIsAProtocolError(t *testing.T) {
	// A want the server does not have is answered in-protocol, as git
	// http-backend does, so the client shows "remote error".
	repo := newRepo(t, 1)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", postHeader(testKey), uploadRequest(strings.Repeat("1", 40)))
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), "ERR upload-pack: not our ref")
}

func TestLoggerHook(t *testing.T) {
	repo := newRepo(t, 1)
	var mu sync.Mutex
	var logged []string
	srv := newServer(t, map[string]string{testID: repo}, func(o *Options) {
		o.Logger = func(msg string, err error) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, msg+": "+err.Error())
		}
	})
	resp, body := do(t, srv, "POST", "/git/"+testID+".git/git-upload-pack", postHeader(testKey), []byte(pkt("hello\n")+"0000"))
	require.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "invalid_request", problemOf(t, resp, body))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, logged, 1)
	assert.Contains(t, logged[0], "protocol error", "the log entry carries upload-pack's stderr")
}

func TestAuthorizeFailureIsInternal(t *testing.T) {
	srv := newServer(t, nil, func(o *Options) {
		o.Authorize = func(context.Context, string, string) (Grant, error) {
			return Grant{}, fmt.Errorf("database is locked")
		}
	})
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	require.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "internal", problemOf(t, resp, body))
	assert.NotContains(t, string(body), "database", "the internal error leaks")
}

func TestMissingRepositoryDirIsInternal(t *testing.T) {
	srv := newServer(t, map[string]string{testID: filepath.Join(t.TempDir(), "gone.git")}, nil)
	resp, body := do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", basic(testKey), nil)
	require.Equal(t, 500, resp.StatusCode, "body %q", body)
	assert.Equal(t, "internal", problemOf(t, resp, body))
	assert.NotContains(t, string(body), "gone.git", "the path leaks")
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

	for i := 0; i < 9; i++ {
		p := protocols()[i%3]
		dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre)
		mustGit(t, dst, "fsck", "--no-progress", "--strict")
		tags := strings.Fields(mustGit(t, dst, "tag", "-l"))
		assert.GreaterOrEqual(t, len(tags), 3, "clone %d tags", i)
		for _, tag := range tags {
			assert.Equal(t, "commit", mustGit(t, dst, "cat-file", "-t", tag+"^{commit}"), "clone %d: %s^{commit}", i, tag)
		}
	}
	cancel()
	require.NoError(t, <-writerDone, "writer")
	assert.NotZero(t, written, "no version written during the clones")
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
	require.NoError(tb, os.WriteFile(gitPath, []byte(script), 0o755))
	return gitPath, pidFile
}

// waitPid waits for pidFile and returns the pid in it.
func waitPid(tb testing.TB, pidFile string) int {
	tb.Helper()
	var pid int
	require.Eventually(tb, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(tb, err, "pid file %q", b)
		return true
	}, 10*time.Second, 10*time.Millisecond, "fake git never started")
	return pid
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
	require.Eventually(tb, func() bool { return !alive(pid) }, 10*time.Second, 20*time.Millisecond,
		"process %d still alive, want killed", pid)
}

// openStream starts an advertisement request and returns its response
// once the first packet of the fake git's output arrived.
func openStream(tb testing.TB, ctx context.Context, srv *httptest.Server) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/git/"+testID+".git/info/refs?service=git-upload-pack", nil)
	require.NoError(tb, err)
	req.Header = basic(testKey)
	req.Header.Set("Git-Protocol", "version=2")
	resp, err := srv.Client().Do(req)
	require.NoError(tb, err)
	tb.Cleanup(func() { resp.Body.Close() })
	require.Equal(tb, 200, resp.StatusCode)
	// The first packet arrives while the process still runs: streamed,
	// not buffered until exit.
	first := make([]byte, 14)
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(tb, err, "read first packet")
	assert.Equal(tb, "000eversion 2\n", string(first))
	return resp
}

func TestStreamsAndStopsOnDisconnect(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	gitPath, pidFile := fakeGit(t, "000eversion 2\\n")
	srv := newServer(t, map[string]string{testID: t.TempDir()}, func(o *Options) { o.GitPath = gitPath })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	openStream(t, ctx, srv)
	pid := waitPid(t, pidFile)
	require.True(t, alive(pid), "process %d gone before disconnect, want it running", pid)
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
	require.Equal(t, 503, resp.StatusCode, "body %q", body)
	assert.Equal(t, "unavailable", problemOf(t, resp, body))
	assert.Less(t, time.Since(start), 10*time.Second, "answered long after the 500ms timeout")
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
		err := validatePktLines([]byte(tt.in))
		assert.Equal(t, tt.ok, err == nil, "validatePktLines(%.20q)=%v", tt.in, err)
		// Fed in two pieces at every split, the streaming check agrees.
		for i := 0; i <= len(tt.in) && i < 64; i++ {
			var s pktScanner
			err := s.feed([]byte(tt.in[:i]))
			if err == nil {
				err = s.feed([]byte(tt.in[i:]))
			}
			if err == nil {
				err = s.end()
			}
			assert.Equal(t, tt.ok, err == nil, "split at %d of %.20q: %v", i, tt.in, err)
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
		assert.Equal(t, tt.id, id, tt.path)
		assert.Equal(t, tt.ep, ep, tt.path)
		assert.Equal(t, tt.ok, ok, tt.path)
	}
}
