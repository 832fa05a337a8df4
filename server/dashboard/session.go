package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName is the dashboard session cookie.
const CookieName = "flowyte_session"

// CSRFHeader carries the session's CSRF token on every state-changing
// request made with the cookie.
const CSRFHeader = "X-CSRF-Token"

// Default session lifetimes.
const (
	DefaultIdleTimeout = 12 * time.Hour
	DefaultMaxAge      = 7 * 24 * time.Hour
	// touchEvery bounds how often Resolve writes LastSeen back to the store.
	touchEvery = time.Minute
)

var (
	// ErrNoSession is returned by Resolve when the request has no cookie,
	// or its session is unknown, expired, signed out or its key revoked.
	ErrNoSession = errors.New("no dashboard session")
	// ErrCSRF is returned by Resolve for a state-changing request without
	// the session's CSRF token, or from another origin.
	ErrCSRF = errors.New("csrf check failed")
	// ErrInvalidCredentials is returned by a Verifier for an unknown,
	// malformed or revoked key; sign-in answers 401 and a session whose key
	// it reports is ended.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrSessionNotFound is returned by a SessionStore for an unknown token.
	ErrSessionNotFound = errors.New("session not found")
)

// Principal is the key behind a dashboard session, as the dashboard shows it.
type Principal struct {
	KeyID       string   `json:"keyId"`
	Name        string   `json:"name"`
	WorkspaceID string   `json:"workspaceId"`
	Scopes      []string `json:"scopes"`
	// Ref identifies the key for re-validation on later requests (the
	// daemon uses the key's stored hash). It is never the secret.
	Ref string `json:"-"`
}

// Verifier is how the daemon checks keys; the dashboard never sees the key
// store. Both return ErrInvalidCredentials (possibly wrapped) for a key that
// is unknown, malformed or revoked.
type Verifier interface {
	// Verify checks a secret at sign-in.
	Verify(ctx context.Context, secret string) (Principal, error)
	// Lookup re-validates the key a session was made from, on every request.
	Lookup(ctx context.Context, ref string) (Principal, error)
}

// Record is one stored session. The token itself is never stored: only its
// SHA-256.
type Record struct {
	TokenHash [32]byte
	Ref       string
	KeyID     string
	CreatedAt time.Time
	LastSeen  time.Time
}

// SessionStore keeps session records. MemoryStore is the in-process one; a
// database-backed store implements the same four methods.
type SessionStore interface {
	Create(ctx context.Context, rec Record) error
	// Get returns ErrSessionNotFound for an unknown token hash.
	Get(ctx context.Context, tokenHash [32]byte) (Record, error)
	Touch(ctx context.Context, tokenHash [32]byte, lastSeen time.Time) error
	Delete(ctx context.Context, tokenHash [32]byte) error
}

// Session is a resolved, valid dashboard session.
type Session struct {
	Principal
	// CSRFToken must come back in X-CSRF-Token on state-changing requests.
	CSRFToken string `json:"csrfToken"`
	token     string
}

// Sessions signs in, resolves and signs out dashboard sessions.
type Sessions struct {
	store  SessionStore
	verify Verifier
	now    func() time.Time
	idle   time.Duration
	maxAge time.Duration
}

// SessionsOptions configure NewSessions. Verifier is required.
type SessionsOptions struct {
	Verifier Verifier
	// Store keeps sessions; a new MemoryStore when nil.
	Store SessionStore
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// IdleTimeout and MaxAge default to DefaultIdleTimeout and DefaultMaxAge.
	IdleTimeout, MaxAge time.Duration
}

