package compile

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// FieldError is one problem in a typed view body, located by an RFC 6901
// JSON pointer into the request body, e.g. "/http/url" or "/steps/2/save".
type FieldError struct {
	Pointer string `json:"pointer"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// newView returns a pointer to a zero view of kind, or nil for an unknown kind.
func newView(kind Kind) any {
	switch kind {
	case KindSettings:
		return &Settings{}
	case KindKnowledge:
		return &Article{}
	case KindSkills:
		return &Skill{}
	case KindGuardrails:
		return &Guardrail{}
	case KindPlaybooks:
		return &Playbook{}
	case KindTests:
		return &Test{}
	}
	return nil
}

// slugField returns the Slug field of a view, if it has one.
func slugField(view any) reflect.Value {
	v := reflect.ValueOf(view).Elem()
	if f := v.FieldByName("Slug"); f.IsValid() && f.Kind() == reflect.String {
		return f
	}
	return reflect.Value{}
}

// checkKindSlug describes why (kind, slug) names no draft file, or "".
func checkKindSlug(kind Kind, slug string) string {
	if newView(kind) == nil {
		return fmt.Sprintf("unknown kind %q", kind)
	}
	if kind != KindSettings && !ValidSlug(slug) {
		return fmt.Sprintf("name %q must match %s", slug, slugPattern)
	}
	return ""
}

// DecodeView decodes and validates the JSON body of a typed PUT for one
// draft file: strict decoding (unknown fields and wrong types are errors),
// the validate struct tags, and every check of that single file (regexes,
// URL, parameter schema, guardrail shape, playbook steps and variables).
// It returns *Settings, *Article, *Skill, *Guardrail, *Playbook or *Test with Slug
// set from slug (a "slug" member of the body, if any, must equal it), and
// nil errs; or a nil view and the problems, each at its JSON pointer.
// Cross-file checks (unknown skills, parameters, the slugs a test names)
// are left to Compile.
func DecodeView(kind Kind, slug string, body []byte) (view any, errs []FieldError) {
	if msg := checkKindSlug(kind, slug); msg != "" {
		return nil, []FieldError{{Pointer: "", Code: CodeInvalidPath, Message: msg}}
	}
	var is issues
	tree := parseJSON(body, &is)
	if tree != nil {
		view = newView(kind)
		d := decoder{file: false, is: &is}
		if tree.kind == nodeNull {
			d.wrongType(tree, "", "an object")
		} else {
			d.decode(tree, "", reflect.ValueOf(view).Elem())
		}
		if f := slugField(view); f.IsValid() {
			if got := f.String(); got != "" && got != slug {
				is.add("/slug", CodeSlugMismatch, "slug %q does not match the name in the path %q", got, slug)
			}
			f.SetString(slug)
		}
		runValidator(newValidator(), view, &is)
		checkView(view, &is)
	}
	if is.empty() {
		return view, nil
	}
	errs = make([]FieldError, 0, len(is.list))
	for _, x := range is.list {
		errs = append(errs, FieldError{Pointer: x.ptr, Code: x.code, Message: x.msg})
	}
	return nil, errs
}

// ReadView parses a stored draft file into its typed view (the same types
// as DecodeView). diags are the file's own problems, with File set and
// lines where known. The view is nil when the file cannot be parsed at all
// (YAML syntax, encoding, unknown kind); otherwise it holds whatever could
// be decoded, even when diags is not empty.
func ReadView(kind Kind, slug string, data []byte) (view any, diags Diagnostics) {
	if msg := checkKindSlug(kind, slug); msg != "" {
		return nil, Diagnostics{{File: PathFor(kind, slug), Code: CodeInvalidPath, Message: msg}}
	}
	pf := parseFile(newValidator(), kind, slug, data)
	return pf.view, pf.diagnostics()
}

// parsedFile is one draft file after per-file checks.
type parsedFile struct {
	path string
	kind Kind
	slug string
	view any    // nil when unparsable
	tree *tnode // for line numbers; nil when unparsable
	is   issues
	// patternInsts is the total RE2 program size of a guardrail's
	// patterns.
	patternInsts int
	// source is the size of the file in bytes.
	source int
}

// diagnostics converts the file's issues, resolving pointers to lines.
func (pf *parsedFile) diagnostics() Diagnostics {
	ds := make(Diagnostics, 0, len(pf.is.list))
	for _, x := range pf.is.list {
		line := x.line
		if line == 0 && x.code != CodeInvalidEncoding {
			line = pf.tree.lineAt(x.ptr)
		}
		ds = append(ds, Diagnostic{File: pf.path, Line: line, Code: x.code, Message: x.msg})
	}
	sortDiagnostics(ds)
	return ds
}

// parseFile parses, decodes and checks one stored file of a valid kind and
// slug.
func parseFile(val *validator.Validate, kind Kind, slug string, data []byte) *parsedFile {
	pf := &parsedFile{path: PathFor(kind, slug), kind: kind, slug: slug, source: len(data)}
	if !utf8.Valid(data) {
		line := 1 + strings.Count(string(data[:invalidUTF8Offset(data)]), "\n")
		pf.is.addLine(line, CodeInvalidEncoding, "file is not valid UTF-8")
		return pf
	}
	text := string(data)
	var content string
	if kind == KindKnowledge {
		fm, body, ok := splitFrontMatter(text)
		if !ok {
			pf.is.addLine(1, CodeInvalidFrontMatter, "front matter opened with --- on line 1 is never closed with a --- line")
			return pf
		}
		content = body
		if fm == nil {
			pf.tree = &tnode{kind: nodeMap, line: 1}
		} else {
			pf.tree = parseYAML([]byte(*fm), 1, &pf.is)
		}
	} else {
		pf.tree = parseYAML(data, 0, &pf.is)
	}
	if pf.tree == nil {
		return pf
	}
	view := newView(kind)
	d := decoder{file: true, is: &pf.is}
	if pf.tree.kind == nodeNull {
		// An empty document or a bare null: no fields at all.
		pf.tree = &tnode{kind: nodeMap, line: pf.tree.line}
	}
	d.decode(pf.tree, "", reflect.ValueOf(view).Elem())
	if f := slugField(view); f.IsValid() {
		f.SetString(slug)
	}
	if a, ok := view.(*Article); ok {
		a.Content = content
	}
	runValidator(val, view, &pf.is)
	pf.patternInsts = checkView(view, &pf.is)
	pf.view = view
	return pf
}

func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// splitFrontMatter splits a knowledge file into its front matter (nil when
// there is none) and its Markdown body. Front matter starts with a "---"
// first line and ends at the next "---" (or "...") line; one blank line
// after it belongs to the separator. ok is false for unclosed front matter.
func splitFrontMatter(text string) (fm *string, body string, ok bool) {
	rest, found := strings.CutPrefix(text, "---\n")
	if !found {
		rest, found = strings.CutPrefix(text, "---\r\n")
	}
	if !found {
		return nil, text, true
	}
	pos := 0
	for pos <= len(rest) {
		end := strings.IndexByte(rest[pos:], '\n')
		var line, after string
		if end < 0 {
			line, after = rest[pos:], ""
		} else {
			line, after = rest[pos:pos+end], rest[pos+end+1:]
		}
		if l := strings.TrimSuffix(line, "\r"); l == "---" || l == "..." {
			front := rest[:pos]
			if b, cut := strings.CutPrefix(after, "\r\n"); cut {
				after = b
			} else {
				after = strings.TrimPrefix(after, "\n")
			}
			return &front, after, true
		}
		if end < 0 {
			break
		}
		pos += end + 1
	}
	return nil, "", false
}
