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
	"testing"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

func mustFixture(tb testing.TB, name string) map[string][]byte {
	tb.Helper()
	files, err := fixtures.Files(name)
	if err != nil {
		tb.Fatalf("fixture %s: %v", name, err)
	}
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
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	names := fixtures.Names()
	if !slices.Contains(names, "acme-support") || !slices.Contains(names, "broken") {
		t.Fatalf("fixtures.Names() = %v, want acme-support and broken", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r := compile.Compile(mustFixture(t, name))
			got := goldenBytes(t, r)
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./compile -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("compile %s differs from %s (run go test ./compile -update to accept):\n%s", name, path, got)
			}
		})
	}
}

func TestAcmeSupportIsClean(t *testing.T) {
	r := compile.Compile(mustFixture(t, "acme-support"))
	if !r.OK() || len(r.Warnings) != 0 {
		t.Fatalf("acme-support: errors %v warnings %v, want none", r.Errors, r.Warnings)
	}
	if len(r.Tests) < 6 {
		t.Errorf("acme-support has %d tests, want at least 6", len(r.Tests))
	}
	a := r.Artifact
	if len(a.Knowledge) < 5 || len(a.Skills) < 3 || len(a.Guardrails) < 2 || len(a.Playbooks) < 3 {
		t.Errorf("acme-support has %d articles, %d skills, %d guardrails, %d playbooks; want at least 5, 3, 2, 3",
			len(a.Knowledge), len(a.Skills), len(a.Guardrails), len(a.Playbooks))
	}
	if a.Format != compile.FormatVersion {
		t.Errorf("format = %d, want %d", a.Format, compile.FormatVersion)
	}
	for i := 1; i < len(a.Knowledge); i++ {
		if a.Knowledge[i-1].Slug >= a.Knowledge[i].Slug {
			t.Errorf("knowledge not sorted by slug: %q before %q", a.Knowledge[i-1].Slug, a.Knowledge[i].Slug)
		}
	}
	var back compile.Artifact
	if err := json.Unmarshal(r.JSON, &back); err != nil {
		t.Fatalf("artifact JSON does not decode: %v", err)
	}
	if back.Settings.Name != a.Settings.Name || len(back.Playbooks) != len(a.Playbooks) {
		t.Errorf("decoded artifact = %+v, want %+v", back.Settings, a.Settings)
	}
}

func TestBrokenFixtureCoversErrorKinds(t *testing.T) {
	r := compile.Compile(mustFixture(t, "broken"))
	if r.OK() {
		t.Fatal("broken fixture compiled, want errors")
	}
	codes := map[string]bool{}
	for _, d := range r.Errors {
		codes[d.Code] = true
		if d.File == "" {
			t.Errorf("error %v has no file", d)
		}
	}
	for _, c := range []string{compile.CodeYAMLSyntax, compile.CodeUnknownField, compile.CodeInvalidRegex, compile.CodeUnknownSkill,
		compile.CodeMissingParameter, compile.CodeUndefinedVariable, compile.CodeInvalidURL, compile.CodeInvalidType, compile.CodeInvalidPath} {
		if !codes[c] {
			t.Errorf("broken fixture has no %s error; codes %v", c, slices.Sorted(maps.Keys(codes)))
		}
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
		if !bytes.Equal(r.JSON, first.JSON) || r.Digest != first.Digest {
			t.Fatalf("run %d: digest %s, want %s", i, r.Digest, first.Digest)
		}
	}
	broken := mustFixture(t, "broken")
	b1, b2 := compile.Compile(broken), compile.Compile(maps.Clone(broken))
	if !slices.Equal(b1.Errors, b2.Errors) || !slices.Equal(b1.Warnings, b2.Warnings) {
		t.Errorf("diagnostics differ between runs:\n%v\n%v", b1.Errors, b2.Errors)
	}
}

func TestArtifactJSONCanonical(t *testing.T) {
	r := compile.Compile(mustFixture(t, "acme-support"))
	if !bytes.HasSuffix(r.JSON, []byte("}\n")) {
		t.Errorf("artifact does not end with a newline")
	}
	if bytes.Contains(r.JSON, []byte(`\u003c`)) || bytes.Contains(r.JSON, []byte(`\u0026`)) {
		t.Errorf("artifact has HTML escaping")
	}
	// Re-encoding through a map must not change the bytes: keys are sorted.
	var generic any
	dec := json.NewDecoder(bytes.NewReader(r.JSON))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), r.JSON) {
		t.Errorf("artifact keys are not in canonical order")
	}
}

// TestFixtureFilesRoundTrip reads every valid fixture file into its view,
// encodes it canonically and reads it back.
func TestFixtureFilesRoundTrip(t *testing.T) {
	for p, data := range mustFixture(t, "acme-support") {
		kind, slug, err := compile.ParsePath(p)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", p, err)
		}
		view, diags := compile.ReadView(kind, slug, data)
		if len(diags) != 0 {
			t.Fatalf("%s: %v", p, diags)
		}
		enc, err := compile.EncodeFile(kind, view)
		if err != nil {
			t.Fatalf("%s: EncodeFile: %v", p, err)
		}
		back, diags := compile.ReadView(kind, slug, enc)
		if len(diags) != 0 || !equalJSON(t, back, view) {
			t.Errorf("%s: round trip changed the view (%v):\n%s", p, diags, enc)
		}
	}
}

func equalJSON(tb testing.TB, a, b any) bool {
	tb.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		tb.Fatalf("marshal: %v %v", err1, err2)
	}
	return bytes.Equal(ja, jb)
}

func BenchmarkCompileRich(b *testing.B) {
	files := mustFixture(b, "acme-support")
	b.ReportAllocs()
	for b.Loop() {
		if r := compile.Compile(files); !r.OK() {
			b.Fatal(r.Errors)
		}
	}
}

func TestFixturesFiles(t *testing.T) {
	for _, bad := range []string{"nope", "", "../compile", "acme-support/knowledge"} {
		if _, err := fixtures.Files(bad); err == nil {
			t.Errorf("fixtures.Files(%q) succeeded, want an error", bad)
		}
	}
	files := mustFixture(t, "acme-support")
	if _, ok := files["agent.yaml"]; !ok {
		t.Errorf("acme-support has no agent.yaml; paths must be relative to the agent dir")
	}
	for p := range files {
		if _, _, err := compile.ParsePath(p); err != nil {
			t.Errorf("acme-support file %q: %v", p, err)
		}
	}
}
