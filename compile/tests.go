package compile

import (
	"fmt"
	"regexp"
)

// TestsPath is where a release tree holds the evidence of its test run
// (CONTRACT §11). Compile ignores it, like ArtifactPath.
const TestsPath = "compiled/tests.json"

// Test is one tests/<slug>.yaml file: a conversation with the agent and
// what each reply must show (CONTRACT §11). Tests are compiled with the
// draft (Result.Tests) but are not part of the artifact: compiled/agent.json
// is the same with or without them.
type Test struct {
	Slug        string     `json:"slug" yaml:"-"`
	Description string     `json:"description,omitempty" yaml:"description,omitempty" validate:"max=2000"`
	Turns       []TestTurn `json:"turns" yaml:"turns" validate:"required,min=1,max=100,dive"`
}

// TestTurn is one user message of a test and, optionally, what the reply
// to it must show.
type TestTurn struct {
	User   string  `json:"user" yaml:"user" validate:"required,max=4000"`
	Expect *Expect `json:"expect,omitempty" yaml:"expect,omitempty"`
}

// Expect lists what a reply must show; every field set must hold. Text
// comparisons are case-insensitive.
type Expect struct {
	// ReplyContains: the reply contains every string.
	ReplyContains []string `json:"replyContains,omitempty" yaml:"replyContains,omitempty" validate:"max=50,dive,required,max=1000"`
	// ReplyNotContains: the reply contains none of the strings.
	ReplyNotContains []string `json:"replyNotContains,omitempty" yaml:"replyNotContains,omitempty" validate:"max=50,dive,required,max=1000"`
	// ReplyMatches: the reply matches this RE2 expression, case-insensitive
	// (ReplyMatchesRE compiles it that way).
	ReplyMatches string `json:"replyMatches,omitempty" yaml:"replyMatches,omitempty"`
	// Guardrail: this guardrail fired on the turn.
	Guardrail string `json:"guardrail,omitempty" yaml:"guardrail,omitempty"`
	// Playbook: this playbook answered.
	Playbook string `json:"playbook,omitempty" yaml:"playbook,omitempty"`
	// Knowledge: the reply cites every one of these articles.
	Knowledge []string `json:"knowledge,omitempty" yaml:"knowledge,omitempty" validate:"max=50,dive,required"`
	// SkillCalls: these skills were called on the turn, in this order,
	// each with at least the given arguments.
	SkillCalls []ExpectSkillCall `json:"skillCalls,omitempty" yaml:"skillCalls,omitempty" validate:"max=50,dive"`
	// Fallback: whether the reply is the fallback (nil: not checked).
	Fallback *bool `json:"fallback,omitempty" yaml:"fallback,omitempty"`
}

// ExpectSkillCall is one expected skill call; With is a subset of its
// arguments (values compared as text).
type ExpectSkillCall struct {
	Skill string            `json:"skill" yaml:"skill" validate:"required"`
	With  map[string]string `json:"with,omitempty" yaml:"with,omitempty"`
}

// ReplyMatchesRE compiles pattern as Expect.ReplyMatches is meant:
// RE2, case-insensitive.
func ReplyMatchesRE(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile("(?i)" + pattern)
}

// checkTest runs the checks of one test file that need no other file.
func checkTest(t *Test, is *issues) {
	if len(t.Turns) > MaxTestTurns {
		return // reported by the validator (max)
	}
	for i, turn := range t.Turns {
		e := turn.Expect
		if e == nil {
			continue
		}
		ep := fmt.Sprintf("/turns/%d/expect", i)
		if e.ReplyMatches != "" {
			if checkPatternCost("(?i)"+e.ReplyMatches, ep+"/replyMatches", "replyMatches", is) > 0 {
				if _, err := ReplyMatchesRE(e.ReplyMatches); err != nil {
					is.add(ep+"/replyMatches", CodeInvalidRegex, "replyMatches is not a valid RE2 expression: %s", regexError(err))
				}
			}
		}
		slugs := []struct {
			ptr, slug string
		}{{ep + "/guardrail", e.Guardrail}, {ep + "/playbook", e.Playbook}}
		for j, k := range e.Knowledge {
			slugs = append(slugs, struct{ ptr, slug string }{fmt.Sprintf("%s/knowledge/%d", ep, j), k})
		}
		for j, c := range e.SkillCalls {
			slugs = append(slugs, struct{ ptr, slug string }{fmt.Sprintf("%s/skillCalls/%d/skill", ep, j), c.Skill})
		}
		for _, s := range slugs {
			if s.slug != "" && !ValidSlug(s.slug) {
				is.add(s.ptr, CodeInvalidValue, "%s %q is not a valid name (%s)", fieldLabel(s.ptr), s.slug, slugPattern)
			}
		}
	}
}

// checkTestReferences checks that every guardrail, playbook, knowledge
// article and skill a test names exists, and that expected skill
// arguments are declared parameters.
func checkTestReferences(tests []*parsedFile, byKind map[Kind][]*parsedFile) Diagnostics {
	if len(tests) == 0 {
		return nil
	}
	// byKind's lists are in slug order: look names up without a map of
	// every file.
	exists := func(k Kind, slug string) *parsedFile { return bySlug(byKind[k], slug) }
	var ds Diagnostics
	for _, pf := range tests {
		t, ok := pf.view.(*Test)
		if !ok {
			continue // an unparsable test file is reported on its own
		}
		for i, turn := range t.Turns {
			e := turn.Expect
			if e == nil {
				continue
			}
			ep := fmt.Sprintf("/turns/%d/expect", i)
			// Empty and malformed names are reported by checkTest.
			if ValidSlug(e.Guardrail) && exists(KindGuardrails, e.Guardrail) == nil {
				ds = append(ds, pf.diag(ep+"/guardrail", CodeUnknownGuardrail, "guardrail %q does not exist (no guardrails/%s.yaml)", e.Guardrail, e.Guardrail))
			}
			if ValidSlug(e.Playbook) && exists(KindPlaybooks, e.Playbook) == nil {
				ds = append(ds, pf.diag(ep+"/playbook", CodeUnknownPlaybook, "playbook %q does not exist (no playbooks/%s.yaml)", e.Playbook, e.Playbook))
			}
			for j, k := range e.Knowledge {
				if ValidSlug(k) && exists(KindKnowledge, k) == nil {
					ds = append(ds, pf.diag(fmt.Sprintf("%s/knowledge/%d", ep, j), CodeUnknownArticle, "knowledge article %q does not exist (no knowledge/%s.md)", k, k))
				}
			}
			for j, c := range e.SkillCalls {
				cp := fmt.Sprintf("%s/skillCalls/%d", ep, j)
				if !ValidSlug(c.Skill) {
					continue
				}
				sf := exists(KindSkills, c.Skill)
				if sf == nil {
					ds = append(ds, pf.diag(cp+"/skill", CodeUnknownSkill, "skill %q does not exist (no skills/%s.yaml)", c.Skill, c.Skill))
					continue
				}
				sk, ok := sf.view.(*Skill)
				if !ok {
					continue
				}
				props := skillProperties(sk)
				for _, k := range sortedKeys(c.With) {
					if !props[k] {
						ds = append(ds, pf.diag(cp+"/with/"+escapePointer(k), CodeUnknownParameter, "skill %q has no parameter %q", c.Skill, k))
					}
				}
			}
		}
	}
	return ds
}
