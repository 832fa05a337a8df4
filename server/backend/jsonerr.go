package backend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DecodeStrict decodes one JSON value, refusing unknown fields, wrong
// types and trailing data, with errors a client can act on.
func DecodeStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonErrorIn(data, err)
	}
	if dec.More() {
		return Errorf("invalid_request", "unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf("invalid_request", "unexpected data after the JSON value")
	}
	return nil
}

// jsonErrorIn is JSONError with the document at hand, so a type error
// inside an array names the element: encoding/json reports
// "changes.content", the pointer says "/changes/3/content".
func jsonErrorIn(data []byte, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		var doc any
		if json.Unmarshal(data, &doc) == nil {
			if ptr, ok := findTyped(doc, strings.Split(typ.Field, "."), typ.Value); ok {
				msg := fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)
				return Errorf("validation_failed", "%s: %s", ptr, msg).
					With("errors", []FieldError{{Pointer: ptr, Code: "invalid_type", Message: msg}})
			}
		}
	}
	return JSONError(err)
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

// JSONError turns a JSON decoding error into the right client error.
func JSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return Errorf("invalid_request", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf("invalid_request", "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		ptr := "/" + strings.ReplaceAll(typ.Field, ".", "/")
		if typ.Field == "" {
			ptr = ""
		}
		msg := fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)
		return Errorf("validation_failed", "%s: %s", ptr, msg).
			With("errors", []FieldError{{Pointer: ptr, Code: "invalid_type", Message: msg}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Errorf("validation_failed", "unknown field %q", name).
			With("errors", []FieldError{{Pointer: "/" + name, Code: "unknown_field", Message: "unknown field " + strconv.Quote(name)}})
	}
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	return Errorf("invalid_request", "malformed JSON: %v", err)
}
