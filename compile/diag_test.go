package compile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// baseDraft is a small valid agent the diagnostic cases break one file at
// a time.
func baseDraft() map[string][]byte {
	return map[string][]byte{
		"agent.yaml": []byte("name: Test agent\n"),
		"skills/lookup.yaml": []byte(`description: Look up an order.
parameters:
  type: object
  properties:
    id:
      type: string
  required: [id]
http:
  method: GET
  url: https://api.example.com/orders/{id}
  timeoutMs: 1000
`),
		"playbooks/track.yaml": []byte(`triggers:
  - track my order
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with:
      id: "{{id}}"
  - say: Done with {{id}}.
`),
		"knowledge/faq.md":    []byte("---\ntitle: FAQ\n---\n\nSome answers.\n"),
		"guardrails/pii.yaml": []byte("applies: both\nredact:\n  patterns:\n    - \\d{16}\n"),
	}
}

type wantDiag struct {
	file string
	line int
	code string
}

func (w wantDiag) String() string { return fmt.Sprintf("%s:%d:%s", w.file, w.line, w.code) }

func diagKeys(ds Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, wantDiag{d.File, d.Line, d.Code}.String())
	}
	return out
}

func wantKeys(ws []wantDiag) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	slices.Sort(out)
	return out
}

// withFiles returns baseDraft with changes applied; a nil content deletes.
func withFiles(changes map[string]string) map[string][]byte {
	files := baseDraft()
	for p, c := range changes {
		if c == "\x00delete" {
			delete(files, p)
			continue
		}
		files[p] = []byte(c)
	}
	return files
}

func TestBaseDraftCompiles(t *testing.T) {
	r := Compile(baseDraft())
	require.True(t, r.OK(), "errors %v", r.Errors)
	require.Empty(t, r.Warnings)
	assert.Equal(t, DefaultLanguage, r.Artifact.Settings.Language)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, r.Digest)
}

