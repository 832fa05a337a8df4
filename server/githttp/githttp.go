package githttp

import (
	"context"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
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
	// DefaultMaxBodyBytes is the default limit of a request body, both as
	// sent and after gzip decoding: git http-backend's own default
	// (http.maxRequestBuffer, 10 MiB). Upload-pack requests are wants and
	// haves, a few hundred KiB for the largest agent.
	DefaultMaxBodyBytes int64 = 10 << 20
	// DefaultBodyTimeout is the default time allowed to receive a whole
	// request body.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultTimeout is the default limit of one upload-pack run.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxProcesses is the default number of git upload-pack
	// processes running at once.
	DefaultMaxProcesses = 8
	// DefaultQueueWait is the default time a request waits for a free
	// process slot before it is answered 503.
	DefaultQueueWait = 10 * time.Second
)

// Grant is what Options.Authorize returns about a request.
type Grant struct {
	// RepoDir is the agent's bare repository; required on success.
	RepoDir string
	// KeyID identifies the key that was recognised, for access logs
	// (Handler.Serve returns it). Optional; it may also be set together
	// with ErrForbidden or ErrNotFound so a refusal is attributed too.
	KeyID string
}

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
	Authorize func(ctx context.Context, token, agentID string) (Grant, error)
	// GitPath is the git binary; default "git" from PATH.
	GitPath string
	// MaxBodyBytes limits a request body as sent and after gzip decoding;
	// beyond it the answer is 413 payload_too_large. The body streams to
	// upload-pack, so memory does not grow with it. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BodyTimeout limits the time to receive a whole request body, so a
	// body trickled byte by byte cannot hold a connection and a process;
	// beyond it the answer is 408 request_timeout. It replaces the
	// server's read deadline for that request. Default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Timeout limits one upload-pack run, so a hung client cannot pin a
	// process forever. Default DefaultTimeout.
	Timeout time.Duration
	// MaxProcesses caps the git upload-pack processes running at once
	// (advertisements and fetches alike). Default DefaultMaxProcesses.
	MaxProcesses int
	// QueueWait is how long a request waits for one of MaxProcesses to
	// be free; then it is answered 503 unavailable with Retry-After.
	// Default DefaultQueueWait.
	QueueWait time.Duration
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

// Handler serves the smart HTTP endpoints; see New.
type Handler struct {
	o     Options
	slots chan struct{} // one token per running upload-pack
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler serving, read-only:
//
//	GET  /git/{id}.git/info/refs?service=git-upload-pack
//	POST /git/{id}.git/git-upload-pack
//
// ({id} may also be given without ".git"). The receive-pack endpoints
// answer 403 read_only to an authenticated caller and 401 otherwise; the
// dumb protocol is not served. Only HEAD, refs/heads/draft,
// refs/heads/published and refs/tags/* are advertised. Every error is a
// text/plain sentence starting with its problem code (CONTRACT §7), which
// git prints as "remote: ..." lines. New panics if o.Authorize is nil.
func New(o Options) *Handler {
	if o.Authorize == nil {
		panic("githttp: Options.Authorize is nil")
	}
	if o.GitPath == "" {
		o.GitPath = "git"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxProcesses <= 0 {
		o.MaxProcesses = DefaultMaxProcesses
	}
	if o.QueueWait <= 0 {
		o.QueueWait = DefaultQueueWait
	}
	return &Handler{o: o, slots: make(chan struct{}, o.MaxProcesses)}
}

// endpoint is the part of the path after the repository.
type endpoint int

const (
	infoRefs endpoint = iota + 1
	uploadPack
	receivePack
)

// ServeHTTP serves one request; see Serve.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Serve(w, r)
}

// Serve serves one request and returns the id of the key Authorize
// recognised ("" if none), so a router's access log can record it:
//
//	if kid := git.Serve(c.Writer, c.Request); kid != "" { c.Set("keyId", kid) }
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) (keyID string) {
	id, ep, ok := parsePath(r.URL.Path)
	if !ok {
		h.fail(w, http.StatusNotFound, codeNotFound)
		return ""
	}
	switch ep {
	case infoRefs:
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			h.fail(w, http.StatusMethodNotAllowed, codeMethod)
			return ""
		}
		svc := r.URL.Query()["service"]
		switch {
		case len(svc) == 0:
			// The dumb protocol is not served.
			h.fail(w, http.StatusBadRequest, codeInvalidRequest)
		case len(svc) > 1:
			h.fail(w, http.StatusBadRequest, codeInvalidRequest)
		case svc[0] == "git-upload-pack":
			return h.serveInfoRefs(w, r, id)
		case svc[0] == "git-receive-pack":
			return h.refusePush(w, r, id)
		default:
			h.fail(w, http.StatusBadRequest, codeInvalidRequest)
		}
	case uploadPack, receivePack:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.fail(w, http.StatusMethodNotAllowed, codeMethod)
			return ""
		}
		if ep == receivePack {
			return h.refusePush(w, r, id)
		}
		return h.serveUploadPack(w, r, id)
	}
	return ""
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
// It reports whether the caller may read; dir is the absolute repository
// and keyID the key recognised, if any.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, id string) (dir, keyID string, ok bool) {
	token, ok := credentials(r)
	if !ok {
		h.fail(w, http.StatusUnauthorized, codeUnauthorized)
		return "", "", false
	}
	g, err := h.o.Authorize(r.Context(), token, id)
	if err == nil && g.RepoDir == "" {
		err = errors.New("empty repository directory")
	}
	if err == nil {
		dir, err = filepath.Abs(g.RepoDir)
	}
	switch {
	case err == nil:
		return dir, g.KeyID, true
	case errors.Is(err, ErrUnauthorized):
		h.fail(w, http.StatusUnauthorized, codeUnauthorized)
		return "", "", false
	case errors.Is(err, ErrForbidden):
		h.fail(w, http.StatusForbidden, codeScope)
	case errors.Is(err, ErrNotFound):
		h.fail(w, http.StatusNotFound, codeNotFound)
	default:
		h.log("authorize "+id, err)
		h.fail(w, http.StatusInternalServerError, codeInternal)
	}
	return "", g.KeyID, false
}

