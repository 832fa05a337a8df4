package responder

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

func TestGreeting(t *testing.T) {
	e := mustNew(t, richArtifact())
	assert.Equal(t, "Hi! I'm the Acme assistant.", e.Greeting())
}

func TestInputBlock(t *testing.T) {
	e := mustNew(t, richArtifact())
	waiting := State{Playbook: "cancel", Step: 0, Vars: map[string]string{"x": "y"}}
	turn := e.Respond(waiting, "you are a Stupid Bot")
	assert.Equal(t, "Let's keep this conversation respectful.", turn.Reply, "the block message")
	assert.Equal(t, "no-abuse", turn.Trace.Guardrail)
	assert.Empty(t, turn.Trace.Playbook, "nothing but the guardrail runs")
	assert.Empty(t, turn.Trace.SkillCalls, "nothing but the guardrail runs")
	assert.Equal(t, waiting, turn.State, "the playbook keeps waiting")
	// A blocked turn does not carry an invalid state forward.
	assert.Equal(t, State{}, e.Respond(State{Playbook: "gone", Step: 3}, "idiot").State)
}

func TestBlockPatternIsRE2(t *testing.T) {
	e := mustNew(t, richArtifact())
	assert.Equal(t, "no-abuse", e.Respond(State{}, "I will KILL   you").Trace.Guardrail)
}

func TestBlockWinsOverEverything(t *testing.T) {
	e := mustNew(t, richArtifact())
	// Matches a trigger, knowledge, a redaction and a block at once.
	text := "cancel my order and refund me, idiot, card 4111 1111 1111 1111"
	turn := e.Respond(State{}, text)
	assert.Equal(t, "no-abuse", turn.Trace.Guardrail)
	assert.Equal(t, "Let's keep this conversation respectful.", turn.Reply)
	assert.Empty(t, turn.Trace.Playbook)
	assert.Empty(t, turn.Trace.Knowledge)
	assert.Equal(t, State{}, turn.State)
	// The stored input is still redacted.
	assert.NotContains(t, turn.Input, "4111")
	assert.True(t, turn.Trace.Redacted)
}

func TestInputRedactionIsStoredAndUsed(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "My card 4111-1111-1111-1111 and mail bob@example.com: how do refunds work?")
	assert.Equal(t, "My card [redacted] and mail [redacted]: how do refunds work?", turn.Input)
	assert.True(t, turn.Trace.Redacted)
	assert.Equal(t, "returns", turn.Trace.Knowledge, "processing continues after redaction")
}

func TestRedactMergesOverlappingMatches(t *testing.T) {
	a := &compile.Artifact{Guardrails: []compile.Guardrail{{
		Slug: "r", Applies: "input",
		Redact: &compile.Redact{Patterns: []string{`abc`, `bcd`, `x*`}},
	}}}
	e := mustNew(t, a)
	assert.Equal(t, "1[redacted]e2 [redacted]", e.Respond(State{}, "1abcde2 abc").Input)
}

func TestTriggerStartsPlaybook(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "Hi, can you CANCEL my order, please?")
	assert.Equal(t, "Which order should I cancel?", turn.Reply)
	assert.Equal(t, "cancel", turn.Trace.Playbook)
	assert.Equal(t, State{Playbook: "cancel", Step: 0}, turn.State)
}

func TestAskSavesAndRunsFollowingSteps(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "cancel", Step: 0}, "  A-17/x  ")
	assert.Equal(t, "Order A-17/x is cancelled.", turn.Reply)
	want := []SkillCall{{Skill: "cancel-order", Method: "DELETE", URL: "https://shop.example.com/orders/A-17%2Fx", TimeoutMs: 3000, Args: map[string]string{"orderId": "A-17/x"}}}
	assert.Equal(t, want, turn.Trace.SkillCalls)
	assert.Equal(t, State{}, turn.State, "reset after the last step")
	assert.Equal(t, "cancel", turn.Trace.Playbook)
}

