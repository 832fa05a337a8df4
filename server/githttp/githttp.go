package githttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrUnauthorized is returned by Options.Authorize when credentials are
// missing, malformed, unknown or revoked; the handler answers 401 with
// `WWW-Authenticate: Basic realm="flowyte"`.
var ErrUnauthorized = errors.New("githttp: unauthorized")

// ErrForbidden is returned by Options.Authorize when the key is valid but
// lacks the scope to read the agent; the handler answers 403
// insufficient_scope.
var ErrForbidden = errors.New("githttp: insufficient scope")

// ErrNotFound is returned by Options.Authorize when the agent does not
// exist or belongs to another workspace; the handler answers 404 not_found.
var ErrNotFound = errors.New("githttp: repository not found")

// Defaults applied by New to zero Options fields.
const (
	// DefaultMaxBodyBytes is the default limit of a decoded request body.
	DefaultMaxBodyBytes int64 = 64 << 20
	// DefaultTimeout is the default limit of one upload-pack run.
	DefaultTimeout = 5 * time.Minute
)

// Options configures the handler returned by New.
type Options struct {
	// Authorize checks the request's credentials for reading agent
	// agentID and returns its bare repository directory. token is the key
	// taken from Basic auth (the password, any user name; the user name
	// if the password is empty, as in http://<key>@host/...) or from
	// `Authorization: Bearer <key>`; token=="" means no credentials were
	// sent. It returns ErrUnauthorized, ErrForbidden or ErrNotFound (or
	// wraps them); any other error is answered 500 internal and logged.
	// Required.
	Authorize func(ctx context.Context, token, agentID string) (repoDir string, err error)
	// Problem writes an RFC 9457 problem body with the given status and
	// problem code. If nil, the handler writes a minimal
	// application/problem+json body itself.
	Problem func(w http.ResponseWriter, r *http.Request, status int, code string)
	// GitPath is the git binary; default "git" from PATH.
	GitPath string
	// MaxBodyBytes limits a request body after gzip decoding (and before);
	// beyond it the answer is 413 payload_too_large. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout limits one upload-pack run, so a hung client cannot pin a
	// process forever. Default DefaultTimeout.
	Timeout time.Duration
	// Logger, if set, receives failures worth an operator's attention
	// (upload-pack errors with its stderr, Authorize errors). Optional.
	Logger func(msg string, err error)
}

// Content types of the smart protocol.
const (
	ctAdvertisement = "application/x-git-upload-pack-advertisement"
	ctRequest       = "application/x-git-upload-pack-request"
	ctResult        = "application/x-git-upload-pack-result"
)

// Problem codes this handler answers with.
const (
	codeInvalidRequest   = "invalid_request"
	codeUnauthorized     = "unauthorized"
	codeScope            = "insufficient_scope"
	codeReadOnly         = "read_only"
	codeNotFound         = "not_found"
	codeMethod           = "method_not_allowed"
	codeTooLarge         = "payload_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeInternal         = "internal"
	codeUnavailable      = "unavailable"
)

// maxStderr bounds the upload-pack stderr kept for the log.
const maxStderr = 16 << 10

// handler serves the smart HTTP endpoints; see New.
type handler struct {
	o Options
}

// New returns a handler serving, read-only:
//
//	GET  /git/{id}.git/info/refs?service=git-upload-pack
//	POST /git/{id}.git/git-upload-pack
//
// ({id} may also be given without ".git"). The receive-pack endpoints
// answer 403 read_only to an authenticated caller and 401 otherwise; the
// dumb protocol is not served. Only HEAD, refs/heads/draft,
// refs/heads/published and refs/tags/* are advertised. New panics if
// o.Authorize is nil.
func New(o Options) http.Handler {
	if o.Authorize == nil {
		panic("githttp: Options.Authorize is nil")
	}
	if o.GitPath == "" {
		o.GitPath = "git"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &handler{o: o}
}

// endpoint is the part of the path after the repository.
type endpoint int

const (
	infoRefs endpoint = iota + 1
	uploadPack
	receivePack
)

// ServeHTTP routes one request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ep, ok := parsePath(r.URL.Path)
	if !ok {
		h.problem(w, r, http.StatusNotFound, codeNotFound)
		return
	}
	switch ep {
	case infoRefs:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			h.problem(w, r, http.StatusMethodNotAllowed, codeMethod)
			return
		}
		svc := r.URL.Query()["service"]
		switch {
		case len(svc) == 0:
			// The dumb protocol is not served.
			h.problem(w, r, http.StatusBadRequest, codeInvalidRequest)
		case len(svc) > 1:
			h.problem(w, r, http.StatusBadRequest, codeInvalidRequest)
		case svc[0] == "git-upload-pack":
			h.serveInfoRefs(w, r, id)
		case svc[0] == "git-receive-pack":
			h.refusePush(w, r, id)
		default:
			h.problem(w, r, http.StatusBadRequest, codeInvalidRequest)
		}
	case uploadPack, receivePack:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.problem(w, r, http.StatusMethodNotAllowed, codeMethod)
			return
		}
		if ep == receivePack {
			h.refusePush(w, r, id)
			return
		}
		h.serveUploadPack(w, r, id)
	}
}

