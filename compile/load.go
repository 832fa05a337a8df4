package compile

import (
	"encoding/json"
	"fmt"
)

// storedArtifact is compiled/agent.json as stored, in either format: an
// article has "content" in format 1 and "blob" in format 2. Its Knowledge
// shadows the Artifact's (encoding/json takes the shallower field).
type storedArtifact struct {
	Artifact
	Knowledge []storedArticle `json:"knowledge"`
}

type storedArticle struct {
	Slug    string   `json:"slug"`
	Title   string   `json:"title"`
	Tags    []string `json:"tags"`
	Content string   `json:"content"`
	Blob    string   `json:"blob"`
}

// LoadArtifact decodes a stored compiled/agent.json into the Artifact a
// compile of its draft gave, bodies included.
//
// A format-1 artifact embeds every body. A format-2 artifact names each
// article's source file by blob id instead: blobs must return the content
// of those blobs by id (the files knowledge/<slug>.md of the artifact's
// release tree; the returned bytes are only read), and each body is that
// file's Markdown without its front matter, cut by the code the compile
// used. A missing blob is an error; the contents are not hashed again
// (blobs reads them by id from content-addressed storage). blobs is not
// called for format 1, nor when the artifact has no knowledge.
func LoadArtifact(data []byte, blobs func(ids []string) (map[string][]byte, error)) (*Artifact, error) {
	var st storedArtifact
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode artifact: %w", err)
	}
	if st.Format != 1 && st.Format != 2 {
		return nil, fmt.Errorf("decode artifact: unknown format %d", st.Format)
	}
	art := &st.Artifact
	art.Knowledge = make([]Article, len(st.Knowledge))
	for i, a := range st.Knowledge {
		art.Knowledge[i] = Article{Slug: a.Slug, Title: a.Title, Tags: a.Tags, Content: a.Content}
	}
	if st.Format == 1 || len(st.Knowledge) == 0 {
		return art, nil
	}
	ids := make([]string, len(st.Knowledge))
	for i, a := range st.Knowledge {
		if !ValidSlug(a.Slug) {
			return nil, fmt.Errorf("decode artifact: knowledge %q: invalid slug", a.Slug)
		}
		if !validBlobID(a.Blob) {
			return nil, fmt.Errorf("decode artifact: knowledge %q: invalid blob id %q", a.Slug, a.Blob)
		}
		ids[i] = a.Blob
	}
	got, err := blobs(ids)
	if err != nil {
		return nil, fmt.Errorf("read knowledge: %w", err)
	}
	for i, a := range st.Knowledge {
		src, ok := got[a.Blob]
		if !ok {
			return nil, fmt.Errorf("read knowledge %q: blob %s missing", a.Slug, a.Blob)
		}
		// The body as the compile cut it (see parseFile). The blob id
		// names exactly the bytes compiled, and title and tags are the
		// artifact's: nothing else of the file is parsed again.
		_, body, ok := splitFrontMatter(string(src))
		if !ok {
			return nil, fmt.Errorf("load %s: blob %s has unclosed front matter", PathFor(KindKnowledge, a.Slug), a.Blob)
		}
		art.Knowledge[i].Content = body
		art.Knowledge[i].Blob = a.Blob
	}
	return art, nil
}

func validBlobID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