func TestActivePlaybookWinsOverTriggersAndKnowledge(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "order-status", Step: 0}, "cancel my order about refunds")
	assert.Equal(t, "order-status", turn.Trace.Playbook)
	assert.Empty(t, turn.Trace.Knowledge)
}

func TestGetSkillPutsOtherParamsInSortedQuery(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "order-status", Step: 0}, "42 7")
	want := []SkillCall{{Skill: "order-status", Method: "GET", URL: "https://shop.example.com/orders/42%207/status?lang=en", TimeoutMs: 2000, Args: map[string]string{"lang": "en", "orderId": "42 7"}}}
	assert.Equal(t, want, turn.Trace.SkillCalls)
}

func TestQueryStringSortedAndAppended(t *testing.T) {
	a := &compile.Artifact{
		Skills: []compile.Skill{{
			Slug: "s", Parameters: map[string]any{"type": "object"},
			HTTP: compile.SkillHTTP{Method: "get", URL: "https://x.test/a/{id}?fixed=1", TimeoutMs: 10},
		}},
		Playbooks: []compile.Playbook{{
			Slug: "p", Triggers: []string{"go"},
			Steps: []compile.Step{{Skill: "s", With: map[string]string{"zeta": "z z", "alpha": "a&b", "id": "7", "mid": "m"}}},
		}},
	}
	e := mustNew(t, a)
	turn := e.Respond(State{}, "go")
	require.Len(t, turn.Trace.SkillCalls, 1)
	c := turn.Trace.SkillCalls[0]
	assert.Equal(t, "https://x.test/a/7?fixed=1&alpha=a%26b&mid=m&zeta=z+z", c.URL)
	assert.Equal(t, "GET", c.Method)
	assert.Nil(t, c.Body)
	assert.Equal(t, map[string]string{"zeta": "z z", "alpha": "a&b", "id": "7", "mid": "m"}, c.Args, "args by name, whichever part carries them")
	assert.Equal(t, emptyPlaybookReply, turn.Reply, "a playbook that says nothing")
}

func TestFullPlaybookWithPostBodyAndHandoff(t *testing.T) {
	e := mustNew(t, richArtifact())
	t1 := e.Respond(State{}, "I want to talk to a human")
	require.Equal(t, "Sure, I'll open a ticket.\nWhat's your email?", t1.Reply)
	t2 := e.Respond(t1.State, "bob@example.com")
	require.Equal(t, "Briefly, what is the problem?", t2.Reply)
	assert.Equal(t, "[redacted]", t2.State.Vars["email"], "the saved email is the redacted input")
	t3 := e.Respond(t2.State, "The app crashes")
	assert.Equal(t, "Thanks, a colleague will follow up about: The app crashes", t3.Reply)
	assert.Equal(t, "human support", t3.Trace.Handoff)
	want := []SkillCall{{
		Skill: "create-ticket", Method: "POST", URL: "https://help.example.com/api/tickets",
		Headers:   map[string]string{"Authorization": "[redacted]", "X-Source": "[redacted]"},
		Body:      map[string]any{"email": "[redacted]", "priority": int64(2), "summary": "The app crashes"},
		TimeoutMs: 5000,
		Args:      map[string]string{"email": "[redacted]", "priority": "2", "summary": "The app crashes"},
	}}
	assert.Equal(t, want, t3.Trace.SkillCalls)
	assert.Equal(t, State{}, t3.State, "reset after handoff")
}

