package compile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manyKeysYAML is an agent.yaml with name on line 1 and n more keys, key
// k<i> on line i+2.
func manyKeysYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("name: Many keys\n")
	for i := range n {
		fmt.Fprintf(&b, "k%d: v\n", i)
	}
	return []byte(b.String())
}

// manyKeysJSON is a settings body with name and n more keys.
func manyKeysJSON(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"name":"Many keys"`)
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":1`, i)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// findDiag returns the first diagnostic of file with code, failing the
// test when there is none.
func findDiag(tb testing.TB, ds Diagnostics, file, code string) Diagnostic {
	tb.Helper()
	for _, d := range ds {
		if d.File == file && d.Code == code {
			return d
		}
	}
	require.Failf(tb, "diagnostic not found", "no %s in %s among %v", code, file, ds)
	return Diagnostic{}
}

func TestLimitMappingKeysYAML(t *testing.T) {
	r := Compile(withFiles(map[string]string{"agent.yaml": string(manyKeysYAML(35000))}))
	require.False(t, r.OK())
	d := findDiag(t, r.Errors, "agent.yaml", CodeLimitExceeded)
	// name and k0..k998 are the first MaxMappingKeys keys; k999 is on line 1001.
	assert.Equal(t, MaxMappingKeys+1, d.Line)
	assert.Contains(t, d.Message, fmt.Sprint(MaxMappingKeys))
	assert.LessOrEqual(t, len(r.Errors), maxIssues+1, "one file's problems stay capped")
}

func TestLimitMappingKeysJSON(t *testing.T) {
	view, errs := DecodeView(KindSettings, "", manyKeysJSON(150000))
	assert.Nil(t, view)
	require.Len(t, errs, 1)
	assert.Equal(t, FieldError{Pointer: "/k999", Code: CodeLimitExceeded, Message: "more than 1000 keys in one object; the rest is not read"}, errs[0])
}

func TestLimitDepth(t *testing.T) {
	deepYAML := "name: Deep\nvoice: " + strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5) + "\n"
	r := Compile(withFiles(map[string]string{"agent.yaml": deepYAML}))
	d := findDiag(t, r.Errors, "agent.yaml", CodeLimitExceeded)
	assert.Equal(t, 2, d.Line)
	assert.Contains(t, d.Message, "levels deep")

	deepJSON := `{"name":"Deep","voice":` + strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5) + "}"
	_, errs := DecodeView(KindSettings, "", []byte(deepJSON))
	require.NotEmpty(t, errs)
	assert.Equal(t, CodeLimitExceeded, errs[0].Code)
	assert.True(t, strings.HasPrefix(errs[0].Pointer, "/voice/0/0/"), "pointer %q locates the over-nested value", errs[0].Pointer)
}

func TestLimitNodes(t *testing.T) {
	var b strings.Builder
	b.WriteString("triggers:\n")
	for i := range MaxNodes + 10 {
		fmt.Fprintf(&b, "  - t%d\n", i)
	}
	b.WriteString("steps:\n  - say: hi\n")
	r := Compile(withFiles(map[string]string{"playbooks/big.yaml": b.String()}))
	d := findDiag(t, r.Errors, "playbooks/big.yaml", CodeLimitExceeded)
	// The root mapping, the triggers list and MaxNodes-2 items fit: item
	// MaxNodes-2 (0-based) is on line MaxNodes.
	assert.Equal(t, MaxNodes, d.Line)

	var j strings.Builder
	j.WriteString(`{"triggers":[`)
	for i := range MaxNodes + 10 {
		if i > 0 {
			j.WriteString(",")
		}
		fmt.Fprintf(&j, `"t%d"`, i)
	}
	j.WriteString(`],"steps":[{"say":"hi"}]}`)
	_, errs := DecodeView(KindPlaybooks, "big", []byte(j.String()))
	require.Len(t, errs, 1)
	assert.Equal(t, CodeLimitExceeded, errs[0].Code)
	assert.Equal(t, fmt.Sprintf("/triggers/%d", MaxNodes-2), errs[0].Pointer)
}

func TestLimitSchemaNodes(t *testing.T) {
	var b strings.Builder
	b.WriteString("description: Big\nparameters:\n  type: object\n  properties:\n")
	for i := range MaxSchemaNodes / 2 {
		fmt.Fprintf(&b, "    p%d: {type: string}\n", i)
	}
	b.WriteString("http: {method: GET, url: 'https://x.example/', timeoutMs: 1}\n")
	r := Compile(withFiles(map[string]string{"skills/big.yaml": b.String()}))
	d := findDiag(t, r.Errors, "skills/big.yaml", CodeLimitExceeded)
	assert.Equal(t, 2, d.Line)
	assert.Contains(t, d.Message, fmt.Sprint(MaxSchemaNodes))
}

