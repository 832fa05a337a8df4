package githttp

import (
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestMountedUnderGin mounts the handler the way the server does and
// clones and fetches through gin's response writer.
func TestMountedUnderGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	repo := newRepo(t, 2)
	r := gin.New()
	r.Any("/git/*path", gin.WrapH(New(Options{Authorize: testAuthorize(map[string]string{testID: repo})})))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre)
			if got := mustGit(t, dst, "tag", "-l"); got != "v1\nv2" {
				t.Errorf("tags=%q, want v1, v2", got)
			}
			if got, want := mustGit(t, dst, "rev-parse", "origin/published"), mustGit(t, repo, "rev-parse", "published"); got != want {
				t.Errorf("origin/published=%s, want %s", got, want)
			}
		})
	}
	resp, body := do(t, srv, "GET", "/git/../../etc.git/info/refs?service=git-upload-pack", basic(testKey), nil)
	if resp.StatusCode != 404 {
		t.Errorf("escaping path: status=%d, want 404 (body %q)", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", nil, nil)
	if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="flowyte"`; resp.StatusCode != 401 || got != want {
		t.Errorf("no credentials: status=%d WWW-Authenticate=%q, want 401 %q (body %q)", resp.StatusCode, got, want, body)
	}
}
