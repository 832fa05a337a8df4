package compile_test

import (
	"fmt"

	"github.com/flowyte/flowyte/compile"
)

func ExampleCompile() {
	r := compile.Compile(map[string][]byte{
		"agent.yaml": []byte("name: Demo\n"),
		"playbooks/hello.yaml": []byte(`triggers: [hello]
steps:
  - say: Hi {{name}}!
`),
	})
	fmt.Println(r.OK())
	for _, d := range r.Errors {
		fmt.Println(d)
	}
	// Output:
	// false
	// playbooks/hello.yaml:3: undefined_variable: {{name}} is used before any earlier ask saves it
}

func ExampleParsePath() {
	kind, slug, err := compile.ParsePath("skills/order-status.yaml")
	fmt.Println(kind, slug, err)
	_, _, err = compile.ParsePath("../etc/passwd")
	fmt.Println(err)
	// Output:
	// skills order-status <nil>
	// invalid path "../etc/passwd": must not contain empty, . or .. segments
}
