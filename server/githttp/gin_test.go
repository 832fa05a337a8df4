package githttp

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMountedUnderGin mounts the handler the way the server does and
// clones and fetches through gin's response writer.
func TestMountedUnderGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	repo := newRepo(t, 2)
	r := gin.New()
	git := New(Options{Authorize: testAuthorize(map[string]string{testID: repo}), BodyTimeout: 300 * time.Millisecond})
	var mu sync.Mutex
	var keyIDs []string
	r.Any("/git/*path", func(c *gin.Context) {
		if kid := git.Serve(c.Writer, c.Request); kid != "" {
			mu.Lock()
			keyIDs = append(keyIDs, kid)
			mu.Unlock()
		}
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre)
			assert.Equal(t, "v1\nv2", mustGit(t, dst, "tag", "-l"))
			assert.Equal(t, mustGit(t, repo, "rev-parse", "published"), mustGit(t, dst, "rev-parse", "origin/published"))
		})
	}
	mu.Lock()
	assert.NotEmpty(t, keyIDs)
	for _, kid := range keyIDs {
		assert.Equal(t, keyIDOf(testKey), kid, "key id handed to the access log")
	}
	mu.Unlock()

	resp, body := do(t, srv, "GET", "/git/../../etc.git/info/refs?service=git-upload-pack", basic(testKey), nil)
	assert.Equal(t, 404, resp.StatusCode, "escaping path: body %q", body)
	resp, body = do(t, srv, "GET", "/git/"+testID+".git/info/refs?service=git-upload-pack", nil, nil)
	require.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, `Basic realm="flowyte"`, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "unauthorized", problemOf(t, resp, body))

	// The body deadline reaches the connection through gin's writer.
	resp, body, took := trickle(t, srv, postHeader(testKey), []byte(pkt("want x\n")), 1000, 50*time.Millisecond)
	require.Equal(t, 408, resp.StatusCode, "body %q", body)
	assert.Less(t, took, 5*time.Second)
}
