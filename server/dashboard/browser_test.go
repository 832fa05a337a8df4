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
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/webhook"
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

// daemonOption changes how newDaemon loads the fixture.
type daemonOption func(*daemonConfig)

type daemonConfig struct{ warrantyTest bool }

// withWarrantyTest loads tests/warranty-question.yaml too, so the release
// gate refuses a draft whose warranty article changed.
func withWarrantyTest() daemonOption { return func(c *daemonConfig) { c.warrantyTest = true } }

func newDaemon(tb testing.TB, opts ...daemonOption) *daemon {
	tb.Helper()
	var cfg daemonConfig
	for _, o := range opts {
		o(&cfg)
	}
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
	disp := webhook.New(webhook.Options{Store: st, Client: webhook.NewClient(true, 5*time.Second), Logger: zerolog.Nop()})
	dctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = disp.Run(dctx); close(done) }()
	tb.Cleanup(func() { stop(); <-done })
	d.srv = httptest.NewServer(server.New(server.Deps{Backend: backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop(),
		AllowPrivateWebhooks: true, Webhooks: disp, Redeliver: disp}), Log: zerolog.Nop()}))
	tb.Cleanup(d.srv.Close)
	mk := func(name string, scopes ...string) string {
		secret, _, err := backend.CreateKey(context.Background(), st, "default", name, scopes, time.Now())
		require.NoError(tb, err)
		return secret
	}
	d.admin = mk("admin", backend.AllScopes...)
	d.reader = mk("reader", backend.ScopeAgentsRead, backend.ScopeChatWrite)

	files, err := fixtures.Files("acme-support")
	require.NoError(tb, err)
	a := d.api("POST", "/agents", d.admin, map[string]any{"name": "Acme Support"}, 201)
	d.agent = a["id"].(string)
	var changes []map[string]any
	for p, c := range files {
		if p == "tests/warranty-question.yaml" && !cfg.warrantyTest {
			// The release flow below changes the warranty article on
			// purpose; the gate's refusal of that is tested with
			// withWarrantyTest (TestBrowserTestsGate).
			continue
		}
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
	tctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
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
	// A step that hangs fails within 45 s, leaving time for the screenshot.
	sctx, cancelStep := context.WithTimeout(ctx, 45*time.Second)
	defer cancelStep()
	if err := chromedp.Do(sctx, actions...); err != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(artifacts(t), "FAILED-"+step+".png"), buf, 0o644)
		}
		require.FailNow(t, fmt.Sprintf("%s: %v", step, err))
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
		require.FailNow(t, fmt.Sprintf("%s: %v", step, err))
	}
	return v
}

// button and link find a control by its visible text.
func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, text) }
func link(text string) string   { return fmt.Sprintf(`//a[normalize-space()=%q]`, text) }

// waitText waits until the page shows text.
func waitText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(fmt.Sprintf(`//*[text()[contains(normalize-space(.), %q)]]`, text))
}

// openUntil clicks the button named name (a file in the list) until sel
// is on the page, at most once a second: a click that lands while the
// file list re-renders (after a save or a delete) is lost.
func openUntil(name, sel string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => {
		if (document.querySelector(%q)) return true;
		const now = Date.now();
		if (now - (window.__openedAt || 0) < 1000) return false;
		const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === %q);
		if (b) { window.__openedAt = now; b.click(); }
		return false })()`, sel, name))
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
	run(t, ctx, "deployments", chromedp.WaitVisible(`//ol[@class="timeline"]//strong[normalize-space()="Rolled back"]`))

	// A diff between any two versions.
	run(t, ctx, "compare",
		chromedp.SetValue(chromedp.CSS(`#from`), "v1"),
		chromedp.SetValue(chromedp.CSS(`#to`), "v2"),
		chromedp.Click(button("Show diff")),
		chromedp.WaitVisible(`//section[@aria-label="Version diff"]//section[@aria-label="Changes in knowledge/warranty.md"]`),
	)
	cmp := get(t, ctx, "compare text", chromedp.Text(`//section[@aria-label="Version diff"]`))
	assert.Contains(t, cmp, "v1 → v2")
	assert.Contains(t, cmp, "compiled/agent.json", "diffs between versions include what went live")
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

