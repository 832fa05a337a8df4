package dashboard_test

// Browser tests of the test suites and the release gate (§11) and of
// traffic: pins, splits and outcomes per version (§12).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tabTo presses Tab until the focused element's text (or aria-label) is
// want, failing after 40 presses: the control is reachable by keyboard.
func tabTo(want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		check := fmt.Sprintf(`(() => { const a = document.activeElement; return !!a && (a.textContent.trim() === %q || a.getAttribute('aria-label') === %q) })()`, want, want)
		for range 40 {
			ok, err := chromedp.Evaluate[bool](check)(ctx, t)
			if err != nil {
				return chromedp.Void{}, err
			}
			if ok {
				return chromedp.Void{}, nil
			}
			if _, err := chromedp.KeyEvent(kb.Tab)(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, fmt.Errorf("%q is not reachable with Tab", want)
	}
}

// editWarranty makes the draft's warranty article say five years, which
// tests/warranty-question.yaml (three years) refuses.
func (d *daemon) editWarranty() {
	d.api("PUT", "/agents/"+d.agent+"/draft/knowledge/warranty", d.admin, map[string]any{"title": "Warranty",
		"content": "All power tools carry a 5-year limited warranty."}, 200)
}

// TestBrowserTestsGate: the tests run from the Tester and fail after the
// warranty article changed; Review lists the failing test; Publish is
// refused with the failure listed; Publish anyway publishes with the
// tests recorded as forced; Versions shows each version's test results.
func TestBrowserTestsGate(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t, withWarrantyTest())
	d.editWarranty()
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent

	// Tester: run against the draft from the keyboard; the warranty test fails.
	run(t, ctx, "tester", chromedp.Navigate(base+"/tester"), chromedp.WaitVisible(chromedp.CSS(`#test-target`)))
	assertNamed(t, ctx, "tester with tests")
	run(t, ctx, "run tests by keyboard",
		chromedp.Focus(chromedp.CSS(`#test-target`)),
		tabTo("Run tests"),
		chromedp.KeyEvent(kb.Enter),
		waitText("Tests failed: 7 of 8 passed."),
		chromedp.WaitVisible(`//ul[@aria-label="Failures of warranty-question, turn 1"]`),
	)
	failure := get(t, ctx, "failure", chromedp.Text(`//ul[@aria-label="Failures of warranty-question, turn 1"]`))
	assert.Contains(t, failure, "replyMatches")
	assert.Contains(t, failure, "3-year limited warranty", "the failure says what was wanted")
	assert.Contains(t, failure, "5-year", "and what the agent said")
	turn := get(t, ctx, "turn", chromedp.Text(`//li[.//ul[@aria-label="Failures of warranty-question, turn 1"]]`))
	assert.Contains(t, turn, "Is my drill under warranty?", "the failing turn shows what the user said")
	shot(t, ctx, "tester-tests-failed")

	// The same suite against v1 (the published warranty) passes.
	run(t, ctx, "run tests on v1",
		chromedp.SetValue(chromedp.CSS(`#test-target`), "v1"),
		chromedp.Click(button("Run tests")),
		waitText("Tests passed: 8 of 8 passed."),
		chromedp.WaitVisible(`//div[@class="test-run"]/p[contains(., "8 of 8 tests passed on v1")]`),
	)
	runs := d.api("GET", "/agents/"+d.agent+"/test-runs", d.admin, nil, 200)["data"].([]any)
	require.Len(t, runs, 2)
	assert.Equal(t, "v1", runs[0].(map[string]any)["target"])
	assert.Equal(t, "draft", runs[1].(map[string]any)["target"])

	// Review: the report's tests and the blocker in plain words.
	run(t, ctx, "review", chromedp.Navigate(base+"/review"), chromedp.WaitVisible(chromedp.CSS(`#notes`)),
		waitText("7 of 8 passed, 1 failed"),
		waitText("Some tests fail on this draft"),
		chromedp.WaitVisible(`//ul[@aria-label="Failing tests"]/li[contains(., "warranty-question, turn 1")]`),
	)
	assertNamed(t, ctx, "review with failing tests")

	// Publish is refused: nothing is written, the failure is listed.
	run(t, ctx, "publish refused",
		chromedp.SendKeys(chromedp.CSS(`#notes`), "Five-year warranty"),
		chromedp.Click(button("Publish")),
		waitText("Some tests failed, so nothing was published."),
		chromedp.WaitVisible(`//ul[@aria-label="Test failures"]/li[contains(., "warranty-question, turn 1: replyMatches")]`),
		chromedp.WaitVisible(button("Publish anyway")),
	)
	assert.Equal(t, "v1", d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)["id"], "nothing was published")
	assertNamed(t, ctx, "publish refused")
	shot(t, ctx, "publish-refused")

	// Publish anyway, from the keyboard: the release says its tests were forced.
	run(t, ctx, "publish anyway",
		chromedp.Focus(button("Publish anyway")),
		chromedp.KeyEvent(kb.Enter),
		waitText("Published v2 with failing tests (forced)."),
	)
	v2 := d.api("GET", "/agents/"+d.agent+"/versions/published", d.admin, nil, 200)
	assert.Equal(t, "v2", v2["id"])
	assert.Equal(t, "Five-year warranty", v2["notes"])
	assert.Equal(t, map[string]any{"total": 8.0, "passed": 7.0, "failed": 1.0}, v2["tests"])
	shot(t, ctx, "published-anyway")

	// Versions: each version's test results.
	run(t, ctx, "versions", chromedp.Navigate(base+"/versions"),
		chromedp.WaitVisible(`//tr[th[contains(., "v2")]]/td[normalize-space()="7/8 passed, 1 failed"]`),
		chromedp.WaitVisible(`//tr[th[contains(., "v1")]]/td[normalize-space()="8/8 passed"]`),
	)
	shot(t, ctx, "versions-tests")
}