// TestSkillCredentialsNotInTrace: a skill's header values and a password
// in its URL are third-party credentials; the trace (stored with the turn
// and readable with chat:write) names the headers but shows no value.
func TestSkillCredentialsNotInTrace(t *testing.T) {
	const token, apiKey, password = "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc", "key-9f8e7d6c", "hunter2"
	e := mustNew(t, &compile.Artifact{
		Skills: []compile.Skill{{
			Slug: "crm", Parameters: map[string]any{"type": "object"},
			HTTP: compile.SkillHTTP{Method: "POST", URL: "https://bot:" + password + "@crm.example.com/api/{id}", TimeoutMs: 1000,
				Headers: map[string]string{"Authorization": token, "X-Api-Key": apiKey}},
		}},
		Playbooks: []compile.Playbook{{Slug: "p", Triggers: []string{"sync"}, Steps: []compile.Step{
			{Skill: "crm", With: map[string]string{"id": "7", "note": "hello"}},
		}}},
	})
	turn := e.Respond(State{}, "sync")
	require.Len(t, turn.Trace.SkillCalls, 1)
	c := turn.Trace.SkillCalls[0]
	assert.Equal(t, map[string]string{"Authorization": "[redacted]", "X-Api-Key": "[redacted]"}, c.Headers)
	assert.Equal(t, "https://bot:xxxxx@crm.example.com/api/7", c.URL)
	b, err := json.Marshal(turn)
	require.NoError(t, err)
	for _, secret := range []string{token, "sk_live", apiKey, password} {
		assert.NotContains(t, string(b), secret)
	}
}

func TestHandoffEndsPlaybookEarly(t *testing.T) {
	a := &compile.Artifact{Playbooks: []compile.Playbook{{
		Slug: "p", Triggers: []string{"escalate"},
		Steps: []compile.Step{{Handoff: "billing team"}, {Say: "never said"}},
	}}}
	e := mustNew(t, a)
	turn := e.Respond(State{}, "please escalate")
	assert.Equal(t, "billing team", turn.Trace.Handoff)
	assert.Equal(t, handoffReply, turn.Reply)
	assert.Equal(t, State{}, turn.State)
}

func TestTriggerWordBoundaries(t *testing.T) {
	e := mustNew(t, richArtifact())
	for _, text := range []string{"I was tracking it", "racetrack", "cancelled order"} {
		assert.Empty(t, e.Respond(State{}, text).Trace.Playbook, "Respond(%q) starts no playbook", text)
	}
	assert.Equal(t, "order-status", e.Respond(State{}, "TRACK: parcel").Trace.Playbook)
}

func TestTriggerTieBreak(t *testing.T) {
	a := &compile.Artifact{Playbooks: []compile.Playbook{
		{Slug: "zeta", Triggers: []string{"help me", "help me with billing"}, Steps: []compile.Step{{Say: "zeta"}}},
		{Slug: "beta", Triggers: []string{"help me"}, Steps: []compile.Step{{Say: "beta"}}},
		{Slug: "alpha", Triggers: []string{"HELP  me!"}, Steps: []compile.Step{{Say: "alpha"}}},
	}}
	e := mustNew(t, a)
	cases := []struct{ text, want string }{
		{"help me", "alpha"},                        // same length: smallest slug
		{"please help me with billing now", "zeta"}, // longest trigger wins
	}
	for _, c := range cases {
		assert.Equal(t, c.want, e.Respond(State{}, c.text).Trace.Playbook, "Respond(%q)", c.text)
	}
}

func TestKnowledgeRetrieval(t *testing.T) {
	e := mustNew(t, richArtifact())
	cases := []struct{ text, slug, prefix string }{
		{"How long does standard shipping take?", "shipping", "Standard shipping takes"},
		{"do I pay customs duties on international orders", "shipping", "International shipping"},
		{"when do you send invoices", "billing", "Invoices are emailed"},
		{"do you take american express", "billing", "We accept Visa"},
		{"I forgot my password", "passwords", "Forgot your password?"},
		{"can I get a refund", "returns", "You can return any unused item"},
		{"my item arrived damaged", "returns", "If an item arrived damaged"},
		{"are you open on friday?", "hours", "Our support team is available"},
		{"what about public holidays", "hours", "On public holidays"},
		{"how do I make a warranty claim", "warranty", "Every product carries"},
		{"lost my authenticator device", "passwords", "If you lost your authenticator"},
	}
	for _, c := range cases {
		turn := e.Respond(State{}, c.text)
		if assert.Equal(t, c.slug, turn.Trace.Knowledge, "Respond(%q) (reply %q)", c.text, turn.Reply) {
			assert.True(t, strings.HasPrefix(turn.Reply, c.prefix), "Respond(%q) reply=%q, want prefix %q", c.text, turn.Reply, c.prefix)
		}
	}
}

