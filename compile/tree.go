package compile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file turns YAML documents and JSON bodies into one small tree type
// that remembers lines, so the strict decoder, the validators and the
// diagnostics work the same whatever the input format.

type nodeKind int

const (
	nodeNull nodeKind = iota
	nodeScalar
	nodeMap
	nodeSeq
)

type scalarType int

const (
	scalarString scalarType = iota
	scalarInt
	scalarFloat
	scalarBool
)

// tnode is one value of a parsed document. Numbers hold their canonical
// text (see canonicalNumber).
type tnode struct {
	kind     nodeKind
	line     int
	typ      scalarType     // for nodeScalar
	value    string         // for nodeScalar
	raw      string         // for YAML scalars: the text as written
	keys     []string       // for nodeMap
	keyLines []int          // for nodeMap
	vals     []*tnode       // for nodeMap
	index    map[string]int // for nodeMap: key → position in keys
	items    []*tnode       // for nodeSeq
}

// lookup returns the position of key k in a mapping, or -1.
func (n *tnode) lookup(k string) int {
	if i, ok := n.index[k]; ok {
		return i
	}
	return -1
}

// addKey appends a key and its value to a mapping.
func (n *tnode) addKey(k string, line int, v *tnode) {
	if n.index == nil {
		n.index = map[string]int{}
	}
	n.index[k] = len(n.keys)
	n.keys = append(n.keys, k)
	n.keyLines = append(n.keyLines, line)
	n.vals = append(n.vals, v)
}

// issue is a problem found in one file, located by JSON pointer (and by
// line when the pointer cannot express it, as for syntax errors).
type issue struct {
	ptr  string
	line int
	code string
	msg  string
}

// issues collects problems. add drops an issue located at or under a value
// already reported as missing or of the wrong type, so that a bad value is
// reported once.
type issues struct {
	list []issue
}

// maxIssues bounds the problems kept per file, so that a hostile file
// cannot make reporting quadratic.
const maxIssues = 50

func (is *issues) add(ptr, code, format string, args ...any) {
	if len(is.list) >= maxIssues {
		return
	}
	for _, o := range is.list {
		if o.line != 0 {
			continue
		}
		if ptr == o.ptr && code == o.code {
			return
		}
		switch o.code {
		case CodeInvalidType, CodeMissingField, CodeYAMLSyntax, CodeInvalidJSON:
			if ptr == o.ptr || strings.HasPrefix(ptr, o.ptr+"/") {
				return
			}
		}
	}
	is.list = append(is.list, issue{ptr: ptr, code: code, msg: fmt.Sprintf(format, args...)})
}

func (is *issues) addLine(line int, code, format string, args ...any) {
	if len(is.list) >= maxIssues {
		return
	}
	is.list = append(is.list, issue{line: line, code: code, msg: fmt.Sprintf(format, args...)})
}

// addAt records an issue at ptr whose line the tree cannot tell (a key
// that was dropped).
func (is *issues) addAt(ptr string, line int, code, format string, args ...any) {
	if len(is.list) >= maxIssues {
		return
	}
	is.list = append(is.list, issue{ptr: ptr, line: line, code: code, msg: fmt.Sprintf(format, args...)})
}

func (is *issues) empty() bool { return len(is.list) == 0 }

// escapePointer escapes one JSON pointer reference token (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// lineAt returns the line of the value at ptr, or of the key naming it, or
// of its nearest existing ancestor.
func (n *tnode) lineAt(ptr string) int {
	if n == nil {
		return 0
	}
	line := n.line
	if ptr == "" {
		return line
	}
	cur := n
	segs := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for _, raw := range segs {
		seg := unescapePointer(raw)
		switch cur.kind {
		case nodeMap:
			i := cur.lookup(seg)
			if i < 0 {
				return line
			}
			line, cur = cur.keyLines[i], cur.vals[i]
		case nodeSeq:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(cur.items) {
				return line
			}
			cur = cur.items[i]
			line = cur.line
		default:
			return line
		}
	}
	return line
}

// canonicalNumber returns the canonical text of a number: a base-10 int64
// when it is one, else the shortest float64 form. Non-finite and
// out-of-range numbers are errors.
func canonicalNumber(s string) (string, scalarType, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.FormatInt(i, 10), scalarInt, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", 0, fmt.Errorf("number %q is out of range", s)
	}
	return formatFloat(f)
}

func formatFloat(f float64) (string, scalarType, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "", 0, errors.New("number must be finite")
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10), scalarInt, nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), scalarFloat, nil
}

