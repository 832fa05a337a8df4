package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binPath is the daemon built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowyted-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "flowyted")
	build := exec.Command("go", "build", "-race", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one running flowyted process.
type daemon struct {
	tb   testing.TB
	cmd  *exec.Cmd
	url  string
	data string
	logs *logBuf
	done chan error
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startDaemon runs `flowyted serve` on a free loopback port over data.
func startDaemon(tb testing.TB, data string, extra ...string) *daemon {
	tb.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json", "--webhook-allow-private"}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "FLOWYTE_WEBHOOK_RETRY_SCHEDULE=50ms,100ms")
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	logs := &logBuf{}
	cmd.Stderr = logs
	require.NoError(tb, cmd.Start(), "start %s", binPath)
	d := &daemon{tb: tb, cmd: cmd, data: data, logs: logs, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { d.done <- cmd.Wait() }()
	select {
	case d.url = <-urlc:
	case err := <-d.done:
		require.FailNow(tb, "daemon exited at start", "%v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		require.FailNow(tb, "daemon did not start within 60s", "%s", logs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(d.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		require.False(tb, time.Now().After(deadline), "healthz never answered 200 within 30s")
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// logBuf collects the daemon's stderr; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stop sends sig and waits for the exit.
func (d *daemon) stop(sig syscall.Signal) error {
	_ = d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		return fmt.Errorf("did not exit after %v", sig)
	}
}

func (d *daemon) bootstrapKey() string {
	d.tb.Helper()
	data, err := os.ReadFile(filepath.Join(d.data, "bootstrap.key"))
	require.NoError(d.tb, err, "bootstrap key")
	return strings.TrimSpace(string(data))
}

// call sends a JSON request and decodes a JSON answer.
func call(client *http.Client, method, url, key string, body any) (int, map[string]any, error) {
	var rdr io.Reader
	if b, ok := body.([]byte); ok {
		rdr = bytes.NewReader(b)
	} else if body != nil {
		data, _ := json.Marshal(body)
		rdr = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rdr)
	if err != nil {
		return 0, nil, err
	}
	if _, raw := body.([]byte); body != nil && !raw {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return res.StatusCode, m, nil
}

func mustCall(tb testing.TB, method, url, key string, body any, want int) map[string]any {
	tb.Helper()
	st, m, err := call(http.DefaultClient, method, url, key, body)
	require.NoError(tb, err, "%s %s", method, url)
	require.Equal(tb, want, st, "%s %s: status, body %v", method, url, m)
	return m
}

func gitCmd(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+tb.TempDir(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "git %s\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestDaemonLifecycle: first start bootstraps a key (0600), keys can be
// made while the daemon runs, a stock git client clones and fetches, and
// SIGTERM exits 0.
func TestDaemonLifecycle(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	fi, err := os.Stat(filepath.Join(data, "bootstrap.key"))
	require.NoError(t, err, "bootstrap.key")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "bootstrap.key mode")
	key := d.bootstrapKey()
	assert.NotContains(t, d.logs.String(), key, "the bootstrap secret appears in the logs")

	// keys create works beside the running daemon.
	var out, errb bytes.Buffer
	create := exec.Command(binPath, "keys", "create", "--data", data, "--workspace", "default", "--name", "ci", "--scopes", "agents:read")
	create.Stdout, create.Stderr = &out, &errb
	require.NoError(t, create.Run(), "keys create\n%s", errb.String())
	reader := strings.TrimSpace(out.String())
	require.True(t, strings.HasPrefix(reader, "flowyte_sk_"), "keys create printed %q, want the secret alone", out.String())
	assert.Equal(t, 1, strings.Count(out.String(), "\n"), "keys create printed %q, want the secret alone", out.String())
	mustCall(t, "GET", d.url+"/agents", reader, nil, 200)
	st, _, err := call(http.DefaultClient, "POST", d.url+"/agents", reader, map[string]any{"name": "x"})
	require.NoError(t, err)
	assert.Equal(t, 403, st, "read key could write")

	a := mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "Clone me"}, 201)
	id := strField(t, a, "id")
	cloneURL := strField(t, a, "cloneUrl")
	mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/faq.md", key, []byte("# FAQ\n"), 200)
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "one"}, 201)

	work := t.TempDir()
	cloneURL = strings.Replace(cloneURL, "http://", "http://x:"+reader+"@", 1)
	gitCmd(t, work, "clone", "-q", cloneURL, "agent")
	clone := filepath.Join(work, "agent")
	assert.Equal(t, "v1", strings.TrimSpace(gitCmd(t, clone, "tag")), "tags after clone")
	gitCmd(t, clone, "rev-parse", "origin/published")
	mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/faq.md", key, []byte("# FAQ\nmore\n"), 200)
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "two"}, 201)
	gitCmd(t, clone, "fetch", "-q")
	assert.Equal(t, []string{"v1", "v2"}, strings.Fields(gitCmd(t, clone, "tag")), "tags after fetch")
	assert.Contains(t, gitCmd(t, clone, "diff", "--stat", "v1", "v2"), "knowledge/faq.md", "git diff v1 v2")
	// Shallow and protocol v2 clones through the daemon.
	gitCmd(t, work, "-c", "protocol.version=2", "clone", "-q", "--depth", "1", "--branch", "published", cloneURL, "shallow")
	assert.Equal(t, "1", strings.TrimSpace(gitCmd(t, filepath.Join(work, "shallow"), "rev-list", "--count", "HEAD")), "commits in the shallow clone")
	// Push is refused.
	push := exec.Command("git", "push", "origin", "HEAD:refs/heads/draft")
	push.Dir = clone
	pushOut, err := push.CombinedOutput()
	assert.Error(t, err, "push was not refused:\n%s", pushOut)
	assert.Contains(t, string(pushOut), "403", "push was not refused with 403")
	// Revoking with the CLI while the daemon runs takes effect at once,
	// even though the daemon had the key cached.
	out.Reset()
	lister := exec.Command(binPath, "keys", "list", "--data", data)
	lister.Stdout = &out
	require.NoError(t, lister.Run(), "keys list")
	var ciID string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "ci" {
			ciID = f[0]
		}
	}
	require.NotEmpty(t, ciID, "keys list has no ci key:\n%s", out.String())
	require.NoError(t, exec.Command(binPath, "keys", "revoke", "--data", data, ciID).Run(), "keys revoke")
	st, _, err = call(http.DefaultClient, "GET", d.url+"/agents", reader, nil)
	require.NoError(t, err)
	assert.Equal(t, 401, st, "revoked key: status")
	require.NoError(t, d.stop(syscall.SIGTERM), "SIGTERM exit\n%s", d.logs)
	logs := d.logs.String()
	assert.Contains(t, logs, `"route":"/agents/:id/publish"`, "no structured request log line")
	assert.NotContains(t, logs, reader, "a secret appears in the logs")
	assert.NotContains(t, logs, key, "a secret appears in the logs")
	// A clean shutdown says so.
	assert.Contains(t, logs, "stopped", "no shutdown log line")

	// keys list shows both, without secrets; revoke takes effect.
	out.Reset()
	list := exec.Command(binPath, "keys", "list", "--data", data)
	list.Stdout = &out
	require.NoError(t, list.Run(), "keys list")
	assert.Contains(t, out.String(), "bootstrap", "keys list")
	assert.NotContains(t, out.String(), "flowyte_sk_", "keys list shows a secret")
}

// strField returns m[key] as a string; the test stops when it is not one.
func strField(tb testing.TB, m map[string]any, key string) string {
	tb.Helper()
	s, ok := m[key].(string)
	require.True(tb, ok, "%s=%v (%T), want a string in %v", key, m[key], m[key], m)
	return s
}
