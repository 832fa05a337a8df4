package dashboard_test

// Browser tests: the real daemon (server.New over temp git repositories
// and SQLite) behind httptest, driven in Debian's headless chromium through
// chromedp. Screenshots of each step go to test-artifacts/ (gitignored), or
// to $FLOWYTE_TEST_ARTIFACTS.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/store"
)

// daemon is one flowyted under test with an agent from the acme-support
// fixture published as v1.
type daemon struct {
	tb     testing.TB
	srv    *httptest.Server
	admin  string // every scope
	reader string // agents:read and chat:write
	agent  string
}

func newDaemon(tb testing.TB) *daemon {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"))
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: func(files map[string][]byte) ([]byte, error) {
		res := compile.Compile(files)
		if !res.OK() {
			return nil, res.Errors
		}
		return res.JSON, nil
	}})
	require.NoError(tb, err)
	d := &daemon{tb: tb}
	d.srv = httptest.NewServer(server.New(server.Deps{Repos: repos, Store: st, Log: zerolog.Nop(), AllowPrivateWebhooks: true}))
	tb.Cleanup(d.srv.Close)
	mk := func(name string, scopes ...string) string {
		secret, _, err := server.CreateKey(context.Background(), st, "default", name, scopes, time.Now())
		require.NoError(tb, err)
		return secret
	}
	d.admin = mk("admin", server.AllScopes...)
	d.reader = mk("reader", server.ScopeAgentsRead, server.ScopeChatWrite)

	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	a := d.api("POST", "/agents", d.admin, map[string]any{"name": "Acme Support"}, 201)
	d.agent = a["id"].(string)
	var changes []map[string]any
	for p, c := range files {
		changes = append(changes, map[string]any{"path": p, "content": string(c)})
	}
	d.api("POST", "/agents/"+d.agent+"/draft/commits", d.admin, map[string]any{"changes": changes}, 201)
	d.api("POST", "/agents/"+d.agent+"/publish", d.admin, map[string]any{"notes": "first release"}, 201)
	return d
}

// api calls the daemon with a Bearer key and asserts the status.
func (d *daemon) api(method, path, key string, body any, status int) map[string]any {
	d.tb.Helper()
	var rdr io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rdr = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, d.srv.URL+path, rdr)
	require.NoError(d.tb, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.tb, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	require.Equal(d.tb, status, res.StatusCode, "%s %s: %s", method, path, data)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

// file returns a draft file's content.
func (d *daemon) file(path string) string {
	req, _ := http.NewRequest("GET", d.srv.URL+"/agents/"+d.agent+"/draft/files/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.admin)
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.tb, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return string(data)
}

// browser starts headless chromium, or skips the test when it is absent.
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it): skipping browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	tctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return tctx
}

// artifacts is where screenshots go.
func artifacts(t *testing.T) string {
	dir := os.Getenv("FLOWYTE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("test-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// shot saves a full-page PNG screenshot.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifacts(t), name+".png"), buf, 0o644))
}

// run runs actions and fails the test with a screenshot on error.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(artifacts(t), "FAILED-"+step+".png"), buf, 0o644)
		}
		t.Fatalf("%s: %v", step, err)
	}
}

// poll waits until a JavaScript expression is truthy.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}

// watchCSP records Content-Security-Policy violations of the current page
// in window.__csp (the app is a single page: it lasts until sign-out).
const watchCSP = `window.__csp = []; document.addEventListener('securitypolicyviolation',
	e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); true`

// get runs one action that reads a value.
func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// button and link find a control by its visible text.
func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, text) }
func link(text string) string   { return fmt.Sprintf(`//a[normalize-space()=%q]`, text) }

// waitText waits until the page shows text.
func waitText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(fmt.Sprintf(`//*[contains(normalize-space(text()), %q)]`, text))
}

// setField sets an input's value the way typing does (an input event).
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.focus(); el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true})); return true })()`, sel, value)
	return chromedp.Evaluate[chromedp.Void](js)
}

func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#apikey`)),
		chromedp.SendKeys(chromedp.CSS(`#apikey`), key+kb.Enter),
		chromedp.WaitVisible(button("Sign out")),
	)
}

