package compile

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bookingTest is a valid test of baseDraft.
const bookingTest = `description: Tracking asks for the order, then looks it up
turns:
  - user: track my order
    expect:
      playbook: track
      replyContains: ["order number"]
  - user: "42"
    expect:
      replyMatches: "done with 42"
      skillCalls: [{skill: lookup, with: {id: 42}}]
      fallback: false
  - user: what is the faq
    expect:
      knowledge: [faq]
      replyNotContains: [error]
  - user: my card is 1234123412341234
    expect:
      guardrail: pii
`

func TestCompileTests(t *testing.T) {
	plain := Compile(baseDraft())
	require.True(t, plain.OK(), "%v", plain.Errors)
	assert.Nil(t, plain.Tests, "a draft without tests has none")

	r := Compile(withFiles(map[string]string{"tests/track.yaml": bookingTest, "tests/empty-expect.yaml": "turns:\n  - user: hi\n"}))
	require.True(t, r.OK(), "%v", r.Errors)
	assert.Equal(t, plain.JSON, r.JSON, "tests are not part of compiled/agent.json")
	assert.Equal(t, plain.Digest, r.Digest)
	require.Len(t, r.Tests, 2)
	assert.Equal(t, "empty-expect", r.Tests[0].Slug, "tests are sorted by slug")
	tr := r.Tests[1]
	assert.Equal(t, "track", tr.Slug)
	require.Len(t, tr.Turns, 4)
	assert.Equal(t, "42", tr.Turns[1].User, "a number where text is expected is read as written")
	require.NotNil(t, tr.Turns[1].Expect)
	assert.Equal(t, []ExpectSkillCall{{Skill: "lookup", With: map[string]string{"id": "42"}}}, tr.Turns[1].Expect.SkillCalls)
	require.NotNil(t, tr.Turns[1].Expect.Fallback)
	assert.False(t, *tr.Turns[1].Expect.Fallback)
	assert.Nil(t, tr.Turns[0].Expect.Fallback, "an absent fallback is not checked")
	assert.Equal(t, []string{"faq"}, tr.Turns[2].Expect.Knowledge)
}

func TestCompileTestsIgnoresTestsEvidence(t *testing.T) {
	files := withFiles(map[string]string{"tests/track.yaml": bookingTest})
	r := Compile(files)
	require.True(t, r.OK())
	release := maps.Clone(files)
	release[ArtifactPath] = r.JSON
	release[TestsPath] = []byte(`{"total":1}`)
	again := Compile(release)
	require.True(t, again.OK(), "%v", again.Errors)
	assert.Equal(t, r.Digest, again.Digest)
}

func TestCompileTestDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		test string
		want []wantDiag
	}{
		{"unknown top-level key", "turns:\n  - user: hi\nsetup: x\n", []wantDiag{{"tests/t.yaml", 3, CodeUnknownField}}},
		{"unknown expect key", "turns:\n  - user: hi\n    expect:\n      replyIs: x\n", []wantDiag{{"tests/t.yaml", 4, CodeUnknownField}}},
		{"no turns", "description: nothing\n", []wantDiag{{"tests/t.yaml", 1, CodeMissingField}}},
		{"turn without user", "turns:\n  - expect: {fallback: true}\n", []wantDiag{{"tests/t.yaml", 2, CodeMissingField}}},
		{"bad regex", "turns:\n  - user: hi\n    expect:\n      replyMatches: '(unclosed'\n", []wantDiag{{"tests/t.yaml", 4, CodeInvalidRegex}}},
		{"regex too costly", "turns:\n  - user: hi\n    expect:\n      replyMatches: '(?:abc){1000}'\n", []wantDiag{{"tests/t.yaml", 4, CodeLimitExceeded}}},
		{"fallback not a bool", "turns:\n  - user: hi\n    expect:\n      fallback: maybe\n", []wantDiag{{"tests/t.yaml", 4, CodeInvalidType}}},
		{"knowledge not a list", "turns:\n  - user: hi\n    expect:\n      knowledge: faq\n", []wantDiag{{"tests/t.yaml", 4, CodeInvalidType}}},
		{"bad slug", "turns:\n  - user: hi\n    expect:\n      playbook: Not A Slug\n", []wantDiag{{"tests/t.yaml", 4, CodeInvalidValue}}},
		{"unknown guardrail", "turns:\n  - user: hi\n    expect:\n      guardrail: nope\n", []wantDiag{{"tests/t.yaml", 4, CodeUnknownGuardrail}}},
		{"unknown playbook", "turns:\n  - user: hi\n    expect:\n      playbook: nope\n", []wantDiag{{"tests/t.yaml", 4, CodeUnknownPlaybook}}},
		{"unknown knowledge", "turns:\n  - user: hi\n    expect:\n      knowledge: [faq, nope]\n", []wantDiag{{"tests/t.yaml", 4, CodeUnknownArticle}}},
		{"unknown skill", "turns:\n  - user: hi\n    expect:\n      skillCalls:\n        - skill: nope\n", []wantDiag{{"tests/t.yaml", 5, CodeUnknownSkill}}},
		{"unknown skill parameter", "turns:\n  - user: hi\n    expect:\n      skillCalls:\n        - skill: lookup\n          with:\n            id: x\n            color: red\n", []wantDiag{{"tests/t.yaml", 8, CodeUnknownParameter}}},
		{"skill call without skill", "turns:\n  - user: hi\n    expect:\n      skillCalls: [{with: {id: x}}]\n", []wantDiag{{"tests/t.yaml", 4, CodeMissingField}}},
		{"too many turns", "turns:\n" + repeat("  - user: hi\n", MaxTestTurns+1), []wantDiag{{"tests/t.yaml", 1, CodeInvalidValue}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compile(withFiles(map[string]string{"tests/t.yaml": tt.test}))
			assert.Equal(t, wantKeys(tt.want), diagKeys(r.Errors), "%v", r.Errors)
			assert.False(t, r.OK())
			assert.Nil(t, r.Tests)
		})
	}
}

func TestTestViews(t *testing.T) {
	view, errs := DecodeView(KindTests, "t", []byte(`{"turns":[{"user":"hi","expect":{"replyMatches":"(","fallback":"yes"}}]}`))
	assert.Nil(t, view)
	got := map[string]string{}
	for _, e := range errs {
		got[e.Pointer] = e.Code
	}
	assert.Equal(t, map[string]string{
		"/turns/0/expect/replyMatches": CodeInvalidRegex,
		"/turns/0/expect/fallback":     CodeInvalidType,
	}, got)

	v, diags := ReadView(KindTests, "track", []byte(bookingTest))
	assert.Empty(t, diags, "ReadView checks one file; slugs are checked by Compile")
	require.IsType(t, &Test{}, v)
	assert.Equal(t, "track", v.(*Test).Slug)

	_, diags = ReadView(KindTests, "track", []byte("turns: [{user: hi, expect: {playbook: nope}}]\n"))
	assert.Empty(t, diags, "an unknown playbook is a cross-file error")
}
