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
	if err != nil {
		tb.Fatal(err)
	}
	logs := &logBuf{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
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
		tb.Fatalf("daemon exited at start: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		tb.Fatalf("daemon did not start\n%s", logs)
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
		if time.Now().After(deadline) {
			tb.Fatalf("healthz never answered")
		}
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
	if err != nil {
		d.tb.Fatalf("bootstrap key: %v", err)
	}
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
	if err != nil || st != want {
		tb.Fatalf("%s %s: status=%d err=%v, want %d: %v", method, url, st, err, want, m)
	}
	return m
}

func gitCmd(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+tb.TempDir(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDaemonLifecycle: first start bootstraps a key (0600), keys can be
// made while the daemon runs, a stock git client clones and fetches, and
// SIGTERM exits 0.
func TestDaemonLifecycle(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	fi, err := os.Stat(filepath.Join(data, "bootstrap.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap.key: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	key := d.bootstrapKey()
	if strings.Contains(d.logs.String(), key) {
		t.Fatal("the bootstrap secret appears in the logs")
	}

	// keys create works beside the running daemon.
	var out, errb bytes.Buffer
	create := exec.Command(binPath, "keys", "create", "--data", data, "--workspace", "default", "--name", "ci", "--scopes", "agents:read")
	create.Stdout, create.Stderr = &out, &errb
	if err := create.Run(); err != nil {
		t.Fatalf("keys create: %v\n%s", err, errb.String())
	}
	reader := strings.TrimSpace(out.String())
	if !strings.HasPrefix(reader, "flowyte_sk_") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("keys create printed %q, want the secret alone", out.String())
	}
	mustCall(t, "GET", d.url+"/agents", reader, nil, 200)
	if st, _, _ := call(http.DefaultClient, "POST", d.url+"/agents", reader, map[string]any{"name": "x"}); st != 403 {
		t.Fatalf("read key could write: %d", st)
	}

	a := mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "Clone me"}, 201)
	id := a["id"].(string)
	mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/faq.md", key, []byte("# FAQ\n"), 200)
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "one"}, 201)

	work := t.TempDir()
	cloneURL := strings.Replace(a["cloneUrl"].(string), "http://", "http://x:"+reader+"@", 1)
	gitCmd(t, work, "clone", "-q", cloneURL, "agent")
	clone := filepath.Join(work, "agent")
	if tags := strings.TrimSpace(gitCmd(t, clone, "tag")); tags != "v1" {
		t.Fatalf("tags %q", tags)
	}
	gitCmd(t, clone, "rev-parse", "origin/published")
	mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/faq.md", key, []byte("# FAQ\nmore\n"), 200)
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "two"}, 201)
	gitCmd(t, clone, "fetch", "-q")
	if tags := strings.Fields(gitCmd(t, clone, "tag")); len(tags) != 2 {
		t.Fatalf("after fetch tags %v, want v1 v2", tags)
	}
	if diff := gitCmd(t, clone, "diff", "--stat", "v1", "v2"); !strings.Contains(diff, "knowledge/faq.md") {
		t.Fatalf("git diff v1 v2: %s", diff)
	}
	// Shallow and protocol v2 clones through the daemon.
	gitCmd(t, work, "-c", "protocol.version=2", "clone", "-q", "--depth", "1", "--branch", "published", cloneURL, "shallow")
	if n := strings.TrimSpace(gitCmd(t, filepath.Join(work, "shallow"), "rev-list", "--count", "HEAD")); n != "1" {
		t.Fatalf("shallow clone has %s commits", n)
	}
	// Push is refused.
	push := exec.Command("git", "push", "origin", "HEAD:refs/heads/draft")
	push.Dir = clone
	if out, err := push.CombinedOutput(); err == nil || !strings.Contains(string(out), "403") {
		t.Fatalf("push was not refused with 403: %v\n%s", err, out)
	}
	// Revoking with the CLI while the daemon runs takes effect at once,
	// even though the daemon had the key cached.
	out.Reset()
	lister := exec.Command(binPath, "keys", "list", "--data", data)
	lister.Stdout = &out
	if err := lister.Run(); err != nil {
		t.Fatalf("keys list: %v", err)
	}
	var ciID string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "ci" {
			ciID = f[0]
		}
	}
	if ciID == "" {
		t.Fatalf("keys list has no ci key:\n%s", out.String())
	}
	if err := exec.Command(binPath, "keys", "revoke", "--data", data, ciID).Run(); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	if st, _, _ := call(http.DefaultClient, "GET", d.url+"/agents", reader, nil); st != 401 {
		t.Fatalf("revoked key: status %d, want 401", st)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, d.logs)
	}
	if !strings.Contains(d.logs.String(), `"route":"/agents/:id/publish"`) {
		t.Fatalf("no structured request log line:\n%s", d.logs)
	}
	if strings.Contains(d.logs.String(), reader) || strings.Contains(d.logs.String(), key) {
		t.Fatal("a secret appears in the logs")
	}
	// A clean shutdown says so.
	if !strings.Contains(d.logs.String(), "stopped") {
		t.Fatalf("no shutdown log line")
	}

	// keys list shows both, without secrets; revoke takes effect.
	out.Reset()
	list := exec.Command(binPath, "keys", "list", "--data", data)
	list.Stdout = &out
	if err := list.Run(); err != nil || !strings.Contains(out.String(), "bootstrap") || strings.Contains(out.String(), "flowyte_sk_") {
		t.Fatalf("keys list: %v\n%s", err, out.String())
	}
}
