package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportDirection guards the package direction
// cmd → server (gin) → server/backend → {repo, server/store} → compile
// (tailscale's deptest idea):
// it lists each package's transitive imports and fails on a forbidden one.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/flowyte/flowyte/"
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"compile", []string{mod + "repo", mod + "server", "database/sql", "net/http", "os/exec", "github.com/go-git/", "github.com/gin-gonic/", "modernc.org/sqlite", "time/tzdata"}},
		{"repo", []string{mod + "server", "github.com/gin-gonic/", "database/sql", "modernc.org/sqlite"}},
		{"server/store", []string{mod + "server\x00", mod + "repo", mod + "server/responder", mod + "server/webhook", "github.com/gin-gonic/", "github.com/go-git/"}},
		{"server/responder", []string{mod + "repo", mod + "server/store", "database/sql", "net/http", "github.com/gin-gonic/", "github.com/go-git/"}},
		{"server/testrun", []string{mod + "repo", mod + "server\x00", mod + "server/store", mod + "server/backend", mod + "server/webhook", "database/sql", "net/http", "github.com/gin-gonic/", "github.com/go-git/"}},
		{"server/githttp", []string{mod, "github.com/gin-gonic/", "github.com/go-git/"}},
		{"server/webhook", []string{mod + "repo", mod + "server\x00", "github.com/gin-gonic/", "github.com/go-git/"}},
		{"server/backend", []string{mod + "server\x00", "github.com/gin-gonic/"}},
		{"fixtures", []string{mod + "repo", mod + "server", "github.com/go-git/"}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", mod+r.pkg).CombinedOutput()
			require.NoError(t, err, "go list -deps %s\n%s", r.pkg, out)
			for _, dep := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if dep == mod+r.pkg || strings.HasPrefix(dep, mod+r.pkg+"/") {
					continue
				}
				for _, f := range r.forbidden {
					exact := strings.HasSuffix(f, "\x00")
					f = strings.TrimSuffix(f, "\x00")
					forbidden := (exact && dep == f) || (!exact && strings.HasPrefix(dep, f))
					assert.False(t, forbidden, "%s imports %s (forbidden: %s)", r.pkg, dep, f)
				}
			}
		})
	}
}

// TestTransportsStayThin checks the rule of the backend split: the
// backend imports neither gin nor net/http, and no package that imports
// gin reaches the database (server/store or a driver) directly.
func TestTransportsStayThin(t *testing.T) {
	const mod = "github.com/flowyte/flowyte/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports ","}}`, mod+"...").CombinedOutput()
	require.NoError(t, err, "go list\n%s", out)
	db := []string{mod + "server/store", "database/sql", "modernc.org/sqlite", "github.com/jackc/"}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, ":")
		imports := strings.Split(list, ",")
		has := func(prefix string) bool {
			for _, imp := range imports {
				if imp == prefix || strings.HasPrefix(imp, prefix+"/") || (strings.HasSuffix(prefix, "/") && strings.HasPrefix(imp, prefix)) {
					return true
				}
			}
			return false
		}
		if pkg == mod+"server/backend" {
			checked++
			for _, f := range []string{"github.com/gin-gonic/gin", "net/http"} {
				assert.False(t, has(f), "server/backend imports %s: use cases must not know the transport", f)
			}
		}
		if has("github.com/gin-gonic/gin") {
			checked++
			for _, f := range db {
				assert.False(t, has(f), "%s imports gin and %s: handlers call the backend, never the database", pkg, f)
			}
		}
	}
	assert.GreaterOrEqual(t, checked, 2, "checked packages, want the backend and at least one gin package")
}
