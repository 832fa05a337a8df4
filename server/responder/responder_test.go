package responder

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flowyte/flowyte/compile"
)

func TestGreeting(t *testing.T) {
	e := mustNew(t, richArtifact())
	if got, want := e.Greeting(), "Hi! I'm the Acme assistant."; got != want {
		t.Fatalf("Greeting()=%q, want %q", got, want)
	}
}

func TestInputBlock(t *testing.T) {
	e := mustNew(t, richArtifact())
	waiting := State{Playbook: "cancel", Step: 0, Vars: map[string]string{"x": "y"}}
	turn := e.Respond(waiting, "you are a Stupid Bot")
	if turn.Reply != "Let's keep this conversation respectful." {
		t.Errorf("reply=%q, want the block message", turn.Reply)
	}
	if turn.Trace.Guardrail != "no-abuse" {
		t.Errorf("trace.guardrail=%q, want no-abuse", turn.Trace.Guardrail)
	}
	if turn.Trace.Playbook != "" || len(turn.Trace.SkillCalls) != 0 {
		t.Errorf("trace=%+v, want nothing but the guardrail", turn.Trace)
	}
	if !reflect.DeepEqual(turn.State, waiting) {
		t.Errorf("state=%+v, want unchanged %+v", turn.State, waiting)
	}
	// A blocked turn does not carry an invalid state forward.
	if got := e.Respond(State{Playbook: "gone", Step: 3}, "idiot").State; !reflect.DeepEqual(got, State{}) {
		t.Errorf("state=%+v, want zero for an invalid incoming state", got)
	}
}

func TestBlockPatternIsRE2(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "I will KILL   you")
	if turn.Trace.Guardrail != "no-abuse" {
		t.Fatalf("trace.guardrail=%q, want no-abuse", turn.Trace.Guardrail)
	}
}

func TestBlockWinsOverEverything(t *testing.T) {
	e := mustNew(t, richArtifact())
	// Matches a trigger, knowledge, a redaction and a block at once.
	text := "cancel my order and refund me, idiot, card 4111 1111 1111 1111"
	turn := e.Respond(State{}, text)
	if turn.Trace.Guardrail != "no-abuse" {
		t.Fatalf("trace.guardrail=%q, want no-abuse", turn.Trace.Guardrail)
	}
	if turn.Reply != "Let's keep this conversation respectful." {
		t.Errorf("reply=%q, want the block message", turn.Reply)
	}
	if turn.Trace.Playbook != "" || turn.Trace.Knowledge != "" {
		t.Errorf("trace=%+v, want no playbook and no knowledge", turn.Trace)
	}
	if !reflect.DeepEqual(turn.State, State{}) {
		t.Errorf("state=%+v, want zero", turn.State)
	}
	// The stored input is still redacted.
	if strings.Contains(turn.Input, "4111") || !turn.Trace.Redacted {
		t.Errorf("input=%q redacted=%v, want the card number redacted", turn.Input, turn.Trace.Redacted)
	}
}

func TestInputRedactionIsStoredAndUsed(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "My card 4111-1111-1111-1111 and mail bob@example.com: how do refunds work?")
	want := "My card [redacted] and mail [redacted]: how do refunds work?"
	if turn.Input != want {
		t.Errorf("input=%q, want %q", turn.Input, want)
	}
	if !turn.Trace.Redacted {
		t.Errorf("trace.redacted=false, want true")
	}
	if turn.Trace.Knowledge != "returns" {
		t.Errorf("trace.knowledge=%q, want returns (processing continues after redaction)", turn.Trace.Knowledge)
	}
}

func TestRedactMergesOverlappingMatches(t *testing.T) {
	a := &compile.Artifact{Guardrails: []compile.Guardrail{{
		Slug: "r", Applies: "input",
		Redact: &compile.Redact{Patterns: []string{`abc`, `bcd`, `x*`}},
	}}}
	e := mustNew(t, a)
	turn := e.Respond(State{}, "1abcde2 abc")
	if want := "1[redacted]e2 [redacted]"; turn.Input != want {
		t.Fatalf("input=%q, want %q", turn.Input, want)
	}
}

func TestTriggerStartsPlaybook(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "Hi, can you CANCEL my order, please?")
	if turn.Reply != "Which order should I cancel?" {
		t.Errorf("reply=%q, want the ask question", turn.Reply)
	}
	if turn.Trace.Playbook != "cancel" {
		t.Errorf("trace.playbook=%q, want cancel", turn.Trace.Playbook)
	}
	if want := (State{Playbook: "cancel", Step: 0}); !reflect.DeepEqual(turn.State, want) {
		t.Errorf("state=%+v, want %+v", turn.State, want)
	}
}