// parseYAML parses one YAML document. An empty document is an empty
// mapping. lineOffset is added to every line (for front matter).
func parseYAML(data []byte, lineOffset int, is *issues) (root *tnode) {
	var doc yaml.Node
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: %v", r)
			}
		}()
		dec := yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				doc = yaml.Node{}
				return nil
			}
			return err
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			if err == nil {
				return fmt.Errorf("yaml: line %d: only one YAML document is allowed per file", extra.Line)
			}
			return err
		}
		return nil
	}()
	if err != nil {
		msg := cleanYAMLError(err.Error())
		line := yamlErrorLine(err.Error())
		if yamlParserProblems[msg] {
			// yaml.v3 reports parser (not scanner) errors with 0-based lines.
			line++
		}
		// A problem found at the end of the input is reported on the last line.
		if lines := bytes.Count(data, []byte("\n")) + 1; bytes.HasSuffix(data, []byte("\n")) && line >= lines {
			line = lines - 1
		} else if line > lines {
			line = lines
		}
		if line > 0 {
			line += lineOffset
		}
		is.addLine(line, CodeYAMLSyntax, "%s", msg)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &tnode{kind: nodeMap, line: 1 + lineOffset}
	}
	b := treeBuilder{is: is, lineOffset: lineOffset}
	return b.fromYAML(doc.Content[0], "", 0)
}

// yamlParserProblems are the messages of yaml.v3 parser errors, whose
// line numbers are 0-based (scanner errors are 1-based).
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlErrorLine extracts the line from a yaml.v3 error message, 0 if none.
func yamlErrorLine(msg string) int {
	_, rest, ok := strings.Cut(msg, "line ")
	if !ok {
		return 0
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0
	}
	return n
}

// cleanYAMLError drops the "yaml: line N: " prefix (the line is reported
// separately).
func cleanYAMLError(msg string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
	}
	return msg
}

// treeBuilder converts parsed input into a tree within the limits
// (MaxDepth, MaxNodes, MaxMappingKeys). Once MaxNodes is crossed it stops
// converting, so the work after the limit is a linear skim.
type treeBuilder struct {
	is         *issues
	lineOffset int
	nodes      int
	full       bool
}

// count accounts for one more value at ptr; it reports false (once with
// an issue) when the file holds more than MaxNodes values.
func (b *treeBuilder) count(ptr string, line int) bool {
	if b.full {
		return false
	}
	b.nodes++
	if b.nodes > MaxNodes {
		b.full = true
		b.is.addAt(ptr, line, CodeLimitExceeded, "%s", limitMessage("values in one file", MaxNodes))
		return false
	}
	return true
}

// fromYAML converts a yaml.Node; ptr locates it for issues.
func (b *treeBuilder) fromYAML(n *yaml.Node, ptr string, depth int) *tnode {
	line := n.Line + b.lineOffset
	if depth > MaxDepth {
		b.is.addAt(ptr, line, CodeLimitExceeded, "nested more than %d levels deep", MaxDepth)
		return &tnode{kind: nodeNull, line: line}
	}
	if !b.count(ptr, line) {
		return &tnode{kind: nodeNull, line: line}
	}
	is := b.is
	switch n.Kind {
	case yaml.AliasNode:
		is.add(ptr, CodeYAMLSyntax, "YAML aliases (*%s) are not supported; write the value out", n.Value)
		return &tnode{kind: nodeNull, line: line}
	case yaml.ScalarNode:
		return yamlScalar(n, ptr, line, is)
	case yaml.MappingNode:
		t := &tnode{kind: nodeMap, line: line}
		for i := 0; i+1 < len(n.Content) && !b.full; i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kline := k.Line + b.lineOffset
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				is.addAt(ptr, kline, CodeInvalidType, "mapping keys must be plain strings")
				continue
			}
			kptr := ptr + "/" + escapePointer(k.Value)
			if dup := t.lookup(k.Value); dup >= 0 {
				is.addAt(kptr, kline, CodeDuplicateField, "field %q is repeated (first on line %d)", k.Value, t.keyLines[dup])
				continue
			}
			if len(t.keys) >= MaxMappingKeys {
				is.addAt(kptr, kline, CodeLimitExceeded, "%s", limitMessage("keys in one mapping", MaxMappingKeys))
				break
			}
			t.addKey(k.Value, kline, b.fromYAML(v, kptr, depth+1))
		}
		return t
	case yaml.SequenceNode:
		t := &tnode{kind: nodeSeq, line: line}
		for i, c := range n.Content {
			if b.full {
				break
			}
			t.items = append(t.items, b.fromYAML(c, ptr+"/"+strconv.Itoa(i), depth+1))
		}
		return t
	}
	is.add(ptr, CodeYAMLSyntax, "unsupported YAML node")
	return &tnode{kind: nodeNull, line: line}
}