func TestCompileDiagnostics(t *testing.T) {
	const del = "\x00delete"
	tests := []struct {
		name     string
		changes  map[string]string
		errors   []wantDiag
		warnings []wantDiag
	}{
		{
			name:    "yaml_syntax",
			changes: map[string]string{"agent.yaml": "name: Test\nmodel: [unclosed\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeYAMLSyntax}},
		},
		{
			name:    "yaml_syntax_scanner",
			changes: map[string]string{"agent.yaml": "name: Test\ngreeting: a: b\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeYAMLSyntax}},
		},
		{
			name:    "yaml_syntax_first_line",
			changes: map[string]string{"agent.yaml": "[name\n"},
			errors:  []wantDiag{{"agent.yaml", 1, CodeYAMLSyntax}},
		},
		{
			name:    "yaml_syntax_two_documents",
			changes: map[string]string{"agent.yaml": "name: Test\n---\nname: Again\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeYAMLSyntax}},
		},
		{
			name:    "yaml_syntax_alias",
			changes: map[string]string{"agent.yaml": "name: &n Test\ngreeting: *n\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeYAMLSyntax}},
		},
		{
			name:    "invalid_encoding",
			changes: map[string]string{"knowledge/faq.md": "line one\nbad \xff byte\n"},
			errors:  []wantDiag{{"knowledge/faq.md", 2, CodeInvalidEncoding}},
		},
		{
			name:    "invalid_path",
			changes: map[string]string{"notes.txt": "hi"},
			errors:  []wantDiag{{"notes.txt", 0, CodeInvalidPath}},
		},
		{
			name:    "missing_settings",
			changes: map[string]string{"agent.yaml": del},
			errors:  []wantDiag{{"agent.yaml", 0, CodeMissingSettings}},
		},
		{
			name:    "unknown_field",
			changes: map[string]string{"agent.yaml": "name: Test\n\ntone: warm\n"},
			errors:  []wantDiag{{"agent.yaml", 3, CodeUnknownField}},
		},
		{
			name:    "unknown_field_nested",
			changes: map[string]string{"agent.yaml": "name: Test\nvoice:\n  provider: x\n  voiceId: y\n  speed: 2\n"},
			errors:  []wantDiag{{"agent.yaml", 5, CodeUnknownField}},
		},
		{
			name:    "duplicate_field",
			changes: map[string]string{"agent.yaml": "name: Test\nname: Again\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeDuplicateField}},
		},
		{
			name:    "missing_field",
			changes: map[string]string{"agent.yaml": "description: no name\n"},
			errors:  []wantDiag{{"agent.yaml", 1, CodeMissingField}},
		},
		{
			name:    "missing_field_empty_file",
			changes: map[string]string{"agent.yaml": ""},
			errors:  []wantDiag{{"agent.yaml", 1, CodeMissingField}},
		},
		{
			name: "missing_field_ask_without_save",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [hi]
steps:
  - say: Hello
  - ask: Order number?
`},
			errors:   []wantDiag{{"playbooks/track.yaml", 4, CodeMissingField}},
			warnings: []wantDiag{{"skills/lookup.yaml", 1, CodeUnusedSkill}},
		},
		{
			name:    "invalid_type",
			changes: map[string]string{"agent.yaml": "name: Test\nmodel:\n  name: m\n  temperature: hot\n"},
			errors:  []wantDiag{{"agent.yaml", 4, CodeInvalidType}},
		},
		{
			name:    "invalid_type_root",
			changes: map[string]string{"agent.yaml": "- just\n- a list\n"},
			errors:  []wantDiag{{"agent.yaml", 1, CodeInvalidType}},
		},
		{
			name:    "invalid_value_temperature",
			changes: map[string]string{"agent.yaml": "name: Test\nmodel:\n  name: m\n  temperature: 2.5\n"},
			errors:  []wantDiag{{"agent.yaml", 4, CodeInvalidValue}},
		},
		{
			name:    "invalid_value_method",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]), "GET", "get", 1)},
			errors:  []wantDiag{{"skills/lookup.yaml", 9, CodeInvalidValue}},
		},
		{
			name:    "invalid_language",
			changes: map[string]string{"agent.yaml": "name: Test\nlanguage: not a language\n"},
			errors:  []wantDiag{{"agent.yaml", 2, CodeInvalidLanguage}},
		},
		{
			name:    "invalid_front_matter",
			changes: map[string]string{"knowledge/faq.md": "---\ntitle: FAQ\n\nno closing line\n"},
			errors:  []wantDiag{{"knowledge/faq.md", 1, CodeInvalidFrontMatter}},
		},
		{
			name:    "front_matter_unknown_field",
			changes: map[string]string{"knowledge/faq.md": "---\ntitle: FAQ\nauthor: me\n---\n\nBody\n"},
			errors:  []wantDiag{{"knowledge/faq.md", 3, CodeUnknownField}},
		},
		{
			name:    "front_matter_yaml_syntax",
			changes: map[string]string{"knowledge/faq.md": "---\ntitle: FAQ\ntags: [a\n---\n\nBody\n"},
			errors:  []wantDiag{{"knowledge/faq.md", 3, CodeYAMLSyntax}},
		},
		{
			name:    "invalid_regex",
			changes: map[string]string{"guardrails/pii.yaml": "applies: both\nredact:\n  patterns:\n    - ok\n    - \"[0-9\"\n"},
			errors:  []wantDiag{{"guardrails/pii.yaml", 5, CodeInvalidRegex}},
		},
		{
			name:    "invalid_regex_matches_empty",
			changes: map[string]string{"guardrails/pii.yaml": "applies: input\nblock:\n  patterns:\n    - \"x*\"\n  message: no\n"},
			errors:  []wantDiag{{"guardrails/pii.yaml", 4, CodeInvalidRegex}},
		},
		{
			name:    "invalid_guardrail_neither",
			changes: map[string]string{"guardrails/pii.yaml": "description: nothing\napplies: both\n"},
			errors:  []wantDiag{{"guardrails/pii.yaml", 1, CodeInvalidGuardrail}},
		},
		{
			name:    "invalid_guardrail_empty_block",
			changes: map[string]string{"guardrails/pii.yaml": "applies: input\nblock:\n  message: no\n"},
			errors:  []wantDiag{{"guardrails/pii.yaml", 2, CodeInvalidGuardrail}},
		},
		{
			name: "invalid_schema",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"      type: string", "      type: strng", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 6, CodeInvalidSchema}},
		},
		{
			name: "invalid_schema_not_object",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"  type: object", "  type: array", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 2, CodeInvalidSchema}},
		},
		{
			name: "invalid_schema_remote_ref",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"      type: string", "      $ref: https://example.com/id.json", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 2, CodeInvalidSchema}},
		},
		{
			name: "invalid_url_scheme",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"https://api.example.com", "ftp://api.example.com", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 10, CodeInvalidURL}},
		},
		{
			name: "invalid_url_relative",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"https://api.example.com", "", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 10, CodeInvalidURL}},
		},
		{
			name: "invalid_url_undeclared_param",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"{id}", "{id}/{line}", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 10, CodeInvalidURL}},
		},
		{
			name: "invalid_header",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"  method: GET\n", "  method: GET\n  headers:\n    Bad Header: x\n", 1)},
			errors: []wantDiag{{"skills/lookup.yaml", 11, CodeInvalidHeader}},
		},
		{
			name: "invalid_step_two_actions",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with: {id: "{{id}}"}
  - say: hi
    handoff: human
`},
			errors: []wantDiag{{"playbooks/track.yaml", 7, CodeInvalidStep}},
		},
		{
			name: "invalid_step_save_without_ask",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with: {id: "{{id}}"}
  - say: hi
    save: x
`},
			errors: []wantDiag{{"playbooks/track.yaml", 8, CodeInvalidStep}},
		},
		{
			name: "invalid_template",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with: {id: "{{id}}"}
  - say: Done with {{id}
`},
			errors: []wantDiag{{"playbooks/track.yaml", 7, CodeInvalidTemplate}},
		},
		{
			name: "undefined_variable",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - say: Looking up {{id}}
  - ask: Order number?
    save: id
  - skill: lookup
    with:
      id: "{{orderId}}"
`},
			errors: []wantDiag{{"playbooks/track.yaml", 3, CodeUndefinedVariable}, {"playbooks/track.yaml", 8, CodeUndefinedVariable}},
		},
		{
			name: "unknown_skill",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with: {id: "{{id}}"}
  - skill: nope
`},
			errors: []wantDiag{{"playbooks/track.yaml", 7, CodeUnknownSkill}},
		},
		{
			name: "unknown_parameter",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - ask: Order number?
    save: id
  - skill: lookup
    with:
      id: "{{id}}"
      extra: x
`},
			errors: []wantDiag{{"playbooks/track.yaml", 8, CodeUnknownParameter}},
		},
		{
			name: "missing_parameter",
			changes: map[string]string{"playbooks/track.yaml": `triggers: [track]
steps:
  - say: hi
  - skill: lookup
`},
			errors: []wantDiag{{"playbooks/track.yaml", 4, CodeMissingParameter}},
		},
		{
			name: "missing_parameter_with_present",
			changes: map[string]string{"skills/lookup.yaml": strings.Replace(string(baseDraft()["skills/lookup.yaml"]),
				"    id:\n      type: string\n  required: [id]", "    id:\n      type: string\n    line:\n      type: integer\n  required: [id, line]", 1)},
			errors: []wantDiag{{"playbooks/track.yaml", 7, CodeMissingParameter}},
		},
		{
			name: "unused_skill",
			changes: map[string]string{"skills/spare.yaml": `parameters: {type: object}
http: {method: GET, url: "https://example.com/", timeoutMs: 100}
`},
			warnings: []wantDiag{{"skills/spare.yaml", 1, CodeUnusedSkill}},
		},
		{
			name:     "empty_article",
			changes:  map[string]string{"knowledge/empty.md": "---\ntitle: Soon\n---\n\n  \n"},
			warnings: []wantDiag{{"knowledge/empty.md", 1, CodeEmptyArticle}},
		},
		{
			name: "duplicate_trigger",
			changes: map[string]string{"playbooks/zz-other.yaml": `triggers:
  - something else
  - Track  My ORDER
steps:
  - handoff: human
`},
			warnings: []wantDiag{{"playbooks/zz-other.yaml", 3, CodeDuplicateTrigger}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compile(withFiles(tt.changes))
			assert.Equal(t, wantKeys(tt.errors), diagKeys(r.Errors), "errors: %v", r.Errors)
			assert.Equal(t, wantKeys(tt.warnings), diagKeys(r.Warnings), "warnings: %v", r.Warnings)
			assert.Equal(t, len(tt.errors) == 0, r.OK())
			if !r.OK() {
				assert.Nil(t, r.Artifact, "a failed compile has no artifact")
				assert.Nil(t, r.JSON)
				assert.Empty(t, r.Digest)
			}
			for _, d := range slices.Concat(r.Errors, r.Warnings) {
				assert.NotEmpty(t, d.Message, "diagnostic %v has no message", d)
			}
		})
	}
}

func TestCompileArtifactIgnoredInReleaseTree(t *testing.T) {
	r := Compile(baseDraft())
	release := maps.Clone(baseDraft())
	release[ArtifactPath] = r.JSON
	r2 := Compile(release)
	require.True(t, r2.OK(), "release tree errors %v", r2.Errors)
	assert.Equal(t, r.Digest, r2.Digest)
}

func TestResultSlicesNeverNil(t *testing.T) {
	for _, files := range []map[string][]byte{nil, baseDraft()} {
		r := Compile(files)
		assert.NotNil(t, r.Errors)
		assert.NotNil(t, r.Warnings)
	}
}

func TestDiagnosticsError(t *testing.T) {
	ds := Diagnostics{{File: "agent.yaml", Line: 2, Code: CodeUnknownField, Message: "m"}, {Code: CodeMissingSettings, Message: "x"}}
	var err error = ds
	assert.EqualError(t, err, "agent.yaml:2: unknown_field: m (and 1 more)")
	assert.EqualError(t, ds[:1], "agent.yaml:2: unknown_field: m")
	assert.EqualError(t, Diagnostics{}, "no diagnostics")
}

func TestIssuesCappedPerFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("triggers:\n")
	for range 5000 {
		b.WriteString("  - [x]\n")
	}
	b.WriteString("steps:\n  - say: hi\n")
	r := Compile(withFiles(map[string]string{"playbooks/big.yaml": b.String()}))
	n := 0
	for _, d := range r.Errors {
		if d.File == "playbooks/big.yaml" {
			n++
		}
	}
	assert.Positive(t, n)
	assert.LessOrEqual(t, n, maxIssues)
}

func TestComplexKeyReportedOnItsLine(t *testing.T) {
	r := Compile(withFiles(map[string]string{"agent.yaml": "name: A\n? [x]\n: y\nmodel:\n  name: m\n  temperature: 7\n"}))
	assert.Equal(t, []string{"agent.yaml:2:invalid_type", "agent.yaml:6:invalid_value"}, diagKeys(r.Errors))
}