// guardrailYAML is a redact guardrail with the given patterns.
func guardrailYAML(patterns ...string) string {
	var b strings.Builder
	b.WriteString("applies: input\nredact:\n  patterns:\n")
	for _, p := range patterns {
		fmt.Fprintf(&b, "    - '%s'\n", p)
	}
	return b.String()
}

func TestLimitPatterns(t *testing.T) {
	many := make([]string, MaxPatterns+1)
	for i := range many {
		many[i] = fmt.Sprintf("secret%d", i)
	}
	huge := strings.Repeat("(?:abc){1000}", 1) // 3,000+ instructions
	long := strings.Repeat("a", MaxPatternLength+1)
	tests := []struct {
		name     string
		patterns []string
		line     int
		msg      string
	}{
		{"too many", many, 3, "51 patterns"},
		{"too long", []string{"ok", long}, 5, "bytes long"},
		{"program too large", []string{huge}, 4, "RE2 instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compile(withFiles(map[string]string{"guardrails/g.yaml": guardrailYAML(tt.patterns...)}))
			d := findDiag(t, r.Errors, "guardrails/g.yaml", CodeLimitExceeded)
			assert.Equal(t, tt.line, d.Line)
			assert.Contains(t, d.Message, tt.msg)

			body := `{"applies":"input","redact":{"patterns":["` + strings.Join(tt.patterns, `","`) + `"]}}`
			_, errs := DecodeView(KindGuardrails, "g", []byte(body))
			require.NotEmpty(t, errs)
			assert.Equal(t, CodeLimitExceeded, errs[0].Code)
		})
	}
}

func TestLimitAgentPatternProgram(t *testing.T) {
	// Each guardrail stays under MaxPatternProgram; together they do not.
	p := "(?:abcdefgh){200}" // about 1,600 instructions
	n, err := patternProgramSize(p)
	require.NoError(t, err)
	require.Less(t, n, MaxPatternProgram)
	files := map[string]string{}
	count := MaxAgentPatternProgram/n + 1
	for i := range count {
		files[fmt.Sprintf("guardrails/g%02d.yaml", i)] = guardrailYAML(p)
	}
	r := Compile(withFiles(files))
	require.False(t, r.OK())
	d := findDiag(t, r.Errors, fmt.Sprintf("guardrails/g%02d.yaml", count-1), CodeLimitExceeded)
	assert.Equal(t, 1, d.Line)
	assert.Contains(t, d.Message, fmt.Sprint(MaxAgentPatternProgram))

	delete(files, fmt.Sprintf("guardrails/g%02d.yaml", count-1))
	assert.True(t, Compile(withFiles(files)).OK(), "one guardrail fewer fits the budget")
}

// TestParseCostLinear checks that parsing a file ten times larger costs
// about ten times as much, not a hundred (duplicate detection used to be
// quadratic). The bound is generous and each size takes its fastest of
// three runs, so a loaded machine does not make it flaky.
func TestParseCostLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	fastest := func(data []byte, parse func([]byte)) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			parse(data)
			best = min(best, time.Since(start))
		}
		return best
	}
	yamlParse := func(b []byte) { ReadView(KindSettings, "", b) }
	jsonParse := func(b []byte) { DecodeView(KindSettings, "", b) }
	for _, tc := range []struct {
		name  string
		parse func([]byte)
		data  func(int) []byte
	}{
		{"yaml", yamlParse, manyKeysYAML},
		{"json", jsonParse, manyKeysJSON},
	} {
		small := fastest(tc.data(3500), tc.parse)
		big := fastest(tc.data(35000), tc.parse)
		assert.Less(t, big, 40*small+20*time.Millisecond, "%s: 35,000 keys took %v, 3,500 keys %v", tc.name, big, small)
	}
}

func BenchmarkParseManyKeys(b *testing.B) {
	for _, n := range []int{1000, 10000, 35000} {
		data := manyKeysYAML(n)
		b.Run(fmt.Sprintf("yaml-%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				ReadView(KindSettings, "", data)
			}
		})
		body := manyKeysJSON(n * 4)
		b.Run(fmt.Sprintf("json-%d", n*4), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				DecodeView(KindSettings, "", body)
			}
		})
	}
}
