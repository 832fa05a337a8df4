package responder

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/flowyte/flowyte/compile"
)

// stepKind says which field of a compile.Step is set.
type stepKind int

const (
	stepSay stepKind = iota + 1
	stepAsk
	stepSkill
	stepHandoff
)

// withArg is one skill argument of a step; value is a template.
type withArg struct {
	name, value string
}

// step is one compiled playbook step.
type step struct {
	kind  stepKind
	text  string // say, ask or handoff template
	save  string // ask: the variable the answer goes to ("" discards it)
	skill *skillDef
	with  []withArg // sorted by name
}

// playbook is one compiled playbook.
type playbook struct {
	slug  string
	steps []step
}

// trigger is one trigger phrase, as lowercase words.
type trigger struct {
	words    []string
	length   int // bytes of the words joined by single spaces
	playbook int // index into Engine.playbooks
}

// urlPart is a literal piece of a skill URL or a {param} placeholder.
type urlPart struct {
	text  string
	param bool
}

// skillDef is one compiled skill.
type skillDef struct {
	slug      string
	method    string
	url       []urlPart
	inURL     map[string]bool   // parameters used as placeholders
	types     map[string]string // declared JSON Schema type per parameter
	headers   []string          // header names; the values (credentials) are not kept
	timeoutMs int
}

// compileSkill parses the URL template and the declared parameter types.
func compileSkill(s compile.Skill) *skillDef {
	d := &skillDef{
		slug:      s.Slug,
		method:    strings.ToUpper(s.HTTP.Method),
		inURL:     make(map[string]bool),
		types:     make(map[string]string),
		timeoutMs: s.HTTP.TimeoutMs,
	}
	for name := range s.HTTP.Headers {
		d.headers = append(d.headers, name)
	}
	if props, ok := s.Parameters["properties"].(map[string]any); ok {
		for name, p := range props {
			if schema, ok := p.(map[string]any); ok {
				if t, ok := schema["type"].(string); ok {
					d.types[name] = t
				}
			}
		}
	}
	rest := s.HTTP.URL
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			d.url = append(d.url, urlPart{text: rest})
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 || !isParamName(rest[i+1:i+j]) {
			d.url = append(d.url, urlPart{text: rest[:i+1]})
			rest = rest[i+1:]
			continue
		}
		if i > 0 {
			d.url = append(d.url, urlPart{text: rest[:i]})
		}
		name := rest[i+1 : i+j]
		d.url = append(d.url, urlPart{text: name, param: true})
		d.inURL[name] = true
		rest = rest[i+j+1:]
	}
	return d
}

// isParamName reports whether s can name a URL placeholder.
func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// call builds the request the skill would make with the given arguments
// (already rendered, sorted by name). Placeholders are filled path-escaped
// (missing ones become empty); the other arguments go to the query string
// (GET, DELETE; sorted) or to the JSON body (POST, PUT, PATCH), converted
// to the declared integer, number or boolean type when they parse.
func (d *skillDef) call(args []withArg) SkillCall {
	c := SkillCall{Skill: d.slug, Method: d.method, TimeoutMs: d.timeoutMs}
	values := make(map[string]string, len(args))
	for _, a := range args {
		values[a.name] = a.value
	}
	if len(values) > 0 {
		c.Args = values
	}
	var u strings.Builder
	inQuery := false
	for _, p := range d.url {
		switch {
		case p.param && inQuery:
			u.WriteString(url.QueryEscape(values[p.text]))
		case p.param:
			u.WriteString(url.PathEscape(values[p.text]))
		default:
			u.WriteString(p.text)
			inQuery = inQuery || strings.Contains(p.text, "?")
		}
	}
	rest := args[:0:0]
	for _, a := range args {
		if !d.inURL[a.name] {
			rest = append(rest, a)
		}
	}
	switch d.method {
	case "POST", "PUT", "PATCH":
		if len(rest) > 0 {
			c.Body = make(map[string]any, len(rest))
			for _, a := range rest {
				c.Body[a.name] = d.typed(a.name, a.value)
			}
		}
	default:
		if len(rest) > 0 {
			q := make(url.Values, len(rest))
			for _, a := range rest {
				q.Set(a.name, a.value)
			}
			s := u.String()
			sep := "?"
			if strings.Contains(s, "?") {
				sep = "&"
				if strings.HasSuffix(s, "?") || strings.HasSuffix(s, "&") {
					sep = ""
				}
			}
			u.WriteString(sep)
			u.WriteString(q.Encode()) // Encode sorts by key
		}
	}
	c.URL = u.String()
	if pu, err := url.Parse(c.URL); err == nil && pu.User != nil {
		c.URL = pu.Redacted() // user:password@ in a skill URL is a credential too
	}
	if len(d.headers) > 0 {
		c.Headers = make(map[string]string, len(d.headers))
		for _, name := range d.headers {
			c.Headers[name] = redactedText
		}
	}
	return c
}

