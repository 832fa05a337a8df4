package compile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/pjbgf/sha1cd"
	"gopkg.in/yaml.v3"
)

// EncodeFile returns the canonical bytes of a draft file from its typed
// view (a pointer or value of the type DecodeView returns for kind): YAML
// with fields in declaration order, map keys sorted and 2-space indent for
// settings, skills, guardrails and playbooks; for knowledge, the Markdown
// content, preceded by YAML front matter when the article has a title or
// tags. ReadView of the result gives back an equal view.
func EncodeFile(kind Kind, view any) ([]byte, error) {
	want := newView(kind)
	if want == nil {
		return nil, fmt.Errorf("encode: unknown kind %q", kind)
	}
	v := reflect.ValueOf(view)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("encode %s: nil view", kind)
		}
		v = v.Elem()
	}
	if v.Type() != reflect.TypeOf(want).Elem() {
		return nil, fmt.Errorf("encode %s: view is %T, want %T", kind, view, want)
	}
	if kind == KindKnowledge {
		a := v.Interface().(Article)
		return encodeArticle(&a)
	}
	return encodeYAML(yamlNodeOf(v))
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

func encodeArticle(a *Article) ([]byte, error) {
	frontMatter := a.Title != "" || len(a.Tags) > 0 ||
		strings.HasPrefix(a.Content, "---\n") || strings.HasPrefix(a.Content, "---\r\n")
	if !frontMatter {
		return []byte(a.Content), nil
	}
	var buf bytes.Buffer
	buf.WriteString("---\n")
	fm := yamlNodeOf(reflect.ValueOf(*a))
	if len(fm.Content) > 0 {
		b, err := encodeYAML(fm)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteString("---\n\n")
	buf.WriteString(a.Content)
	return buf.Bytes(), nil
}

// yamlNodeOf builds the YAML node of a view value; nil means "leave out".
func yamlNodeOf(v reflect.Value) *yaml.Node {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return yamlNodeOf(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || name == "" || !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if strings.Contains(opts, "omitempty") && isEmpty(fv) {
				continue
			}
			child := yamlNodeOf(fv)
			if child == nil {
				continue
			}
			m.Content = append(m.Content, stringNode(name), child)
		}
		return m
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		for _, k := range sortedKeys(mapSet(names)) {
			child := yamlNodeOf(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())))
			if child == nil {
				child = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
			}
			m.Content = append(m.Content, stringNode(k), child)
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		}
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Len() == 0 {
			s.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			child := yamlNodeOf(v.Index(i))
			if child == nil {
				child = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
			}
			s.Content = append(s.Content, child)
		}
		return s
	case reflect.String:
		if num, ok := v.Interface().(json.Number); ok {
			if s, typ, err := canonicalNumber(string(num)); err == nil {
				tag := "!!int"
				if typ == scalarFloat {
					tag = "!!float"
				}
				return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
			}
		}
		return stringNode(v.String())
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		var n yaml.Node
		if err := n.Encode(v.Interface()); err != nil {
			return nil
		}
		return &n
	}
	return nil
}

func mapSet(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}

// stringNode is a YAML string scalar that reads back as exactly s: plain
// when that is safe, a literal block for multi-line text, double quoted
// when nothing else round-trips.
func stringNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	if !roundTrips(n, s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// roundTrips reports whether the scalar node, emitted as a mapping value,
// decodes back to s.
func roundTrips(n *yaml.Node, s string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "k"}, n}}
	b, err := encodeYAML(doc)
	if err != nil {
		return false
	}
	var back struct {
		K *string `yaml:"k"`
	}
	if err := yaml.Unmarshal(b, &back); err != nil || back.K == nil {
		return false
	}
	return *back.K == s
}

// The artifact is canonical JSON: object keys sorted at every level, no
// HTML escaping, 2-space indent, a trailing newline. It is assembled from
// parts, one per file, each encoded once (and kept by a Cache), so that
// compiling after a one-file edit encodes one file.

// Indents of the parts inside the artifact: an item of a top-level list
// sits at depth 2, the settings object at depth 1.
const (
	itemIndent     = "    "
	settingsIndent = "  "
)

// encodePart returns the canonical JSON of the view of pf as it appears
// inside the artifact, without its first line's indent; nil for tests,
// which are not part of the artifact.
func encodePart(pf *parsedFile) ([]byte, error) {
	prefix := itemIndent
	var v any = pf.view
	switch view := pf.view.(type) {
	case *Test, nil:
		return nil, nil
	case *Article:
		// The body stays in the source file, named by its blob id.
		v = artifactArticle{Slug: view.Slug, Title: view.Title, Tags: view.Tags, Blob: view.Blob}
	case *Settings:
		st := *view
		if st.Language == "" {
			st.Language = DefaultLanguage
		}
		v, prefix = &st, settingsIndent
	}
	return canonicalIndent(v, prefix)
}

// artifactArticle is an article as the artifact holds it (format 2).
type artifactArticle struct {
	Slug  string   `json:"slug"`
	Title string   `json:"title,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Blob  string   `json:"blob"`
}

// BlobID returns the git blob id (40 hex digits) of a file's content, as
// git hash-object computes it (with git's collision detection, as the
// repository does).
func BlobID(data []byte) string {
	h := sha1cd.New() // the SHA-1 go-git, and so the repository, uses
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalIndent encodes v with sorted keys, no HTML escaping and
// 2-space indent, every line but the first starting with prefix, and no
// trailing newline. Sorting goes through a generic decode: encoding/json
// writes maps, not structs, with sorted keys.
func canonicalIndent(v any, prefix string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// artifactParts calls emit with compiled/agent.json in consecutive parts,
// the files' parts (shared: read only) between the text that joins them:
// the keys of Artifact in sorted order, each list in slug order (files:
// each kind's results in slug order). Writing them in turn writes the
// artifact without assembling it.
func artifactParts(settings Part, files map[Kind][]*fileResult, emit func(Part)) {
	text := func(s string) { emit(Part{Data: []byte(s)}) }
	text("{\n  \"format\": " + strconv.Itoa(FormatVersion))
	list := func(key string, items []*fileResult) {
		open := ",\n  \"" + key + "\": ["
		for i, it := range items {
			switch i {
			case 0:
				text(open + "\n" + itemIndent)
			default:
				emit(itemSep)
			}
			emit(it.part)
		}
		if len(items) > 0 {
			text("\n  ]")
		} else {
			text(open + "]")
		}
	}
	// Sorted: format, guardrails, knowledge, playbooks, settings, skills.
	list("guardrails", files[KindGuardrails])
	list("knowledge", files[KindKnowledge])
	list("playbooks", files[KindPlaybooks])
	text(",\n  \"settings\": ")
	emit(settings)
	list("skills", files[KindSkills])
	text("\n}\n")
}

// itemSep separates two items of a list of the artifact.
var itemSep = Part{Data: []byte(",\n" + itemIndent)}

// Digest is "sha256:" + the hex SHA-256 of b: Result.Digest of an
// artifact whose bytes are b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
