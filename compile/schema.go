package compile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaLocation is the made-up address parameter schemas are compiled
// under. Nothing is ever fetched from it.
const schemaLocation = "https://flowyte.invalid/skill-parameters.json"

// errNoFetch is what every $ref or $schema outside the document gets:
// compile never reads files or the network.
var errNoFetch = errors.New("references to other documents are not allowed")

// refusingLoader is a jsonschema.URLLoader that loads nothing.
type refusingLoader struct{}

// Load implements jsonschema.URLLoader.
func (refusingLoader) Load(string) (any, error) { return nil, errNoFetch }

// checkParameterSchema reports whether params is a JSON Schema of type
// object, validated against its metaschema (the standard metaschemas are
// embedded in the jsonschema module; nothing is loaded).
func checkParameterSchema(params map[string]any, is *issues) {
	if t, _ := params["type"].(string); t != "object" {
		is.add("/parameters", CodeInvalidSchema, `parameters must be a JSON Schema with "type": "object"`)
		return
	}
	if countValues(params, MaxSchemaNodes) > MaxSchemaNodes {
		is.add("/parameters", CodeLimitExceeded, "parameters holds more than %d values; at most %d are allowed in a parameters schema", MaxSchemaNodes, MaxSchemaNodes)
		return
	}
	if ptr, msg := schemaError(params); msg != "" {
		is.add("/parameters"+ptr, CodeInvalidSchema, "parameters is not a valid JSON Schema: %s", msg)
		return
	}
	if props, ok := params["properties"]; ok {
		if _, ok := props.(map[string]any); !ok {
			is.add("/parameters/properties", CodeInvalidSchema, "parameters.properties must be a mapping")
		}
	}
}

// schemaError compiles doc as a JSON Schema and describes what is wrong
// (ptr locates it inside doc), or returns msg "".
func schemaError(doc map[string]any) (ptr, msg string) {
	defer func() {
		if r := recover(); r != nil {
			ptr, msg = "", fmt.Sprintf("schema rejected: %v", r)
		}
	}()
	c := jsonschema.NewCompiler()
	c.UseLoader(refusingLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaLocation, doc); err != nil {
		return "", cleanSchemaError(err.Error())
	}
	if _, err := c.Compile(schemaLocation); err != nil {
		var le *jsonschema.LoadURLError
		if errors.As(err, &le) {
			return "", fmt.Sprintf("%q is outside this schema; references to other documents are not allowed", le.URL)
		}
		return describeSchemaError(err)
	}
	return "", ""
}

// describeSchemaError turns a metaschema validation failure into the
// location and text of its most specific causes, in a stable order.
func describeSchemaError(err error) (ptr, msg string) {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if !errors.As(err, &sve) || !errors.As(sve.Err, &ve) {
		return "", cleanSchemaError(err.Error())
	}
	type leaf struct{ ptr, msg string }
	var leaves []leaf
	var walk func(e *jsonschema.ValidationError, depth int)
	walk = func(e *jsonschema.ValidationError, depth int) {
		if len(e.Causes) == 0 || depth > MaxDepth {
			p := ""
			for _, tok := range e.InstanceLocation {
				p += "/" + escapePointer(tok)
			}
			text := e.Error()
			if rest, ok := strings.CutPrefix(text, "at '"); ok {
				if _, after, ok := strings.Cut(rest, "': "); ok {
					text = after
				}
			}
			leaves = append(leaves, leaf{p, cleanSchemaError(text)})
			return
		}
		for _, c := range e.Causes {
			walk(c, depth+1)
		}
	}
	walk(ve, 0)
	slices.SortFunc(leaves, func(a, b leaf) int { return cmp.Or(strings.Compare(a.ptr, b.ptr), strings.Compare(a.msg, b.msg)) })
	leaves = slices.Compact(leaves)
	if len(leaves) == 0 {
		return "", cleanSchemaError(err.Error())
	}
	var parts []string
	for _, l := range leaves {
		if l.ptr == leaves[0].ptr {
			parts = append(parts, l.msg)
		}
	}
	where := leaves[0].ptr
	if where == "" {
		where = "/"
	}
	return leaves[0].ptr, fmt.Sprintf("at %s: %s", where, strings.Join(parts, "; "))
}

func cleanSchemaError(msg string) string {
	msg = strings.ReplaceAll(msg, schemaLocation, "parameters")
	lines := strings.Split(msg, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