func TestAskSavesAndRunsFollowingSteps(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "cancel", Step: 0}, "  A-17/x  ")
	if want := "Order A-17/x is cancelled."; turn.Reply != want {
		t.Errorf("reply=%q, want %q", turn.Reply, want)
	}
	want := []SkillCall{{Skill: "cancel-order", Method: "DELETE", URL: "https://shop.example.com/orders/A-17%2Fx", TimeoutMs: 3000}}
	if !reflect.DeepEqual(turn.Trace.SkillCalls, want) {
		t.Errorf("skillCalls=%+v, want %+v", turn.Trace.SkillCalls, want)
	}
	if !reflect.DeepEqual(turn.State, State{}) {
		t.Errorf("state=%+v, want reset after the last step", turn.State)
	}
	if turn.Trace.Playbook != "cancel" {
		t.Errorf("trace.playbook=%q, want cancel", turn.Trace.Playbook)
	}
}

func TestActivePlaybookWinsOverTriggersAndKnowledge(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "order-status", Step: 0}, "cancel my order about refunds")
	if turn.Trace.Playbook != "order-status" || turn.Trace.Knowledge != "" {
		t.Fatalf("trace=%+v, want the running order-status playbook only", turn.Trace)
	}
}

func TestGetSkillPutsOtherParamsInSortedQuery(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{Playbook: "order-status", Step: 0}, "42 7")
	want := []SkillCall{{Skill: "order-status", Method: "GET", URL: "https://shop.example.com/orders/42%207/status?lang=en", TimeoutMs: 2000}}
	if !reflect.DeepEqual(turn.Trace.SkillCalls, want) {
		t.Fatalf("skillCalls=%+v, want %+v", turn.Trace.SkillCalls, want)
	}
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
	if len(turn.Trace.SkillCalls) != 1 {
		t.Fatalf("skillCalls=%+v, want one", turn.Trace.SkillCalls)
	}
	c := turn.Trace.SkillCalls[0]
	if want := "https://x.test/a/7?fixed=1&alpha=a%26b&mid=m&zeta=z+z"; c.URL != want {
		t.Errorf("url=%q, want %q", c.URL, want)
	}
	if c.Method != "GET" || c.Body != nil {
		t.Errorf("method=%q body=%v, want GET and no body", c.Method, c.Body)
	}
	if turn.Reply != emptyPlaybookReply {
		t.Errorf("reply=%q, want %q for a playbook that says nothing", turn.Reply, emptyPlaybookReply)
	}
}

func TestFullPlaybookWithPostBodyAndHandoff(t *testing.T) {
	e := mustNew(t, richArtifact())
	t1 := e.Respond(State{}, "I want to talk to a human")
	if want := "Sure, I'll open a ticket.\nWhat's your email?"; t1.Reply != want {
		t.Fatalf("turn 1 reply=%q, want %q", t1.Reply, want)
	}
	t2 := e.Respond(t1.State, "bob@example.com")
	if t2.Reply != "Briefly, what is the problem?" {
		t.Fatalf("turn 2 reply=%q, want the second question", t2.Reply)
	}
	if got := t2.State.Vars["email"]; got != "[redacted]" {
		t.Errorf("saved email=%q, want the redacted input", got)
	}
	t3 := e.Respond(t2.State, "The app crashes")
	if want := "Thanks, a colleague will follow up about: The app crashes"; t3.Reply != want {
		t.Errorf("turn 3 reply=%q, want %q", t3.Reply, want)
	}
	if t3.Trace.Handoff != "human support" {
		t.Errorf("trace.handoff=%q, want human support", t3.Trace.Handoff)
	}
	want := []SkillCall{{
		Skill: "create-ticket", Method: "POST", URL: "https://help.example.com/api/tickets",
		Headers:   map[string]string{"Authorization": "Bearer test", "X-Source": "flowyte"},
		Body:      map[string]any{"email": "[redacted]", "priority": int64(2), "summary": "The app crashes"},
		TimeoutMs: 5000,
	}}
	if !reflect.DeepEqual(t3.Trace.SkillCalls, want) {
		t.Errorf("skillCalls=%+v, want %+v", t3.Trace.SkillCalls, want)
	}
	if !reflect.DeepEqual(t3.State, State{}) {
		t.Errorf("state=%+v, want reset after handoff", t3.State)
	}
}

func TestHandoffEndsPlaybookEarly(t *testing.T) {
	a := &compile.Artifact{Playbooks: []compile.Playbook{{
		Slug: "p", Triggers: []string{"escalate"},
		Steps: []compile.Step{{Handoff: "billing team"}, {Say: "never said"}},
	}}}
	e := mustNew(t, a)
	turn := e.Respond(State{}, "please escalate")
	if turn.Trace.Handoff != "billing team" || turn.Reply != handoffReply {
		t.Fatalf("handoff=%q reply=%q, want billing team and %q", turn.Trace.Handoff, turn.Reply, handoffReply)
	}
	if !reflect.DeepEqual(turn.State, State{}) {
		t.Errorf("state=%+v, want zero", turn.State)
	}
}