// typed converts v to the parameter's declared JSON type when it parses,
// and keeps the string otherwise.
func (d *skillDef) typed(name, v string) any {
	s := strings.TrimSpace(v)
	switch d.types[name] {
	case "integer":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "number":
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return v
}

// compilePlaybook resolves one playbook's steps against the skills.
func compilePlaybook(p compile.Playbook, skills map[string]*skillDef) (playbook, error) {
	pb := playbook{slug: p.Slug}
	for i, s := range p.Steps {
		var st step
		switch {
		case s.Say != "":
			st = step{kind: stepSay, text: s.Say}
		case s.Ask != "":
			st = step{kind: stepAsk, text: s.Ask, save: strings.TrimSpace(s.Save)}
		case s.Skill != "":
			d := skills[s.Skill]
			if d == nil {
				return pb, fmt.Errorf("playbook %q step %d: unknown skill %q", p.Slug, i+1, s.Skill)
			}
			st = step{kind: stepSkill, skill: d}
			for name, v := range s.With {
				st.with = append(st.with, withArg{name: name, value: v})
			}
			sort.Slice(st.with, func(a, b int) bool { return st.with[a].name < st.with[b].name })
		case s.Handoff != "":
			st = step{kind: stepHandoff, text: s.Handoff}
		default:
			return pb, fmt.Errorf("playbook %q step %d: no say, ask, skill or handoff", p.Slug, i+1)
		}
		pb.steps = append(pb.steps, st)
	}
	return pb, nil
}

// run executes the steps of playbook pb from index from, appending reply
// texts and skill calls, until an ask waits for its answer (the returned
// state points at it) or the steps end or hand off (the zero state).
func (e *Engine) run(pb int, from int, vars map[string]string, tr *Trace) ([]string, State) {
	p := &e.playbooks[pb]
	tr.Playbook = p.slug
	var texts []string
	for i := from; i < len(p.steps); i++ {
		s := &p.steps[i]
		switch s.kind {
		case stepSay:
			texts = append(texts, render(s.text, vars))
		case stepAsk:
			texts = append(texts, render(s.text, vars))
			st := State{Playbook: p.slug, Step: i}
			if len(vars) > 0 {
				st.Vars = vars
			}
			return texts, st
		case stepSkill:
			args := make([]withArg, len(s.with))
			for j, a := range s.with {
				args[j] = withArg{name: a.name, value: render(a.value, vars)}
			}
			tr.SkillCalls = append(tr.SkillCalls, s.skill.call(args))
		case stepHandoff:
			tr.Handoff = render(s.text, vars)
			if len(texts) == 0 {
				texts = append(texts, handoffReply)
			}
			return texts, State{}
		}
	}
	return texts, State{}
}

// matchTrigger returns the playbook whose trigger phrase occurs in toks on
// word boundaries, preferring the longest trigger, then the smaller slug;
// -1 if none does.
func (e *Engine) matchTrigger(toks []string) int {
	best := -1
	bestLen := 0
	for i, w := range toks {
		for _, t := range e.triggers[w] {
			if t.length < bestLen || i+len(t.words) > len(toks) {
				continue
			}
			if !equalWords(toks[i:i+len(t.words)], t.words) {
				continue
			}
			if best < 0 || t.length > bestLen || (t.length == bestLen && e.playbooks[t.playbook].slug < e.playbooks[best].slug) {
				best, bestLen = t.playbook, t.length
			}
		}
	}
	return best
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