// NewSessions returns a session manager.
func NewSessions(o SessionsOptions) *Sessions {
	if o.Store == nil {
		o.Store = NewMemoryStore()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	return &Sessions{store: o.Store, verify: o.Verifier, now: o.Now, idle: o.IdleTimeout, maxAge: o.MaxAge}
}

// hashToken is the stored form of a session token.
func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// csrfFor derives the CSRF token from the session token: unguessable
// without the cookie, so nothing more needs storing.
func csrfFor(token string) string {
	h := sha256.Sum256([]byte("flowyte-dashboard-csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// SignIn verifies secret and starts a session. The returned Session's token
// goes into the cookie (SetCookie).
func (s *Sessions) SignIn(ctx context.Context, secret string) (Session, error) {
	p, err := s.verify.Verify(ctx, secret)
	if err != nil {
		return Session{}, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Session{}, fmt.Errorf("session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	rec := Record{TokenHash: hashToken(token), Ref: p.Ref, KeyID: p.KeyID, CreatedAt: now, LastSeen: now}
	if err := s.store.Create(ctx, rec); err != nil {
		return Session{}, fmt.Errorf("store session: %w", err)
	}
	return Session{Principal: p, CSRFToken: csrfFor(token), token: token}, nil
}

// token returns the request's session cookie value, "" when absent.
func token(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// HasCookie reports whether the request carries a dashboard session cookie.
func HasCookie(r *http.Request) bool { return token(r) != "" }

// safeMethod reports whether m never changes state.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Resolve returns the request's session: ErrNoSession without a valid one,
// ErrCSRF when a state-changing request lacks the CSRF token or comes from
// another origin. The key is re-validated on every call, so a revoked key
// ends its sessions at once.
func (s *Sessions) Resolve(r *http.Request) (Session, error) {
	tok := token(r)
	if tok == "" {
		return Session{}, ErrNoSession
	}
	ctx := r.Context()
	h := hashToken(tok)
	rec, err := s.store.Get(ctx, h)
	if errors.Is(err, ErrSessionNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, err
	}
	now := s.now().UTC()
	if now.Sub(rec.LastSeen) > s.idle || now.Sub(rec.CreatedAt) > s.maxAge {
		_ = s.store.Delete(ctx, h)
		return Session{}, ErrNoSession
	}
	if !safeMethod(r.Method) {
		if err := CheckCSRF(r, csrfFor(tok)); err != nil {
			return Session{}, err
		}
	}
	p, err := s.verify.Lookup(ctx, rec.Ref)
	if errors.Is(err, ErrInvalidCredentials) {
		_ = s.store.Delete(ctx, h)
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, err
	}
	p.Ref = rec.Ref
	if now.Sub(rec.LastSeen) >= touchEvery {
		if err := s.store.Touch(ctx, h, now); err != nil {
			return Session{}, err
		}
	}
	return Session{Principal: p, CSRFToken: csrfFor(tok), token: tok}, nil
}

// SignOut ends the request's session, if any.
func (s *Sessions) SignOut(r *http.Request) error {
	tok := token(r)
	if tok == "" {
		return nil
	}
	err := s.store.Delete(r.Context(), hashToken(tok))
	if errors.Is(err, ErrSessionNotFound) {
		return nil
	}
	return err
}

// CheckCSRF returns ErrCSRF unless r carries want in X-CSRF-Token and, when
// it sends Origin (or Sec-Fetch-Site), comes from r's own origin.
func CheckCSRF(r *http.Request, want string) error {
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("%w: missing or wrong %s", ErrCSRF, CSRFHeader)
	}
	return CheckOrigin(r)
}

// CheckOrigin returns ErrCSRF when r says it comes from another origin:
// an Origin header other than r's own origin, or Sec-Fetch-Site cross-site
// or same-site (another port of the same host is the same site but not the
// same origin).
func CheckOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return fmt.Errorf("%w: Sec-Fetch-Site %s", ErrCSRF, site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	if origin != requestOrigin(r) {
		return fmt.Errorf("%w: Origin %s is not this origin", ErrCSRF, origin)
	}
	return nil
}

// requestOrigin is the origin the request was sent to.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: strings.ToLower(r.Host)}
	return u.String()
}

// SetCookie writes the session cookie for sess.
func SetCookie(w http.ResponseWriter, r *http.Request, sess Session) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: sess.token, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// ClearCookie expires the session cookie.
func ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// MemoryStore is a SessionStore in process memory: sessions end when the
// daemon restarts. It holds at most maxMemorySessions, dropping the least
// recently seen beyond that.
type MemoryStore struct {
	mu sync.Mutex
	m  map[[32]byte]Record
}

const maxMemorySessions = 10000

var _ SessionStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[[32]byte]Record{}} }

// Create implements SessionStore.
func (m *MemoryStore) Create(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= maxMemorySessions {
		var oldest [32]byte
		first := true
		for k, r := range m.m {
			if first || r.LastSeen.Before(m.m[oldest].LastSeen) {
				oldest, first = k, false
			}
		}
		delete(m.m, oldest)
	}
	m.m[rec.TokenHash] = rec
	return nil
}

// Get implements SessionStore.
func (m *MemoryStore) Get(_ context.Context, h [32]byte) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.m[h]
	if !ok {
		return Record{}, ErrSessionNotFound
	}
	return rec, nil
}

// Touch implements SessionStore.
func (m *MemoryStore) Touch(_ context.Context, h [32]byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.m[h]
	if !ok {
		return ErrSessionNotFound
	}
	rec.LastSeen = at
	m.m[h] = rec
	return nil
}

// Delete implements SessionStore.
func (m *MemoryStore) Delete(_ context.Context, h [32]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[h]; !ok {
		return ErrSessionNotFound
	}
	delete(m.m, h)
	return nil
}

// Len reports how many sessions are stored.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