func TestKnowledgeSingleArticle(t *testing.T) {
	a := &compile.Artifact{Knowledge: []compile.Article{{Slug: "hours", Title: "Opening hours", Content: "We are open Monday to Friday."}}}
	e := mustNew(t, a)
	turn := e.Respond(State{}, "hours?")
	assert.Equal(t, "hours", turn.Trace.Knowledge)
	assert.Equal(t, "We are open Monday to Friday.", turn.Reply)
	turn = e.Respond(State{}, "what is the weather")
	assert.Empty(t, turn.Trace.Knowledge)
	assert.Equal(t, DefaultFallback, turn.Reply)
}

func TestFallback(t *testing.T) {
	e := mustNew(t, richArtifact())
	for _, text := range []string{"blorp zzz", "", "what is it?", "   "} {
		turn := e.Respond(State{}, text)
		assert.Equal(t, "I'm not sure about that. Try asking about orders, shipping or returns.", turn.Reply, "Respond(%q)", text)
		assert.Empty(t, turn.Trace.Knowledge, "Respond(%q)", text)
		assert.Empty(t, turn.Trace.Playbook, "Respond(%q)", text)
		assert.True(t, turn.Trace.Fallback, "Respond(%q)", text)
	}
	assert.False(t, e.Respond(State{}, "where is my order").Trace.Fallback, "a playbook answered")
	e = mustNew(t, &compile.Artifact{})
	assert.Equal(t, DefaultFallback, e.Respond(State{}, "anything").Reply)
}

func TestOutputGuardrails(t *testing.T) {
	a := richArtifact()
	a.Knowledge = append(a.Knowledge,
		compile.Article{Slug: "compare", Title: "Competitors", Content: "Unlike MegaCorp, our blenders are silent."},
		compile.Article{Slug: "contact", Title: "Contact", Content: "Write to help@acme.example for anything else."},
	)
	e := mustNew(t, a)
	turn := e.Respond(State{}, "how do competitors compare")
	assert.Equal(t, "I can only talk about Acme products.", turn.Reply)
	assert.Equal(t, "no-competitors", turn.Trace.Guardrail)
	assert.Equal(t, "compare", turn.Trace.Knowledge, "kept in the trace")
	turn = e.Respond(State{}, "how do I contact you")
	assert.Equal(t, "Write to [redacted] for anything else.", turn.Reply)
	assert.True(t, turn.Trace.Redacted)
	assert.Equal(t, "how do I contact you", turn.Input, "the input is unchanged")
}

func TestOutputOnlyGuardrailIgnoresInput(t *testing.T) {
	e := mustNew(t, richArtifact())
	assert.Empty(t, e.Respond(State{}, "is megacorp better than you?").Trace.Guardrail,
		"no-competitors applies to output only")
}

func TestRespondDoesNotModifyState(t *testing.T) {
	e := mustNew(t, richArtifact())
	st := State{Playbook: "support-ticket", Step: 2, Vars: map[string]string{"email": "e"}}
	turn := e.Respond(st, "summary text")
	assert.Equal(t, map[string]string{"email": "e"}, st.Vars, "the input state")
	assert.Equal(t, "human support", turn.Trace.Handoff)
}

func TestInvalidStateIsIgnored(t *testing.T) {
	e := mustNew(t, richArtifact())
	for _, st := range []State{
		{Playbook: "gone", Step: 0},
		{Playbook: "cancel", Step: 1}, // a skill step, not an ask
		{Playbook: "cancel", Step: 99},
		{Playbook: "cancel", Step: -1},
	} {
		turn := e.Respond(st, "can I get a refund")
		assert.Equal(t, "returns", turn.Trace.Knowledge, "Respond(%+v)", st)
		assert.Equal(t, State{}, turn.State, "Respond(%+v)", st)
	}
}