// refusePush answers a receive-pack request: 401 to a caller without
// valid credentials, 403 read_only to anyone else, whether or not the
// repository exists, so the answer reveals nothing.
func (h *Handler) refusePush(w http.ResponseWriter, r *http.Request, id string) (keyID string) {
	token, ok := credentials(r)
	if !ok {
		h.fail(w, http.StatusUnauthorized, codeUnauthorized)
		return ""
	}
	g, err := h.o.Authorize(r.Context(), token, id)
	if errors.Is(err, ErrUnauthorized) {
		h.fail(w, http.StatusUnauthorized, codeUnauthorized)
		return ""
	}
	h.fail(w, http.StatusForbidden, codeReadOnly)
	return g.KeyID
}

// serveInfoRefs answers the ref advertisement of the smart protocol.
func (h *Handler) serveInfoRefs(w http.ResponseWriter, r *http.Request, id string) (keyID string) {
	dir, keyID, ok := h.authorize(w, r, id)
	if !ok {
		return keyID
	}
	proto := gitProtocol(r)
	var prefix []byte
	if protocolVersion(proto) < 2 {
		// v0 and v1 start with the service line and a flush (git
		// http-backend does the same); v2 starts with "version 2".
		prefix = []byte("001e# service=git-upload-pack\n0000")
	}
	h.run(w, r, invocation{dir: dir, advertise: true, proto: proto, prefix: prefix, contentType: ctAdvertisement})
	return keyID
}

// serveUploadPack answers one stateless negotiation or fetch request.
func (h *Handler) serveUploadPack(w http.ResponseWriter, r *http.Request, id string) (keyID string) {
	dir, keyID, ok := h.authorize(w, r, id)
	if !ok {
		return keyID
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ctRequest {
		h.fail(w, http.StatusUnsupportedMediaType, codeUnsupportedMedia)
		return keyID
	}
	body, err := h.openBody(w, r)
	if err != nil {
		h.failBody(w, err)
		return keyID
	}
	defer body.stop()
	// A body still streaming may be cut short (limit, deadline), and
	// then what follows on the connection is not a request.
	body.closeIfUnread(w)
	h.run(w, r, invocation{dir: dir, body: body, proto: gitProtocol(r), contentType: ctResult})
	return keyID
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

// log reports a failure to Options.Logger, if any.
func (h *Handler) log(msg string, err error) {
	if h.o.Logger != nil {
		h.o.Logger(msg, err)
	}
}
