package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/dashboard"
	"github.com/flowyte/flowyte/server/store"
)

// Scopes an API key may hold.
const (
	ScopeAgentsRead    = "agents:read"
	ScopeAgentsWrite   = "agents:write"
	ScopeChatWrite     = "chat:write"
	ScopeWebhooksWrite = "webhooks:write"
	ScopeKeysWrite     = "keys:write"
)

// AllScopes lists every scope, the bootstrap key's set.
var AllScopes = []string{ScopeAgentsRead, ScopeAgentsWrite, ScopeChatWrite, ScopeWebhooksWrite, ScopeKeysWrite}

const (
	keyPrefix   = "flowyte_sk_"
	keyRandLen  = 32
	keyCRCLen   = 6
	base62Chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrMalformedKey is returned by ParseKey for a string that is not a
// well-formed flowyte key (prefix, length, alphabet or checksum).
var ErrMalformedKey = errors.New("malformed api key")

// ErrBadScope is returned by ValidScopes for an unknown scope name.
var ErrBadScope = errors.New("unknown scope")

// NewKeySecret returns a fresh API key: flowyte_sk_ + 32 random base62
// characters + 6 base62 characters of the CRC32 of the random part.
func NewKeySecret() (string, error) {
	var b strings.Builder
	b.WriteString(keyPrefix)
	max := big.NewInt(int64(len(base62Chars)))
	random := make([]byte, 0, keyRandLen)
	for range keyRandLen {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		random = append(random, base62Chars[n.Int64()])
	}
	b.Write(random)
	b.WriteString(keyChecksum(random))
	return b.String(), nil
}

// keyChecksum is the 6-character base62 CRC32 of the random part.
func keyChecksum(random []byte) string {
	n := uint64(crc32.ChecksumIEEE(random))
	out := make([]byte, keyCRCLen)
	for i := keyCRCLen - 1; i >= 0; i-- {
		out[i] = base62Chars[n%62]
		n /= 62
	}
	return string(out)
}

// ParseKey checks a key's shape and checksum without touching the database,
// so garbage is refused before any lookup.
func ParseKey(s string) error {
	if !strings.HasPrefix(s, keyPrefix) || len(s) != len(keyPrefix)+keyRandLen+keyCRCLen {
		return ErrMalformedKey
	}
	body := s[len(keyPrefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62Chars, body[i]) < 0 {
			return ErrMalformedKey
		}
	}
	if keyChecksum([]byte(body[:keyRandLen])) != body[keyRandLen:] {
		return ErrMalformedKey
	}
	return nil
}

// HashKey is the stored form of a key: SHA-256 of the whole secret. Keys
// carry 190 bits of entropy, so a fast hash is the right one.
func HashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ValidScopes reports an error naming the first unknown scope.
func ValidScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("%w: at least one scope is required", ErrBadScope)
	}
	for _, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return fmt.Errorf("%w %q (known: %s)", ErrBadScope, sc, strings.Join(AllScopes, ", "))
		}
	}
	return nil
}

// CreateKey makes a key (and the workspace if new) and returns its secret,
// which is never stored: only its hash is.
func CreateKey(ctx context.Context, st *store.Store, workspace, name string, scopes []string, now time.Time) (string, store.Key, error) {
	if err := ValidScopes(scopes); err != nil {
		return "", store.Key{}, err
	}
	if strings.TrimSpace(name) == "" || strings.TrimSpace(workspace) == "" {
		return "", store.Key{}, errors.New("workspace and name are required")
	}
	secret, err := NewKeySecret()
	if err != nil {
		return "", store.Key{}, err
	}
	var key store.Key
	err = st.Write(ctx, func(tx *store.Tx) error {
		ws, err := tx.EnsureWorkspace(ctx, workspace, now)
		if err != nil {
			return err
		}
		key = store.Key{
			ID:            store.NewID("key_"),
			WorkspaceID:   ws.ID,
			WorkspaceName: ws.Name,
			Name:          name,
			Scopes:        slices.Clone(scopes),
			CreatedAt:     now.UTC(),
		}
		return tx.CreateKey(ctx, key, HashKey(secret))
	})
	if err != nil {
		return "", store.Key{}, fmt.Errorf("create key: %w", err)
	}
	return secret, key, nil
}

