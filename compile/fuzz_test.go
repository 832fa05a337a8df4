package compile_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/stretchr/testify/require"
)

// seedFiles returns every fixture file of the given kind.
func seedFiles(f *testing.F, kind compile.Kind) [][]byte {
	f.Helper()
	var out [][]byte
	for _, name := range fixtures.Names() {
		files, err := fixtures.Files(name)
		require.NoError(f, err)
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if k, _, err := compile.ParsePath(p); err == nil && k == kind {
				out = append(out, files[p])
			}
		}
	}
	return out
}

// FuzzCompile compiles a tree made of one fuzzed file put at a fuzzed path
// over the rich fixture.
func FuzzCompile(f *testing.F) {
	base, err := fixtures.Files("acme-support")
	require.NoError(f, err)
	// One cached compiler across all inputs: its results must be Compile's.
	cached := compile.NewCompiler(compile.NewCache(32 << 20))
	for _, name := range fixtures.Names() {
		files, _ := fixtures.Files(name)
		for p, c := range files {
			f.Add(p, c)
		}
	}
	// Near the limits: nesting, repeated keys, costly patterns.
	f.Add("agent.yaml", []byte("name: x\nvoice: "+strings.Repeat("[", 70)+strings.Repeat("]", 70)+"\n"))
	f.Add("agent.yaml", []byte("name: x\nname: y\na: 1\na: 2\n"))
	f.Add("guardrails/g.yaml", []byte("applies: both\nredact:\n  patterns: ['(?:abc){1000}', 'x{1000}{1000}', '\\pL{999}']\n"))
	f.Add("skills/s.yaml", []byte("parameters: {type: object, required: [a, a, a]}\nhttp: {method: GET, url: 'https://x/{a}{a}{b}', timeoutMs: 1}\n"))
	f.Fuzz(func(t *testing.T, path string, content []byte) {
		files := make(map[string][]byte, len(base)+1)
		for p, c := range base {
			files[p] = c
		}
		files[path] = content
		r := compile.Compile(files)
		require.Equal(t, len(r.Errors) == 0, r.OK(), "errors %v", r.Errors)
		require.NotNil(t, r.Errors)
		require.NotNil(t, r.Warnings)
		if r.OK() {
			var a compile.Artifact
			require.NoError(t, json.Unmarshal(r.JSON, &a), "artifact JSON decodes")
			require.Equal(t, r.Digest, compile.Compile(files).Digest, "deterministic")
		}
		c := cached.Compile(files)
		require.Equal(t, r.Digest, c.Digest, "cached compile")
		require.Equal(t, r.Errors, c.Errors, "cached compile")
		require.Equal(t, r.Warnings, c.Warnings, "cached compile")
		for _, d := range r.Errors {
			require.NotEmpty(t, d.Code, "%+v", d)
			require.NotEmpty(t, d.Message, "%+v", d)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"agent.yaml", "knowledge/a.md", "skills/x.yaml", "../x", ".git/config", "a\x00b", `a\b`, "guardrails/", "playbooks/p-1.yaml"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		kind, slug, err := compile.ParsePath(p)
		if err != nil {
			return
		}
		require.Equal(t, p, compile.PathFor(kind, slug))
		require.NotContains(t, p, "..")
		require.False(t, strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\\"), "ParsePath accepted %q", p)
	})
}

// fuzzDecodeView checks that DecodeView never panics and that every view it
// accepts survives EncodeFile and ReadView unchanged.
func fuzzDecodeView(f *testing.F, kind compile.Kind) {
	for _, data := range seedFiles(f, kind) {
		if view, diags := compile.ReadView(kind, "seed", data); view != nil && len(diags) == 0 {
			if b, err := json.Marshal(view); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"name":"x","slug":"seed"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		view, errs := compile.DecodeView(kind, "seed", body)
		require.NotEqual(t, view == nil, len(errs) == 0, "view %v with errors %v", view, errs)
		if view == nil {
			return
		}
		file, err := compile.EncodeFile(kind, view)
		require.NoError(t, err)
		back, diags := compile.ReadView(kind, "seed", file)
		require.Empty(t, diags, "ReadView of encoded file\n%s", file)
		require.Equal(t, view, back, "round trip of\n%s", file)
	})
}

// fuzzReadView checks that ReadView never panics and that a clean view
// survives EncodeFile and ReadView unchanged.
func fuzzReadView(f *testing.F, kind compile.Kind) {
	for _, data := range seedFiles(f, kind) {
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		view, diags := compile.ReadView(kind, "seed", data)
		if view == nil || len(diags) != 0 {
			return
		}
		file, err := compile.EncodeFile(kind, view)
		require.NoError(t, err)
		back, diags := compile.ReadView(kind, "seed", file)
		require.Empty(t, diags, "ReadView of encoded file\n%s", file)
		require.Equal(t, view, back, "round trip of\n%s", file)
	})
}

func FuzzDecodeViewSettings(f *testing.F) {
	f.Add([]byte(`{"name":" lead\n  indented\ttab \n\n","persona":"a\r\nb","greeting":"# not a comment","fallback":"- x: y"}`))
	fuzzDecodeView(f, compile.KindSettings)
}

func FuzzDecodeViewKnowledge(f *testing.F) {
	f.Add([]byte(`{"title":"---","tags":["~","- a"],"content":"---\r\nx\n---\n"}`))
	fuzzDecodeView(f, compile.KindKnowledge)
}
func FuzzDecodeViewSkills(f *testing.F)     { fuzzDecodeView(f, compile.KindSkills) }
func FuzzDecodeViewGuardrails(f *testing.F) { fuzzDecodeView(f, compile.KindGuardrails) }
func FuzzDecodeViewPlaybooks(f *testing.F)  { fuzzDecodeView(f, compile.KindPlaybooks) }
func FuzzDecodeViewTests(f *testing.F)      { fuzzDecodeView(f, compile.KindTests) }

func FuzzReadViewSettings(f *testing.F)   { fuzzReadView(f, compile.KindSettings) }
func FuzzReadViewKnowledge(f *testing.F)  { fuzzReadView(f, compile.KindKnowledge) }
func FuzzReadViewSkills(f *testing.F)     { fuzzReadView(f, compile.KindSkills) }
func FuzzReadViewGuardrails(f *testing.F) { fuzzReadView(f, compile.KindGuardrails) }
func FuzzReadViewPlaybooks(f *testing.F)  { fuzzReadView(f, compile.KindPlaybooks) }
func FuzzReadViewTests(f *testing.F)      { fuzzReadView(f, compile.KindTests) }
