package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/flowyte/flowyte/server/backend"
)

// Body limits (CONTRACT §4): one file 256 KiB; a JSON body 1 MiB, or
// 1 MiB + 256 KiB where it carries file content (commits, typed views).
const (
	maxFileBytes    = backend.MaxFileBytes
	maxJSONBody     = 1 << 20
	maxJSONFileBody = maxJSONBody + maxFileBytes
)

// jsonEncode writes v as JSON without HTML escaping.
func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSON answers status with v as application/json.
func writeJSON(c *gin.Context, status int, v any) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(status)
	if c.Request.Method == http.MethodHead {
		return
	}
	_ = jsonEncode(c.Writer, v)
}

// newValidator returns a validator reporting JSON field names.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	return v
}

// checkJSONContentType refuses bodies that declare a non-JSON media type.
// A missing Content-Type is accepted (the body must still parse as JSON),
// and so is curl's default form type when the body is in fact JSON
// (`curl -d '{...}'` without -H); a real form body is 415.
func checkJSONContentType(r *http.Request, body []byte) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return problem("invalid_request", "unparsable Content-Type %q", ct)
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return nil
	}
	if mt == "application/x-www-form-urlencoded" && json.Valid(body) {
		return nil
	}
	return problem("unsupported_media_type", "send Content-Type: application/json, not %s", mt)
}

// readBody reads the whole body under limit; beyond it, 413.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, problem("payload_too_large", "the request body exceeds %d bytes", limit)
	}
	// A body that trickles in is cut off at the deadline rather than
	// holding a connection and a goroutine for minutes.
	if d := bodyDeadline(c); d > 0 {
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(d))
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, problem("payload_too_large", "the request body exceeds %d bytes", limit)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.Header("Connection", "close")
			return nil, problem("request_timeout", "the request body did not arrive within %s", bodyDeadline(c))
		}
		return nil, problem("invalid_request", "reading the body: %v", err)
	}
	return data, nil
}

// bodyDeadline is how long a request may take to send its body.
func bodyDeadline(c *gin.Context) time.Duration {
	if v, ok := c.Get(ctxBodyTimeout); ok {
		d, _ := v.(time.Duration)
		return d
	}
	return 0
}

// bindJSON decodes the request body strictly into dst and validates it.
// An empty body decodes as {} when allowEmpty.
func (s *Server) bindJSON(c *gin.Context, dst any, allowEmpty bool) ([]byte, error) {
	return s.bindJSONLimit(c, dst, allowEmpty, maxJSONBody)
}

// bindJSONLimit is bindJSON with another body limit.
func (s *Server) bindJSONLimit(c *gin.Context, dst any, allowEmpty bool, limit int64) ([]byte, error) {
	data, err := readBody(c, limit)
	if err != nil {
		return nil, err
	}
	if err := checkJSONContentType(c.Request, data); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if !allowEmpty {
			return nil, problem("invalid_request", "a JSON body is required")
		}
		data = []byte("{}")
	}
	if err := decodeStrict(data, dst); err != nil {
		return nil, err
	}
	if err := s.validate(dst); err != nil {
		return nil, err
	}
	return data, nil
}

// decodeStrict decodes one JSON value, refusing unknown fields, wrong types
// and trailing data.
func decodeStrict(data []byte, dst any) error { return backend.DecodeStrict(data, dst) }

// validate runs validator/v10 over dst and reports JSON pointers.
func (s *Server) validate(dst any) error {
	err := s.valid.Struct(dst)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return problem("validation_failed", "%v", err)
	}
	out := make([]backend.FieldError, 0, len(ves))
	for _, fe := range ves {
		out = append(out, backend.FieldError{Pointer: namespacePointer(fe.Namespace()), Code: fe.Tag(), Message: validationMessage(fe)})
	}
	return problem("validation_failed", "%s", out[0].Message).With("errors", out)
}

// namespacePointer converts "req.changes[0].path" to "/changes/0/path".
func namespacePointer(ns string) string {
	_, rest, ok := strings.Cut(ns, ".")
	if !ok {
		return ""
	}
	rest = strings.NewReplacer("[", ".", "]", "").Replace(rest)
	return "/" + strings.ReplaceAll(rest, ".", "/")
}

// validationMessage is a human sentence for one validator failure.
func validationMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return fe.Field() + " is required"
	case "max":
		return fmt.Sprintf("%s must be at most %s long", fe.Field(), fe.Param())
	case "min":
		return fmt.Sprintf("%s must have at least %s", fe.Field(), fe.Param())
	case "oneof":
		return fmt.Sprintf("%s must be one of: %s", fe.Field(), fe.Param())
	}
	return fmt.Sprintf("%s failed %s %s", fe.Field(), fe.Tag(), fe.Param())
}