func TestNewErrors(t *testing.T) {
	cases := map[string]*compile.Artifact{
		"bad block regex":  {Guardrails: []compile.Guardrail{{Slug: "g", Applies: "input", Block: &compile.Block{Patterns: []string{"("}, Message: "m"}}}},
		"bad redact regex": {Guardrails: []compile.Guardrail{{Slug: "g", Applies: "both", Redact: &compile.Redact{Patterns: []string{`\p{Nope}`}}}}},
		"bad applies":      {Guardrails: []compile.Guardrail{{Slug: "g", Applies: "sideways", Redact: &compile.Redact{Patterns: []string{"x"}}}}},
		"unknown skill":    {Playbooks: []compile.Playbook{{Slug: "p", Triggers: []string{"x"}, Steps: []compile.Step{{Skill: "nope"}}}}},
		"empty step":       {Playbooks: []compile.Playbook{{Slug: "p", Triggers: []string{"x"}, Steps: []compile.Step{{}}}}},
		"nil":              nil,
	}
	for name, a := range cases {
		_, err := New(a)
		assert.Error(t, err, name)
	}
}

// heavyPattern compiles to about 2,000 program instructions, all of them
// live on every byte of text: the slowest kind of pattern RE2 runs.
func heavyPattern(i int) string { return fmt.Sprintf(`(?s).{1000}.{1000}z%d`, i) }

func guardrailArtifact(applies string, patterns ...string) *compile.Artifact {
	return &compile.Artifact{
		Settings:   compile.Settings{Fallback: "fallback"},
		Guardrails: []compile.Guardrail{{Slug: "g", Applies: applies, Block: &compile.Block{Patterns: patterns, Message: "blocked"}}},
	}
}

func TestGuardrailTextBound(t *testing.T) {
	e := mustNew(t, richArtifact())
	require.Equal(t, MaxGuardrailText, e.in.limit, "small patterns: the full bound")
	// A card number past the bound: the input is cut before it, so it is
	// neither examined nor stored.
	long := strings.Repeat("é", MaxGuardrailText/2) + " card 4111 1111 1111 1111 idiot"
	turn := e.Respond(State{}, long)
	assert.LessOrEqual(t, len(turn.Input), MaxGuardrailText)
	assert.True(t, strings.HasSuffix(turn.Input, "é…"), "cut at a rune boundary with an ellipsis")
	assert.NotContains(t, turn.Input, "4111")
	assert.Empty(t, turn.Trace.Guardrail, "nothing past the bound is matched")
	short := "card 4111 1111 1111 1111"
	assert.Equal(t, "card [redacted]", e.Respond(State{}, short).Input, "text within the bound is whole")

	// A reply longer than the bound is cut before the output guardrails.
	a := &compile.Artifact{Playbooks: []compile.Playbook{{Slug: "p", Triggers: []string{"talk"}, Steps: []compile.Step{
		{Say: strings.Repeat("blah ", MaxGuardrailText/5)}, {Say: "secret megacorp"},
	}}}, Guardrails: []compile.Guardrail{{Slug: "g", Applies: "output", Block: &compile.Block{Phrases: []string{"megacorp"}, Message: "no"}}}}
	turn = mustNew(t, a).Respond(State{}, "talk")
	assert.LessOrEqual(t, len(turn.Reply), MaxGuardrailText)
	assert.NotContains(t, turn.Reply, "megacorp")
}

func TestGuardrailBoundShrinksWithPatternSize(t *testing.T) {
	var patterns []string
	for i := range 10 {
		patterns = append(patterns, heavyPattern(i))
	}
	e := mustNew(t, guardrailArtifact("input", patterns...))
	require.Greater(t, e.in.insts, 10*2000)
	assert.Equal(t, MaxGuardrailWork/e.in.insts, e.in.limit)
	assert.Equal(t, MaxGuardrailText, e.out.limit, "the output direction has no patterns")
	turn := e.Respond(State{}, strings.Repeat("x", 4096))
	assert.LessOrEqual(t, len(turn.Input), e.in.limit)
	assert.LessOrEqual(t, len(turn.Input)*e.in.insts, MaxGuardrailWork, "work of the turn")
}

