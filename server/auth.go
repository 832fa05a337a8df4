package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
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
		p, err := s.backend.Authenticate(c.Request.Context(), token)
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
