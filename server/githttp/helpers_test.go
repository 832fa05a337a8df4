package githttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Keys understood by the test Authorize.
const (
	testKey      = "flowyte_sk_testkey"
	scopelessKey = "flowyte_sk_noscope"
	otherWSKey   = "flowyte_sk_otherworkspace"
	testID       = "agt_testagent"
)

// gitEnv is the environment of the test's own git client: no user or
// system config, no prompts, fixed identity.
func gitEnv(tb testing.TB) []string {
	tb.Helper()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tb.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"LC_ALL=C",
		"GIT_AUTHOR_NAME=Tester",
		"GIT_AUTHOR_EMAIL=tester@example.com",
		"GIT_COMMITTER_NAME=Tester",
		"GIT_COMMITTER_EMAIL=tester@example.com",
	}
}

// gitRun runs git in dir with extra environment and stdin, returning
// stdout, stderr and the error.
func gitRun(tb testing.TB, dir string, env []string, stdin []byte, args ...string) (string, string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(tb), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// mustGit runs git and fails the test on error; it returns trimmed stdout.
func mustGit(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, stderr, err := gitRun(tb, dir, nil, nil, args...)
	require.NoError(tb, err, "git %s\n%s", strings.Join(args, " "), stderr)
	return strings.TrimSpace(out)
}

// newRepo builds a bare agent repository with the flowyte layout: draft
// commits, release commits on refs/heads/published, annotated tags
// v1..vN on the release commits, HEAD → refs/heads/draft.
func newRepo(tb testing.TB, versions int) string {
	tb.Helper()
	dir := tb.TempDir()
	mustGit(tb, dir, "init", "-q", "--bare", dir)
	mustGit(tb, dir, "symbolic-ref", "HEAD", "refs/heads/draft")
	var s bytes.Buffer
	fmt.Fprintf(&s, "commit refs/heads/draft\nmark :1\ncommitter Tester <t@example.com> 1700000000 +0000\n")
	writeData(&s, "create agent")
	writeInline(&s, "agent.yaml", "name: test\n")
	writeInline(&s, "knowledge/intro.md", "# Intro\n\nHello.\n")
	mustFastImport(tb, dir, s.Bytes())
	for n := 1; n <= versions; n++ {
		addVersion(tb, dir, n)
	}
	return dir
}

// addVersion adds a draft commit, a release commit on it moving
// refs/heads/published, and the annotated tag v<n>, in one fast-import run
// (objects first, refs last, as the daemon writes them).
func addVersion(tb testing.TB, dir string, n int) {
	tb.Helper()
	mustFastImport(tb, dir, versionStream(n))
}

// versionStream is the fast-import stream of addVersion.
func versionStream(n int) []byte {
	var s bytes.Buffer
	when := 1700000000 + int64(n)*60
	fmt.Fprintf(&s, "commit refs/heads/draft\nmark :1\ncommitter Tester <t@example.com> %d +0000\n", when)
	writeData(&s, fmt.Sprintf("edit %d", n))
	fmt.Fprintf(&s, "from refs/heads/draft^0\n")
	writeInline(&s, "agent.yaml", fmt.Sprintf("name: test\ndescription: revision %d\n", n))
	fmt.Fprintf(&s, "\ncommit refs/heads/published\nmark :2\ncommitter Tester <t@example.com> %d +0000\n", when)
	writeData(&s, fmt.Sprintf("release v%d", n))
	fmt.Fprintf(&s, "from :1\n")
	writeInline(&s, "compiled/agent.json", fmt.Sprintf(`{"name":"test","revision":%d}`+"\n", n))
	fmt.Fprintf(&s, "\ntag v%d\nfrom :2\ntagger Tester <t@example.com> %d +0000\n", n, when)
	writeData(&s, fmt.Sprintf("notes: version %d\npublisher: tester\n", n))
	return s.Bytes()
}

func writeData(b *bytes.Buffer, data string) {
	fmt.Fprintf(b, "data %d\n%s\n", len(data), data)
}

func writeInline(b *bytes.Buffer, path, data string) {
	fmt.Fprintf(b, "M 100644 inline %s\n", path)
	writeData(b, data)
}

// mustFastImport feeds a fast-import stream into the bare repo dir.
func mustFastImport(tb testing.TB, dir string, stream []byte) {
	tb.Helper()
	_, stderr, err := gitRun(tb, dir, nil, stream, "fast-import", "--quiet", "--force")
	require.NoError(tb, err, "fast-import\n%s", stderr)
}

// keyIDOf is the key id testAuthorize reports for a known key.
func keyIDOf(key string) string { return "kid_" + strings.TrimPrefix(key, "flowyte_sk_") }

// testAuthorize is the Authorize of the tests: testKey reads the repos
// given, scopelessKey lacks the scope, otherWSKey sees another workspace.
// Known keys are reported with keyIDOf, refusals included.
func testAuthorize(repos map[string]string) func(context.Context, string, string) (Grant, error) {
	return func(_ context.Context, token, id string) (Grant, error) {
		g := Grant{KeyID: keyIDOf(token)}
		switch token {
		case testKey:
		case scopelessKey:
			if _, ok := repos[id]; !ok {
				return g, ErrNotFound
			}
			return g, ErrForbidden
		case otherWSKey:
			return g, ErrNotFound
		default:
			return Grant{}, ErrUnauthorized
		}
		dir, ok := repos[id]
		if !ok {
			return g, fmt.Errorf("agent %s: %w", id, ErrNotFound)
		}
		g.RepoDir = dir
		return g, nil
	}
}

// newServer serves the handler over the given repos; mod may adjust the
// options.
func newServer(tb testing.TB, repos map[string]string, mod func(*Options)) *httptest.Server {
	tb.Helper()
	o := Options{Authorize: testAuthorize(repos)}
	if mod != nil {
		mod(&o)
	}
	srv := httptest.NewServer(New(o))
	tb.Cleanup(srv.Close)
	return srv
}

// cloneURL is the URL a user clones, with the key as Basic password.
func cloneURL(srv *httptest.Server, key, id string) string {
	return strings.Replace(srv.URL, "http://", "http://x:"+key+"@", 1) + "/git/" + id + ".git"
}

// mustClone clones url into a fresh directory with extra git arguments
// before "clone" (e.g. -c protocol.version=0) and returns the directory.
func mustClone(tb testing.TB, url string, pre []string, extra ...string) string {
	tb.Helper()
	dst := tb.TempDir()
	args := append(append(append([]string{}, pre...), "clone", "-q"), extra...)
	args = append(args, url, dst)
	_, stderr, err := gitRun(tb, "", nil, nil, args...)
	require.NoError(tb, err, "git clone\n%s", stderr)
	return dst
}

// objectCount returns how many objects a repository holds, loose and packed.
func objectCount(tb testing.TB, dir string) int {
	tb.Helper()
	total := 0
	for _, line := range strings.Split(mustGit(tb, dir, "count-objects", "-v"), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if k == "count" || k == "in-pack" {
			n, err := strconv.Atoi(v)
			require.NoError(tb, err, "count-objects line %q", line)
			total += n
		}
	}
	return total
}

// do sends a request with the given method, path, headers and body and
// returns the response with its body read.
func do(tb testing.TB, srv *httptest.Server, method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, bytes.NewReader(body))
	require.NoError(tb, err, "new request %s %s", method, path)
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	require.NoError(tb, err, "%s %s", method, path)
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); !errors.Is(err, context.Canceled) {
		require.NoError(tb, err, "%s %s: read body", method, path)
	}
	return resp, b.Bytes()
}

// problemOf checks that an error answer is the text/plain sentence of
// CONTRACT §7 (one line "<code>: <sentence>.") and returns the code.
func problemOf(tb testing.TB, resp *http.Response, body []byte) string {
	tb.Helper()
	require.Equal(tb, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"), "body %q", body)
	require.Equal(tb, "no-store", resp.Header.Get("Cache-Control"))
	s := string(body)
	require.True(tb, strings.HasSuffix(s, ".\n"), "body %q is not one sentence ending with a full stop", s)
	require.Equal(tb, 1, strings.Count(s, "\n"), "body %q is more than one line", s)
	code, sentence, ok := strings.Cut(strings.TrimSuffix(s, ".\n"), ": ")
	require.True(tb, ok, "body %q has no \"<code>: \" prefix", s)
	require.NotEmpty(tb, sentence)
	require.Regexp(tb, `^[a-z_]+$`, code)
	return code
}

// pkt formats one pkt-line.
func pkt(s string) string {
	return fmt.Sprintf("%04x%s", len(s)+4, s)
}
