package dashboard

import (
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAssetsServeIndexForClientRoutesWithSecurityHeaders(t *testing.T) {
	a := NewAssets()
	for _, path := range []string{"/", "/ui/agents", "/ui/agents/agt_x/review"} {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		require.Equal(t, 200, w.Code, path)
		assert.Equal(t, ContentSecurityPolicy, w.Header().Get("Content-Security-Policy"))
		assert.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'")
		assert.NotContains(t, w.Header().Get("Content-Security-Policy"), "unsafe-inline")
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", w.Header().Get("Referrer-Policy"))
		assert.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/html"), path)
		assert.Contains(t, w.Body.String(), `<script type="module" src="/assets/app.js">`)
		assert.NotContains(t, w.Body.String(), "<script>", "no inline script")
	}
}

func TestAssetsGzip(t *testing.T) {
	a := NewAssets()
	plain := httptest.NewRecorder()
	a.ServeHTTP(plain, httptest.NewRequest("GET", "/assets/app.js", nil))
	require.Equal(t, 200, plain.Code)
	assert.Empty(t, plain.Header().Get("Content-Encoding"))
	assert.Contains(t, plain.Header().Get("Content-Type"), "javascript")

	r := httptest.NewRequest("GET", "/assets/app.js", nil)
	r.Header.Set("Accept-Encoding", "br, gzip")
	gz := httptest.NewRecorder()
	a.ServeHTTP(gz, r)
	require.Equal(t, 200, gz.Code)
	assert.Equal(t, "gzip", gz.Header().Get("Content-Encoding"))
	assert.Less(t, gz.Body.Len(), plain.Body.Len()/2)
	zr, err := gzip.NewReader(gz.Body)
	require.NoError(t, err)
	data, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, plain.Body.String(), string(data))
}

func TestAssetsRefusals(t *testing.T) {
	a := NewAssets()
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/assets/nope.js", 404},
		{"GET", "/assets/../index.html", 404},
		{"POST", "/", 405},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		assert.Equal(t, tc.status, w.Code, "%s %s", tc.method, tc.path)
		assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	}
}

// TestFirstLoadBudget keeps the first load (index, app.js, app.css; the
// editor chunk loads later) under 300 KB gzipped.
func TestFirstLoadBudget(t *testing.T) {
	a := NewAssets()
	total := 0
	for _, p := range []string{"/", "/assets/app.js", "/assets/app.css"} {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		require.Equal(t, 200, w.Code, p)
		total += w.Body.Len()
	}
	t.Logf("first load: %d bytes gzipped", total)
	assert.Less(t, total, 300_000)
}
