package responder

import (
	"fmt"
	"sort"
	"strings"

	"github.com/flowyte/flowyte/compile"
)

// DefaultFallback is the reply when nothing matches and the agent's
// settings have no fallback.
const DefaultFallback = "Sorry, I don't know how to help with that yet. Could you rephrase?"

// handoffReply is said when a playbook hands off before saying anything.
const handoffReply = "Let me hand you over to a colleague."

// emptyPlaybookReply is said when a playbook turn produced no text (only
// skill steps ran).
const emptyPlaybookReply = "Okay."

// Engine answers messages for one compiled agent. It is immutable after
// [New] and safe for concurrent use.
type Engine struct {
	greeting   string
	fallback   string
	in, out    guardrails
	playbooks  []playbook
	byPlaybook map[string]int       // playbook slug → index
	triggers   map[string][]trigger // first trigger word → triggers
	knowledge  *index
}

// State is a session's conversation state between turns, persisted as
// JSON. The zero State means no playbook is running.
type State struct {
	// Playbook is the slug of the running playbook, "" if none.
	Playbook string `json:"playbook,omitempty"`
	// Step is the index of the ask step waiting for the user's answer.
	Step int `json:"step,omitempty"`
	// Vars holds the answers saved so far by the running playbook.
	Vars map[string]string `json:"vars,omitempty"`
}

// SkillCall is the HTTP request a skill step would make. It is recorded,
// never sent.
type SkillCall struct {
	// Skill is the skill's slug.
	Skill string `json:"skill"`
	// Method is the upper-case HTTP method.
	Method string `json:"method"`
	// URL has its placeholders filled and, for GET and DELETE, the other
	// arguments in its query string; a password in it reads "xxxxx".
	URL string `json:"url"`
	// Headers are the names of the skill's configured headers, each with
	// the value "[redacted]": they hold third-party credentials, which a
	// trace (readable with chat:write) must not show.
	Headers map[string]string `json:"headers,omitempty"`
	// Body holds the non-placeholder arguments of POST, PUT and PATCH.
	Body map[string]any `json:"body,omitempty"`
	// TimeoutMs is the skill's timeout in milliseconds.
	TimeoutMs int `json:"timeoutMs"`
	// Args are the call's arguments by name, as rendered from the step's
	// with (after input redaction), whichever part of the request carries
	// them. Tests match expected skill calls on them.
	Args map[string]string `json:"args,omitempty"`
}

// Trace explains how a reply was made.
type Trace struct {
	// Guardrail is the slug of the block guardrail that answered, or else
	// of the first redact guardrail that changed the input or the reply.
	Guardrail string `json:"guardrail,omitempty"`
	// Playbook is the slug of the playbook that ran this turn, if any.
	Playbook string `json:"playbook,omitempty"`
	// Knowledge is the slug of the article the reply was taken from.
	Knowledge string `json:"knowledge,omitempty"`
	// SkillCalls are the requests skill steps would have made, in order.
	SkillCalls []SkillCall `json:"skillCalls,omitempty"`
	// Handoff is the reason of a handoff step that ended the playbook.
	Handoff string `json:"handoff,omitempty"`
	// Redacted reports whether a redact guardrail changed the input or
	// the reply.
	Redacted bool `json:"redacted,omitempty"`
	// Fallback reports whether the reply is the fallback: no guardrail
	// blocked the turn, no playbook ran and no article matched.
	Fallback bool `json:"fallback,omitempty"`
}

// Turn is the result of one user message.
type Turn struct {
	// Input is the user's text after input redaction: what gets stored.
	Input string `json:"input"`
	// Reply is the agent's answer after output guardrails.
	Reply string `json:"reply"`
	// Trace explains the reply.
	Trace Trace `json:"trace"`
	// State is the conversation state to persist for the next turn.
	State State `json:"state"`
	// Outcome says what kind of turn this was, for outcomes per version.
	Outcome Outcome `json:"-"`
}

// Outcome classifies a turn for the outcome counters (CONTRACT §12).
type Outcome struct {
	// Fallback reports whether nothing matched (no playbook, no knowledge)
	// and the fallback answered.
	Fallback bool
	// Blocked reports whether a block guardrail (input or output) answered.
	Blocked bool
	// PlaybookCompleted reports whether a playbook ran through its last
	// step this turn (a playbook ended by a handoff step is a Handoff).
	PlaybookCompleted bool
	// Handoff reports whether a handoff step ended a playbook this turn.
	Handoff bool
}

// New builds the engine for artifact a: it compiles every guardrail
// pattern, resolves playbook skills and indexes the knowledge. It fails on
// an invalid pattern, an unknown guardrail direction, an empty step or a
// step naming an unknown skill.
func New(a *compile.Artifact) (*Engine, error) { return NewFrom(nil, a) }

