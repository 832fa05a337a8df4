package dashboard

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// ContentSecurityPolicy is sent with every dashboard page and asset: no
// inline script or style, nothing from elsewhere, never framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// SecurityHeaders sets the dashboard's response headers.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// Problem writes an RFC 9457 body in the daemon's shape.
func Problem(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	body := map[string]any{
		"type": "/problems/" + code, "title": http.StatusText(status), "status": status,
		"detail": code, "instance": r.URL.Path,
	}
	if message != "" && status < 500 {
		body["message"] = message
	}
	_ = json.NewEncoder(w).Encode(body)
}

// maxSignInBody bounds POST /session.
const maxSignInBody = 4 << 10

// ServeHTTP serves /session: POST signs in with {apiKey}, GET returns the
// current session, DELETE signs out. Every answer is JSON or a problem.
func (s *Sessions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodPost:
		s.signIn(w, r)
	case http.MethodGet, http.MethodHead:
		sess, err := s.Resolve(r)
		if s.failed(w, r, err) {
			return
		}
		writeJSON(w, r, http.StatusOK, sess)
	case http.MethodDelete:
		_, err := s.Resolve(r)
		if errors.Is(err, ErrNoSession) {
			ClearCookie(w, r)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if s.failed(w, r, err) {
			return
		}
		if s.failed(w, r, s.SignOut(r)) {
			return
		}
		ClearCookie(w, r)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		Problem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use POST, GET or DELETE on /session")
	}
}

func (s *Sessions) signIn(w http.ResponseWriter, r *http.Request) {
	if err := CheckOrigin(r); err != nil {
		s.failed(w, r, err)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		Problem(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
		return
	}
	var in struct {
		APIKey string `json:"apiKey"`
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignInBody))
	if err != nil {
		Problem(w, r, http.StatusRequestEntityTooLarge, "payload_too_large", "the body exceeds 4 KiB")
		return
	}
	if err := json.Unmarshal(data, &in); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid_request", "the body must be {\"apiKey\": \"flowyte_sk_...\"}")
		return
	}
	if strings.TrimSpace(in.APIKey) == "" {
		Problem(w, r, http.StatusUnauthorized, "unauthorized", "enter an API key")
		return
	}
	sess, err := s.SignIn(r.Context(), strings.TrimSpace(in.APIKey))
	if errors.Is(err, ErrInvalidCredentials) {
		Problem(w, r, http.StatusUnauthorized, "unauthorized", "the API key is malformed, unknown or revoked")
		return
	}
	if s.failed(w, r, err) {
		return
	}
	// Signing in again replaces the browser's previous session.
	_ = s.SignOut(r)
	SetCookie(w, r, sess)
	writeJSON(w, r, http.StatusCreated, sess)
}

// failed writes the problem for a Resolve or store error and reports
// whether there was one.
func (s *Sessions) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrNoSession):
		Problem(w, r, http.StatusUnauthorized, "unauthorized", "not signed in")
	case errors.Is(err, ErrCSRF):
		Problem(w, r, http.StatusForbidden, "csrf_failed", err.Error())
	default:
		Problem(w, r, http.StatusInternalServerError, "internal", "")
	}
	return true
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

//go:embed dist
var distFS embed.FS

// IsPage reports whether path is one the dashboard serves: "/", the
// assets under /assets/ and the client routes under /ui/.
func IsPage(p string) bool {
	return p == "/" || p == "/index.html" || strings.HasPrefix(p, "/assets/") || p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// Assets serves the embedded single-page app.
type Assets struct {
	files fs.FS
	once  sync.Once
	gz    map[string][]byte
	err   error
}

// NewAssets returns the handler of the embedded bundle.
func NewAssets() *Assets {
	sub, err := fs.Sub(distFS, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	return &Assets{files: sub}
}

// compressible is gzipped once, on first use.
func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".css", ".html", ".svg", ".json", ".map":
		return true
	}
	return false
}

func (a *Assets) load() {
	a.gz = map[string][]byte{}
	a.err = fs.WalkDir(a.files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible(p) {
			return err
		}
		data, err := fs.ReadFile(a.files, p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(data)
		if err := zw.Close(); err != nil {
			return err
		}
		a.gz[p] = b.Bytes()
		return nil
	})
}

// ServeHTTP serves "/" and "/ui/..." as index.html (the app routes on the
// client) and "/assets/..." as files, gzipped when the client accepts it.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		Problem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "dashboard pages answer GET and HEAD")
		return
	}
	a.once.Do(a.load)
	SecurityHeaders(w.Header())
	name := "index.html"
	if strings.HasPrefix(r.URL.Path, "/assets/") {
		name = strings.TrimPrefix(r.URL.Path, "/")
		w.Header().Set("Cache-Control", "no-cache")
	} else {
		w.Header().Set("Cache-Control", "no-store")
	}
	data, err := fs.ReadFile(a.files, name)
	if err != nil || !fs.ValidPath(name) {
		Problem(w, r, http.StatusNotFound, "not_found", "no such dashboard asset")
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Vary", "Accept-Encoding")
	if gz, ok := a.gz[name]; ok && a.err == nil && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		data = gz
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}

// acceptsGzip reports whether the client takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