// parsePath splits "/git/{id}[.git]/{endpoint}" and reports whether the
// path is one of ours with a well-formed id. Ids are letters, digits, '_'
// and '-', so nothing can escape the repository root.
func parsePath(p string) (id string, ep endpoint, ok bool) {
	rest, ok := strings.CutPrefix(p, "/git/")
	if !ok {
		return "", 0, false
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", 0, false
	}
	id, tail := strings.TrimSuffix(rest[:i], ".git"), rest[i+1:]
	if !validID(id) {
		return "", 0, false
	}
	switch tail {
	case "info/refs":
		return id, infoRefs, true
	case "git-upload-pack":
		return id, uploadPack, true
	case "git-receive-pack":
		return id, receivePack, true
	}
	return "", 0, false
}

// validID reports whether id is 1 to 128 characters of [A-Za-z0-9_-]
// not starting with '-'.
func validID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// credentials extracts the key from the Authorization header: the Basic
// password (or the user name when the password is empty, as when the key
// is put in the URL's user part) or the Bearer token. ok is false for a
// header that is present but unusable.
func credentials(r *http.Request) (token string, ok bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", true
	}
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		if pass == "" {
			pass = user
		}
		return pass, pass != ""
	}
	return "", false
}

// authorize runs Options.Authorize and answers the request on failure.
// It reports whether the caller may read; dir is the absolute repository.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, id string) (dir string, ok bool) {
	token, ok := credentials(r)
	if !ok {
		h.unauthorized(w, r)
		return "", false
	}
	dir, err := h.o.Authorize(r.Context(), token, id)
	if err == nil && dir == "" {
		err = errors.New("empty repository directory")
	}
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	switch {
	case err == nil:
		return dir, true
	case errors.Is(err, ErrUnauthorized):
		h.unauthorized(w, r)
	case errors.Is(err, ErrForbidden):
		h.problem(w, r, http.StatusForbidden, codeScope)
	case errors.Is(err, ErrNotFound):
		h.problem(w, r, http.StatusNotFound, codeNotFound)
	default:
		h.log("authorize "+id, err)
		h.problem(w, r, http.StatusInternalServerError, codeInternal)
	}
	return "", false
}

