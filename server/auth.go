package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/dashboard"
)

// Scopes an API key may hold (aliases of the backend's).
const (
	ScopeAgentsRead    = backend.ScopeAgentsRead
	ScopeAgentsWrite   = backend.ScopeAgentsWrite
	ScopeChatWrite     = backend.ScopeChatWrite
	ScopeWebhooksWrite = backend.ScopeWebhooksWrite
	ScopeKeysWrite     = backend.ScopeKeysWrite
)

// Principal is the authenticated caller of a request.
type Principal = backend.Principal

const (
	ctxPrincipal   = "flowyte.principal"
	ctxRequestID   = "flowyte.requestId"
	ctxErrorCode   = "flowyte.errorCode"
	ctxBodyTimeout = "flowyte.bodyTimeout"
	bearerRealm    = `Bearer realm="flowyte"`
	invalidBearer  = `Bearer realm="flowyte", error="invalid_token"`
)

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
				fail(c, problem("csrf_failed", "%v", err))
				return
			}
		} else {
			p, err = s.backend.Authenticate(c.Request.Context(), token)
		}
		switch {
		case errors.Is(err, backend.ErrUnauthenticated):
			fail(c, &Problem{Status: 401, Code: "unauthorized", Message: "send Authorization: Bearer flowyte_sk_...",
				Header: map[string]string{"WWW-Authenticate": bearerRealm}})
			return
		case errors.Is(err, backend.ErrInvalidKey):
			fail(c, &Problem{Status: 401, Code: "unauthorized", Message: "the API key is malformed, unknown or revoked",
				Header: map[string]string{"WWW-Authenticate": invalidBearer}})
			return
		case err != nil:
			fail(c, err)
			return
		}
		c.Set(ctxPrincipal, p)
		c.Set("flowyte.keyId", p.Key.ID)
		if !p.Has(scope) {
			fail(c, &Problem{Status: 403, Code: "insufficient_scope", Message: "this operation needs scope " + scope,
				Header: map[string]string{"WWW-Authenticate": fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, scope)},
				Extra:  map[string]any{"scope": scope}})
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

// --- Dashboard sessions (§13) -------------------------------------------
// A dashboard session stands in for the Bearer header: the cookie resolves
// to the key's hash, which is re-validated on every request, so revoking
// the key ends its sessions at once.

// cookiePrincipal resolves the request's dashboard session (CSRF-checked
// for state-changing methods) to its key: ErrUnauthenticated when there is
// no valid session, dashboard.ErrCSRF on a failed CSRF check.
func (s *Server) cookiePrincipal(r *http.Request) (Principal, error) {
	sess, err := s.sessions.Resolve(r)
	if errors.Is(err, dashboard.ErrNoSession) {
		return Principal{}, backend.ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	hash, err := hex.DecodeString(sess.Ref)
	if err != nil {
		return Principal{}, backend.ErrUnauthenticated
	}
	return s.backend.AuthenticateHash(r.Context(), hash)
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
	p, err := d.s.backend.Authenticate(ctx, secret)
	if errors.Is(err, backend.ErrInvalidKey) || errors.Is(err, backend.ErrUnauthenticated) {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	if err != nil {
		return dashboard.Principal{}, err
	}
	return d.principal(p, hex.EncodeToString(backend.HashKey(secret))), nil
}

// Lookup implements dashboard.Verifier.
func (d dashboardKeys) Lookup(ctx context.Context, ref string) (dashboard.Principal, error) {
	hash, err := hex.DecodeString(ref)
	if err != nil {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	p, err := d.s.backend.AuthenticateHash(ctx, hash)
	if errors.Is(err, backend.ErrInvalidKey) {
		return dashboard.Principal{}, dashboard.ErrInvalidCredentials
	}
	if err != nil {
		return dashboard.Principal{}, err
	}
	return d.principal(p, ref), nil
}
