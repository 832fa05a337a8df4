package compile

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptrFloat(f float64) *float64 { return &f }

// sampleViews are one full view per kind, as DecodeView would return them.
func sampleViews() map[Kind]any {
	return map[Kind]any{
		KindSettings: &Settings{
			Name: "Acme", Description: "Support", Language: "en-GB",
			Persona: "You are Ava.\nBe brief.\n", Greeting: "Hi!", Fallback: "Sorry?",
			Voice: &Voice{Provider: "elevenlabs", VoiceID: "12345"},
			Model: &Model{Name: "m", Temperature: ptrFloat(0.7)},
		},
		KindKnowledge: &Article{Slug: "faq", Title: "FAQ: yes", Tags: []string{"a", "true"}, Content: "# FAQ\n\n---\nstill body\n"},
		KindSkills: &Skill{
			Slug: "lookup", Description: "Look up",
			Parameters: map[string]any{
				"type":       "object",
				"properties": map[string]any{"id": map[string]any{"type": "string", "maxLength": json.Number("10")}, "n": map[string]any{"type": "number", "minimum": json.Number("0.5")}},
				"required":   []any{"id"},
			},
			HTTP: SkillHTTP{Method: "POST", URL: "https://x.example/{id}", Headers: map[string]string{"X-Key": "abc: def", "Accept": "*/*"}, TimeoutMs: 1500},
		},
		KindGuardrails: &Guardrail{Slug: "g", Description: "d", Applies: "input", Block: &Block{Phrases: []string{"no", "- dash"}, Patterns: []string{`\d{4}`, `(?i)^yes$`}, Message: "Nope: \"quoted\""}},
		KindPlaybooks: &Playbook{
			Slug: "p", Description: "d", Triggers: []string{"hello", "null"},
			Steps: []Step{
				{Ask: "Your id?", Save: "id"},
				{Skill: "lookup", With: map[string]string{"id": "{{id}}"}},
				{Say: "Multi\nline {{ id }}"},
				{Handoff: "human"},
			},
		},
		KindTests: &Test{
			Slug: "t", Description: "Books a table",
			Turns: []TestTurn{
				{User: "I would like to book", Expect: &Expect{ReplyContains: []string{"how many"}, Playbook: "p"}},
				{User: "4"},
				{User: "true", Expect: &Expect{
					ReplyNotContains: []string{"sorry"}, ReplyMatches: `table for \d+`, Guardrail: "g",
					Knowledge: []string{"faq"}, SkillCalls: []ExpectSkillCall{{Skill: "lookup", With: map[string]string{"id": "4"}}, {Skill: "lookup"}},
					Fallback: new(bool),
				}},
			},
		},
	}
}

func TestViewRoundTrip(t *testing.T) {
	for kind, view := range sampleViews() {
		t.Run(string(kind), func(t *testing.T) {
			slug := ""
			if f := slugField(view); f.IsValid() {
				slug = f.String()
			}
			body, err := json.Marshal(view)
			require.NoError(t, err)
			decoded, errs := DecodeView(kind, slug, body)
			require.Empty(t, errs)
			require.Equal(t, view, decoded, "DecodeView")
			file, err := EncodeFile(kind, decoded)
			require.NoError(t, err)
			back, diags := ReadView(kind, slug, file)
			require.Empty(t, diags, "ReadView of\n%s", file)
			require.Equal(t, view, back, "ReadView(EncodeFile(v)) of\n%s", file)
			again, err := EncodeFile(kind, back)
			require.NoError(t, err)
			assert.Equal(t, string(file), string(again), "EncodeFile is stable")
		})
	}
}

func TestEncodeFileCanonical(t *testing.T) {
	views := sampleViews()
	got, err := EncodeFile(KindPlaybooks, views[KindPlaybooks])
	require.NoError(t, err)
	want := `description: d
triggers:
  - hello
  - "null"
steps:
  - ask: Your id?
    save: id
  - skill: lookup
    with:
      id: '{{id}}'
  - say: |-
      Multi
      line {{ id }}
  - handoff: human
`
	assert.Equal(t, want, string(got))
	art, err := EncodeFile(KindKnowledge, &Article{Slug: "a", Content: "plain\n"})
	require.NoError(t, err)
	assert.Equal(t, "plain\n", string(art), "an article without front matter")
	art, err = EncodeFile(KindKnowledge, Article{Slug: "a", Title: "T", Content: "body\n"})
	require.NoError(t, err)
	assert.Equal(t, "---\ntitle: T\n---\n\nbody\n", string(art), "an article value")
	_, err = EncodeFile(KindSkills, &Playbook{})
	assert.Error(t, err, "a view of another kind")
	_, err = EncodeFile(Kind("x"), &Playbook{})
	assert.Error(t, err, "an unknown kind")
	test, err := EncodeFile(KindTests, &Test{Turns: []TestTurn{{User: "4", Expect: &Expect{Fallback: new(bool)}}}})
	require.NoError(t, err)
	assert.Equal(t, "turns:\n  - user: \"4\"\n    expect:\n      fallback: false\n", string(test))
}

