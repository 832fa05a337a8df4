package responder

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

func TestRedactNamesItsGuardrail(t *testing.T) {
	e := mustNew(t, &compile.Artifact{
		Settings:   compile.Settings{Name: "x", Fallback: "fallback"},
		Guardrails: []compile.Guardrail{{Slug: "pii", Applies: "both", Redact: &compile.Redact{Patterns: []string{`[a-z]+@[a-z]+\.com`}}}},
	})
	turn := e.Respond(State{}, "mail me at a@b.com")
	assert.Equal(t, "pii", turn.Trace.Guardrail)
	assert.True(t, turn.Trace.Redacted)
	assert.Equal(t, "mail me at [redacted]", turn.Input)
}

func TestSkillQueryPlaceholderIsQueryEscaped(t *testing.T) {
	e := mustNew(t, &compile.Artifact{
		Settings: compile.Settings{Name: "x"},
		Skills: []compile.Skill{{Slug: "hours", Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []any{"city"}},
			HTTP: compile.SkillHTTP{Method: "GET", URL: "https://api.example.com/stores/hours?city={city}", TimeoutMs: 1000}}},
		Playbooks: []compile.Playbook{{Slug: "p", Triggers: []string{"store hours"}, Steps: []compile.Step{
			{Ask: "Which city?", Save: "city"},
			{Skill: "hours", With: map[string]string{"city": "{{city}}"}},
		}}},
	})
	st := e.Respond(State{}, "store hours").State
	turn := e.Respond(st, "New York & Co?x=1#frag")
	require.Len(t, turn.Trace.SkillCalls, 1)
	assert.Equal(t, "https://api.example.com/stores/hours?city=New+York+%26+Co%3Fx%3D1%23frag", turn.Trace.SkillCalls[0].URL)
}
