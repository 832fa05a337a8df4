package compile

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// Limits on what one draft may hold, so that compiling a hostile draft (and
// serving the agent it compiles to) costs time linear in its size with a
// small constant. Every limit is checked while parsing; going over one is
// the error limit_exceeded with the file and the line where it happened,
// never a panic or an unbounded computation. The same limits apply to the
// typed-view bodies of DecodeView.
const (
	// MaxDepth is how deeply values may nest in one file or body.
	MaxDepth = 64
	// MaxNodes is how many values (scalars, mappings, lists, counting
	// every item and every mapping value) one file or body may hold.
	MaxNodes = 20000
	// MaxMappingKeys is how many keys one mapping (or JSON object) may hold.
	MaxMappingKeys = 1000
	// MaxPatterns is how many patterns one guardrail may hold (block and
	// redact together).
	MaxPatterns = 50
	// MaxPatternLength is the longest guardrail pattern, in bytes.
	MaxPatternLength = 1000
	// MaxPatternProgram is the largest RE2 program of one guardrail
	// pattern, in instructions of its compiled form (regexp/syntax.Prog).
	// A matcher's cost per byte of text grows with it.
	MaxPatternProgram = 2000
	// MaxAgentPatternProgram is the largest total of the RE2 programs of
	// every guardrail pattern of an agent: each message runs all of them.
	MaxAgentPatternProgram = 20000
	// MaxSchemaNodes is how many values a skill's parameters schema may
	// hold: compiling a JSON Schema costs far more per value than parsing.
	MaxSchemaNodes = 1000
	// MaxTestTurns is how many turns one test may hold.
	MaxTestTurns = 100
)

// CodeLimitExceeded is reported when a file goes over one of the limits
// above (see limits.go).
const CodeLimitExceeded = "limit_exceeded"

// patternProgramSize parses p as RE2 (Perl syntax, as regexp.Compile does)
// and returns the number of instructions of its program, or the parse or
// compile error.
func patternProgramSize(p string) (int, error) {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return 0, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// regexError is the text of a regexp/syntax error without its prefix.
func regexError(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// checkPatternCost reports a pattern that is too long or compiles to too
// large a program, and returns its program size (0 when it is rejected).
func checkPatternCost(p, ptr, label string, is *issues) int {
	if len(p) > MaxPatternLength {
		is.add(ptr, CodeLimitExceeded, "%s is %d bytes long; at most %d are allowed", label, len(p), MaxPatternLength)
		return 0
	}
	n, err := patternProgramSize(p)
	if err != nil {
		is.add(ptr, CodeInvalidRegex, "%s is not a valid RE2 expression: %s", label, regexError(err))
		return 0
	}
	if n > MaxPatternProgram {
		is.add(ptr, CodeLimitExceeded, "%s compiles to %d RE2 instructions; at most %d are allowed (simplify it or split the repetition)", label, n, MaxPatternProgram)
		return 0
	}
	return n
}

// countValues counts the values of a plain JSON value (itself included),
// stopping once it passes limit.
func countValues(v any, limit int) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, c := range v {
			if n > limit {
				break
			}
			n += countValues(c, limit-n)
		}
	case []any:
		for _, c := range v {
			if n > limit {
				break
			}
			n += countValues(c, limit-n)
		}
	}
	return n
}

// limitMessage describes a structural limit crossed at a value.
func limitMessage(what string, limit int) string {
	return fmt.Sprintf("more than %d %s; the rest is not read", limit, what)
}