// TestBrowserCSRFRefused: a page on another origin of the same site (another
// port of 127.0.0.1, so the SameSite=Strict cookie is sent) posts a form to
// the API with the signed-in cookie; the daemon refuses it with csrf_failed
// and creates nothing.
func TestBrowserCSRFRefused(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form method="POST" action="%s/agents" enctype="text/plain">
<input name='{"name":"evil","x":"' value='"}'><button id="go">go</button></form>`, d.srv.URL)
	}))
	t.Cleanup(evil.Close)

	signIn(t, ctx, d.srv.URL, d.admin)
	run(t, ctx, "attack",
		chromedp.Navigate(evil.URL+"/"),
		chromedp.Click(chromedp.CSS(`#go`)),
		waitText("csrf_failed"),
	)
	shot(t, ctx, "csrf-refused")
	body := get(t, ctx, "body", chromedp.Text(chromedp.CSS(`body`)))
	assert.Contains(t, body, `"status":403`)
	list := d.api("GET", "/agents", d.admin, nil, 200)
	assert.Len(t, list["data"], 1, "no agent was created")

	// A script on the other origin cannot forge the header either: without
	// CORS its fetch with X-CSRF-Token never reaches the handler, and a
	// no-cors POST (no custom headers) is refused.
	run(t, ctx, "no-cors fetch", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`fetch(%q, {method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"name":"evil2"}'}).then(() => true, () => true)`,
		d.srv.URL+"/agents"), chromedp.EvalAwaitPromise))
	list = d.api("GET", "/agents", d.admin, nil, 200)
	assert.Len(t, list["data"], 1, "no agent was created")

	// The dashboard itself, same origin, still works with the same cookie.
	run(t, ctx, "back", chromedp.Navigate(d.srv.URL+"/ui/agents"), chromedp.WaitVisible(button("New agent")),
		chromedp.Click(button("New agent")), chromedp.SendKeys(chromedp.CSS(`#agent-name`), "Second agent"),
		chromedp.Click(button("Create agent")), chromedp.WaitVisible(button("Save")))
	list = d.api("GET", "/agents", d.admin, nil, 200)
	assert.Len(t, list["data"], 2)
}

// TestBrowserReaderSeesNoPublish: a key without agents:write sees the
// review but no Publish, no Roll back, no Save and no New agent.
func TestBrowserReaderSeesNoPublish(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty", "content": "Five years."}, 200)
	signIn(t, ctx, d.srv.URL, d.reader)
	base := d.srv.URL + "/ui/agents/" + d.agent
	count := func(xpath string) int {
		return int(get(t, ctx, "count", chromedp.Evaluate[float64](fmt.Sprintf(
			`document.evaluate(%q, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null).snapshotLength`, xpath))))
	}
	run(t, ctx, "agents", chromedp.WaitVisible(link("Acme Support")))
	assert.Zero(t, count(button("New agent")))
	run(t, ctx, "review", chromedp.Navigate(base+"/review"), waitText("Pre-publish report"), waitText("knowledge: modified warranty"))
	assert.Zero(t, count(button("Publish")))
	assert.Zero(t, count(`//textarea[@id="notes"]`))
	shot(t, ctx, "reader-review")
	run(t, ctx, "versions", chromedp.Navigate(base+"/versions"), waitText("first release"))
	assert.Zero(t, count(button("Roll back")))
	run(t, ctx, "draft", chromedp.Navigate(base+"/draft"), chromedp.WaitVisible(chromedp.CSS(`#f-content`)))
	assert.Zero(t, count(button("Save")))
	assert.Zero(t, count(button("Create file")))
	run(t, ctx, "webhooks", chromedp.Navigate(base+"/webhooks"), waitText("needs the webhooks:write scope"))
	// Traffic: the modes are shown, the routing controls are not.
	run(t, ctx, "traffic", chromedp.Navigate(base+"/traffic"), chromedp.WaitVisible(`//h3[normalize-space()="phone"]`), waitText("Sessions"))
	assert.Zero(t, count(button("Pin phone")))
	assert.Zero(t, count(`//input[@type="radio"]`))
	// The tester still works: the key has chat:write.
	run(t, ctx, "tester", chromedp.Navigate(base+"/tester"), chromedp.WaitVisible(chromedp.CSS(`#message`)),
		waitText("Running tests needs the agents:write scope"))
	assert.Zero(t, count(button("Run tests")))
}