func TestDecodeViewErrors(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		slug string
		body string
		want []string // "pointer code"
	}{
		{"not json", KindSettings, "", `{"name":`, []string{" invalid_json"}},
		{"trailing data", KindSettings, "", `{"name":"a"} {}`, []string{" invalid_json"}},
		{"not an object", KindSettings, "", `[1]`, []string{" invalid_type"}},
		{"null", KindSettings, "", `null`, []string{" invalid_type"}},
		{"unknown field", KindSettings, "", `{"name":"a","tone":"x"}`, []string{"/tone unknown_field"}},
		{"duplicate field", KindSettings, "", `{"name":"a","name":"b"}`, []string{"/name duplicate_field"}},
		{"missing name", KindSettings, "", `{}`, []string{"/name missing_field"}},
		{"wrong type", KindSettings, "", `{"name":5}`, []string{"/name invalid_type"}},
		{"temperature", KindSettings, "", `{"name":"a","model":{"name":"m","temperature":9}}`, []string{"/model/temperature invalid_value"}},
		{"nested missing", KindSettings, "", `{"name":"a","voice":{"provider":"p"}}`, []string{"/voice/voiceId missing_field"}},
		{"language", KindSettings, "", `{"name":"a","language":"xx yy"}`, []string{"/language invalid_language"}},
		{"slug mismatch", KindKnowledge, "faq", `{"slug":"other","content":"x"}`, []string{"/slug slug_mismatch"}},
		{"bad slug", KindKnowledge, "Bad", `{"content":"x"}`, []string{" invalid_path"}},
		{"unknown kind", Kind("x"), "a", `{}`, []string{" invalid_path"}},
		{"tag type", KindKnowledge, "faq", `{"tags":["a",3]}`, []string{"/tags/1 invalid_type"}},
		{"skill url", KindSkills, "s", `{"parameters":{"type":"object"},"http":{"method":"GET","url":"https://x/{id}","timeoutMs":5}}`, []string{"/http/url invalid_url"}},
		{"skill schema", KindSkills, "s", `{"parameters":{"type":"object","properties":{"a":{"type":7}}},"http":{"method":"GET","url":"https://x/","timeoutMs":5}}`, []string{"/parameters/properties/a/type invalid_schema"}},
		{"skill schema remote metaschema", KindSkills, "s", `{"parameters":{"$schema":"https://example.com/meta","type":"object"},"http":{"method":"GET","url":"https://x/","timeoutMs":5}}`, []string{"/parameters invalid_schema"}},
		{"skill schema file ref", KindSkills, "s", `{"parameters":{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}},"http":{"method":"GET","url":"https://x/","timeoutMs":5}}`, []string{"/parameters invalid_schema"}},
		{"skill url credentials", KindSkills, "s", `{"parameters":{"type":"object"},"http":{"method":"GET","url":"https://u:p@x/","timeoutMs":5}}`, []string{"/http/url invalid_url"}},
		{"skill missing http", KindSkills, "s", `{"parameters":{"type":"object"}}`, []string{"/http missing_field"}},
		{"skill timeout type", KindSkills, "s", `{"parameters":{"type":"object"},"http":{"method":"GET","url":"https://x/","timeoutMs":1.5}}`, []string{"/http/timeoutMs invalid_type"}},
		{"guardrail both", KindGuardrails, "g", `{"applies":"both","block":{"phrases":["x"],"message":"m"},"redact":{"patterns":["a"]}}`, []string{" invalid_guardrail"}},
		{"guardrail regex", KindGuardrails, "g", `{"applies":"both","redact":{"patterns":["a","(b"]}}`, []string{"/redact/patterns/1 invalid_regex"}},
		{"guardrail applies", KindGuardrails, "g", `{"applies":"sometimes","redact":{"patterns":["a"]}}`, []string{"/applies invalid_value"}},
		{"playbook no triggers", KindPlaybooks, "p", `{"triggers":[],"steps":[{"say":"hi"}]}`, []string{"/triggers missing_field"}},
		{"playbook blank trigger", KindPlaybooks, "p", `{"triggers":[""],"steps":[{"say":"hi"}]}`, []string{"/triggers/0 missing_field"}},
		{"playbook step", KindPlaybooks, "p", `{"triggers":["t"],"steps":[{"say":"hi"},{"say":"a","ask":"b","save":"c"}]}`, []string{"/steps/1 invalid_step"}},
		{"playbook ask", KindPlaybooks, "p", `{"triggers":["t"],"steps":[{"ask":"b"}]}`, []string{"/steps/0/save missing_field"}},
		{"playbook var", KindPlaybooks, "p", `{"triggers":["t"],"steps":[{"skill":"s","with":{"x":"{{v}}"}},{"ask":"b","save":"v"}]}`, []string{"/steps/0/with/x undefined_variable"}},
		{"playbook var escape", KindPlaybooks, "p", `{"triggers":["t"],"steps":[{"skill":"s","with":{"a/b":"{{v}}"}}]}`, []string{"/steps/0/with/a~1b undefined_variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view, errs := DecodeView(tt.kind, tt.slug, []byte(tt.body))
			var got []string
			for _, e := range errs {
				got = append(got, e.Pointer+" "+e.Code)
				assert.NotEmpty(t, e.Message, "error %+v has no message", e)
			}
			assert.Equal(t, tt.want, got, "%+v", errs)
			assert.Nil(t, view, "no view on errors")
		})
	}
}