// unauthorized answers 401 with a Basic challenge so credential helpers
// prompt.
func (h *handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Basic realm="flowyte"`)
	h.problem(w, r, http.StatusUnauthorized, codeUnauthorized)
}

// refusePush answers a receive-pack request: 401 to a caller without
// valid credentials, 403 read_only to anyone else, whether or not the
// repository exists, so the answer reveals nothing.
func (h *handler) refusePush(w http.ResponseWriter, r *http.Request, id string) {
	token, ok := credentials(r)
	if !ok {
		h.unauthorized(w, r)
		return
	}
	_, err := h.o.Authorize(r.Context(), token, id)
	if errors.Is(err, ErrUnauthorized) {
		h.unauthorized(w, r)
		return
	}
	h.problem(w, r, http.StatusForbidden, codeReadOnly)
}

// serveInfoRefs answers the ref advertisement of the smart protocol.
func (h *handler) serveInfoRefs(w http.ResponseWriter, r *http.Request, id string) {
	dir, ok := h.authorize(w, r, id)
	if !ok {
		return
	}
	proto := gitProtocol(r)
	var prefix []byte
	if protocolVersion(proto) < 2 {
		// v0 and v1 start with the service line and a flush (git
		// http-backend does the same); v2 starts with "version 2".
		prefix = []byte("001e# service=git-upload-pack\n0000")
	}
	h.run(w, r, invocation{dir: dir, advertise: true, proto: proto, prefix: prefix, contentType: ctAdvertisement})
}

// serveUploadPack answers one stateless negotiation or fetch request.
func (h *handler) serveUploadPack(w http.ResponseWriter, r *http.Request, id string) {
	dir, ok := h.authorize(w, r, id)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ctRequest {
		h.problem(w, r, http.StatusUnsupportedMediaType, codeUnsupportedMedia)
		return
	}
	body, status, code := h.readBody(w, r)
	if status != 0 {
		h.problem(w, r, status, code)
		return
	}
	if err := validatePktLines(body); err != nil {
		h.problem(w, r, http.StatusBadRequest, codeInvalidRequest)
		return
	}
	h.run(w, r, invocation{dir: dir, stdin: body, proto: gitProtocol(r), contentType: ctResult})
}

// readBody reads the whole request body, gunzipping it if needed, within
// MaxBodyBytes. On failure it returns the status and problem code to answer.
// Upload-pack requests are wants and haves, small by nature; reading them
// whole lets bad framing be refused before a process is spawned.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, status int, code string) {
	limit := h.o.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, codeTooLarge
	}
	var in io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(in)
		if err != nil {
			status, code = tooLargeOr(err)
			return nil, status, code
		}
		defer gz.Close()
		in = gz
	default:
		return nil, http.StatusUnsupportedMediaType, codeUnsupportedMedia
	}
	body, err := io.ReadAll(io.LimitReader(in, limit+1))
	if err != nil {
		status, code = tooLargeOr(err)
		return nil, status, code
	}
	if int64(len(body)) > limit {
		return nil, http.StatusRequestEntityTooLarge, codeTooLarge
	}
	return body, 0, ""
}

// tooLargeOr maps a body read error to 413 when the raw body hit its
// limit, else to 400 invalid_request (e.g. corrupt gzip).
func tooLargeOr(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, codeTooLarge
	}
	return http.StatusBadRequest, codeInvalidRequest
}

// gitProtocol returns the Git-Protocol request header if it is a plausible
// value ("version=2", colon-separated key=value pairs), else "".
func gitProtocol(r *http.Request) string {
	v := r.Header.Get("Git-Protocol")
	if len(v) > 256 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("=:._-", c) >= 0) {
			return ""
		}
	}
	return v
}

// protocolVersion returns the highest "version=N" in a GIT_PROTOCOL value,
// as git's server side does; 0 if none.
func protocolVersion(proto string) int {
	v := 0
	for _, kv := range strings.Split(proto, ":") {
		switch kv {
		case "version=1":
			v = max(v, 1)
		case "version=2":
			v = max(v, 2)
		}
	}
	return v
}

// invocation describes one upload-pack run.
type invocation struct {
	dir         string
	advertise   bool   // --advertise-refs (info/refs)
	stdin       []byte // the request body (POST)
	proto       string // GIT_PROTOCOL
	prefix      []byte // written before upload-pack's output
	contentType string
}

// uploadPackArgs returns git's arguments. The config keeps the
// advertisement to the repository layout (later hideRefs entries win, "!"
// un-hides) and fixes the options that matter whatever the repository's
// own config says.
func uploadPackArgs(advertise bool, dir string) []string {
	args := []string{
		"-c", "uploadpack.hideRefs=refs",
		"-c", "uploadpack.hideRefs=!refs/heads/draft",
		"-c", "uploadpack.hideRefs=!refs/heads/published",
		"-c", "uploadpack.hideRefs=!refs/tags",
		"-c", "uploadpack.allowFilter=true",
		"-c", "uploadpack.allowAnySHA1InWant=false",
		"-c", "uploadpack.allowTipSHA1InWant=false",
		"-c", "uploadpack.allowReachableSHA1InWant=false",
		"-c", "uploadpack.allowRefInWant=false",
		"-c", "core.hooksPath=" + os.DevNull,
		"upload-pack", "--stateless-rpc", "--strict",
	}
	if advertise {
		args = append(args, "--advertise-refs")
	}
	return append(args, dir)
}

// env is the whole environment of upload-pack: nothing of the daemon's
// own GIT_* variables, no system or global config.
func env(proto string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	if t := os.Getenv("TMPDIR"); t != "" {
		e = append(e, "TMPDIR="+t)
	}
	if proto != "" {
		e = append(e, "GIT_PROTOCOL="+proto)
	}
	return e
}

// run executes upload-pack and streams its output. The status is decided
// by the first bytes: if upload-pack exits without writing anything it is
// a 400 for a request (bad input) or a 500 for an advertisement;
// otherwise 200 and the output is copied as it comes, flushing each chunk.
// The process dies with the request (client gone) or at Options.Timeout.
func (h *handler) run(w http.ResponseWriter, r *http.Request, ru invocation) {
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, h.o.GitPath, uploadPackArgs(ru.advertise, ru.dir)...)
	cmd.Dir = ru.dir
	cmd.Env = env(ru.proto)
	if ru.stdin != nil {
		cmd.Stdin = bytes.NewReader(ru.stdin)
	}
	stderr := &capped{max: maxStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	killGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		h.log("upload-pack pipe", err)
		h.problem(w, r, http.StatusInternalServerError, codeInternal)
		return
	}
	if err := cmd.Start(); err != nil {
		h.log("upload-pack start", err)
		h.problem(w, r, http.StatusInternalServerError, codeInternal)
		return
	}

	buf := make([]byte, 32<<10)
	n, rerr := readSome(stdout, buf)
	if n == 0 {
		werr := cmd.Wait()
		switch {
		case werr == nil && rerr == io.EOF:
			// Nothing to say, and upload-pack is content: an empty 200.
			writeHeaders(w, ru.contentType)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(ru.prefix)
		case r.Context().Err() != nil:
			// The client is gone; nobody reads an answer.
		case ctx.Err() != nil:
			h.log("upload-pack timed out", waitErr(werr, stderr))
			h.problem(w, r, http.StatusServiceUnavailable, codeUnavailable)
		case ru.advertise:
			h.log("upload-pack advertise "+ru.dir, waitErr(werr, stderr))
			h.problem(w, r, http.StatusInternalServerError, codeInternal)
		default:
			h.log("upload-pack refused request", waitErr(werr, stderr))
			h.problem(w, r, http.StatusBadRequest, codeInvalidRequest)
		}
		return
	}

	writeHeaders(w, ru.contentType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	werr := write(w, rc, ru.prefix)
	for werr == nil {
		if werr = write(w, rc, buf[:n]); werr != nil {
			break
		}
		n, rerr = readSome(stdout, buf)
		if n == 0 {
			break
		}
	}
	if werr != nil {
		// The client stopped reading: kill upload-pack rather than let it
		// block on a full pipe.
		cancel()
	}
	if err := cmd.Wait(); err != nil && r.Context().Err() == nil {
		h.log("upload-pack "+ru.dir, waitErr(err, stderr))
	} else if rerr != nil && rerr != io.EOF && werr == nil {
		h.log("upload-pack read", rerr)
	}
}

// readSome reads into buf until it gets at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// write writes b, if any, and flushes it to the client.
func write(w io.Writer, rc *http.ResponseController, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// writeHeaders sets the headers of a smart protocol answer: never cached.
func writeHeaders(w http.ResponseWriter, contentType string) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Pragma", "no-cache")
	hd.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
}

// waitErr joins a process error with what it wrote on stderr.
func waitErr(err error, stderr *capped) error {
	if err == nil {
		err = errors.New("no output")
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return fmt.Errorf("%w: %s", err, s)
	}
	return err
}

// log reports a failure to Options.Logger, if any.
func (h *handler) log(msg string, err error) {
	if h.o.Logger != nil {
		h.o.Logger(msg, err)
	}
}

// problem answers with a problem body, through Options.Problem if set.
func (h *handler) problem(w http.ResponseWriter, r *http.Request, status int, code string) {
	if h.o.Problem != nil {
		h.o.Problem(w, r, status, code)
		return
	}
	body, _ := json.Marshal(struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Status   int    `json:"status"`
		Detail   string `json:"detail"`
		Instance string `json:"instance"`
	}{"/problems/" + code, http.StatusText(status), status, code, r.URL.Path})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// capped is a goroutine-safe buffer keeping the first max bytes written.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

// Write keeps what fits and reports everything written, so the writer
// never blocks or fails.
func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String returns what was kept.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