// NewFrom is [New] reusing prev (an engine of an earlier artifact, usually
// the agent's previous draft; nil for none): the knowledge index analyses
// only articles that are new or changed since prev and shares the rest, so
// a one-article edit costs about one article. The engine answers exactly
// as one built by New would.
func NewFrom(prev *Engine, a *compile.Artifact) (*Engine, error) {
	if a == nil {
		return nil, fmt.Errorf("responder: nil artifact")
	}
	e := &Engine{
		greeting:   a.Settings.Greeting,
		fallback:   a.Settings.Fallback,
		byPlaybook: make(map[string]int, len(a.Playbooks)),
		triggers:   make(map[string][]trigger),
	}
	if strings.TrimSpace(e.fallback) == "" {
		e.fallback = DefaultFallback
	}

	// Work on slug-sorted copies so a hand-built artifact behaves like a
	// compiled (sorted) one.
	gs := append([]compile.Guardrail(nil), a.Guardrails...)
	sort.SliceStable(gs, func(i, j int) bool { return gs[i].Slug < gs[j].Slug })
	var err error
	if e.in, e.out, err = compileGuardrails(gs); err != nil {
		return nil, fmt.Errorf("responder: %w", err)
	}

	skills := make(map[string]*skillDef, len(a.Skills))
	for _, s := range a.Skills {
		skills[s.Slug] = compileSkill(s)
	}

	pbs := append([]compile.Playbook(nil), a.Playbooks...)
	sort.SliceStable(pbs, func(i, j int) bool { return pbs[i].Slug < pbs[j].Slug })
	for _, p := range pbs {
		if _, dup := e.byPlaybook[p.Slug]; dup {
			return nil, fmt.Errorf("responder: duplicate playbook %q", p.Slug)
		}
		pb, err := compilePlaybook(p, skills)
		if err != nil {
			return nil, fmt.Errorf("responder: %w", err)
		}
		idx := len(e.playbooks)
		e.playbooks = append(e.playbooks, pb)
		e.byPlaybook[p.Slug] = idx
		for _, t := range p.Triggers {
			words := tokens(t)
			if len(words) == 0 {
				continue
			}
			e.triggers[words[0]] = append(e.triggers[words[0]], trigger{
				words:    words,
				length:   len(strings.Join(words, " ")),
				playbook: idx,
			})
		}
	}

	arts := append([]compile.Article(nil), a.Knowledge...)
	sort.SliceStable(arts, func(i, j int) bool { return arts[i].Slug < arts[j].Slug })
	var base *index
	if prev != nil {
		base = prev.knowledge
	}
	e.knowledge = rebuildIndex(base, arts)
	return e, nil
}

// Greeting returns the agent's configured greeting ("" if none).
func (e *Engine) Greeting() string { return e.greeting }

// Respond answers text given the session's state st. Text longer than
// the input guardrails examine (see [MaxGuardrailWork]) is cut first, and
// so is a longer reply before the output guardrails. In order: input
// guardrails (a block answers with its message and nothing else runs; a
// redaction replaces matches with "[redacted]" and the rest sees the
// redacted text), the running playbook's waiting ask step, playbook
// triggers, knowledge retrieval, the fallback; output guardrails last.
// Respond does not modify st.
func (e *Engine) Respond(st State, text string) Turn {
	var t Turn
	text = e.in.cut(text)
	blocked := e.in.block(text)
	var redactedBy string
	t.Input, redactedBy = e.in.apply(text)
	t.Trace.Redacted = redactedBy != ""
	t.Trace.Guardrail = redactedBy
	if blocked != nil {
		t.Reply = blocked.message
		t.Trace.Guardrail = blocked.slug
		t.Outcome.Blocked = true
		if _, ok := e.waiting(st); ok {
			t.State = st.clone() // the playbook keeps waiting
		}
		return t
	}

	var texts []string
	ran := false
	if pb, ok := e.waiting(st); ok {
		vars := make(map[string]string, len(st.Vars)+1)
		for k, v := range st.Vars {
			vars[k] = v
		}
		if s := e.playbooks[pb].steps[st.Step]; s.save != "" {
			vars[s.save] = strings.TrimSpace(t.Input)
		}
		texts, t.State = e.run(pb, st.Step+1, vars, &t.Trace)
		ran = true
	} else if pb := e.matchTrigger(tokens(t.Input)); pb >= 0 {
		texts, t.State = e.run(pb, 0, map[string]string{}, &t.Trace)
		ran = true
	}
	if ran && t.State.Playbook == "" {
		// The playbook ended this turn: by a handoff step, or at its end.
		t.Outcome.Handoff = t.Trace.Handoff != ""
		t.Outcome.PlaybookCompleted = !t.Outcome.Handoff
	}

	switch {
	case ran && len(texts) == 0:
		t.Reply = emptyPlaybookReply
	case ran:
		t.Reply = strings.Join(texts, "\n")
	default:
		if p, ok := e.knowledge.search(t.Input); ok {
			t.Reply = p.reply
			t.Trace.Knowledge = p.article
		} else {
			t.Reply = e.fallback
			t.Outcome.Fallback = true
			t.Trace.Fallback = true
		}
	}

	t.Reply = e.out.cut(t.Reply)
	if r := e.out.block(t.Reply); r != nil {
		t.Reply = r.message
		t.Trace.Guardrail = r.slug
		t.Outcome.Blocked = true
		t.Trace.Fallback = false
		return t
	}
	var outBy string
	t.Reply, outBy = e.out.apply(t.Reply)
	if outBy != "" {
		t.Trace.Redacted = true
		if t.Trace.Guardrail == "" {
			t.Trace.Guardrail = outBy
		}
	}
	return t
}

// waiting returns the playbook whose ask step st is waiting on, and
// whether st is such a valid state. A state naming an unknown playbook or a
// step that is not an ask is treated as no playbook.
func (e *Engine) waiting(st State) (int, bool) {
	if st.Playbook == "" {
		return 0, false
	}
	pb, ok := e.byPlaybook[st.Playbook]
	if !ok || st.Step < 0 || st.Step >= len(e.playbooks[pb].steps) {
		return 0, false
	}
	return pb, e.playbooks[pb].steps[st.Step].kind == stepAsk
}

// clone returns a deep copy of st.
func (st State) clone() State {
	c := State{Playbook: st.Playbook, Step: st.Step}
	if len(st.Vars) > 0 {
		c.Vars = make(map[string]string, len(st.Vars))
		for k, v := range st.Vars {
			c.Vars[k] = v
		}
	}
	return c
}