func TestDecodeViewSlug(t *testing.T) {
	v, errs := DecodeView(KindKnowledge, "faq", []byte(`{"slug":"faq","title":"T","content":"x"}`))
	require.Empty(t, errs)
	assert.Equal(t, &Article{Slug: "faq", Title: "T", Content: "x"}, v)
	v, errs = DecodeView(KindPlaybooks, "p", []byte(`{"triggers":["t"],"steps":[{"handoff":"h"}]}`))
	require.Empty(t, errs)
	require.IsType(t, &Playbook{}, v)
	assert.Equal(t, "p", v.(*Playbook).Slug)
}

func TestReadViewDiagnostics(t *testing.T) {
	view, diags := ReadView(KindSkills, "s", []byte("description: x\nhttp:\n  method: GET\n  url: nope\n  timeoutMs: 1\n"))
	require.IsType(t, &Skill{}, view, "a partial view despite the problems")
	assert.Equal(t, []string{"skills/s.yaml:1:missing_field", "skills/s.yaml:4:invalid_url"}, diagKeys(diags))

	view, diags = ReadView(KindSettings, "", []byte("name: [x"))
	assert.Nil(t, view)
	if assert.Len(t, diags, 1) {
		assert.Equal(t, CodeYAMLSyntax, diags[0].Code)
	}

	view, diags = ReadView(KindKnowledge, "a", []byte("just text, no front matter\n"))
	assert.Empty(t, diags)
	assert.Equal(t, &Article{Slug: "a", Content: "just text, no front matter\n"}, view)

	_, diags = ReadView(KindKnowledge, "A", []byte("x"))
	if assert.Len(t, diags, 1) {
		assert.Equal(t, CodeInvalidPath, diags[0].Code)
	}
}

func TestSplitFrontMatter(t *testing.T) {
	tests := []struct {
		in, fm, body string
		hasFM, ok    bool
	}{
		{"body", "", "body", false, true},
		{"---\ntitle: a\n---\n\nbody", "title: a\n", "body", true, true},
		{"---\ntitle: a\n---\nbody", "title: a\n", "body", true, true},
		{"---\r\ntitle: a\r\n---\r\n\r\nbody", "title: a\r\n", "body", true, true},
		{"---\n---\n", "", "", true, true},
		{"---\ntitle: a\n...\n\n\nbody", "title: a\n", "\nbody", true, true},
		{"---\ntitle: a\n", "", "", false, false},
		{"--- \nbody", "", "--- \nbody", false, true},
	}
	for _, tt := range tests {
		fm, body, ok := splitFrontMatter(tt.in)
		assert.Equal(t, tt.ok, ok, "splitFrontMatter(%q) ok", tt.in)
		assert.Equal(t, tt.hasFM, fm != nil, "splitFrontMatter(%q) has front matter", tt.in)
		assert.Equal(t, tt.body, body, "splitFrontMatter(%q) body", tt.in)
		if fm != nil {
			assert.Equal(t, tt.fm, *fm, "splitFrontMatter(%q) front matter", tt.in)
		}
	}
}