// unnamedControls lists interactive elements without an accessible name.
const unnamedControls = `(() => {
  const name = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    if (el.getAttribute('aria-labelledby')) return el.getAttribute('aria-labelledby').split(' ').map(id => document.getElementById(id)?.textContent || '').join(' ');
    if (el.id && document.querySelector('label[for="' + el.id + '"]')) return document.querySelector('label[for="' + el.id + '"]').textContent;
    if (el.closest('label')) return el.closest('label').textContent;
    return el.textContent || el.getAttribute('title') || '';
  };
  return [...document.querySelectorAll('button, a[href], input, select, textarea, [contenteditable=true]')]
    .filter(el => el.offsetParent !== null && !name(el).trim())
    .map(el => el.outerHTML.slice(0, 120));
})()`

func assertNamed(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	unnamed := get(t, ctx, "names "+page, chromedp.Evaluate[[]string](unnamedControls))
	assert.Empty(t, unnamed, "controls without an accessible name on %s", page)
}

// TestBrowserReleaseFlow is the seed's flow: sign in, edit a knowledge
// article, ask the tester side by side (draft and published answers
// differ), review the diff, publish, roll back, sign out.
func TestBrowserReleaseFlow(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	base := d.srv.URL

	run(t, ctx, "open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#apikey`)))
	label := get(t, ctx, "label", chromedp.Text(chromedp.CSS(`label[for=apikey]`)))
	assert.Equal(t, "API key", label)
	shot(t, ctx, "01-sign-in")
	run(t, ctx, "watch csp", chromedp.Evaluate[chromedp.Void](watchCSP))
	run(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS(`#apikey`), d.admin+kb.Enter),
		chromedp.WaitVisible(button("Sign out")),
	)
	run(t, ctx, "agents", chromedp.WaitVisible(link("Acme Support")), chromedp.WaitVisible(button("New agent")))
	assertNamed(t, ctx, "agents")
	shot(t, ctx, "02-agents")

	// Draft: edit the warranty article in its typed form and save.
	run(t, ctx, "open draft",
		chromedp.Click(link("Acme Support")),
		chromedp.WaitVisible(button("warranty.md")),
		chromedp.Click(button("warranty.md")),
		chromedp.WaitVisible(chromedp.CSS(`#f-content`)),
	)
	for _, l := range []string{"Draft", "Tester", "Review", "Versions", "Traffic", "Webhooks"} {
		run(t, ctx, "tab "+l, chromedp.WaitVisible(link(l)))
	}
	content := get(t, ctx, "read article", chromedp.Value(chromedp.CSS(`#f-content`)))
	require.Contains(t, content, "3-year limited warranty")
	run(t, ctx, "edit article",
		setField(`#f-content`, strings.Replace(content, "3-year limited warranty", "5-year limited warranty", 1)),
		chromedp.Click(button("Save")),
		waitText("Saved knowledge/warranty.md."),
	)
	assert.Contains(t, d.file("knowledge/warranty.md"), "5-year limited warranty")
	assertNamed(t, ctx, "draft")
	shot(t, ctx, "03-draft-saved")

	// The raw editor is CodeMirror with highlighting.
	run(t, ctx, "raw editor",
		chromedp.Click(`//label[contains(., "Raw file")]/input`),
		poll(`document.querySelector('.cm-host')?.shadowRoot?.querySelector('.cm-content')?.textContent.includes('5-year limited warranty')`),
	)
	// CodeMirror's own styles apply under the strict CSP (a styled, highlighted editor).
	styled := get(t, ctx, "editor styled", chromedp.Evaluate[string](`(() => { const r = document.querySelector('.cm-host').shadowRoot;
		return [getComputedStyle(r.querySelector('.cm-gutters')).display, r.querySelectorAll('.cm-line span[class]').length > 0].join(' ') })()`))
	assert.Equal(t, "flex true", styled)
	assertNamed(t, ctx, "raw editor")
	shot(t, ctx, "04-draft-raw-editor")

	// Tester, side by side: the draft says 5 years, published still 3.
	run(t, ctx, "tester",
		chromedp.Click(link("Tester")),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
		chromedp.Click(`//label[contains(., "Side by side")]/input`),
		chromedp.SendKeys(chromedp.CSS(`#message`), "how long is the warranty on power tools?"),
		chromedp.Click(button("Send")),
		chromedp.WaitVisible(`//section[@aria-label="Draft conversation"]//span[@class="reply"]`),
		chromedp.WaitVisible(`//section[starts-with(@aria-label, "Published")]//span[@class="reply"]`),
	)
	draftReply := get(t, ctx, "draft reply", chromedp.Text(`//section[@aria-label="Draft conversation"]//span[@class="reply"]`))
	pubReply := get(t, ctx, "published reply", chromedp.Text(`//section[starts-with(@aria-label, "Published")]//span[@class="reply"]`))
	traceText := get(t, ctx, "trace", chromedp.Text(`//section[@aria-label="Draft conversation"]//dl[@aria-label="Trace"]`))
	assert.Contains(t, draftReply, "5-year")
	assert.Contains(t, pubReply, "3-year")
	assert.NotEqual(t, draftReply, pubReply)
	assert.Contains(t, traceText, "warranty", "the trace names the knowledge article")
	assertNamed(t, ctx, "tester")
	shot(t, ctx, "05-tester-side-by-side")

	// Review: the report, the diff side by side, notes, Publish.
	run(t, ctx, "review",
		chromedp.Click(link("Review")),
		chromedp.WaitVisible(chromedp.CSS(`#notes`)),
		waitText("v2"),
		chromedp.WaitVisible(`//section[@aria-label="Changes in knowledge/warranty.md"]//table[contains(@class, "split")]`),
	)
	diffText := get(t, ctx, "diff text", chromedp.Text(`//section[@aria-label="Changes in knowledge/warranty.md"]`))
	assert.Contains(t, diffText, "3-year")
	assert.Contains(t, diffText, "5-year")
	assertNamed(t, ctx, "review")
	run(t, ctx, "notes", chromedp.SendKeys(chromedp.CSS(`#notes`), "Warranty is now 5 years"))
	shot(t, ctx, "06-review")
	run(t, ctx, "publish", chromedp.Click(button("Publish")), waitText("Published v2."))
	v2 := d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)
	assert.Equal(t, "v2", v2["id"])
	assert.Equal(t, "Warranty is now 5 years", v2["notes"])
	shot(t, ctx, "07-published")

	// Versions: roll back to v1, with a confirmation.
	run(t, ctx, "versions",
		chromedp.Click(link("Versions")),
		chromedp.WaitVisible(`//button[@aria-label="Roll back to v1"]`),
		chromedp.Click(`//button[@aria-label="Roll back to v1"]`),
		chromedp.WaitVisible(button("Confirm roll back")),
	)
	shot(t, ctx, "08-rollback-confirm")
	assert.Equal(t, "v2", d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)["id"], "nothing moves before confirming")
	run(t, ctx, "roll back", chromedp.Click(button("Confirm roll back")), waitText("Rolled back: v1 is published."))
	assert.Equal(t, "v1", d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)["id"])
	run(t, ctx, "deployments", waitText("rollback"))
	assertNamed(t, ctx, "versions")
	shot(t, ctx, "09-rolled-back")

	violations := get(t, ctx, "csp violations", chromedp.Evaluate[[]string](`window.__csp`))
	assert.Empty(t, violations, "the strict CSP blocked something the dashboard needs")

	// Nothing in web storage or readable cookies; then sign out.
	storage := get(t, ctx, "storage", chromedp.Evaluate[string](`JSON.stringify([localStorage.length, sessionStorage.length, document.cookie, location.href])`))
	assert.Equal(t, fmt.Sprintf(`[0,0,"",%q]`, base+"/ui/agents/"+d.agent+"/versions"), storage)
	run(t, ctx, "sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(chromedp.CSS(`#apikey`)))
	status := get(t, ctx, "session gone", chromedp.Evaluate[float64](`fetch('/session').then(r => r.status)`, chromedp.EvalAwaitPromise))
	assert.Equal(t, float64(401), status)
	shot(t, ctx, "10-signed-out")
}
