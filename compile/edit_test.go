package compile_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"hash/adler32"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
)

// sameCompile asserts that got (from CompileDraft or CompileEdit) is the
// Result Compile gives for files, its artifact's bytes and digest made
// by Encode and Digest.
func sameCompile(t *testing.T, files map[string][]byte, got compile.Result, msg string) {
	t.Helper()
	want := compile.Compile(files)
	assert.Nil(t, got.JSON, msg)
	assert.Empty(t, got.Digest, msg)
	assert.Equal(t, want.Errors, got.Errors, msg)
	assert.Equal(t, want.Warnings, got.Warnings, msg)
	assert.Equal(t, want.Artifact, got.Artifact, msg)
	assert.Equal(t, want.Tests, got.Tests, msg)
	assert.Equal(t, want.OK(), got.OK(), msg)
	js := got.Encode()
	assert.Equal(t, string(want.JSON), string(js), msg)
	if want.OK() {
		assert.Equal(t, string(want.JSON), string(inflateParts(t, got.EncodeParts())), msg)
	} else {
		assert.Nil(t, got.EncodeParts(), msg)
	}
	if want.OK() {
		assert.Equal(t, want.Digest, compile.Digest(js), msg)
	}
	size := 0
	for p, d := range files {
		if p != compile.ArtifactPath && p != compile.TestsPath {
			size += len(p) + len(d)
		}
	}
	assert.Equal(t, size, got.SourceBytes(), msg)
}

func TestCompileDraftIsCompileWithoutBytes(t *testing.T) {
	for _, name := range fixtures.Names() {
		files, err := fixtures.Files(name)
		require.NoError(t, err)
		c := compile.NewCompiler(compile.NewCache(8 << 20))
		sameCompile(t, files, c.CompileDraft(files), name)
		full := c.Compile(files)
		assert.Equal(t, full.JSON, full.Encode(), "Encode returns JSON when set")
		if full.OK() {
			assert.Equal(t, []compile.Part{{Data: full.JSON}}, full.EncodeParts())
		}
	}
	assert.Nil(t, compile.Result{}.Encode())
	assert.Zero(t, compile.Result{}.SourceBytes())
	_, ok := compile.NewCompiler(nil).CompileEdit(compile.Result{}, nil, nil)
	assert.False(t, ok, "a Result not made by a Compiler has nothing to edit")
}

// TestCompileEditMatchesCompile edits a draft at random (files added,
// changed, removed, moved between kinds, broken and mended, invalid paths,
// compiled/ paths) and checks after every edit that CompileEdit of the
// previous Result gives exactly what Compile gives for the whole draft.
func TestCompileEditMatchesCompile(t *testing.T) {
	pool := map[string][]byte{}
	for _, name := range fixtures.Names() {
		files, err := fixtures.Files(name)
		require.NoError(t, err)
		for p, d := range files {
			pool[p] = d
			pool[fmt.Sprintf("%s#%s", name, p)] = d
		}
	}
	contents := make([][]byte, 0, len(pool)+4)
	for _, k := range slices.Sorted(maps.Keys(pool)) {
		contents = append(contents, pool[k])
	}
	contents = append(contents, nil, []byte("name: Other\n"), []byte("# Just text\n"), []byte("---\ntitle: [unclosed\n"))
	paths := []string{
		"knowledge/a.md", "knowledge/a-b.md", "knowledge/a-b-c.md", "notes.txt", "Knowledge/x.md",
		compile.ArtifactPath, compile.TestsPath, "compiled/other.json", "tests/new.yaml",
	}
	for p := range pool {
		if _, bare, ok := cutHash(p); ok {
			paths = append(paths, bare)
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)

	acme, err := fixtures.Files("acme-support")
	require.NoError(t, err)
	sameDir := map[string][][]byte{} // acme's contents by directory
	for _, p := range slices.Sorted(maps.Keys(acme)) {
		sameDir[path.Dir(p)] = append(sameDir[path.Dir(p)], acme[p])
	}
	oks := 0
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 10))
		c := compile.NewCompiler(compile.NewCache(1 << 20)) // small: entries get evicted too
		files := maps.Clone(acme)
		prev := c.CompileDraft(files)
		sameCompile(t, files, prev, "start")
		for step := range 150 {
			changed := map[string][]byte{}
			var removed []string
			for range 1 + rng.IntN(3) {
				p := paths[rng.IntN(len(paths))]
				switch r := rng.IntN(10); {
				case r < 2 && (p != compile.SettingsPath || rng.IntN(4) == 0):
					removed = append(removed, p)
					delete(files, p)
				case r < 5 && files[p] != nil:
					changed[p] = append(slices.Clone(files[p]), fmt.Sprintf("\n# edit %d\n", step)...)
				case r < 6 && files[p] != nil:
					changed[p] = files[p] // unchanged content, given as a change
				case r < 9 && len(sameDir[path.Dir(p)]) > 0:
					changed[p] = sameDir[path.Dir(p)][rng.IntN(len(sameDir[path.Dir(p)]))]
				default:
					changed[p] = contents[rng.IntN(len(contents))]
				}
				if d, ok := changed[p]; ok {
					files[p] = d
				}
			}
			if rng.IntN(8) == 0 && len(changed) > 0 {
				for p := range changed {
					removed = append(removed, p) // a path changed and removed is changed
					break
				}
			}
			got, ok := c.CompileEdit(prev, changed, removed)
			require.True(t, ok)
			msg := fmt.Sprintf("seed %d step %d: changed %v removed %v", seed, step, slices.Sorted(maps.Keys(changed)), removed)
			sameCompile(t, files, got, msg)
			if t.Failed() {
				return
			}
			prev = got
			if got.OK() {
				oks++
			}
			if rng.IntN(20) == 0 || !got.OK() && rng.IntN(4) == 0 {
				files = maps.Clone(acme) // start over, through an edit of everything
				changed := maps.Clone(acme)
				var removed []string
				for _, p := range paths {
					if _, ok := acme[p]; !ok {
						removed = append(removed, p)
					}
				}
				prev, ok = c.CompileEdit(prev, changed, removed)
				require.True(t, ok)
				sameCompile(t, files, prev, "reset")
			}
		}
	}
	// Both sides are exercised: drafts that compile and drafts that do not.
	assert.Greater(t, oks, 4*150/5, "clean compiles")
	assert.Less(t, oks, 4*150*4/5, "clean compiles")
}