func TestTriggerWordBoundaries(t *testing.T) {
	e := mustNew(t, richArtifact())
	for _, text := range []string{"I was tracking it", "racetrack", "cancelled order"} {
		turn := e.Respond(State{}, text)
		if turn.Trace.Playbook != "" {
			t.Errorf("Respond(%q) started %q, want no playbook", text, turn.Trace.Playbook)
		}
	}
	if turn := e.Respond(State{}, "TRACK: parcel"); turn.Trace.Playbook != "order-status" {
		t.Errorf("Respond(TRACK: parcel) playbook=%q, want order-status", turn.Trace.Playbook)
	}
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
		if got := e.Respond(State{}, c.text).Trace.Playbook; got != c.want {
			t.Errorf("Respond(%q) playbook=%q, want %q", c.text, got, c.want)
		}
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
		if turn.Trace.Knowledge != c.slug {
			t.Errorf("Respond(%q) knowledge=%q, want %q (reply %q)", c.text, turn.Trace.Knowledge, c.slug, turn.Reply)
			continue
		}
		if !strings.HasPrefix(turn.Reply, c.prefix) {
			t.Errorf("Respond(%q) reply=%q, want prefix %q", c.text, turn.Reply, c.prefix)
		}
	}
}

func TestKnowledgeSingleArticle(t *testing.T) {
	a := &compile.Artifact{Knowledge: []compile.Article{{Slug: "hours", Title: "Opening hours", Content: "We are open Monday to Friday."}}}
	e := mustNew(t, a)
	if turn := e.Respond(State{}, "hours?"); turn.Trace.Knowledge != "hours" || turn.Reply != "We are open Monday to Friday." {
		t.Errorf("knowledge=%q reply=%q, want the only article", turn.Trace.Knowledge, turn.Reply)
	}
	if turn := e.Respond(State{}, "what is the weather"); turn.Trace.Knowledge != "" || turn.Reply != DefaultFallback {
		t.Errorf("knowledge=%q reply=%q, want the default fallback", turn.Trace.Knowledge, turn.Reply)
	}
}

func TestFallback(t *testing.T) {
	e := mustNew(t, richArtifact())
	for _, text := range []string{"blorp zzz", "", "what is it?", "   "} {
		turn := e.Respond(State{}, text)
		if want := "I'm not sure about that. Try asking about orders, shipping or returns."; turn.Reply != want {
			t.Errorf("Respond(%q)=%q, want the configured fallback", text, turn.Reply)
		}
		if turn.Trace.Knowledge != "" || turn.Trace.Playbook != "" {
			t.Errorf("Respond(%q) trace=%+v, want empty", text, turn.Trace)
		}
	}
	e = mustNew(t, &compile.Artifact{})
	if got := e.Respond(State{}, "anything").Reply; got != DefaultFallback {
		t.Errorf("reply=%q, want %q", got, DefaultFallback)
	}
}

func TestOutputGuardrails(t *testing.T) {
	a := richArtifact()
	a.Knowledge = append(a.Knowledge,
		compile.Article{Slug: "compare", Title: "Competitors", Content: "Unlike MegaCorp, our blenders are silent."},
		compile.Article{Slug: "contact", Title: "Contact", Content: "Write to help@acme.example for anything else."},
	)
	e := mustNew(t, a)
	turn := e.Respond(State{}, "how do competitors compare")
	if turn.Reply != "I can only talk about Acme products." || turn.Trace.Guardrail != "no-competitors" {
		t.Errorf("reply=%q guardrail=%q, want the output block", turn.Reply, turn.Trace.Guardrail)
	}
	if turn.Trace.Knowledge != "compare" {
		t.Errorf("knowledge=%q, want compare (kept in the trace)", turn.Trace.Knowledge)
	}
	turn = e.Respond(State{}, "how do I contact you")
	if want := "Write to [redacted] for anything else."; turn.Reply != want || !turn.Trace.Redacted {
		t.Errorf("reply=%q redacted=%v, want %q and true", turn.Reply, turn.Trace.Redacted, want)
	}
	if turn.Input != "how do I contact you" {
		t.Errorf("input=%q, want unchanged", turn.Input)
	}
}

func TestOutputOnlyGuardrailIgnoresInput(t *testing.T) {
	e := mustNew(t, richArtifact())
	turn := e.Respond(State{}, "is megacorp better than you?")
	if turn.Trace.Guardrail != "" {
		t.Fatalf("guardrail=%q, want none (no-competitors applies to output only)", turn.Trace.Guardrail)
	}
}

