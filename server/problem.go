package server

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

// Problem is an RFC 9457 problem as the HTTP transport renders it: a
// backend error with its status and any response headers.
type Problem struct {
	Status int
	Code   string
	// Message is a human sentence for the log and for the "message" member.
	Message string
	// Extra holds extension members (errors, currentRevision, ...).
	Extra map[string]any
	// Header holds response headers to set (WWW-Authenticate, Allow, ...).
	Header map[string]string
}

var _ error = (*Problem)(nil)

// Error implements error.
func (p *Problem) Error() string {
	if p.Message != "" {
		return p.Code + ": " + p.Message
	}
	return p.Code
}

// problem builds a client error; its status comes from problemCodes.
func problem(code, format string, args ...any) *backend.Error {
	return backend.Errorf(code, format, args...)
}

// problemCodes is every problem code the daemon emits, with its status and
// the short explanation served at /problems/{code}.
var problemCodes = map[string]struct {
	Status int
	About  string
}{
	"invalid_request":            {400, "The request could not be parsed: malformed JSON, a bad query parameter or header, or a field of the wrong type."},
	"unauthorized":               {401, "No valid API key was sent. Send Authorization: Bearer flowyte_sk_..."},
	"insufficient_scope":         {403, "The API key is valid but lacks the scope this operation needs."},
	"csrf_failed":                {403, "A dashboard request with the session cookie lacked the session's X-CSRF-Token or came from another origin."},
	"read_only":                  {403, "Agent repositories are read-only over git: change the draft through the API."},
	"not_found":                  {404, "No such resource."},
	"agent_not_found":            {404, "No agent with this id exists in your workspace."},
	"version_not_found":          {404, "The agent has no such version."},
	"file_not_found":             {404, "No file at this path."},
	"session_not_found":          {404, "No chat session with this id exists in your workspace."},
	"webhook_not_found":          {404, "No webhook with this id exists in your workspace."},
	"key_not_found":              {404, "No API key with this id."},
	"method_not_allowed":         {405, "The resource exists but does not support this method."},
	"no_published_version":       {409, "The agent has never been published, so only draftMode sessions can run. Publish first."},
	"draft_revision_mismatch":    {409, "The draft moved since the revision you sent (see currentRevision)."},
	"published_version_mismatch": {409, "The published pointer moved since the version you sent (see publishedVersion)."},
	"publish_conflict":           {409, "Another publish of this agent won the race. Review the draft and publish again."},
	"draft_unchanged":            {409, "The draft is identical to the latest version (see latestVersion): there is nothing new to publish."},
	"idempotency_key_in_use":     {409, "A request with this Idempotency-Key is still running."},
	"request_timeout":            {408, "The request body did not arrive in time: send it at a steady pace."},
	"precondition_failed":        {412, "If-Match did not match the current revision."},
	"payload_too_large":          {413, "The request body or resulting draft exceeds a limit."},
	"unsupported_media_type":     {415, "The request body has a Content-Type this endpoint does not accept."},
	"validation_failed":          {422, "The request is well-formed but its content is invalid (see errors)."},
	"invalid_path":               {422, "The path is not part of the draft format."},
	"compile_failed":             {422, "The draft does not compile (see errors)."},
	"idempotency_key_reused":     {422, "This Idempotency-Key was used with a different request body."},
	"tests_failed":               {422, "The draft's conversation tests fail (see failures): fix them, or publish with force: true."},
	"internal":                   {500, "Something went wrong on our side. The request id identifies it in the logs."},
	"unavailable":                {503, "The service is starting or shutting down, or its database cannot be reached. Retry shortly."},
}

// problemCodeList returns the known codes, sorted.
func problemCodeList() []string {
	out := make([]string, 0, len(problemCodes))
	for c := range problemCodes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// problemFor maps any error to the Problem a client sees: the backend's
// one error table for the code, problemCodes for the status. Unknown
// errors become 500 internal.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Problem{Status: 413, Code: "payload_too_large", Message: fmt.Sprintf("the request body exceeds %d bytes", mbe.Limit)}
	}
	be := backend.ErrorOf(err)
	if be == nil {
		return &Problem{Status: 500, Code: "internal"}
	}
	pc, ok := problemCodes[be.Code]
	if !ok {
		return &Problem{Status: 500, Code: "internal"}
	}
	return &Problem{Status: pc.Status, Code: be.Code, Message: be.Message, Extra: be.Extra}
}

// body is p's RFC 9457 document: the members every problem has, the
// message (never for 5xx: no internals leak), the request id when given,
// and the extension members.
func (p *Problem) body(instance, requestID string) map[string]any {
	b := map[string]any{
		"type":     "/problems/" + p.Code,
		"title":    http.StatusText(p.Status),
		"status":   p.Status,
		"detail":   p.Code,
		"instance": instance,
	}
	if p.Message != "" && p.Status < 500 {
		b["message"] = p.Message
	}
	if requestID != "" {
		b["requestId"] = requestID
	}
	for k, v := range p.Extra {
		b[k] = v
	}
	return b
}

// writeProblem renders p as application/problem+json.
func writeProblem(c *gin.Context, p *Problem) {
	for k, v := range p.Header {
		c.Header(k, v)
	}
	body := p.body(c.Request.URL.Path, c.GetString(ctxRequestID))
	c.Header("Content-Type", "application/problem+json")
	c.Header("Cache-Control", "no-store")
	c.Status(p.Status)
	if c.Request.Method == http.MethodHead {
		return
	}
	_ = jsonEncode(c.Writer, body)
}

// problemMiddleware is the one place errors become responses: handlers call
// c.Error(err) and return.
func (s *Server) problemMiddleware(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Str("requestId", c.GetString(ctxRequestID)).Interface("panic", r).Msg("handler panicked")
			if !c.Writer.Written() {
				writeProblem(c, &Problem{Status: 500, Code: "internal"})
			}
			c.Abort()
		}
	}()
	c.Next()
	if len(c.Errors) == 0 {
		return
	}
	err := c.Errors.Last().Err
	p := problemFor(err)
	if p.Status >= 500 {
		s.log.Error().Err(err).Str("requestId", c.GetString(ctxRequestID)).Str("route", c.FullPath()).Msg("request failed")
	}
	c.Set(ctxErrorCode, p.Code)
	if c.Writer.Written() {
		return
	}
	writeProblem(c, p)
}

// fail records err for the problem middleware and aborts the chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}
