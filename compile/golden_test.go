package compile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

func mustFixture(tb testing.TB, name string) map[string][]byte {
	tb.Helper()
	files, err := fixtures.Files(name)
	require.NoError(tb, err, "fixture %s", name)
	return files
}

// goldenBytes is what a fixture's golden file holds: the artifact for a
// draft that compiles, else its diagnostics.
func goldenBytes(tb testing.TB, r compile.Result) []byte {
	tb.Helper()
	if r.OK() {
		return r.JSON
	}
	b, err := json.MarshalIndent(struct {
		Errors   compile.Diagnostics `json:"errors"`
		Warnings compile.Diagnostics `json:"warnings"`
	}{r.Errors, r.Warnings}, "", "  ")
	require.NoError(tb, err)
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	names := fixtures.Names()
	require.Contains(t, names, "acme-support")
	require.Contains(t, names, "broken")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := compile.Compile(mustFixture(t, name))
			got := goldenBytes(t, r)
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./compile -update")
			assert.Equal(t, string(want), string(got), "compile %s differs from %s (run go test ./compile -update to accept)", name, path)
		})
	}
}

func TestAcmeSupportIsClean(t *testing.T) {
	r := compile.Compile(mustFixture(t, "acme-support"))
	require.True(t, r.OK(), "errors %v", r.Errors)
	require.Empty(t, r.Warnings)
	assert.GreaterOrEqual(t, len(r.Tests), 6, "tests")
	a := r.Artifact
	assert.GreaterOrEqual(t, len(a.Knowledge), 5, "articles")
	assert.GreaterOrEqual(t, len(a.Skills), 3, "skills")
	assert.GreaterOrEqual(t, len(a.Guardrails), 2, "guardrails")
	assert.GreaterOrEqual(t, len(a.Playbooks), 3, "playbooks")
	assert.Equal(t, compile.FormatVersion, a.Format)
	assert.True(t, slices.IsSortedFunc(a.Knowledge, func(x, y compile.Article) int { return strings.Compare(x.Slug, y.Slug) }), "knowledge sorted by slug")
	// The artifact names each article's source by blob id; loaded with
	// the sources, it is the compile's artifact again.
	assert.NotContains(t, string(r.JSON), `"content"`)
	files := mustFixture(t, "acme-support")
	byBlob := map[string][]byte{}
	for p, data := range files {
		byBlob[compile.BlobID(data)] = data
		if strings.HasPrefix(p, "knowledge/") {
			assert.Contains(t, string(r.JSON), `"blob": "`+compile.BlobID(data)+`"`, p)
		}
	}
	back, err := compile.LoadArtifact(r.JSON, func(ids []string) (map[string][]byte, error) {
		out := map[string][]byte{}
		for _, id := range ids {
			out[id] = byBlob[id]
		}
		return out, nil
	})
	require.NoError(t, err)
	// (Numbers in skill parameters decode as float64, as encoding/json
	// decodes them; they encode back the same.)
	assert.Equal(t, a.Knowledge, back.Knowledge, "compiled/agent.json loads to the artifact")
	want, err := json.Marshal(a)
	require.NoError(t, err)
	got, err := json.Marshal(back)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
}

func TestBrokenFixtureCoversErrorKinds(t *testing.T) {
	r := compile.Compile(mustFixture(t, "broken"))
	require.False(t, r.OK(), "broken fixture compiled")
	codes := map[string]bool{}
	for _, d := range r.Errors {
		codes[d.Code] = true
		assert.NotEmpty(t, d.File, "error %v has no file", d)
	}
	for _, c := range []string{compile.CodeYAMLSyntax, compile.CodeUnknownField, compile.CodeInvalidRegex, compile.CodeUnknownSkill,
		compile.CodeMissingParameter, compile.CodeUndefinedVariable, compile.CodeInvalidURL, compile.CodeInvalidType, compile.CodeInvalidPath} {
		assert.True(t, codes[c], "broken fixture has no %s error; codes %v", c, slices.Sorted(maps.Keys(codes)))
	}
}

func TestCompileDeterministic(t *testing.T) {
	files := mustFixture(t, "acme-support")
	first := compile.Compile(files)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		// Rebuild the map in a shuffled insertion order each time.
		keys := slices.Collect(maps.Keys(files))
		rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
		shuffled := make(map[string][]byte, len(keys))
		for _, k := range keys {
			shuffled[k] = slices.Clone(files[k])
		}
		r := compile.Compile(shuffled)
		require.Equal(t, first.Digest, r.Digest, "run %d", i)
		require.Equal(t, first.JSON, r.JSON, "run %d", i)
	}
	broken := mustFixture(t, "broken")
	b1, b2 := compile.Compile(broken), compile.Compile(maps.Clone(broken))
	assert.Equal(t, b1.Errors, b2.Errors)
	assert.Equal(t, b1.Warnings, b2.Warnings)
}

func TestArtifactJSONCanonical(t *testing.T) {
	r := compile.Compile(mustFixture(t, "acme-support"))
	assert.True(t, bytes.HasSuffix(r.JSON, []byte("}\n")), "artifact ends with a newline")
	assert.NotContains(t, string(r.JSON), `\u003c`, "no HTML escaping")
	assert.NotContains(t, string(r.JSON), `\u0026`, "no HTML escaping")
	// Re-encoding through a map must not change the bytes: keys are sorted.
	var generic any
	dec := json.NewDecoder(bytes.NewReader(r.JSON))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&generic))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(generic))
	assert.Equal(t, buf.String(), string(r.JSON), "artifact keys are in canonical order")
}

// TestFixtureFilesRoundTrip reads every valid fixture file into its view,
// encodes it canonically and reads it back.
func TestFixtureFilesRoundTrip(t *testing.T) {
	for p, data := range mustFixture(t, "acme-support") {
		kind, slug, err := compile.ParsePath(p)
		require.NoError(t, err)
		view, diags := compile.ReadView(kind, slug, data)
		require.Empty(t, diags, p)
		enc, err := compile.EncodeFile(kind, view)
		require.NoError(t, err, p)
		back, diags := compile.ReadView(kind, slug, enc)
		assert.Empty(t, diags, p)
		assert.Equal(t, view, back, "%s: round trip changed the view:\n%s", p, enc)
	}
}

func BenchmarkCompileRich(b *testing.B) {
	files := mustFixture(b, "acme-support")
	b.ReportAllocs()
	for b.Loop() {
		r := compile.Compile(files)
		require.True(b, r.OK(), "%v", r.Errors)
	}
}

func TestFixturesFiles(t *testing.T) {
	for _, bad := range []string{"nope", "", "../compile", "acme-support/knowledge"} {
		_, err := fixtures.Files(bad)
		assert.Error(t, err, "fixtures.Files(%q)", bad)
	}
	files := mustFixture(t, "acme-support")
	assert.Contains(t, files, "agent.yaml", "paths are relative to the agent dir")
	for p := range files {
		_, _, err := compile.ParsePath(p)
		assert.NoError(t, err, "acme-support file %q", p)
	}
}
