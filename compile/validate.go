package compile

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/go-playground/validator/v10"
)

// newValidator returns a validator naming fields by their json tags.
// One is made per Compile or DecodeView call: the package keeps no globals.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// runValidator applies the struct tags of view and records failures.
func runValidator(val *validator.Validate, view any, is *issues) {
	err := val.Struct(view)
	if err == nil {
		return
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		is.add("", CodeInvalidValue, "%v", err)
		return
	}
	for _, fe := range verrs {
		ptr := namespacePointer(fe.Namespace())
		code, msg := validationMessage(fe, fieldLabel(ptr))
		is.add(ptr, code, "%s", msg)
	}
}

// namespacePointer turns "Playbook.triggers[2]" into "/triggers/2".
func namespacePointer(ns string) string {
	_, rest, ok := strings.Cut(ns, ".")
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteByte('/')
	for _, r := range rest {
		switch r {
		case '.', '[':
			b.WriteByte('/')
		case ']':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func validationMessage(fe validator.FieldError, label string) (code, msg string) {
	unit := "characters"
	switch fe.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		unit = "items"
	}
	switch fe.Tag() {
	case "required":
		return CodeMissingField, label + " is required"
	case "bcp47_language_tag":
		return CodeInvalidLanguage, fmt.Sprintf("%s %q is not a BCP 47 language tag (e.g. en-US)", label, fe.Value())
	case "oneof":
		return CodeInvalidValue, fmt.Sprintf("%s must be one of %s, not %q", label, strings.ReplaceAll(fe.Param(), " ", ", "), fe.Value())
	case "max":
		return CodeInvalidValue, fmt.Sprintf("%s must have at most %s %s", label, fe.Param(), unit)
	case "min":
		return CodeInvalidValue, fmt.Sprintf("%s must have at least %s %s", label, fe.Param(), unit)
	case "gte":
		return CodeInvalidValue, fmt.Sprintf("%s must be at least %s", label, fe.Param())
	case "lte":
		return CodeInvalidValue, fmt.Sprintf("%s must be at most %s", label, fe.Param())
	}
	return CodeInvalidValue, fmt.Sprintf("%s fails the %s rule", label, fe.Tag())
}

// checkView runs the semantic checks of one file that need no other file.
// It returns the total RE2 program size of a guardrail's patterns (0 for
// other kinds), for the agent-wide budget.
func checkView(view any, is *issues) int {
	switch v := view.(type) {
	case *Skill:
		checkSkill(v, is)
	case *Guardrail:
		return checkGuardrail(v, is)
	case *Playbook:
		checkPlaybook(v, is)
	case *Test:
		checkTest(v, is)
	}
	return 0
}

// identRE is the syntax of playbook variables and URL parameters.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// headerNameRE is an RFC 9110 field name (token).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func checkSkill(s *Skill, is *issues) {
	if s.Parameters != nil {
		checkParameterSchema(s.Parameters, is)
	}
	if s.HTTP.URL != "" {
		if msg := checkURL(s.HTTP.URL, skillProperties(s)); msg != "" {
			is.add("/http/url", CodeInvalidURL, "%s", msg)
		}
	}
	for _, name := range sortedKeys(s.HTTP.Headers) {
		ptr := "/http/headers/" + escapePointer(name)
		if !headerNameRE.MatchString(name) {
			is.add(ptr, CodeInvalidHeader, "header name %q is not a valid HTTP field name", name)
		}
		if strings.ContainsAny(s.HTTP.Headers[name], "\r\n\x00") {
			is.add(ptr, CodeInvalidHeader, "header %q must not contain line breaks or NUL", name)
		}
	}
}

// skillProperties returns the declared parameter names of s.
func skillProperties(s *Skill) map[string]bool {
	props := map[string]bool{}
	if m, ok := s.Parameters["properties"].(map[string]any); ok {
		for k := range m {
			props[k] = true
		}
	}
	return props
}

// skillRequired returns the required parameter names of s, sorted.
func skillRequired(s *Skill) []string {
	seen := map[string]bool{}
	if list, ok := s.Parameters["required"].([]any); ok {
		for _, r := range list {
			if name, ok := r.(string); ok {
				seen[name] = true
			}
		}
	}
	return sortedKeys(seen)
}

// urlParamRE matches one {param} placeholder of a skill URL.
var urlParamRE = regexp.MustCompile(`\{([^{}]*)\}`)

// checkURL returns what is wrong with a skill URL, or "".
func checkURL(raw string, declared map[string]bool) string {
	var undeclared []string
	seen := map[string]bool{}
	for _, m := range urlParamRE.FindAllStringSubmatch(raw, -1) {
		name := m[1]
		if !identRE.MatchString(name) {
			return fmt.Sprintf("placeholder {%s} is not a valid parameter name", name)
		}
		if !declared[name] && !seen[name] {
			seen[name] = true
			undeclared = append(undeclared, name)
		}
	}
	filled := urlParamRE.ReplaceAllString(raw, "p")
	if strings.ContainsAny(filled, "{}") {
		return fmt.Sprintf("url %q has an unbalanced { or }", raw)
	}
	if strings.ContainsAny(filled, " \t\r\n") {
		return fmt.Sprintf("url %q must not contain whitespace", raw)
	}
	u, err := url.Parse(filled)
	if err != nil {
		return fmt.Sprintf("url %q does not parse", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("url %q must be absolute with scheme http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Sprintf("url %q has no host", raw)
	}
	if u.User != nil {
		return fmt.Sprintf("url %q must not carry credentials; use headers", raw)
	}
	if len(undeclared) > 0 {
		return fmt.Sprintf("url placeholder {%s} is not a declared parameter", strings.Join(undeclared, "}, {"))
	}
	return ""
}

// checkGuardrail checks a guardrail's shape and patterns and returns the
// total RE2 program size of its patterns.
func checkGuardrail(g *Guardrail, is *issues) int {
	switch {
	case g.Block == nil && g.Redact == nil:
		is.add("", CodeInvalidGuardrail, "a guardrail needs one of block or redact")
	case g.Block != nil && g.Redact != nil:
		is.add("", CodeInvalidGuardrail, "a guardrail has either block or redact, not both")
	}
	if b := g.Block; b != nil {
		if len(b.Phrases) == 0 && len(b.Patterns) == 0 {
			is.add("/block", CodeInvalidGuardrail, "block needs phrases or patterns")
		}
		for i, p := range b.Phrases {
			if strings.TrimSpace(p) == "" {
				is.add(fmt.Sprintf("/block/phrases/%d", i), CodeInvalidValue, "phrases[%d] is empty", i)
			}
		}
	}
	nb, nr := 0, 0
	if g.Block != nil {
		nb = len(g.Block.Patterns)
	}
	if g.Redact != nil {
		nr = len(g.Redact.Patterns)
	}
	if nb+nr > MaxPatterns {
		at := "/block/patterns"
		if nb == 0 {
			at = "/redact/patterns"
		}
		is.add(at, CodeLimitExceeded, "a guardrail has %d patterns; at most %d are allowed", nb+nr, MaxPatterns)
		return 0
	}
	insts := 0
	if b := g.Block; b != nil {
		insts += checkPatterns(b.Patterns, "/block/patterns", is)
	}
	if r := g.Redact; r != nil {
		insts += checkPatterns(r.Patterns, "/redact/patterns", is)
	}
	return insts
}

// checkPatterns checks that every pattern is RE2 within the cost limits
// and cannot match the empty string, and returns the total size of their
// programs.
func checkPatterns(patterns []string, ptr string, is *issues) int {
	total := 0
	for i, p := range patterns {
		iptr := fmt.Sprintf("%s/%d", ptr, i)
		label := fmt.Sprintf("patterns[%d]", i)
		n := checkPatternCost(p, iptr, label, is)
		if n == 0 {
			continue
		}
		total += n
		re, err := regexp.Compile(p)
		if err != nil {
			is.add(iptr, CodeInvalidRegex, "%s is not a valid RE2 expression: %s", label, regexError(err))
			continue
		}
		if re.MatchString("") {
			is.add(iptr, CodeInvalidRegex, "%s %q matches the empty string, so it would match every message", label, p)
		}
	}
	return total
}

// templateRE matches one {{var}} of a playbook text.
var templateRE = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// templateVars returns the variables a text uses, or an error message for
// a malformed template.
func templateVars(text string) ([]string, string) {
	var vars []string
	for _, m := range templateRE.FindAllStringSubmatch(text, -1) {
		name := strings.TrimSpace(m[1])
		if !identRE.MatchString(name) {
			return nil, fmt.Sprintf("{{%s}} is not a valid variable name", m[1])
		}
		vars = append(vars, name)
	}
	rest := templateRE.ReplaceAllString(text, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return nil, fmt.Sprintf("%q has an unbalanced {{ or }}", text)
	}
	return vars, ""
}

// checkTemplate reports malformed templates and variables not yet saved.
func checkTemplate(text, ptr string, saved map[string]bool, is *issues) {
	vars, bad := templateVars(text)
	if bad != "" {
		is.add(ptr, CodeInvalidTemplate, "%s", bad)
		return
	}
	for _, v := range vars {
		if !saved[v] {
			is.add(ptr, CodeUndefinedVariable, "{{%s}} is used before any earlier ask saves it", v)
		}
	}
}

func checkPlaybook(p *Playbook, is *issues) {
	for i, t := range p.Triggers {
		if t != "" && strings.TrimSpace(t) == "" {
			is.add(fmt.Sprintf("/triggers/%d", i), CodeInvalidValue, "triggers[%d] is blank", i)
		}
	}
	saved := map[string]bool{}
	for i, st := range p.Steps {
		sp := fmt.Sprintf("/steps/%d", i)
		var actions []string
		for _, a := range []struct{ name, val string }{{"say", st.Say}, {"ask", st.Ask}, {"skill", st.Skill}, {"handoff", st.Handoff}} {
			if a.val != "" {
				actions = append(actions, a.name)
			}
		}
		switch len(actions) {
		case 0:
			is.add(sp, CodeInvalidStep, "steps[%d] needs one of say, ask, skill or handoff", i)
		case 1:
		default:
			is.add(sp, CodeInvalidStep, "steps[%d] has %s; a step does exactly one of say, ask, skill or handoff", i, strings.Join(actions, " and "))
		}
		if st.Save != "" && st.Ask == "" {
			is.add(sp+"/save", CodeInvalidStep, "save is only allowed with ask")
		}
		if st.Ask != "" && st.Save == "" {
			is.add(sp+"/save", CodeMissingField, "ask needs save: the variable that keeps the answer")
		}
		if st.Save != "" && !identRE.MatchString(st.Save) {
			is.add(sp+"/save", CodeInvalidValue, "save %q must be a variable name (letters, digits, _)", st.Save)
		}
		if st.With != nil && st.Skill == "" {
			is.add(sp+"/with", CodeInvalidStep, "with is only allowed with skill")
		}
		if st.Skill != "" && !ValidSlug(st.Skill) {
			is.add(sp+"/skill", CodeInvalidValue, "skill %q is not a valid skill name (%s)", st.Skill, slugPattern)
		}
		checkTemplate(st.Say, sp+"/say", saved, is)
		checkTemplate(st.Ask, sp+"/ask", saved, is)
		checkTemplate(st.Handoff, sp+"/handoff", saved, is)
		for _, k := range sortedKeys(st.With) {
			checkTemplate(st.With[k], sp+"/with/"+escapePointer(k), saved, is)
		}
		if st.Ask != "" && st.Save != "" && identRE.MatchString(st.Save) {
			saved[st.Save] = true
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
