package testrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/server/responder"
)

// FormatVersion is the layout version written into compiled/tests.json.
const FormatVersion = 1

// Statuses of a run and of a case.
const (
	StatusPassed = "passed"
	StatusFailed = "failed"
)

// Result is one run of a suite: every case in test slug order and the
// totals. It holds no time and no id.
type Result struct {
	Status string `json:"status"`
	Total  int    `json:"total"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
	Cases  []Case `json:"cases"`
}

// Case is the run of one test.
type Case struct {
	Test   string `json:"test"`
	Status string `json:"status"`
	Turns  []Turn `json:"turns"`
}

// Turn is one user message of a test, the agent's reply and trace, and
// the expectations that did not hold (empty when all held).
type Turn struct {
	User     string          `json:"user"`
	Reply    string          `json:"reply"`
	Trace    responder.Trace `json:"trace"`
	Failures []Failure       `json:"failures"`
}

// Failure is one expectation that did not hold: the expect key, what it
// wanted and what the turn gave.
type Failure struct {
	Expect string `json:"expect"`
	Want   any    `json:"want"`
	Got    any    `json:"got"`
}

// CaseFailure is a Failure located in its test and turn (the turn's index
// in the test's turns, from 0): the members of the tests_failed problem.
type CaseFailure struct {
	Test string `json:"test"`
	Turn int    `json:"turn"`
	Failure
}

// Summary is the totals of a run.
type Summary struct {
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// Summary returns r's totals.
func (r *Result) Summary() Summary {
	return Summary{Total: r.Total, Passed: r.Passed, Failed: r.Failed}
}

// Failures lists every failure of r in test, turn and expectation order.
func (r *Result) Failures() []CaseFailure {
	out := []CaseFailure{}
	for _, c := range r.Cases {
		for i, t := range c.Turns {
			for _, f := range t.Failures {
				out = append(out, CaseFailure{Test: c.Test, Turn: i, Failure: f})
			}
		}
	}
	return out
}

// UnknownTestsError is returned by Select for slugs naming no test.
type UnknownTestsError struct {
	Slugs []string
}

// Error implements error.
func (e *UnknownTestsError) Error() string {
	return fmt.Sprintf("no such test: %s", strings.Join(e.Slugs, ", "))
}

// Select returns the tests named by slugs, in slug order; no slugs
// selects every test. A slug naming no test is an *UnknownTestsError.
func Select(tests []compile.Test, slugs []string) ([]compile.Test, error) {
	if len(slugs) == 0 {
		return tests, nil
	}
	want := make(map[string]bool, len(slugs))
	for _, s := range slugs {
		want[s] = true
	}
	out := make([]compile.Test, 0, len(slugs))
	for _, t := range tests {
		if want[t.Slug] {
			out = append(out, t)
			delete(want, t.Slug)
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for s := range want {
			missing = append(missing, s)
		}
		slices.Sort(missing)
		return nil, &UnknownTestsError{Slugs: missing}
	}
	return out, nil
}

// Run runs every test against e, each from a fresh conversation state,
// and checks each turn's expectations. Cases are in slug order whatever
// the order of tests. Tests are independent, so they run on up to
// GOMAXPROCS goroutines; the result does not depend on how many.
func Run(e *responder.Engine, tests []compile.Test) Result {
	sorted := slices.Clone(tests)
	slices.SortStableFunc(sorted, func(a, b compile.Test) int { return strings.Compare(a.Slug, b.Slug) })
	cases := make([]Case, len(sorted))
	workers := min(runtime.GOMAXPROCS(0), (len(sorted)+minPerWorker-1)/minPerWorker)
	if workers <= 1 {
		res := map[string]*regexp.Regexp{}
		for i := range sorted {
			cases[i] = runTest(e, &sorted[i], res)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := map[string]*regexp.Regexp{}
				for {
					i := int(next.Add(1)) - 1
					if i >= len(sorted) {
						return
					}
					cases[i] = runTest(e, &sorted[i], res)
				}
			}()
		}
		wg.Wait()
	}
	r := Result{Status: StatusPassed, Total: len(cases), Cases: cases}
	for _, c := range cases {
		if c.Status == StatusPassed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	if r.Failed > 0 {
		r.Status = StatusFailed
	}
	return r
}

// minPerWorker is the fewest tests worth a goroutine of their own.
const minPerWorker = 4

// runTest runs one test from a fresh state. res caches compiled patterns
// (one map per goroutine).
func runTest(e *responder.Engine, t *compile.Test, res map[string]*regexp.Regexp) Case {
	c := Case{Test: t.Slug, Status: StatusPassed, Turns: make([]Turn, 0, len(t.Turns))}
	var st responder.State
	for _, tt := range t.Turns {
		out := e.Respond(st, tt.User)
		st = out.State
		turn := Turn{User: tt.User, Reply: out.Reply, Trace: out.Trace, Failures: check(tt.Expect, out, res)}
		if len(turn.Failures) > 0 {
			c.Status = StatusFailed
		}
		c.Turns = append(c.Turns, turn)
	}
	return c
}

// check returns the expectations of x that out does not meet, in the
// order of the expect keys in CONTRACT §11. res caches compiled patterns.
func check(x *compile.Expect, out responder.Turn, res map[string]*regexp.Regexp) []Failure {
	fs := []Failure{}
	if x == nil {
		return fs
	}
	reply := strings.ToLower(out.Reply)
	for _, s := range x.ReplyContains {
		if !strings.Contains(reply, strings.ToLower(s)) {
			fs = append(fs, Failure{Expect: "replyContains", Want: s, Got: out.Reply})
		}
	}
	for _, s := range x.ReplyNotContains {
		if strings.Contains(reply, strings.ToLower(s)) {
			fs = append(fs, Failure{Expect: "replyNotContains", Want: s, Got: out.Reply})
		}
	}
	if x.ReplyMatches != "" {
		re, ok := res[x.ReplyMatches]
		if !ok {
			re, _ = compile.ReplyMatchesRE(x.ReplyMatches) // compile checked it; nil never matches
			res[x.ReplyMatches] = re
		}
		if re == nil || !re.MatchString(out.Reply) {
			fs = append(fs, Failure{Expect: "replyMatches", Want: x.ReplyMatches, Got: out.Reply})
		}
	}
	if x.Guardrail != "" && out.Trace.Guardrail != x.Guardrail {
		fs = append(fs, Failure{Expect: "guardrail", Want: x.Guardrail, Got: nullable(out.Trace.Guardrail)})
	}
	if x.Playbook != "" && out.Trace.Playbook != x.Playbook {
		fs = append(fs, Failure{Expect: "playbook", Want: x.Playbook, Got: nullable(out.Trace.Playbook)})
	}
	if len(x.Knowledge) > 0 {
		cited := []string{}
		if out.Trace.Knowledge != "" {
			cited = append(cited, out.Trace.Knowledge)
		}
		for _, k := range x.Knowledge {
			if !slices.Contains(cited, k) {
				fs = append(fs, Failure{Expect: "knowledge", Want: x.Knowledge, Got: cited})
				break
			}
		}
	}
	if len(x.SkillCalls) > 0 && !skillCallsMatch(x.SkillCalls, out.Trace.SkillCalls) {
		got := make([]compile.ExpectSkillCall, 0, len(out.Trace.SkillCalls))
		for _, c := range out.Trace.SkillCalls {
			got = append(got, compile.ExpectSkillCall{Skill: c.Skill, With: c.Args})
		}
		fs = append(fs, Failure{Expect: "skillCalls", Want: x.SkillCalls, Got: got})
	}
	if x.Fallback != nil && out.Trace.Fallback != *x.Fallback {
		fs = append(fs, Failure{Expect: "fallback", Want: *x.Fallback, Got: out.Trace.Fallback})
	}
	return fs
}

// skillCallsMatch reports whether want occurs in got in order (other
// calls may come between), each expected call matching a call of the same
// skill whose arguments include every expected one (compared as text).
func skillCallsMatch(want []compile.ExpectSkillCall, got []responder.SkillCall) bool {
	i := 0
	for _, w := range want {
		for ; i < len(got); i++ {
			if got[i].Skill == w.Skill && argsInclude(got[i].Args, w.With) {
				break
			}
		}
		if i == len(got) {
			return false
		}
		i++
	}
	return true
}

func argsInclude(args, with map[string]string) bool {
	for k, v := range with {
		if a, ok := args[k]; !ok || a != v {
			return false
		}
	}
	return true
}

// nullable is s, or nil (JSON null) when s is empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// file is the layout of compiled/tests.json.
type file struct {
	Format int `json:"format"`
	Result
}

// Encode renders r as compiled/tests.json: indented JSON with a final
// newline, keys of maps sorted, cases in slug order; the same Result
// always gives the same bytes.
func Encode(r Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(file{Format: FormatVersion, Result: r}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode parses compiled/tests.json.
func Decode(data []byte) (Result, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return Result{}, fmt.Errorf("decode tests.json: %w", err)
	}
	return f.Result, nil
}