// TestBrowserNarrowAndKeyboard: at 375 px nothing overflows sideways on the
// main pages, and the release flow's controls work from the keyboard alone.
func TestBrowserNarrowAndKeyboard(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty", "content": "All power tools carry a five-year warranty."}, 200)
	run(t, ctx, "narrow", chromedp.EmulateViewport(375, 812))

	// Sign in with the keyboard only: Tab to the field, type, Enter.
	run(t, ctx, "open", chromedp.Navigate(d.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#apikey`)))
	run(t, ctx, "keyboard sign in",
		chromedp.KeyEvent(kb.Tab),
		poll(`document.activeElement && document.activeElement.id === 'apikey'`),
		chromedp.KeyEvent(d.admin),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(button("Sign out")),
	)
	overflow := func(page string) {
		t.Helper()
		w := get(t, ctx, "width "+page, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		wide := ""
		if w > 375 {
			wide = get(t, ctx, "widest "+page, chromedp.Evaluate[string](`[...document.querySelectorAll('body *')]
				.filter(el => el.getBoundingClientRect().right > 376 && !el.parentElement.closest('.scroll')).slice(0, 4).map(el => el.outerHTML.slice(0, 100)).join('\n')`))
		}
		assert.LessOrEqual(t, w, 375.0, "%s overflows at 375 px:\n%s", page, wide)
	}
	overflow("agents")
	shot(t, ctx, "375-agents")
	base := d.srv.URL + "/ui/agents/" + d.agent
	for _, p := range []struct{ path, ready string }{
		{"/draft", `//label[@for="f-content"]`},
		{"/tester", `//label[@for="message"]`},
		{"/review", `//label[@for="notes"]`},
		{"/versions", `//h2[normalize-space()="Deployments"]`},
		{"/traffic", `//h2[normalize-space()="Channels"]`},
		{"/webhooks", `//h2[normalize-space()="Endpoints"]`},
	} {
		run(t, ctx, p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(p.ready))
		if p.path == "/review" {
			run(t, ctx, "diff", waitText("five-year"))
		}
		overflow(p.path)
		assertNamed(t, ctx, p.path)
		shot(t, ctx, "375"+strings.ReplaceAll(p.path, "/", "-"))
	}

	// Tester side by side at 375 px, driven by the keyboard: focus the
	// message field, type, Enter submits; the two answers stack.
	run(t, ctx, "tester", chromedp.Navigate(base+"/tester"), chromedp.WaitVisible(chromedp.CSS(`#message`)))
	run(t, ctx, "compare via keyboard",
		chromedp.Focus(`//label[contains(., "Side by side")]/input`),
		chromedp.KeyEvent(" "),
		poll(`document.querySelector('.sides.two') !== null`),
		chromedp.Focus(chromedp.CSS(`#message`)),
		chromedp.KeyEvent("how long is the warranty on power tools?"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(`//section[starts-with(@aria-label, "Published")]//span[@class="reply"]`),
	)
	overflow("tester side by side")
	shot(t, ctx, "375-tester-side-by-side")

	// Publish from the keyboard: Tab from the notes field reaches Publish.
	run(t, ctx, "review", chromedp.Navigate(base+"/review"), chromedp.WaitVisible(chromedp.CSS(`#notes`)),
		chromedp.Focus(chromedp.CSS(`#notes`)), chromedp.KeyEvent("keyboard release"), chromedp.KeyEvent(kb.Tab),
		poll(`document.activeElement.textContent === 'Publish'`), chromedp.KeyEvent(kb.Enter), waitText("Published v2."))
	assert.Equal(t, "v2", d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)["id"])

	// Wide: at 1440 px the draft page lays files and editor side by side.
	run(t, ctx, "wide", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base+"/draft"), chromedp.WaitVisible(chromedp.CSS(`#f-content`)))
	cols := get(t, ctx, "columns", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.draft-grid')).gridTemplateColumns`))
	assert.Len(t, strings.Fields(cols), 2, "two columns at 1440 px: %s", cols)
	shot(t, ctx, "1440-draft")
}

// TestBrowser200Files: an agent of 200 knowledge articles, every one
// changed: the draft page and the paginated review diff are usable within
// a second or so (logged; bounded generously for a loaded CI machine).
func TestBrowser200Files(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	changes := func(word string) []map[string]any {
		var out []map[string]any
		for i := range 200 {
			out = append(out, map[string]any{"path": fmt.Sprintf("knowledge/article-%03d.md", i),
				"content": fmt.Sprintf("# Article %d\n\n%s\n\nThis article explains topic %d in %s words.\n", i, strings.Repeat("Some filler text. ", 20), i, word)})
		}
		return out
	}
	d.api("POST", "/agents/"+d.agent+"/draft/commits", d.admin, map[string]any{"changes": changes("plain")}, 201)
	d.api("POST", "/agents/"+d.agent+"/publish", d.admin, map[string]any{"notes": "200 articles"}, 201)
	d.api("POST", "/agents/"+d.agent+"/draft/commits", d.admin, map[string]any{"changes": changes("changed")}, 201)
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent

	measure := func(name, path, ready string) time.Duration {
		start := time.Now()
		run(t, ctx, name, chromedp.Navigate(base+path), chromedp.WaitVisible(ready))
		took := time.Since(start)
		t.Logf("%s usable after %v", name, took)
		return took
	}
	draft := measure("draft page (205 files)", "/draft", button("article-199.md"))
	review := measure("review page (200 changed files)", "/review", `//section[@aria-label="Changes in knowledge/article-019.md"]`)
	assert.Less(t, draft, 5*time.Second)
	assert.Less(t, review, 5*time.Second)
	rows := get(t, ctx, "rendered files", chromedp.Evaluate[float64](`document.querySelectorAll('section.file-diff').length`))
	assert.Equal(t, 20.0, rows, "one page of 20 files is rendered, not 200")
	run(t, ctx, "page 2", poll(`document.querySelector('.pager span').textContent === 'Files 1–20 of 200'`),
		chromedp.Click(button("Next files")),
		chromedp.WaitVisible(`//section[@aria-label="Changes in knowledge/article-020.md"]`),
		poll(`document.querySelector('.pager span').textContent === 'Files 21–40 of 200'`))
	shot(t, ctx, "review-200-files")
}

// TestBrowserTypedForms: a playbook edited through its typed form (text and
// JSON members) is stored canonically; a compile error then shows at its
// file and line, and clicking it opens the raw editor there.
func TestBrowserTypedForms(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent
	run(t, ctx, "playbook form",
		chromedp.Navigate(base+"/draft"),
		chromedp.WaitVisible(button("store-hours.yaml")),
		chromedp.Click(button("store-hours.yaml")),
		chromedp.WaitVisible(chromedp.CSS(`#f-description`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-triggers`)),
	)
	triggers := get(t, ctx, "triggers", chromedp.Value(chromedp.CSS(`#f-triggers`)))
	require.Contains(t, triggers, "store hours")
	run(t, ctx, "edit playbook",
		setField(`#f-description`, "Tells the hours of a store"),
		setField(`#f-triggers`, strings.Replace(triggers, `"store hours"`, `"store hours", "are you open today"`, 1)),
		chromedp.Click(button("Save")),
		waitText("Saved playbooks/store-hours.yaml."),
	)
	got := d.file("playbooks/store-hours.yaml")
	assert.Contains(t, got, "Tells the hours of a store")
	assert.Contains(t, got, "are you open today")
	assertNamed(t, ctx, "playbook form")
	shot(t, ctx, "typed-playbook")

	// Create a file, edit it in the raw editor, save, delete it.
	run(t, ctx, "create file",
		chromedp.SendKeys(chromedp.CSS(`#new-name`), "faq"),
		chromedp.Click(button("Create file")),
		waitText("Created knowledge/faq.md."),
		chromedp.Click(`//label[contains(., "Raw file")]/input`),
		poll(`!!document.querySelector('.cm-host')?.shadowRoot?.querySelector('.cm-content')`),
	)
	run(t, ctx, "type in editor",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.cm-host').shadowRoot.querySelector('.cm-content').focus(); true`),
		chromedp.KeyEvent("Gift cards never expire."),
		chromedp.Click(button("Save")),
		waitText("Saved knowledge/faq.md."),
	)
	assert.Contains(t, d.file("knowledge/faq.md"), "Gift cards never expire.")
	assert.Contains(t, d.file("knowledge/faq.md"), "title:", "created from the knowledge template")
	run(t, ctx, "delete file",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; true`),
		chromedp.Click(button("Delete file")),
		waitText("Deleted knowledge/faq.md."),
	)
	assert.Equal(t, 404.0, d.api("GET", "/agents/"+d.agent+"/draft/knowledge/faq", d.admin, nil, 404)["status"])
	run(t, ctx, "back to playbook", openUntil("store-hours.yaml", "#f-triggers"), chromedp.WaitVisible(chromedp.CSS(`#f-triggers`)))

	// Settings: text fields and the nested model as JSON.
	run(t, ctx, "settings", openUntil("agent.yaml", "#f-model"), chromedp.WaitVisible(chromedp.CSS(`#f-model`)))
	model := get(t, ctx, "model", chromedp.Value(chromedp.CSS(`#f-model`)))
	require.Contains(t, model, `"temperature": 0.3`)
	run(t, ctx, "edit settings",
		setField(`#f-greeting`, "Hello from the dashboard"),
		setField(`#f-model`, strings.Replace(model, `"temperature": 0.3`, `"temperature": 0.5`, 1)),
		chromedp.Click(button("Save")), waitText("Saved agent.yaml."))
	settings := d.file("agent.yaml")
	assert.Contains(t, settings, "Hello from the dashboard")
	assert.Contains(t, settings, "temperature: 0.5")
	assertNamed(t, ctx, "settings form")
	run(t, ctx, "back to playbook", openUntil("store-hours.yaml", "#f-triggers"), chromedp.WaitVisible(chromedp.CSS(`#f-triggers`)))

	// Broken JSON in a structured field is caught before saving.
	run(t, ctx, "bad json", setField(`#f-triggers`, `["x"`), chromedp.Click(button("Save")), waitText("The field triggers is not valid JSON."))

	// A compile error (a playbook calling an unknown skill) is listed at
	// its file and line; the link opens the raw editor at that line.
	req, _ := http.NewRequest("PUT", d.srv.URL+"/agents/"+d.agent+"/draft/files/playbooks/broken.yaml",
		strings.NewReader("description: broken\ntriggers:\n  - broken thing\nsteps:\n  - skill: no-such-skill\n"))
	req.Header.Set("Authorization", "Bearer "+d.admin)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	run(t, ctx, "errors listed",
		chromedp.Navigate(base+"/draft"),
		chromedp.WaitVisible(`//ul[@class="diags"]//button[contains(., "Error in playbooks/broken.yaml, line")]`),
		chromedp.Click(`//ul[@class="diags"]//button[contains(., "Error in playbooks/broken.yaml, line")]`),
		poll(`document.querySelector('.cm-host')?.shadowRoot?.querySelector('.cm-content')?.textContent.includes('no-such-skill')`),
	)
	shot(t, ctx, "compile-error-at-line")
}

// TestBrowserWebhooks: add an endpoint, see the delivery of a publish in
// its log, Redeliver it.
func TestBrowserWebhooks(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("webhook-id")
		w.WriteHeader(204)
	}))
	t.Cleanup(recv.Close)
	signIn(t, ctx, d.srv.URL, d.admin)
	run(t, ctx, "add webhook",
		chromedp.Navigate(d.srv.URL+"/ui/agents/"+d.agent+"/webhooks"),
		chromedp.WaitVisible(chromedp.CSS(`#wh-url`)),
		chromedp.SendKeys(chromedp.CSS(`#wh-url`), recv.URL+"/hook"),
		chromedp.Click(button("Add webhook")),
		waitText("Signing secret (shown once)"),
		waitText(recv.URL+"/hook"),
	)
	assertNamed(t, ctx, "webhooks")
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty", "content": "Five years."}, 200)
	d.api("POST", "/agents/"+d.agent+"/publish", d.admin, map[string]any{}, 201)
	var first string
	select {
	case first = <-got:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the publish was not delivered")
	}
	run(t, ctx, "delivery log",
		chromedp.Click(button("Delivery log")),
		chromedp.WaitVisible(fmt.Sprintf(`//code[normalize-space()=%q]`, first)),
		chromedp.WaitVisible(`//td[normalize-space()="version.published"]`),
	)
	shot(t, ctx, "webhook-deliveries")
	run(t, ctx, "redeliver", chromedp.Click(fmt.Sprintf(`//button[@aria-label="Redeliver %s"]`, first)), waitText("Redelivery of "+first+" queued."))
	select {
	case again := <-got:
		assert.Equal(t, first, again, "a redelivery keeps the event id")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the redelivery did not arrive")
	}
	assertNamed(t, ctx, "deliveries")
}

// TestBrowserStaleReview: the draft moves after the review was opened;
// Publish sends the reviewed revision, so nothing is published and the 409
// is said in plain words.
func TestBrowserStaleReview(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty", "content": "Five years."}, 200)
	signIn(t, ctx, d.srv.URL, d.admin)
	run(t, ctx, "review", chromedp.Navigate(d.srv.URL+"/ui/agents/"+d.agent+"/review"), chromedp.WaitVisible(chromedp.CSS(`#notes`)))
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty", "content": "Six years."}, 200)
	run(t, ctx, "publish stale", chromedp.Click(button("Publish")), waitText("The draft changed after you opened this review."))
	assert.Equal(t, "v1", d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)["id"], "nothing was published")
	shot(t, ctx, "stale-review")
}
