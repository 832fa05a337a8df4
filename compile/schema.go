package compile

import (
	"errors"
	"fmt"
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
	if msg := schemaError(params); msg != "" {
		is.add("/parameters", CodeInvalidSchema, "parameters is not a valid JSON Schema: %s", msg)
		return
	}
	if props, ok := params["properties"]; ok {
		if _, ok := props.(map[string]any); !ok {
			is.add("/parameters/properties", CodeInvalidSchema, "parameters.properties must be a mapping")
		}
	}
}

// schemaError compiles doc as a JSON Schema and describes the first
// problem, or returns "".
func schemaError(doc map[string]any) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("schema rejected: %v", r)
		}
	}()
	c := jsonschema.NewCompiler()
	c.UseLoader(refusingLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaLocation, doc); err != nil {
		return cleanSchemaError(err)
	}
	if _, err := c.Compile(schemaLocation); err != nil {
		return cleanSchemaError(err)
	}
	return ""
}

func cleanSchemaError(err error) string {
	var sve *jsonschema.SchemaValidationError
	var msg string
	if errors.As(err, &sve) && sve.Err != nil {
		msg = sve.Err.Error()
	} else {
		msg = err.Error()
	}
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