// inflateParts checks the parts of an artifact: their Data in order,
// and the one deflate stream made of their Deflated (stored blocks for
// the parts without) and a final block, inflate to the same bytes, which
// it returns.
func inflateParts(t *testing.T, parts []compile.Part) []byte {
	t.Helper()
	var data, stream bytes.Buffer
	deflated := 0
	for _, p := range parts {
		data.Write(p.Data)
		if p.Deflated == nil {
			stream.Write([]byte{0, byte(len(p.Data)), byte(len(p.Data) >> 8), ^byte(len(p.Data)), ^byte(len(p.Data) >> 8)})
			stream.Write(p.Data)
			continue
		}
		deflated++
		assert.Equal(t, adler32.Checksum(p.Data), p.Adler32)
		stream.Write(p.Deflated)
	}
	stream.Write([]byte{1, 0, 0, 0xff, 0xff})
	assert.Positive(t, deflated)
	got, err := io.ReadAll(flate.NewReader(&stream))
	require.NoError(t, err)
	assert.Equal(t, data.String(), string(got))
	return data.Bytes()
}

// cutHash splits "fixture#path".
func cutHash(s string) (fixture, file string, ok bool) {
	for i := range len(s) {
		if s[i] == '#' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// TestCompileEditParsesOnlyTheEdit: an edit looks up only its own files
// in the cache.
func TestCompileEditParsesOnlyTheEdit(t *testing.T) {
	cache := compile.NewCache(64 << 20)
	c := compile.NewCompiler(cache)
	files := map[string][]byte{"agent.yaml": []byte("name: Big\n")}
	for i := range 200 {
		files[fmt.Sprintf("knowledge/article-%04d.md", i)] = fixtures.Article(i, 0)
	}
	prev := c.CompileDraft(files)
	require.True(t, prev.OK(), "%v", prev.Errors)
	before := cache.Stats()
	got, ok := c.CompileEdit(prev, map[string][]byte{"knowledge/article-0007.md": fixtures.Article(7, 1)}, []string{"knowledge/article-0008.md"})
	require.True(t, ok)
	after := cache.Stats()
	assert.Equal(t, uint64(1), after.Misses-before.Misses)
	assert.Zero(t, after.Hits-before.Hits)
	files["knowledge/article-0007.md"] = fixtures.Article(7, 1)
	delete(files, "knowledge/article-0008.md")
	sameCompile(t, files, got, "edit")
	// prev is unchanged by the edit.
	assert.Len(t, prev.Artifact.Knowledge, 200)
	assert.Contains(t, prev.Artifact.Knowledge[7].Content, "Revision 0.")
	assert.Equal(t, compile.BlobID(fixtures.Article(7, 0)), prev.Artifact.Knowledge[7].Blob)
	assert.Contains(t, string(prev.Encode()), `"blob": "`+compile.BlobID(fixtures.Article(7, 0))+`"`)
}
