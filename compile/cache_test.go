package compile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// canonicalJSON is the reference encoding of an artifact: marshal, decode
// generically, encode with sorted keys. The compiler assembles the same
// bytes from per-file parts.
func canonicalJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	raw, err := json.Marshal(v)
	require.NoError(tb, err)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	require.NoError(tb, dec.Decode(&generic))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(tb, enc.Encode(generic))
	return buf.Bytes()
}

// storedForm is a as compiled/agent.json holds it: each article without
// its body, with its blob id.
func storedForm(a *Artifact) any {
	type stored struct {
		Artifact
		Knowledge []artifactArticle `json:"knowledge"`
	}
	out := stored{Artifact: *a, Knowledge: []artifactArticle{}}
	for _, k := range a.Knowledge {
		out.Knowledge = append(out.Knowledge, artifactArticle{Slug: k.Slug, Title: k.Title, Tags: k.Tags, Blob: k.Blob})
	}
	return out
}

func TestArtifactPartsMatchCanonicalEncoding(t *testing.T) {
	drafts := map[string]map[string][]byte{
		"base":        baseDraft(),
		"empty lists": {"agent.yaml": []byte("name: Bare\n")},
		"html and unicode": withFiles(map[string]string{
			"agent.yaml":        "name: A <b>&</b> \"q\" é\nlanguage: fr\nmodel: {name: m, temperature: 1.5}\n",
			"knowledge/a-b.md":  "x < y & z\n",
			"knowledge/a.md":    "---\ntags: [t]\n---\n\nSorted before a-b by slug.\n",
			"guardrails/z.yaml": "applies: output\nblock:\n  phrases: ['<script>']\n  message: no\n",
		}),
	}
	for name, files := range drafts {
		t.Run(name, func(t *testing.T) {
			r := Compile(files)
			require.True(t, r.OK(), "%v", r.Errors)
			assert.Equal(t, string(canonicalJSON(t, storedForm(r.Artifact))), string(r.JSON))
		})
	}
}

// bigDraft is baseDraft with n more knowledge articles.
func bigDraft(n int) map[string][]byte {
	files := baseDraft()
	for i := range n {
		files[fmt.Sprintf("knowledge/article-%05d.md", i)] = fmt.Appendf(nil,
			"---\ntitle: Article %d\ntags: [a%d, shared]\n---\n\n# Article %d\n\n%s\n", i, i, i,
			bytes.Repeat([]byte("Some useful text about returns, shipping and orders. "), 25))
	}
	return files
}

func TestCompilerReusesParsedFiles(t *testing.T) {
	cache := NewCache(64 << 20)
	c := NewCompiler(cache)
	files := bigDraft(50)
	first := c.Compile(files)
	require.True(t, first.OK(), "%v", first.Errors)
	st := cache.Stats()
	assert.Equal(t, len(files), st.Entries)
	assert.Equal(t, uint64(len(files)), st.Misses)
	assert.Equal(t, uint64(0), st.Hits)

	// A one-file edit parses one file; the result is what Compile gives.
	edited := maps.Clone(files)
	edited["knowledge/article-00007.md"] = []byte("Rewritten.\n")
	r := c.Compile(edited)
	st = cache.Stats()
	assert.Equal(t, uint64(len(files)+1), st.Misses, "only the edited file is parsed")
	assert.Equal(t, uint64(len(files)-1), st.Hits)
	want := Compile(edited)
	assert.Equal(t, want.Digest, r.Digest)
	assert.Equal(t, want.JSON, r.JSON)
	assert.Equal(t, want.Artifact, r.Artifact)

	// Diagnostics come from the cache too.
	broken := maps.Clone(files)
	broken["agent.yaml"] = []byte("name: x\nbogus: 1\n")
	for range 2 {
		got := c.Compile(broken)
		assert.Equal(t, Compile(broken).Errors, got.Errors)
		assert.False(t, got.OK())
	}

	// The same content at another path is another entry.
	moved := maps.Clone(files)
	moved["knowledge/moved.md"] = files["knowledge/faq.md"]
	delete(moved, "knowledge/faq.md")
	m := c.Compile(moved)
	require.True(t, m.OK())
	assert.Equal(t, Compile(moved).JSON, m.JSON)
}

