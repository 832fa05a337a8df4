package compile

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"
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
			if err != nil {
				t.Fatal(err)
			}
			decoded, errs := DecodeView(kind, slug, body)
			if len(errs) != 0 {
				t.Fatalf("DecodeView errors %v, want none", errs)
			}
			if !reflect.DeepEqual(decoded, view) {
				t.Fatalf("DecodeView = %#v, want %#v", decoded, view)
			}
			file, err := EncodeFile(kind, decoded)
			if err != nil {
				t.Fatalf("EncodeFile: %v", err)
			}
			back, diags := ReadView(kind, slug, file)
			if len(diags) != 0 {
				t.Fatalf("ReadView diagnostics %v, want none\n%s", diags, file)
			}
			if !reflect.DeepEqual(back, view) {
				t.Fatalf("ReadView(EncodeFile(v)) = %#v, want %#v\n%s", back, view, file)
			}
			again, err := EncodeFile(kind, back)
			if err != nil || string(again) != string(file) {
				t.Fatalf("EncodeFile not stable: %q then %q (%v)", file, again, err)
			}
		})
	}
}

func TestEncodeFileCanonical(t *testing.T) {
	views := sampleViews()
	got, err := EncodeFile(KindPlaybooks, views[KindPlaybooks])
	if err != nil {
		t.Fatal(err)
	}
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
	if string(got) != want {
		t.Errorf("EncodeFile(playbook) =\n%s\nwant\n%s", got, want)
	}
	art, err := EncodeFile(KindKnowledge, &Article{Slug: "a", Content: "plain\n"})
	if err != nil || string(art) != "plain\n" {
		t.Errorf("EncodeFile(article without front matter) = %q, %v; want %q", art, err, "plain\n")
	}
	art, err = EncodeFile(KindKnowledge, Article{Slug: "a", Title: "T", Content: "body\n"})
	if err != nil || string(art) != "---\ntitle: T\n---\n\nbody\n" {
		t.Errorf("EncodeFile(article value) = %q, %v", art, err)
	}
	if _, err := EncodeFile(KindSkills, &Playbook{}); err == nil {
		t.Errorf("EncodeFile(skills, *Playbook) succeeded, want an error")
	}
	if _, err := EncodeFile(Kind("x"), &Playbook{}); err == nil {
		t.Errorf("EncodeFile(unknown kind) succeeded, want an error")
	}
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
				if e.Message == "" {
					t.Errorf("error %+v has no message", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors = %q, want %q (%+v)", got, tt.want, errs)
			}
			if view != nil {
				t.Errorf("view = %#v, want nil on errors", view)
			}
		})
	}
}

func TestDecodeViewSlug(t *testing.T) {
	v, errs := DecodeView(KindKnowledge, "faq", []byte(`{"slug":"faq","title":"T","content":"x"}`))
	a, ok := v.(*Article)
	if len(errs) != 0 || !ok || a.Slug != "faq" || a.Title != "T" {
		t.Fatalf("DecodeView = %#v, %v; want *Article with slug faq", v, errs)
	}
	v, errs = DecodeView(KindPlaybooks, "p", []byte(`{"triggers":["t"],"steps":[{"handoff":"h"}]}`))
	if p, ok := v.(*Playbook); len(errs) != 0 || !ok || p.Slug != "p" {
		t.Fatalf("DecodeView = %#v, %v; want *Playbook with slug p", v, errs)
	}
}

func TestReadViewDiagnostics(t *testing.T) {
	view, diags := ReadView(KindSkills, "s", []byte("description: x\nhttp:\n  method: GET\n  url: nope\n  timeoutMs: 1\n"))
	if view == nil {
		t.Fatalf("view = nil, want a partial *Skill")
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.File+":"+strconv.Itoa(d.Line)+":"+d.Code)
	}
	want := []string{"skills/s.yaml:1:missing_field", "skills/s.yaml:4:invalid_url"}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics = %v, want %v (%v)", got, want, diags)
	}
	view, diags = ReadView(KindSettings, "", []byte("name: [x"))
	if view != nil || len(diags) != 1 || diags[0].Code != CodeYAMLSyntax {
		t.Errorf("ReadView(bad yaml) = %v, %v; want nil view and one yaml_syntax", view, diags)
	}
	view, diags = ReadView(KindKnowledge, "a", []byte("just text, no front matter\n"))
	if a, ok := view.(*Article); !ok || len(diags) != 0 || a.Content != "just text, no front matter\n" || a.Slug != "a" {
		t.Errorf("ReadView(plain article) = %#v, %v", view, diags)
	}
	_, diags = ReadView(KindKnowledge, "A", []byte("x"))
	if len(diags) != 1 || diags[0].Code != CodeInvalidPath {
		t.Errorf("ReadView(bad slug) diagnostics = %v, want invalid_path", diags)
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
		if ok != tt.ok || (fm != nil) != tt.hasFM || body != tt.body || (fm != nil && *fm != tt.fm) {
			t.Errorf("splitFrontMatter(%q) = (%v, %q, %v), want (%q, %q, %v)", tt.in, deref(fm), body, ok, tt.fm, tt.body, tt.ok)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