// TestBrowserTrafficSplit: a split of phone that does not total 100 is
// refused in plain words; 90/10 is saved; sessions on phone then show as
// outcomes of two versions side by side; the deployments timeline shows the
// change; Return to follow undoes it.
func TestBrowserTrafficSplit(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	d.editWarranty()
	d.api("POST", "/agents/"+d.agent+"/publish", d.admin, map[string]any{"notes": "five years"}, 201)
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent

	run(t, ctx, "traffic", chromedp.Navigate(base+"/traffic"), chromedp.WaitVisible(`//h3[normalize-space()="phone"]`),
		chromedp.WaitVisible(`//li[h3="phone"]/p[contains(., "follows the published version (v2)")]`))
	assertNamed(t, ctx, "traffic")
	run(t, ctx, "split mode",
		chromedp.Click(`//form[@aria-label="Route channel phone"]//label[contains(., "split")]/input`),
		chromedp.WaitVisible(chromedp.CSS(`#sw-phone-1`)),
		chromedp.SetValue(chromedp.CSS(`#sv-phone-0`), "v1"),
		chromedp.SetValue(chromedp.CSS(`#sv-phone-1`), "v2"),
		setField(`#sw-phone-0`, "80"),
		setField(`#sw-phone-1`, "10"),
		chromedp.WaitVisible(`//p[contains(., "Weights total 90% (they must total 100%)")]`),
		chromedp.Click(button("Save phone split")),
		waitText("Some fields are invalid."),
		waitText("The split: weights must sum to 100, got 90"),
	)
	assert.Equal(t, "follow", d.channel("phone")["mode"], "nothing changed")
	shot(t, ctx, "split-refused")
	run(t, ctx, "split 90/10",
		setField(`#sw-phone-0`, "90"),
		chromedp.WaitVisible(`//p[contains(., "Weights total 100%")]`),
		chromedp.Click(button("Save phone split")),
		waitText("Channel phone is split: v1 90%, v2 10%."),
		chromedp.WaitVisible(`//li[h3="phone"]/p[contains(., "split: v1 90%, v2 10%")]`),
	)
	ph := d.channel("phone")
	assert.Equal(t, "split", ph["mode"])
	assert.Equal(t, []any{map[string]any{"version": "v1", "weight": 90.0}, map[string]any{"version": "v2", "weight": 10.0}}, ph["split"])
	assert.Equal(t, "follow", d.channel("chat")["mode"], "chat still follows")

	// Callers on phone: each session gets v1 or v2 by weight.
	// The bucket is a hash of (agent, channel, caller) and the agent id is
	// random, so call until both versions served someone (at 10%, 300 calls
	// all missing v2 has odds 0.9^300, about 2e-14).
	got := map[string]int{}
	for i := 0; i < 300 && (i < 40 || got["v1"] == 0 || got["v2"] == 0); i++ {
		s := d.api("POST", "/chat/sessions", d.admin, map[string]any{"agentId": d.agent, "channel": "phone", "callerId": fmt.Sprintf("+1555%04d", i)}, 201)
		got[s["version"].(string)]++
		d.api("POST", "/chat/sessions/"+s["id"].(string)+"/messages", d.admin, map[string]any{"text": "how long is the warranty on power tools?"}, 200)
	}
	require.Positive(t, got["v1"])
	require.Positive(t, got["v2"])
	run(t, ctx, "outcomes", chromedp.Navigate(base+"/traffic"),
		chromedp.WaitVisible(`//table[contains(@class, "outcomes")]//th[normalize-space()="v2"]`))
	for _, v := range []string{"v1", "v2"} {
		cell := get(t, ctx, "sessions "+v, chromedp.Text(fmt.Sprintf(`//td[@data-version=%q][@data-metric="sessions"]`, v)))
		assert.Equal(t, fmt.Sprint(got[v]), cell, "sessions of %s", v)
		msgs := get(t, ctx, "messages "+v, chromedp.Text(fmt.Sprintf(`//td[@data-version=%q][@data-metric="messages"]`, v)))
		assert.Equal(t, fmt.Sprint(got[v]), msgs, "messages of %s", v)
	}
	// A period after today has no sessions.
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	run(t, ctx, "period",
		chromedp.SetValue(chromedp.CSS(`#out-from`), tomorrow),
		poll(`document.querySelector('td[data-version="v1"][data-metric="sessions"]').textContent === '0'`),
		chromedp.SetValue(chromedp.CSS(`#out-from`), ""),
		poll(`document.querySelector('td[data-version="v1"][data-metric="sessions"]').textContent !== '0'`),
	)
	// The version picker: v1 alone.
	run(t, ctx, "pick v1 only",
		chromedp.Click(`//fieldset[contains(@class, "picker")]//label[normalize-space()="v2"]/input`),
		poll(`document.querySelectorAll('table.outcomes thead th').length === 2`),
	)
	assertNamed(t, ctx, "traffic with split")
	shot(t, ctx, "traffic-split-outcomes")

	// The deployments timeline shows the channel change.
	run(t, ctx, "deployments", chromedp.Navigate(base+"/versions"),
		chromedp.WaitVisible(`//ol[@class="timeline"]/li[contains(., "Split") and contains(., "phone") and contains(., "v1 90%, v2 10%")]`))

	// Return to follow.
	run(t, ctx, "follow", chromedp.Navigate(base+"/traffic"), chromedp.WaitVisible(button("Return phone to follow")),
		chromedp.Click(button("Return phone to follow")),
		waitText("Channel phone follows the published version again."),
	)
	assert.Equal(t, "follow", d.channel("phone")["mode"])
	assert.Equal(t, "v2", d.channel("phone")["serves"])
}

