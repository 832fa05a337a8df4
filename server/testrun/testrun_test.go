package testrun

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/server/responder"
)

// acme compiles fixtures/acme-support and returns its engine and tests.
func acme(tb testing.TB) (*responder.Engine, []compile.Test) {
	tb.Helper()
	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	res := compile.Compile(files)
	require.True(tb, res.OK(), "acme-support compiles: %v", res.Errors)
	e, err := responder.New(res.Artifact)
	require.NoError(tb, err)
	return e, res.Tests
}

func TestFixtureSuitePasses(t *testing.T) {
	e, tests := acme(t)
	require.GreaterOrEqual(t, len(tests), 6)
	r := Run(e, tests)
	assert.Equal(t, StatusPassed, r.Status, "failures: %+v", r.Failures())
	assert.Equal(t, len(tests), r.Total)
	assert.Equal(t, len(tests), r.Passed)
	assert.Zero(t, r.Failed)
	assert.Empty(t, r.Failures())
	for i, c := range r.Cases {
		assert.Equal(t, tests[i].Slug, c.Test)
		assert.Len(t, c.Turns, len(tests[i].Turns))
		for _, turn := range c.Turns {
			assert.NotNil(t, turn.Failures, "failures is [] when all held")
			assert.NotEmpty(t, turn.Reply)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestExpectKinds checks every expect key holding and failing on one turn
// of the acme agent.
func TestExpectKinds(t *testing.T) {
	e, _ := acme(t)
	cases := []struct {
		name   string
		user   string
		expect compile.Expect
		fail   *Failure // nil: passes
	}{
		{"replyContains ok", "How long does shipping take?", compile.Expect{ReplyContains: []string{"SHIPS TO THE UNITED STATES"}}, nil},
		{"replyContains fails", "How long does shipping take?", compile.Expect{ReplyContains: []string{"teleport"}},
			&Failure{Expect: "replyContains", Want: "teleport"}},
		{"replyNotContains ok", "How long does shipping take?", compile.Expect{ReplyNotContains: []string{"teleport"}}, nil},
		{"replyNotContains fails", "How long does shipping take?", compile.Expect{ReplyNotContains: []string{"Ships To"}},
			&Failure{Expect: "replyNotContains", Want: "Ships To"}},
		{"replyMatches ok", "How long does shipping take?", compile.Expect{ReplyMatches: `ships\s+TO`}, nil},
		{"replyMatches fails", "How long does shipping take?", compile.Expect{ReplyMatches: `^nothing$`},
			&Failure{Expect: "replyMatches", Want: `^nothing$`}},
		{"guardrail ok", "you stupid bot", compile.Expect{Guardrail: "abuse-and-competitors"}, nil},
		{"guardrail fails", "How long does shipping take?", compile.Expect{Guardrail: "abuse-and-competitors"},
			&Failure{Expect: "guardrail", Want: "abuse-and-competitors", Got: nil}},
		{"playbook ok", "Can I talk to a human?", compile.Expect{Playbook: "talk-to-human"}, nil},
		{"playbook fails", "Can I talk to a human?", compile.Expect{Playbook: "track-order"},
			&Failure{Expect: "playbook", Want: "track-order", Got: "talk-to-human"}},
		{"knowledge ok", "Is my drill under warranty?", compile.Expect{Knowledge: []string{"warranty"}}, nil},
		{"knowledge fails", "Is my drill under warranty?", compile.Expect{Knowledge: []string{"returns"}},
			&Failure{Expect: "knowledge", Want: []string{"returns"}, Got: []string{"warranty"}}},
		{"fallback true ok", "Tell me about quantum physics", compile.Expect{Fallback: ptr(true)}, nil},
		{"fallback true fails", "How long does shipping take?", compile.Expect{Fallback: ptr(true)},
			&Failure{Expect: "fallback", Want: true, Got: false}},
		{"fallback false fails", "Tell me about quantum physics", compile.Expect{Fallback: ptr(false)},
			&Failure{Expect: "fallback", Want: false, Got: true}},
		{"blocked is no fallback", "you stupid bot", compile.Expect{Fallback: ptr(false)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := tc.expect
			r := Run(e, []compile.Test{{Slug: "t", Turns: []compile.TestTurn{{User: tc.user, Expect: &x}}}})
			require.Len(t, r.Cases, 1)
			turn := r.Cases[0].Turns[0]
			if tc.fail == nil {
				assert.Empty(t, turn.Failures, "reply %q trace %+v", turn.Reply, turn.Trace)
				assert.Equal(t, StatusPassed, r.Status)
				return
			}
			require.Len(t, turn.Failures, 1, "reply %q", turn.Reply)
			f := turn.Failures[0]
			assert.Equal(t, tc.fail.Expect, f.Expect)
			assert.Equal(t, tc.fail.Want, f.Want)
			switch f.Expect {
			case "replyContains", "replyNotContains", "replyMatches":
				assert.Equal(t, turn.Reply, f.Got, "got is the reply")
			default:
				assert.Equal(t, tc.fail.Got, f.Got)
			}
			assert.Equal(t, StatusFailed, r.Status)
			assert.Equal(t, StatusFailed, r.Cases[0].Status)
			assert.Equal(t, Summary{Total: 1, Failed: 1}, r.Summary())
		})
	}
}

// TestSkillCalls: expected calls occur in order, with a subset of the
// arguments; state carries over turns within a test and not across tests.
func TestSkillCalls(t *testing.T) {
	e, _ := acme(t)
	run := func(calls ...compile.ExpectSkillCall) Result {
		return Run(e, []compile.Test{{Slug: "r", Turns: []compile.TestTurn{
			{User: "I want to return an item"},
			{User: "A-10442"},
			{User: "damaged", Expect: &compile.Expect{SkillCalls: calls}},
		}}})
	}
	for name, calls := range map[string][]compile.ExpectSkillCall{
		"no args":     {{Skill: "create-return"}},
		"subset":      {{Skill: "create-return", With: map[string]string{"reason": "damaged"}}},
		"all args":    {{Skill: "create-return", With: map[string]string{"reason": "damaged", "orderId": "A-10442"}}},
		"wrong value": {{Skill: "create-return", With: map[string]string{"reason": "broken"}}},
		"wrong skill": {{Skill: "order-status"}},
		"twice":       {{Skill: "create-return"}, {Skill: "create-return"}},
	} {
		r := run(calls...)
		fails := r.Failures()
		switch name {
		case "no args", "subset", "all args":
			assert.Empty(t, fails, name)
		default:
			require.Len(t, fails, 1, name)
			assert.Equal(t, CaseFailure{Test: "r", Turn: 2, Failure: Failure{
				Expect: "skillCalls", Want: calls,
				Got: []compile.ExpectSkillCall{{Skill: "create-return", With: map[string]string{"orderId": "A-10442", "reason": "damaged"}}},
			}}, fails[0], name)
		}
	}
	// A second test starts from a fresh state: "damaged" alone runs no playbook.
	r := Run(e, []compile.Test{
		{Slug: "a", Turns: []compile.TestTurn{{User: "I want to return an item"}}},
		{Slug: "b", Turns: []compile.TestTurn{{User: "damaged", Expect: &compile.Expect{SkillCalls: []compile.ExpectSkillCall{{Skill: "create-return"}}}}}},
	})
	assert.Equal(t, 1, r.Failed)
	assert.Equal(t, "b", r.Failures()[0].Test)
}

func TestSelect(t *testing.T) {
	_, tests := acme(t)
	got, err := Select(tests, nil)
	require.NoError(t, err)
	assert.Len(t, got, len(tests))
	got, err = Select(tests, []string{"warranty-question", "track-order"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "track-order", got[0].Slug, "slug order")
	_, err = Select(tests, []string{"nope", "track-order", "alpha"})
	var ue *UnknownTestsError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, []string{"alpha", "nope"}, ue.Slugs)
}

// TestEncodeDeterministic: the same suite gives the same bytes whatever
// the order of the tests, and the bytes decode back to the run.
func TestEncodeDeterministic(t *testing.T) {
	e, tests := acme(t)
	a, err := Encode(Run(e, tests))
	require.NoError(t, err)
	rev := make([]compile.Test, len(tests))
	for i := range tests {
		rev[len(tests)-1-i] = tests[i]
	}
	b, err := Encode(Run(e, rev))
	require.NoError(t, err)
	assert.Equal(t, string(a), string(b))
	assert.True(t, strings.HasPrefix(string(a), "{\n  \"format\": 1,\n  \"status\": \"passed\""), "%.80s", a)
	assert.True(t, strings.HasSuffix(string(a), "}\n"))
	assert.NotContains(t, string(a), `\u003c`, "no HTML escaping")
	r, err := Decode(a)
	require.NoError(t, err)
	assert.Equal(t, len(tests), r.Total)
	assert.Equal(t, tests[0].Slug, r.Cases[0].Test)
	_, err = Decode([]byte("{"))
	assert.Error(t, err)
}

// suite50 builds 50 tests of 5 turns each over the acme agent, cycling
// through knowledge, playbooks with skill calls, guardrails and the
// fallback, every turn with expectations.
func suite50() []compile.Test {
	convs := [][]compile.TestTurn{
		{
			{User: "I want to return an item", Expect: &compile.Expect{Playbook: "start-return", ReplyContains: []string{"order number"}}},
			{User: "A-10442", Expect: &compile.Expect{Playbook: "start-return"}},
			{User: "damaged", Expect: &compile.Expect{SkillCalls: []compile.ExpectSkillCall{{Skill: "create-return", With: map[string]string{"orderId": "A-10442"}}}, ReplyMatches: "return for order A-10442 is open"}},
			{User: "How long does shipping take?", Expect: &compile.Expect{Knowledge: []string{"shipping"}, Fallback: ptr(false)}},
			{User: "Is my drill under warranty?", Expect: &compile.Expect{Knowledge: []string{"warranty"}}},
		},
		{
			{User: "What are your store hours?", Expect: &compile.Expect{Playbook: "store-hours"}},
			{User: "bob@example.com", Expect: &compile.Expect{Guardrail: "pii-redaction", ReplyNotContains: []string{"bob@example.com"}}},
			{User: "you stupid bot", Expect: &compile.Expect{Guardrail: "abuse-and-competitors"}},
			{User: "Tell me about quantum physics", Expect: &compile.Expect{Fallback: ptr(true)}},
			{User: "Can I talk to a human?", Expect: &compile.Expect{Playbook: "talk-to-human", ReplyContains: []string{"connecting you"}}},
		},
	}
	tests := make([]compile.Test, 50)
	for i := range tests {
		tests[i] = compile.Test{Slug: fmt.Sprintf("t%02d", i), Turns: convs[i%len(convs)]}
	}
	return tests
}

func TestSuite50Passes(t *testing.T) {
	e, _ := acme(t)
	r := Run(e, suite50())
	assert.Equal(t, Summary{Total: 50, Passed: 50}, r.Summary(), "%+v", r.Failures())
}

// BenchmarkRun50x5 runs 50 tests × 5 turns on the acme agent and encodes
// compiled/tests.json (target: under 50 ms an op).
func BenchmarkRun50x5(b *testing.B) {
	e, _ := acme(b)
	tests := suite50()
	b.ReportAllocs()
	for b.Loop() {
		r := Run(e, tests)
		if r.Passed != 50 {
			b.Fatalf("passed=%d, want 50", r.Passed)
		}
		if _, err := Encode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunParallelIsDeterministic: the suite gives the same bytes on one
// goroutine and on several.
func TestRunParallelIsDeterministic(t *testing.T) {
	e, tests := acme(t)
	suite := append(suite50(), tests...)
	prev := runtime.GOMAXPROCS(1)
	one, err := Encode(Run(e, suite))
	runtime.GOMAXPROCS(4)
	many, err2 := Encode(Run(e, suite))
	runtime.GOMAXPROCS(prev)
	require.NoError(t, err)
	require.NoError(t, err2)
	assert.Equal(t, string(one), string(many))
	r, err := Decode(many)
	require.NoError(t, err)
	assert.Equal(t, 58, r.Total)
}