func TestNewRefusesGuardrailsTooLargeToRun(t *testing.T) {
	var patterns []string
	for i := range MaxGuardrailWork/minGuardrailText/2000 + 1 {
		patterns = append(patterns, heavyPattern(i))
	}
	_, err := New(guardrailArtifact("both", patterns...))
	assert.ErrorIs(t, err, ErrGuardrailsTooLarge)
	_, err = New(guardrailArtifact("output", patterns[:len(patterns)/2]...))
	assert.NoError(t, err, "half of them fit")
}

// TestGuardrailCostBounded replays the attack of issue 9 item 4: 300
// heavy patterns and a 4 KiB message took 9 s a message. The largest set
// New accepts now runs within the work bound.
func TestGuardrailCostBounded(t *testing.T) {
	var patterns []string
	for i := range 300 {
		patterns = append(patterns, fmt.Sprintf(`(?s)[a-z].{100}q%d`, i))
	}
	e := mustNew(t, guardrailArtifact("both", patterns...))
	text := strings.Repeat("abcdefghij ", 4096/11)
	start := time.Now()
	turn := e.Respond(State{}, text)
	took := time.Since(start)
	t.Logf("300 patterns, %d program instructions a direction: %d bytes examined, turn %v", e.in.insts, e.in.limit, took)
	assert.Equal(t, "fallback", turn.Reply)
	assert.Less(t, took, 3*time.Second, "a turn (generous: -race on a shared machine)")
}

func TestRender(t *testing.T) {
	vars := map[string]string{"name": "Ada", "order": "42"}
	cases := []struct{ in, want string }{
		{"Hello {{name}}", "Hello Ada"},
		{"{{ name }}/{{order}}", "Ada/42"},
		{"missing: [{{nope}}]", "missing: []"},
		{"unclosed {{name", "unclosed {{name"},
		{"no vars", "no vars"},
		{"{{name}}{{name}}", "AdaAda"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, render(c.in, vars), "render(%q)", c.in)
	}
}

func TestBound(t *testing.T) {
	sentence := "This is a sentence that is exactly long. "
	got := bound(strings.Repeat(sentence, 30), maxReply)
	assert.LessOrEqual(t, len(got), maxReply)
	assert.True(t, strings.HasSuffix(got, "."), "bound(long) ends at a sentence: %q", got)
	got = bound(strings.Repeat("word ", 200), maxReply)
	assert.LessOrEqual(t, len(got), maxReply)
	assert.True(t, strings.HasSuffix(got, "word…"), "bound(words) ends in an ellipsis after a word")
	got = bound(strings.Repeat("é", 400), maxReply)
	assert.LessOrEqual(t, len(got), maxReply)
	assert.True(t, strings.HasSuffix(got, "é…"), "bound(runes) cuts at a rune boundary")
	got = bound("Hi. "+strings.Repeat("x ", 400), maxReply)
	assert.True(t, len(got) >= maxReply/2 && len(got) <= maxReply, "bound(shortFirst) len=%d, want a word cut near %d", len(got), maxReply)
	assert.Equal(t, "short", bound("  short  ", maxReply))
}

func TestSplitPassages(t *testing.T) {
	md := "intro line\n\n# Setup\n\nstep one\nstep two\n\n```sh\n# not a heading\n\necho hi\n```\n\n#hashtag is text\n"
	want := []section{
		{heading: "", text: "intro line"},
		{heading: "Setup", text: "step one\nstep two"},
		{heading: "Setup", text: "```sh\n# not a heading\n\necho hi\n```"},
		{heading: "Setup", text: "#hashtag is text"},
	}
	assert.Equal(t, want, splitPassages(md))
}

func TestDeterminism(t *testing.T) {
	script := []string{
		"hello there",
		"I want to talk to a human",
		"bob@example.com",
		"it is broken",
		"where is my order",
		"A-1",
		"refund for card 4111 1111 1111 1111",
		"cancel my order",
		"B 2",
		"what are your opening hours",
	}
	play := func() string {
		e := mustNew(t, richArtifact())
		var st State
		var out []Turn
		for _, s := range script {
			turn := e.Respond(st, s)
			out = append(out, turn)
			st = turn.State
		}
		b, err := json.Marshal(out)
		require.NoError(t, err)
		return string(b)
	}
	first := play()
	for i := 0; i < 100; i++ {
		require.Equal(t, first, play(), "run %d", i)
	}
}

