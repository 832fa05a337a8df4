package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
)

// Body limits (CONTRACT §4): one file 256 KiB; a JSON body 1 MiB, or
// 1 MiB + 256 KiB where it carries file content (commits, typed views).
const (
	maxFileBytes    = 256 << 10
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

// fieldError is one entry of a validation problem's "errors" member.
type fieldError struct {
	Pointer string `json:"pointer"`
	Code    string `json:"code"`
	Message string `json:"message"`
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
		return problem(400, "invalid_request", "unparsable Content-Type %q", ct)
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return nil
	}
	if mt == "application/x-www-form-urlencoded" && json.Valid(body) {
		return nil
	}
	return problem(415, "unsupported_media_type", "send Content-Type: application/json, not %s", mt)
}

// readBody reads the whole body under limit; beyond it, 413.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, problem(413, "payload_too_large", "the request body exceeds %d bytes", limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, problem(413, "payload_too_large", "the request body exceeds %d bytes", limit)
		}
		return nil, problem(400, "invalid_request", "reading the body: %v", err)
	}
	return data, nil
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
			return nil, problem(400, "invalid_request", "a JSON body is required")
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
func decodeStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblemIn(data, err)
	}
	if dec.More() {
		return problem(400, "invalid_request", "unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem(400, "invalid_request", "unexpected data after the JSON value")
	}
	return nil
}

// jsonProblemIn is jsonProblem with the document at hand, so a type error
// inside an array names the element: encoding/json reports
// "changes.content", the pointer says "/changes/3/content".
func jsonProblemIn(data []byte, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		var doc any
		if json.Unmarshal(data, &doc) == nil {
			if ptr, ok := findTyped(doc, strings.Split(typ.Field, "."), typ.Value); ok {
				msg := fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)
				return problem(422, "validation_failed", "%s: %s", ptr, msg).
					with("errors", []fieldError{{Pointer: ptr, Code: "invalid_type", Message: msg}})
			}
		}
	}
	return jsonProblem(err)
}

// findTyped walks path through doc, trying every element of the arrays on
// the way, to the first value of JSON kind want; it returns its pointer.
func findTyped(doc any, path []string, want string) (string, bool) {
	if arr, ok := doc.([]any); ok {
		for i, el := range arr {
			if p, ok := findTyped(el, path, want); ok {
				return "/" + strconv.Itoa(i) + p, true
			}
		}
		return "", false
	}
	if len(path) == 0 {
		return "", jsonKind(doc) == want || strings.HasPrefix(want, jsonKind(doc))
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return "", false
	}
	child, ok := obj[path[0]]
	if !ok {
		return "", false
	}
	p, ok := findTyped(child, path[1:], want)
	return "/" + path[0] + p, ok
}

// jsonKind names a decoded value's JSON kind as UnmarshalTypeError does.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// jsonProblem turns a decoding error into the right problem.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problem(400, "invalid_request", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return problem(400, "invalid_request", "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		ptr := "/" + strings.ReplaceAll(typ.Field, ".", "/")
		if typ.Field == "" {
			ptr = ""
		}
		msg := fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)
		return problem(422, "validation_failed", "%s: %s", ptr, msg).
			with("errors", []fieldError{{Pointer: ptr, Code: "invalid_type", Message: msg}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem(422, "validation_failed", "unknown field %q", name).
			with("errors", []fieldError{{Pointer: "/" + name, Code: "unknown_field", Message: "unknown field " + strconv.Quote(name)}})
	}
	return problem(400, "invalid_request", "malformed JSON: %v", err)
}

// validate runs validator/v10 over dst and reports JSON pointers.
func (s *Server) validate(dst any) error {
	err := s.validator().Struct(dst)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return problem(422, "validation_failed", "%v", err)
	}
	out := make([]fieldError, 0, len(ves))
	for _, fe := range ves {
		out = append(out, fieldError{Pointer: namespacePointer(fe.Namespace()), Code: fe.Tag(), Message: validationMessage(fe)})
	}
	return problem(422, "validation_failed", "%s", out[0].Message).with("errors", out)
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
