package dashboard

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportsNoGinNorServer keeps the package a leaf of the transport:
// sessions and assets over net/http only, the daemon injected.
func TestImportsNoGinNorServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		assert.NotContains(t, dep, "gin-gonic", "dashboard must not import gin")
		assert.NotEqual(t, "github.com/flowyte/flowyte/server", dep, "dashboard must not import the server package")
		if dep != "github.com/flowyte/flowyte/server/dashboard" {
			assert.False(t, strings.HasPrefix(dep, "github.com/flowyte/flowyte/"), "dashboard imports %s", dep)
		}
	}
}