func yamlScalar(n *yaml.Node, ptr string, line int, is *issues) *tnode {
	t := &tnode{kind: nodeScalar, line: line, value: n.Value, raw: n.Value}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		t.typ = scalarString
	case "!!null":
		t.kind = nodeNull
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			is.add(ptr, CodeInvalidValue, "%q is not a boolean", n.Value)
			t.kind = nodeNull
			return t
		}
		t.typ, t.value = scalarBool, strconv.FormatBool(b)
	case "!!int", "!!float":
		var f float64
		var s string
		var typ scalarType
		var err error
		var i int64
		if tag == "!!int" && n.Decode(&i) == nil {
			s, typ = strconv.FormatInt(i, 10), scalarInt
		} else if err = n.Decode(&f); err == nil {
			s, typ, err = formatFloat(f)
		}
		if err != nil {
			is.add(ptr, CodeInvalidValue, "number %q is out of range or not finite", n.Value)
			t.kind = nodeNull
			return t
		}
		t.typ, t.value = typ, s
	default:
		is.add(ptr, CodeInvalidType, "unsupported YAML tag %s", tag)
		t.kind = nodeNull
	}
	return t
}

// limitError stops JSON parsing at the value at ptr that crossed a limit.
type limitError struct {
	ptr string
	msg string
}

func (e *limitError) Error() string { return e.msg }

// parseJSON parses a JSON body strictly: one value, no trailing data, no
// duplicate keys, within the limits.
func parseJSON(data []byte, is *issues) *tnode {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	b := treeBuilder{is: is}
	root, err := b.jsonValue(dec, "", 0)
	if err == nil {
		if _, err2 := dec.Token(); !errors.Is(err2, io.EOF) {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if le := (*limitError)(nil); errors.As(err, &le) {
		is.add(le.ptr, CodeLimitExceeded, "%s", le.msg)
		return nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of JSON input")
		}
		is.add("", CodeInvalidJSON, "%s", strings.TrimPrefix(err.Error(), "json: "))
		return nil
	}
	return root
}

func (b *treeBuilder) jsonValue(dec *json.Decoder, ptr string, depth int) (*tnode, error) {
	if depth > MaxDepth {
		return nil, &limitError{ptr, fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
	}
	b.nodes++
	if b.nodes > MaxNodes {
		return nil, &limitError{ptr, limitMessage("values in one body", MaxNodes)}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case nil:
		return &tnode{kind: nodeNull}, nil
	case bool:
		return &tnode{kind: nodeScalar, typ: scalarBool, value: strconv.FormatBool(v)}, nil
	case string:
		return &tnode{kind: nodeScalar, typ: scalarString, value: v}, nil
	case json.Number:
		s, typ, err := canonicalNumber(v.String())
		if err != nil {
			b.is.add(ptr, CodeInvalidValue, "%v", err)
			return &tnode{kind: nodeNull}, nil
		}
		return &tnode{kind: nodeScalar, typ: typ, value: s}, nil
	case json.Delim:
		switch v {
		case '{':
			t := &tnode{kind: nodeMap}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key must be a string")
				}
				kptr := ptr + "/" + escapePointer(k)
				val, err := b.jsonValue(dec, kptr, depth+1)
				if err != nil {
					return nil, err
				}
				if t.lookup(k) >= 0 {
					b.is.add(kptr, CodeDuplicateField, "field %q is repeated", k)
					continue
				}
				if len(t.keys) >= MaxMappingKeys {
					return nil, &limitError{kptr, limitMessage("keys in one object", MaxMappingKeys)}
				}
				t.addKey(k, 0, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return t, nil
		case '[':
			t := &tnode{kind: nodeSeq}
			for dec.More() {
				val, err := b.jsonValue(dec, ptr+"/"+strconv.Itoa(len(t.items)), depth+1)
				if err != nil {
					return nil, err
				}
				t.items = append(t.items, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return t, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// toAny converts a tree to plain JSON values: map[string]any, []any,
// string, bool, json.Number and nil.
func toAny(n *tnode) any {
	switch n.kind {
	case nodeScalar:
		switch n.typ {
		case scalarBool:
			return n.value == "true"
		case scalarInt, scalarFloat:
			return json.Number(n.value)
		}
		return n.value
	case nodeMap:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k] = toAny(n.vals[i])
		}
		return m
	case nodeSeq:
		s := make([]any, len(n.items))
		for i, c := range n.items {
			s[i] = toAny(c)
		}
		return s
	}
	return nil
}
