package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPublishGate: a Gate sees the exact draft being frozen, its files
// land in compiled/ and its trailers in the tag; a Gate error writes
// nothing; bad extras are refused.
func TestPublishGate(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n")})
	dir := s.Path(testID)
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)

	errRed := errors.New("tests failed")
	_, err = s.Publish(ctx, testID, PublishRequest{Gate: func(in GateInput) (ReleaseExtras, error) {
		return ReleaseExtras{}, errRed
	}}, nil)
	require.ErrorIs(t, err, errRed)
	n, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Zero(t, n, "a refusing gate writes no version")
	assert.Empty(t, strings.TrimSpace(mustGit(t, dir, "tag")))

	for _, bad := range []ReleaseExtras{
		{Files: map[string][]byte{"agent.json": []byte("x")}},
		{Files: map[string][]byte{"a/b.json": []byte("x")}},
		{Trailers: []Trailer{{Key: "Publisher", Value: "me"}}},
		{Trailers: []Trailer{{Key: "Bad Key", Value: "x"}}},
		{Trailers: []Trailer{{Key: "Tests", Value: "a\nb"}}},
	} {
		_, err = s.Publish(ctx, testID, PublishRequest{Gate: func(GateInput) (ReleaseExtras, error) { return bad, nil }}, nil)
		assert.Error(t, err, "%+v", bad)
	}

	var seen GateInput
	var seenFiles map[string][]byte
	v1, err := s.Publish(ctx, testID, PublishRequest{Gate: func(in GateInput) (ReleaseExtras, error) {
		seen = in
		var err error
		seenFiles, err = in.Files()
		require.NoError(t, err)
		return ReleaseExtras{
			Files:    map[string][]byte{"tests.json": []byte("{\"status\": \"passed\"}\n")},
			Trailers: []Trailer{{Key: "Tests", Value: "3/3 passed"}, {Key: "Tests-Forced", Value: "true"}},
		}, nil
	}}, nil)
	require.NoError(t, err)
	assert.Equal(t, d.Revision, seen.Revision)
	assert.Equal(t, d.Tree, seen.Tree)
	assert.Equal(t, "A\n", string(seenFiles["knowledge/a.md"]))
	assert.Equal(t, map[string]string{"Tests": "3/3 passed", "Tests-Forced": "true"}, v1.Trailers)
	mustFsck(t, dir)
	assert.Equal(t, "agent.yaml\ncompiled/agent.json\ncompiled/tests.json\nknowledge/a.md\n", mustGit(t, dir, "ls-tree", "-r", "--name-only", "v1"))
	assert.Equal(t, "{\"status\": \"passed\"}\n", mustGit(t, dir, "show", "v1:compiled/tests.json"))
	msg := mustGit(t, dir, "tag", "-l", "--format=%(contents)", "v1")
	assert.Contains(t, msg, "Compiled-Digest: "+v1.Digest+"\nTests: 3/3 passed\nTests-Forced: true\n")
	trailers := mustGit(t, dir, "tag", "-l", "--format=%(trailers:key=Tests,valueonly)", "v1")
	assert.Equal(t, "3/3 passed", strings.TrimSpace(trailers), "git reads the trailer")

	got, err := s.Version(ctx, testID, 1)
	require.NoError(t, err)
	assert.Equal(t, v1, got, "the tag parses back to what Publish returned")

	// Without a gate, nothing extra.
	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	v2 := mustPublish(t, s, testID, "")
	assert.Nil(t, v2.Trailers)
	assert.Equal(t, "agent.yaml\ncompiled/agent.json\nknowledge/a.md\n", mustGit(t, dir, "ls-tree", "-r", "--name-only", "v2"))
}

// TestPublishUsesTheGatesArtifact: an artifact handed over by the gate is
// written as compiled/agent.json without compiling the tree again, with the
// gate's digest; without one, Publish compiles and digests itself.
func TestPublishUsesTheGatesArtifact(t *testing.T) {
	ctx := context.Background()
	var compiles atomic.Int32
	s := mustOpenStore(t, func(o *Options) {
		inner := o.Compile
		o.Compile = func(files map[string][]byte) ([]byte, error) {
			compiles.Add(1)
			return inner(files)
		}
	})
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	art := []byte(`{"from":"the gate"}` + "\n")
	v1, err := s.Publish(ctx, testID, PublishRequest{Gate: func(GateInput) (ReleaseExtras, error) {
		return ReleaseExtras{Artifact: []Part{{Data: art}}, Digest: "sha256:" + strings.Repeat("ab", 32)}, nil
	}}, nil)
	require.NoError(t, err)
	assert.Zero(t, compiles.Load(), "the tree was not compiled again")
	assert.Equal(t, "sha256:"+strings.Repeat("ab", 32), v1.Digest)
	assert.Equal(t, string(art), mustGit(t, s.Path(testID), "show", "v1:compiled/agent.json"))

	_, err = s.CommitDraft(ctx, testID, CommitRequest{Message: "two", Changes: []Change{{Path: "knowledge/b.md", Content: []byte("B\n")}}}, nil)
	require.NoError(t, err)
	v2, err := s.Publish(ctx, testID, PublishRequest{Gate: func(GateInput) (ReleaseExtras, error) { return ReleaseExtras{}, nil }}, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), compiles.Load(), "no artifact from the gate: compiled once")
	sum := sha256.Sum256([]byte(mustGit(t, s.Path(testID), "show", "v2:compiled/agent.json")))
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), v2.Digest)

	// A big artifact in parts, its digest left to Publish: the blob is
	// their concatenation, hashed and digested without assembling it.
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Message: "three", Changes: []Change{{Path: "knowledge/c.md", Content: []byte("C\n")}}}, nil)
	require.NoError(t, err)
	var parts []Part
	var whole []byte
	for i := range 2000 {
		data := []byte(strings.Repeat(string(rune('a'+i%26)), i%50))
		parts = append(parts, Part{Data: data}, Part{Data: []byte(",\n")})
		whole = append(append(whole, data...), ",\n"...)
	}
	require.Greater(t, len(whole), fastCompressionSize)
	v3, err := s.Publish(ctx, testID, PublishRequest{Gate: func(GateInput) (ReleaseExtras, error) {
		return ReleaseExtras{Artifact: parts}, nil
	}}, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), compiles.Load())
	sum = sha256.Sum256(whole)
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), v3.Digest)
	assert.Equal(t, string(whole), mustGit(t, s.Path(testID), "show", "v3:compiled/agent.json"))
	assert.Equal(t, plumbing.ComputeHash(plumbing.BlobObject, whole).String()+"\n", mustGit(t, s.Path(testID), "rev-parse", "v3:compiled/agent.json"))
	mustFsck(t, s.Path(testID))
}
