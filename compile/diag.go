package compile

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// Diagnostic codes. doc.go explains when each is reported.
const (
	CodeYAMLSyntax         = "yaml_syntax"
	CodeInvalidJSON        = "invalid_json"
	CodeInvalidEncoding    = "invalid_encoding"
	CodeInvalidPath        = "invalid_path"
	CodeMissingSettings    = "missing_settings"
	CodeUnknownField       = "unknown_field"
	CodeDuplicateField     = "duplicate_field"
	CodeMissingField       = "missing_field"
	CodeInvalidType        = "invalid_type"
	CodeInvalidValue       = "invalid_value"
	CodeInvalidLanguage    = "invalid_language"
	CodeInvalidFrontMatter = "invalid_front_matter"
	CodeInvalidRegex       = "invalid_regex"
	CodeInvalidSchema      = "invalid_schema"
	CodeInvalidURL         = "invalid_url"
	CodeInvalidHeader      = "invalid_header"
	CodeInvalidGuardrail   = "invalid_guardrail"
	CodeInvalidStep        = "invalid_step"
	CodeInvalidTemplate    = "invalid_template"
	CodeUndefinedVariable  = "undefined_variable"
	CodeUnknownSkill       = "unknown_skill"
	CodeUnknownGuardrail   = "unknown_guardrail"
	CodeUnknownPlaybook    = "unknown_playbook"
	CodeUnknownArticle     = "unknown_knowledge"
	CodeUnknownParameter   = "unknown_parameter"
	CodeMissingParameter   = "missing_parameter"
	CodeSlugMismatch       = "slug_mismatch"

	// Warnings.
	CodeUnusedSkill      = "unused_skill"
	CodeEmptyArticle     = "empty_article"
	CodeDuplicateTrigger = "duplicate_trigger"
)

// Diagnostic is one compile error or warning. File is a draft path, Line is
// 1-based (0 when the problem is not tied to a line).
type Diagnostic struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// String formats d as "file:line: code: message", leaving out what is unknown.
func (d Diagnostic) String() string {
	s := ""
	if d.File != "" {
		s = d.File
		if d.Line > 0 {
			s += ":" + strconv.Itoa(d.Line)
		}
		s += ": "
	}
	return s + d.Code + ": " + d.Message
}

// Diagnostics is a list of diagnostics. As an error it describes the first
// one and counts the rest.
type Diagnostics []Diagnostic

var _ error = Diagnostics(nil)

// Error implements error.
func (ds Diagnostics) Error() string {
	switch len(ds) {
	case 0:
		return "no diagnostics"
	case 1:
		return ds[0].String()
	default:
		return fmt.Sprintf("%s (and %d more)", ds[0].String(), len(ds)-1)
	}
}

// sortDiagnostics orders ds by file, line, code and message.
func sortDiagnostics(ds Diagnostics) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Result is the outcome of Compile.
type Result struct {
	// Artifact is the compiled agent; nil when Errors is not empty.
	Artifact *Artifact
	// JSON is the deterministic encoding of Artifact, the bytes of
	// compiled/agent.json; nil when Errors is not empty, and left nil by
	// CompileDraft and CompileEdit (see Encode).
	JSON []byte
	// Digest is "sha256:" + the hex SHA-256 of JSON; empty on errors, and
	// left empty by CompileDraft and CompileEdit (see the function Digest).
	Digest string
	// Errors block publishing. Never nil.
	Errors Diagnostics
	// Warnings do not block publishing. Never nil.
	Warnings Diagnostics
	// Tests are the draft's test suites (tests/<slug>.yaml) sorted by
	// slug; nil when Errors is not empty or the draft has no tests. They
	// are not part of Artifact or JSON.
	Tests []Test

	// state is what Encode and CompileEdit need; nil in a Result not
	// made by a Compiler.
	state *draftState
}

// OK reports whether the compile produced an artifact (no errors).
func (r Result) OK() bool { return len(r.Errors) == 0 && r.Artifact != nil }