func TestRespondDoesNotModifyState(t *testing.T) {
	e := mustNew(t, richArtifact())
	st := State{Playbook: "support-ticket", Step: 2, Vars: map[string]string{"email": "e"}}
	turn := e.Respond(st, "summary text")
	if len(st.Vars) != 1 || st.Vars["email"] != "e" {
		t.Errorf("input state vars=%v, want unchanged", st.Vars)
	}
	if turn.Trace.Handoff != "human support" {
		t.Errorf("handoff=%q, want human support", turn.Trace.Handoff)
	}
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
		if turn.Trace.Knowledge != "returns" || !reflect.DeepEqual(turn.State, State{}) {
			t.Errorf("Respond(%+v) knowledge=%q state=%+v, want returns and zero state", st, turn.Trace.Knowledge, turn.State)
		}
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
		if _, err := New(a); err == nil {
			t.Errorf("%s: New err=nil, want an error", name)
		}
	}
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
		if got := render(c.in, vars); got != c.want {
			t.Errorf("render(%q)=%q, want %q", c.in, got, c.want)
		}
	}
}

func TestBound(t *testing.T) {
	sentence := "This is a sentence that is exactly long. "
	long := strings.Repeat(sentence, 30)
	got := bound(long, maxReply)
	if len(got) > maxReply || !strings.HasSuffix(got, ".") {
		t.Errorf("bound(long) len=%d ends %q, want ≤ %d ending at a sentence", len(got), got[len(got)-5:], maxReply)
	}
	words := strings.Repeat("word ", 200)
	got = bound(words, maxReply)
	if len(got) > maxReply || !strings.HasSuffix(got, "word…") {
		t.Errorf("bound(words) len=%d, want ≤ %d ending in an ellipsis after a word", len(got), maxReply)
	}
	runes := strings.Repeat("é", 400)
	got = bound(runes, maxReply)
	if len(got) > maxReply || !strings.HasSuffix(got, "é…") {
		t.Errorf("bound(runes) len=%d, want ≤ %d cut at a rune boundary", len(got), maxReply)
	}
	shortFirst := "Hi. " + strings.Repeat("x ", 400)
	if got := bound(shortFirst, maxReply); len(got) < maxReply/2 || len(got) > maxReply {
		t.Errorf("bound(shortFirst) len=%d, want a word cut near %d, not the first sentence", len(got), maxReply)
	}
	if got := bound("  short  ", maxReply); got != "short" {
		t.Errorf("bound(short)=%q, want short", got)
	}
}

func TestSplitPassages(t *testing.T) {
	md := "intro line\n\n# Setup\n\nstep one\nstep two\n\n```sh\n# not a heading\n\necho hi\n```\n\n#hashtag is text\n"
	got := splitPassages(md)
	want := []section{
		{heading: "", text: "intro line"},
		{heading: "Setup", text: "step one\nstep two"},
		{heading: "Setup", text: "```sh\n# not a heading\n\necho hi\n```"},
		{heading: "Setup", text: "#hashtag is text"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("splitPassages=%#v, want %#v", got, want)
	}
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
	play := func() []byte {
		e := mustNew(t, richArtifact())
		var st State
		var out []Turn
		for _, s := range script {
			turn := e.Respond(st, s)
			out = append(out, turn)
			st = turn.State
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		return b
	}
	first := play()
	for i := 0; i < 100; i++ {
		if got := play(); string(got) != string(first) {
			t.Fatalf("run %d differs:\n%s\nwant\n%s", i, got, first)
		}
	}
}

func TestSkillCallJSON(t *testing.T) {
	c := SkillCall{Skill: "s", Method: "GET", URL: "u", TimeoutMs: 5}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"skill":"s","method":"GET","url":"u","timeoutMs":5}`; string(b) != want {
		t.Fatalf("json=%s, want %s", b, want)
	}
}

func TestConcurrentRespond(t *testing.T) {
	e := mustNew(t, richArtifact())
	want := e.Respond(State{}, "can I get a refund")
	done := make(chan Turn)
	for i := 0; i < 8; i++ {
		go func() { done <- e.Respond(State{}, "can I get a refund") }()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; !reflect.DeepEqual(got, want) {
			t.Errorf("concurrent turn=%+v, want %+v", got, want)
		}
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

func BenchmarkNew(b *testing.B) {
	a := richArtifact()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(a); err != nil {
			b.Fatal(err)
		}
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
		if turn.Reply == "" {
			t.Fatalf("Respond(%q, %d, %q) reply is empty", playbook, step, text)
		}
		if _, err := json.Marshal(turn); err != nil {
			t.Fatalf("Marshal(turn): %v", err)
		}
		if turn.State.Playbook != "" {
			if _, ok := e.waiting(turn.State); !ok {
				t.Fatalf("returned state %+v is not a waiting ask", turn.State)
			}
		}
	})
}