// Principal is the authenticated caller of a request.
type Principal struct {
	Key store.Key
}

// has reports whether the principal holds scope (agents:write implies
// agents:read).
func (p Principal) has(scope string) bool {
	for _, s := range p.Key.Scopes {
		if s == scope || (scope == ScopeAgentsRead && s == ScopeAgentsWrite) {
			return true
		}
	}
	return false
}

// author is the git signature of the key's edits.
func (p Principal) authorName() string { return p.Key.Name }

func (p Principal) authorEmail() string { return p.Key.ID + "@" + "flowyte" }

const (
	ctxPrincipal  = "flowyte.principal"
	ctxRequestID  = "flowyte.requestId"
	ctxErrorCode  = "flowyte.errorCode"
	bearerRealm   = `Bearer realm="flowyte"`
	invalidBearer = `Bearer realm="flowyte", error="invalid_token"`
)

// errUnauthenticated and errInvalidKey are the two 401 causes.
var (
	errUnauthenticated = errors.New("no credentials")
	errInvalidKey      = errors.New("invalid key")
)

// authenticate resolves a secret to its key: errUnauthenticated when empty,
// errInvalidKey when malformed, unknown or revoked.
func (s *Server) authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, errUnauthenticated
	}
	if ParseKey(secret) != nil {
		return Principal{}, errInvalidKey
	}
	return s.authenticateHash(ctx, HashKey(secret))
}

// authenticateHash resolves a key by its stored hash (a dashboard session
// keeps the hash, never the secret): errInvalidKey when unknown or revoked.
func (s *Server) authenticateHash(ctx context.Context, hash []byte) (Principal, error) {
	stamp := s.store.KeysStamp()
	if key, ok := s.keys.get(string(hash), stamp, s.now()); ok {
		s.touchKey(ctx, key.ID)
		return Principal{Key: key}, nil
	}
	key, err := s.store.KeyByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, errInvalidKey
	}
	if err != nil {
		return Principal{}, err
	}
	if key.RevokedAt != nil {
		return Principal{}, errInvalidKey
	}
	s.keys.put(string(hash), key, stamp, s.now())
	s.touchKey(ctx, key.ID)
	return Principal{Key: key}, nil
}

// touchKey records last use at most once a minute per key.
func (s *Server) touchKey(ctx context.Context, id string) {
	now := s.now()
	s.touchMu.Lock()
	last, ok := s.touched[id]
	if ok && now.Sub(last) < time.Minute {
		s.touchMu.Unlock()
		return
	}
	if len(s.touched) > 10000 {
		clear(s.touched)
	}
	s.touched[id] = now
	s.touchMu.Unlock()
	_ = s.store.TouchKey(context.WithoutCancel(ctx), id, now)
}

// bearerToken extracts the key from Authorization: Bearer. ok is false for
// a present but unparsable header.
func bearerToken(r *http.Request) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", true
	}
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// requireScope authenticates the request and checks scope.
func (s *Server) requireScope(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := bearerToken(c.Request)
		if !ok {
			fail(c, &Problem{Status: 401, Code: "unauthorized", Message: "Authorization must be Bearer flowyte_sk_...",
				Header: map[string]string{"WWW-Authenticate": invalidBearer}})
			return
		}
		var p Principal
		var err error
		if token == "" && dashboard.HasCookie(c.Request) {
			p, err = s.cookiePrincipal(c.Request)
			if errors.Is(err, dashboard.ErrCSRF) {
				fail(c, problem(403, "csrf_failed", "%v", err))
				return
			}
		} else {
			p, err = s.authenticate(c.Request.Context(), token)
		}
		switch {
		case errors.Is(err, errUnauthenticated):
			fail(c, &Problem{Status: 401, Code: "unauthorized", Message: "send Authorization: Bearer flowyte_sk_...",
				Header: map[string]string{"WWW-Authenticate": bearerRealm}})
			return
		case errors.Is(err, errInvalidKey):
			fail(c, &Problem{Status: 401, Code: "unauthorized", Message: "the API key is malformed, unknown or revoked",
				Header: map[string]string{"WWW-Authenticate": invalidBearer}})
			return
		case err != nil:
			fail(c, err)
			return
		}
		c.Set(ctxPrincipal, p)
		c.Set("flowyte.keyId", p.Key.ID)
		if !p.has(scope) {
			fail(c, (&Problem{Status: 403, Code: "insufficient_scope", Message: "this operation needs scope " + scope,
				Header: map[string]string{"WWW-Authenticate": fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, scope)}}).
				with("scope", scope))
			return
		}
		c.Next()
	}
}

