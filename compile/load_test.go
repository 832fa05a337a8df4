package compile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

// blobsOf serves LoadArtifact's reads from a draft's files.
func blobsOf(files map[string][]byte) func([]string) (map[string][]byte, error) {
	byID := map[string][]byte{}
	for _, data := range files {
		byID[compile.BlobID(data)] = data
	}
	return func(ids []string) (map[string][]byte, error) {
		out := map[string][]byte{}
		for _, id := range ids {
			if data, ok := byID[id]; ok {
				out[id] = data
			}
		}
		return out, nil
	}
}

// TestArtifactDeterministicWithGitBlobIDs: two compiles of one tree give
// the same bytes, and each article's blob is what git hash-object gives
// for its source file.
func TestArtifactDeterministicWithGitBlobIDs(t *testing.T) {
	files := mustFixture(t, "acme-support")
	files["knowledge/crlf.md"] = []byte("---\r\ntitle: CRLF\r\n---\r\n\r\nBody with CRLF.\r\n")
	files["knowledge/plain.md"] = []byte("No front matter, no trailing newline")
	a := compile.Compile(files)
	b := compile.NewCompiler(compile.NewCache(1 << 20)).Compile(files)
	require.True(t, a.OK(), "%v", a.Errors)
	assert.Equal(t, a.JSON, b.JSON)
	assert.Equal(t, a.Digest, b.Digest)
	assert.Equal(t, compile.Digest(a.JSON), a.Digest)

	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	var stored struct {
		Knowledge []struct {
			Slug, Blob string
		}
	}
	require.NoError(t, json.Unmarshal(a.JSON, &stored))
	require.Len(t, stored.Knowledge, len(a.Artifact.Knowledge))
	for i, k := range stored.Knowledge {
		path := filepath.Join(dir, k.Slug+".md")
		require.NoError(t, os.WriteFile(path, files["knowledge/"+k.Slug+".md"], 0o644))
		out, err := exec.Command(git, "hash-object", "--no-filters", path).Output()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(out)), k.Blob, k.Slug)
		assert.Equal(t, k.Blob, a.Artifact.Knowledge[i].Blob)
	}

	// Loaded with its sources, the artifact has the compile's bodies.
	back, err := compile.LoadArtifact(a.JSON, blobsOf(files))
	require.NoError(t, err)
	assert.Equal(t, a.Artifact.Knowledge, back.Knowledge)
}

// TestLoadFormat1Artifact: an artifact written before format 2 (bodies
// embedded) still loads, without reading any blob, to the same articles.
func TestLoadFormat1Artifact(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "format1-acme-support.json"))
	require.NoError(t, err)
	require.True(t, bytes.Contains(old, []byte(`"format": 1`)))
	art, err := compile.LoadArtifact(old, func([]string) (map[string][]byte, error) {
		return nil, errors.New("format 1 reads no blob")
	})
	require.NoError(t, err)
	assert.Equal(t, 1, art.Format)
	now := compile.Compile(mustFixture(t, "acme-support"))
	require.Len(t, art.Knowledge, len(now.Artifact.Knowledge))
	for i, k := range art.Knowledge {
		want := now.Artifact.Knowledge[i]
		want.Blob = ""
		assert.Equal(t, want, k)
	}
	assert.Equal(t, now.Artifact.Settings, art.Settings)
	assert.Equal(t, now.Artifact.Playbooks, art.Playbooks)
	assert.Equal(t, now.Artifact.Guardrails, art.Guardrails)
}

func TestLoadArtifactRejects(t *testing.T) {
	files := mustFixture(t, "acme-support")
	r := compile.Compile(files)
	require.True(t, r.OK())
	_, err := compile.LoadArtifact(r.JSON, func([]string) (map[string][]byte, error) { return map[string][]byte{}, nil })
	assert.ErrorContains(t, err, "missing")
	// Content that never compiled (front matter never closed).
	_, err = compile.LoadArtifact(r.JSON, func(ids []string) (map[string][]byte, error) {
		out := map[string][]byte{}
		for _, id := range ids {
			out[id] = []byte("---\ntitle: x\n")
		}
		return out, nil
	})
	assert.ErrorContains(t, err, "front matter")
	_, err = compile.LoadArtifact([]byte(`{"format": 3}`), nil)
	assert.ErrorContains(t, err, "unknown format")
}