func TestSkillCallJSON(t *testing.T) {
	b, err := json.Marshal(SkillCall{Skill: "s", Method: "GET", URL: "u", TimeoutMs: 5})
	require.NoError(t, err)
	assert.JSONEq(t, `{"skill":"s","method":"GET","url":"u","timeoutMs":5}`, string(b))
	assert.Equal(t, `{"skill":"s","method":"GET","url":"u","timeoutMs":5}`, string(b), "field order and omitted fields")
}

func TestConcurrentRespond(t *testing.T) {
	e := mustNew(t, richArtifact())
	want := e.Respond(State{}, "can I get a refund")
	done := make(chan Turn)
	for i := 0; i < 8; i++ {
		go func() { done <- e.Respond(State{}, "can I get a refund") }()
	}
	for i := 0; i < 8; i++ {
		assert.Equal(t, want, <-done)
	}
}

var benchInputs = []struct {
	state State
	text  string
}{
	{State{}, "How long does standard shipping take in the EU?"},
	{State{}, "I forgot my password and cannot log in to my account"},
	{State{}, "cancel my order"},
	{State{Playbook: "cancel", Step: 0}, "A-17"},
	{State{}, "my card 4111 1111 1111 1111 was charged twice, mail me at bob@example.com"},
	{State{Playbook: "support-ticket", Step: 2, Vars: map[string]string{"email": "x"}}, "the app crashes on start"},
	{State{}, "blorp zzz nothing matches here"},
	{State{}, "you stupid bot"},
}

func BenchmarkRespond(b *testing.B) {
	e := mustNew(b, richArtifact())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := benchInputs[i%len(benchInputs)]
		_ = e.Respond(in.state, in.text)
		i++
	}
}

// BenchmarkRespondHeavyGuardrails is issue 9's attack at the largest
// guardrail set New accepts: 31 patterns of ~2,000 always-live
// instructions in both directions and a 4 KiB message.
func BenchmarkRespondHeavyGuardrails(b *testing.B) {
	var patterns []string
	for i := range MaxGuardrailWork / minGuardrailText / 2003 {
		patterns = append(patterns, heavyPattern(i))
	}
	e := mustNew(b, guardrailArtifact("both", patterns...))
	text := strings.Repeat("abcdefghij ", 4096/11)
	b.ReportMetric(float64(e.in.limit), "bytes-examined")
	for b.Loop() {
		_ = e.Respond(State{}, text)
	}
}

func BenchmarkNew(b *testing.B) {
	a := richArtifact()
	b.ReportAllocs()
	for b.Loop() {
		_, err := New(a)
		require.NoError(b, err)
	}
}

func FuzzRespond(f *testing.F) {
	for _, in := range benchInputs {
		f.Add(in.state.Playbook, in.state.Step, in.text)
	}
	f.Add("support-ticket", 1, "{{email}} }} {{")
	f.Add("", 0, "\xff\xfe# heading\n\n```")
	f.Add("0", 0, "stupid Bot") // blocked turn with an invalid state
	e := mustNew(f, richArtifact())
	f.Fuzz(func(t *testing.T, playbook string, step int, text string) {
		turn := e.Respond(State{Playbook: playbook, Step: step, Vars: map[string]string{"order": text}}, text)
		require.NotEmpty(t, turn.Reply, "Respond(%q, %d, %q) reply", playbook, step, text)
		_, err := json.Marshal(turn)
		require.NoError(t, err, "Marshal(turn)")
		assert.LessOrEqual(t, len(turn.Input), MaxGuardrailText)
		if turn.State.Playbook != "" {
			_, ok := e.waiting(turn.State)
			require.True(t, ok, "returned state %+v is a waiting ask", turn.State)
		}
	})
}