// principal returns the request's authenticated caller.
func principal(c *gin.Context) Principal {
	v, _ := c.Get(ctxPrincipal)
	p, _ := v.(Principal)
	return p
}

// keyCache remembers valid keys by hash. An entry is used only while the
// store's KeysStamp is unchanged (any revocation, by the daemon or the CLI,
// changes it) and for at most keyCacheTTL; unknown and revoked keys are
// never cached.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	key   store.Key
	stamp string
	at    time.Time
}

const keyCacheTTL = 30 * time.Second

func (kc *keyCache) get(hash, stamp string, now time.Time) (store.Key, bool) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	c, ok := kc.m[hash]
	if !ok || c.stamp != stamp || now.Sub(c.at) > keyCacheTTL {
		return store.Key{}, false
	}
	return c.key, true
}

func (kc *keyCache) put(hash string, k store.Key, stamp string, now time.Time) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if kc.m == nil || len(kc.m) > 10000 {
		kc.m = map[string]cachedKey{}
	}
	kc.m[hash] = cachedKey{key: k, stamp: stamp, at: now}
}

// --- Dashboard sessions (§13) -------------------------------------------
// A dashboard session stands in for the Bearer header: the cookie resolves
// to the key's hash, which is re-validated on every request, so revoking
// the key ends its sessions at once.

// cookiePrincipal resolves the request's dashboard session (CSRF-checked
// for state-changing methods) to its key: errUnauthenticated when there is
// no valid session, dashboard.ErrCSRF on a failed CSRF check.
func (s *Server) cookiePrincipal(r *http.Request) (Principal, error) {
	sess, err := s.sessions.Resolve(r)
	if errors.Is(err, dashboard.ErrNoSession) {
		return Principal{}, errUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	hash, err := hex.DecodeString(sess.Ref)
	if err != nil {
		return Principal{}, errUnauthenticated
	}
	return s.authenticateHash(r.Context(), hash)
}

// dashboardKeys is how the dashboard verifies keys: Ref is the hex SHA-256
// the key store already holds.
type dashboardKeys struct{ s *Server }

var _ dashboard.Verifier = dashboardKeys{}

func (d dashboardKeys) principal(p Principal, ref string) dashboard.Principal {
	return dashboard.Principal{KeyID: p.Key.ID, Name: p.Key.Name, WorkspaceID: p.Key.WorkspaceID, Scopes: p.Key.Scopes, Ref: ref}
}

// Verify implements dashboard.Verifier.
func (d dashboardKeys) Verify(ctx context.Context, secret string) (dashboard.Principal, error) {
	p, err := d.s.authenticate(ctx, secret)
	if errors.Is(err, errInvalidKey) || errors.Is(err, errUnauthenticated) {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	if err != nil {
		return dashboard.Principal{}, err
	}
	return d.principal(p, hex.EncodeToString(HashKey(secret))), nil
}

// Lookup implements dashboard.Verifier.
func (d dashboardKeys) Lookup(ctx context.Context, ref string) (dashboard.Principal, error) {
	hash, err := hex.DecodeString(ref)
	if err != nil {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	p, err := d.s.authenticateHash(ctx, hash)
	if errors.Is(err, errInvalidKey) {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	if err != nil {
		return dashboard.Principal{}, err
	}
	return d.principal(p, ref), nil
}