func TestCacheBoundedInBytes(t *testing.T) {
	cache := NewCache(200 << 10)
	c := NewCompiler(cache)
	for i := range 5 {
		files := bigDraft(40)
		files["agent.yaml"] = fmt.Appendf(nil, "name: Agent %d\n", i)
		for p, d := range files {
			files[p] = append(d, fmt.Sprintf("\n# %d\n", i)...) // new contents every round
		}
		r := c.Compile(files)
		require.True(t, r.OK(), "%v", r.Errors)
		st := cache.Stats()
		assert.LessOrEqual(t, st.Bytes, st.MaxBytes)
		assert.Positive(t, st.Entries)
	}

	none := NewCache(0)
	r := NewCompiler(none).Compile(baseDraft())
	assert.True(t, r.OK())
	assert.Zero(t, none.Stats().Entries, "a zero-byte cache keeps nothing")
}

func TestCompilerConcurrent(t *testing.T) {
	c := NewCompiler(NewCache(8 << 20))
	want := Compile(bigDraft(20)).Digest
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				assert.Equal(t, want, c.Compile(bigDraft(20)).Digest)
			}
		})
	}
	wg.Wait()
}

// BenchmarkEditAndCompile measures a one-file edit then a compile with a
// warm cache, as the daemon does on each draft edit or publish, at 10,
// 1,000 and 5,000 knowledge articles (about 1.5 KiB each).
func BenchmarkEditAndCompile(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("articles=%d", n), func(b *testing.B) {
			files := bigDraft(n)
			c := NewCompiler(NewCache(1 << 30))
			require.True(b, c.Compile(files).OK())
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				files["knowledge/article-00003.md"] = fmt.Appendf(nil, "Edit %d.\n", i)
				r := c.Compile(files)
				require.True(b, r.OK(), "%v", r.Errors)
			}
		})
	}
}

// BenchmarkCompileEdit is BenchmarkEditAndCompile through CompileEdit of
// the previous Result, as the daemon compiles a draft after an edit (the
// artifact's bytes not made).
func BenchmarkCompileEdit(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("articles=%d", n), func(b *testing.B) {
			c := NewCompiler(NewCache(1 << 30))
			prev := c.CompileDraft(bigDraft(n))
			require.True(b, prev.OK())
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				r, ok := c.CompileEdit(prev, map[string][]byte{"knowledge/article-00003.md": fmt.Appendf(nil, "Edit %d.\n", i)}, nil)
				require.True(b, ok && r.OK(), "%v", r.Errors)
				prev = r
			}
		})
	}
}

// BenchmarkCompileUncached is the same edit through Compile, which parses
// every file: the baseline the cache is measured against.
func BenchmarkCompileUncached(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("articles=%d", n), func(b *testing.B) {
			files := bigDraft(n)
			for b.Loop() {
				r := Compile(files)
				require.True(b, r.OK(), "%v", r.Errors)
			}
		})
	}
}

// BenchmarkCompileEditWithTests is BenchmarkCompileEdit on a draft with
// tests that name articles, as the acme agent's do.
func BenchmarkCompileEditWithTests(b *testing.B) {
	files := bigDraft(5000)
	files["tests/t.yaml"] = []byte("turns:\n  - user: hi\n    expect:\n      knowledge: [article-00001, faq]\n")
	c := NewCompiler(NewCache(1 << 30))
	prev := c.CompileDraft(files)
	require.True(b, prev.OK(), "%v", prev.Errors)
	i := 0
	for b.Loop() {
		i++
		r, ok := c.CompileEdit(prev, map[string][]byte{"knowledge/article-00003.md": fmt.Appendf(nil, "Edit %d.\n", i)}, nil)
		require.True(b, ok && r.OK(), "%v", r.Errors)
		prev = r
	}
}
