package githttp

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitIn runs git with the protocol's arguments in dir and fails the test
// on error; it returns trimmed stdout.
func gitIn(tb testing.TB, p protocol, dir string, args ...string) string {
	tb.Helper()
	out, stderr, err := gitRun(tb, dir, nil, nil, append(append([]string{}, p.pre...), args...)...)
	require.NoError(tb, err, "git %s\n%s", strings.Join(args, " "), stderr)
	return strings.TrimSpace(out)
}

func TestShallowAndDeepen(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	draft := mustGit(t, repo, "rev-parse", "draft")
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre, "--depth", "1")
			assert.Equal(t, "1", mustGit(t, dst, "rev-list", "--count", "HEAD"))
			assert.Equal(t, "true", mustGit(t, dst, "rev-parse", "--is-shallow-repository"))
			assert.Equal(t, draft, mustGit(t, dst, "rev-parse", "HEAD"))

			gitIn(t, p, dst, "fetch", "-q", "--deepen", "2")
			assert.Equal(t, "3", mustGit(t, dst, "rev-list", "--count", "HEAD"))

			gitIn(t, p, dst, "fetch", "-q", "--unshallow")
			assert.Equal(t, "false", mustGit(t, dst, "rev-parse", "--is-shallow-repository"))
			assert.Equal(t, mustGit(t, repo, "rev-list", "--count", "draft"), mustGit(t, dst, "rev-list", "--count", "HEAD"))
			mustGit(t, dst, "fsck", "--no-progress")

			// The draft's commits are a minute apart from 1700000060 on.
			since := mustClone(t, cloneURL(srv, testKey, testID), p.pre, "--shallow-since", "1700000110", "--single-branch")
			assert.Equal(t, "2", mustGit(t, since, "rev-list", "--count", "HEAD"))
		})
	}
}

// TestPartialClone: --filter=blob:none clones commits and trees only;
// checking out an older version fetches its blobs by id on demand, which
// needs allow-reachable-sha1-in-want on v0 and v1.
func TestPartialClone(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := mustClone(t, cloneURL(srv, testKey, testID), p.pre, "--filter=blob:none", "--no-checkout")
			assert.Equal(t, "true", mustGit(t, dst, "config", "remote.origin.promisor"))
			missing := gitIn(t, p, dst, "rev-list", "--objects", "--all", "--missing=print")
			assert.Contains(t, missing, "\n?", "no blob left out of the partial clone")

			gitIn(t, p, dst, "checkout", "-q", "v1")
			out, stderr, err := gitRun(t, dst, nil, nil, "show", "HEAD:agent.yaml")
			require.NoError(t, err, stderr)
			assert.Equal(t, "name: test\ndescription: revision 1\n", out)
			gitIn(t, p, dst, "checkout", "-q", "draft")
			assert.FileExists(t, dst+"/knowledge/intro.md")
			gitIn(t, p, dst, "fsck", "--no-progress")
		})
	}
}

// TestFetchByCommitID: `git fetch <url> <commit id>` works on every
// protocol for a commit reachable from the layout refs; on v0 and v1 an
// object reachable from no ref is refused (v2's upload-pack checks no
// wants, see uploadPackArgs).
func TestFetchByCommitID(t *testing.T) {
	repo := newRepo(t, 3)
	srv := newServer(t, map[string]string{testID: repo}, nil)
	old := mustGit(t, repo, "rev-parse", "v1^{commit}")
	oldDraft := mustGit(t, repo, "rev-parse", "draft~2")
	dangling := mustGit(t, repo, "commit-tree", mustGit(t, repo, "rev-parse", "draft^{tree}"), "-m", "never landed")
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			dst := t.TempDir()
			mustGit(t, dst, "init", "-q")
			for _, id := range []string{old, oldDraft} {
				gitIn(t, p, dst, "fetch", "-q", cloneURL(srv, testKey, testID), id)
				assert.Equal(t, id, mustGit(t, dst, "rev-parse", "FETCH_HEAD"))
			}
			mustGit(t, dst, "fsck", "--no-progress")
			if p.name == "v2" {
				return
			}
			_, stderr, err := gitRun(t, dst, nil, nil, append(append([]string{}, p.pre...), "fetch", "-q", cloneURL(srv, testKey, testID), dangling)...)
			require.Error(t, err, "fetched an unreachable commit")
			assert.Contains(t, stderr, "not our ref")
		})
	}
}