// apiList GETs a JSON array with the admin key.
func (d *daemon) apiList(path string) []map[string]any {
	d.tb.Helper()
	req, err := http.NewRequest("GET", d.srv.URL+path, nil)
	require.NoError(d.tb, err)
	req.Header.Set("Authorization", "Bearer "+d.admin)
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.tb, err)
	defer res.Body.Close()
	require.Equal(d.tb, 200, res.StatusCode)
	var out []map[string]any
	require.NoError(d.tb, json.NewDecoder(res.Body).Decode(&out))
	return out
}

// channel returns one channel of the agent as the API says it.
func (d *daemon) channel(name string) map[string]any {
	d.tb.Helper()
	req := d.apiList("/agents/" + d.agent + "/channels")
	for _, c := range req {
		if c["channel"] == name {
			return c
		}
	}
	require.FailNow(d.tb, fmt.Sprintf("no channel %s", name))
	return nil
}

// TestBrowserTrafficNarrowKeyboard: the Traffic page at 375 px does not
// overflow sideways; pin, split and follow work from the keyboard alone.
func TestBrowserTrafficNarrowKeyboard(t *testing.T) {
	ctx := browser(t)
	d := newDaemon(t)
	d.editWarranty()
	d.api("POST", "/agents/"+d.agent+"/publish", d.admin, map[string]any{"notes": "five years"}, 201)
	run(t, ctx, "narrow", chromedp.EmulateViewport(375, 812))
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent
	overflow := func(step string) {
		t.Helper()
		w := get(t, ctx, "width "+step, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		assert.LessOrEqual(t, w, 375.0, "%s overflows at 375 px", step)
	}
	run(t, ctx, "traffic", chromedp.Navigate(base+"/traffic"), chromedp.WaitVisible(`//h3[normalize-space()="chat"]`), waitText("Sessions"))
	overflow("traffic")
	assertNamed(t, ctx, "traffic 375")
	shot(t, ctx, "375-traffic")

	// Pin chat to v1: the version select, then Tab to the button, Enter.
	run(t, ctx, "pin by keyboard",
		chromedp.Focus(chromedp.CSS(`#pin-chat`)),
		chromedp.SetValue(chromedp.CSS(`#pin-chat`), "v1"),
		tabTo("Pin chat"),
		chromedp.KeyEvent(kb.Enter),
		waitText("Channel chat is pinned to v1."),
	)
	assert.Equal(t, "pin", d.channel("chat")["mode"])
	assert.Equal(t, "v1", d.channel("chat")["serves"])

	// Split phone: Space on the split radio, add a third version, remove
	// it again, save the default 90/10: all by keyboard.
	run(t, ctx, "split by keyboard",
		chromedp.Focus(`//form[@aria-label="Route channel phone"]//label[contains(., "split")]/input`),
		chromedp.KeyEvent(" "),
		chromedp.WaitVisible(chromedp.CSS(`#sw-phone-1`)),
		tabTo("Add a version to the phone split"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#sw-phone-2`)),
		overflowFree(),
		chromedp.Focus(chromedp.CSS(`#sw-phone-1`)),
		tabTo("Remove version 3 from the phone split"),
		chromedp.KeyEvent(kb.Enter),
		poll(`!document.querySelector('#sw-phone-2')`),
		chromedp.Focus(chromedp.CSS(`#sw-phone-1`)),
		tabTo("Save phone split"),
		chromedp.KeyEvent(kb.Enter),
		waitText("Channel phone is split: v1 90%, v2 10%."),
	)
	assert.Equal(t, "split", d.channel("phone")["mode"])
	overflow("traffic with split")
	assertNamed(t, ctx, "traffic 375 split")
	shot(t, ctx, "375-traffic-split")

	// Back to follow from the keyboard.
	run(t, ctx, "follow by keyboard",
		chromedp.Focus(button("Return chat to follow")),
		chromedp.KeyEvent(kb.Enter),
		waitText("Channel chat follows the published version again."),
	)
	assert.Equal(t, "follow", d.channel("chat")["mode"])
}

// overflowFree fails when the page is wider than the viewport.
func overflowFree() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= innerWidth`)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("the page overflows sideways")
		}
		return chromedp.Void{}, err
	}
}

// TestBrowserDocScreenshots writes the README's screenshots (docs/img) when
// FLOWYTE_DOC_SCREENSHOTS names the folder; skipped otherwise.
func TestBrowserDocScreenshots(t *testing.T) {
	dir := os.Getenv("FLOWYTE_DOC_SCREENSHOTS")
	if dir == "" {
		t.Skip("set FLOWYTE_DOC_SCREENSHOTS=docs/img (absolute) to refresh the README's screenshots")
	}
	ctx := browser(t)
	d := newDaemon(t, withWarrantyTest())
	d.editWarranty()
	run(t, ctx, "viewport", chromedp.EmulateViewport(1100, 760))
	signIn(t, ctx, d.srv.URL, d.admin)
	base := d.srv.URL + "/ui/agents/" + d.agent
	save := func(name string) {
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
	}
	run(t, ctx, "tester",
		chromedp.Navigate(base+"/tester"),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
		chromedp.Click(`//label[contains(., "Side by side")]/input`),
		chromedp.SendKeys(chromedp.CSS(`#message`), "how long is the warranty on power tools?"),
		chromedp.Click(button("Send")),
		chromedp.WaitVisible(`//section[starts-with(@aria-label, "Published")]//span[@class="reply"]`),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); true`),
	)
	save("tester.png")
	run(t, ctx, "review", chromedp.Navigate(base+"/review"), chromedp.WaitVisible(chromedp.CSS(`#notes`)),
		waitText("7 of 8 passed, 1 failed"),
		chromedp.SendKeys(chromedp.CSS(`#notes`), "Warranty is now 5 years"),
		chromedp.WaitVisible(`//ul[@aria-label="Failing tests"]`),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); true`),
	)
	save("review.png")
}
