package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/webhook"
)

// Per-tenant fairness (issue 9, "What must hold"): workspace b runs one of
// the attacks the review reproduced while workspace a's ordinary requests are
// timed. a's p99 under attack must stay within fairRatio × its quiet p99.
//
// The quiet p99 is raised to a floor before the ratio is applied. A quiet
// read takes well under a millisecond, and on the 2-core machine these tests
// run on (shared with other builds) one scheduler hiccup costs ~10 ms, so
// 3 × 1 ms would flake; fairFloor (20 ms) still catches every attack the
// review found, which cost a's requests seconds. A probe that writes (a
// draft commit) waits for the commit in flight of any workspace — one
// SQLite writer, one disk, fsyncs — so its floor is fairWriteFloor (50 ms):
// TestFairnessOrdinaryWrites measures that cost of b's ordinary writes
// alone (a's write p99 from ~12 ms quiet to 25–117 ms on the test machine).
//
// An attack whose cause is still open is skipped with a "KNOWN:" message
// naming it (the huge diff, until repo/ has a diff budget).
const (
	fairRatio      = 3.0
	fairFloor      = 20 * time.Millisecond
	fairWriteFloor = 50 * time.Millisecond
	fairWarmup     = 10
	fairSamples    = 100
	// fairProbeTimeout bounds one of a's timed requests.
	fairProbeTimeout = 30 * time.Second
	// fairLoudMin is the least time a's probes run under attack, and
	// fairLoudHits the least requests b must have finished by then (up to
	// fairLoudMax): a heavy request takes about a second, and a's probes
	// must meet more than the first one.
	fairLoudMin  = 2 * time.Second
	fairLoudHits = 3
	fairLoudMax  = 15 * time.Second
	// fairDrain bounds how long the attackers take to stop once told to.
	fairDrain = 30 * time.Second
)

// TestFairnessOrdinaryWrites is the baseline of the write probes: b edits
// small files in a loop, as any busy tenant does, while a does its own
// file PUTs. Commits of every workspace share one SQLite writer and one
// disk, so a's write may wait for one of b's (the reason for
// fairWriteFloor); it must never wait for more.
func TestFairnessOrdinaryWrites(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	b := otherAgent(e, "busy")
	url := e.srv.URL + "/agents/" + b + "/draft/files/knowledge/busy.md"
	ac := newFairClient(1)
	r := runFairness(t, "b's ordinary writes", filePutProbe(e, newFairClient(1), a), attack{
		workers: 1, maxEach: 2000, floor: fairWriteFloor,
		hit: func(ctx context.Context, _, i int) int {
			code, _, _ := fairDo(ctx, ac, fairReq{method: "PUT", url: url, key: e.other, body: fmt.Appendf(nil, "busy %d\n", i)})
			return code
		},
	})
	onlyStatuses(t, r.attackAnswers, 200)
}

// manyKeysYAML is a YAML mapping of n keys (name first), padded with a
// description to about size bytes. Each call with another salt differs.
func manyKeysYAML(n, size int, salt string) []byte {
	var b bytes.Buffer
	b.WriteString("name: heavy\n")
	for i := range n {
		b.WriteString("k")
		b.WriteString(strconv.FormatInt(int64(i), 36))
		b.WriteString(":\n")
	}
	if pad := size - b.Len() - len("description: \n") - len(salt); pad > 0 {
		b.WriteString("description: " + salt + strings.Repeat("x", pad) + "\n")
	}
	return b.Bytes()
}

// TestFairnessAgentYAMLManyKeys: item 1. b PUTs a 255 KiB agent.yaml with
// 35,000 keys in a loop while a does plain file PUTs.
//
// a's write p99 under this attack: 20–168 ms (bound 150 ms), about twice
// what b's ordinary writes cost it: the daemon parses agent.yaml before
// the commit (backend settingsMeta → compile.ReadView) with yaml.v3
// building the whole document (35,000 keys, ~80 ms CPU and ~14 MB of
// garbage per PUT) before the compiler's limits (1,000 keys per mapping,
// 20,000 values) apply.
func TestFairnessAgentYAMLManyKeys(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	b := otherAgent(e, "yaml-bomb")
	bodies := make([][]byte, 4)
	for i := range bodies {
		bodies[i] = manyKeysYAML(35000, 255<<10, strconv.Itoa(i))
		require.LessOrEqual(t, len(bodies[i]), 256<<10, "one file may hold 256 KiB")
	}
	url := e.srv.URL + "/agents/" + b + "/draft/files/agent.yaml"
	ac := newFairClient(4)
	r := runFairness(t, "agent.yaml with 35,000 keys", filePutProbe(e, newFairClient(1), a), attack{
		workers: 1, maxEach: 500, floor: fairWriteFloor,
		hit: func(ctx context.Context, w, i int) int {
			code, _, _ := fairDo(ctx, ac, fairReq{method: "PUT", url: url, key: e.other, body: bodies[(w+2*i)%len(bodies)]})
			return code
		},
	})
	// Edits never fail on compile errors (CONTRACT §4): the file is stored;
	// limits bound what reading it costs.
	onlyStatuses(t, r.attackAnswers, 200, 422)
	t.Logf("b's agent.yaml PUTs got %v", r.attackAnswers)
}

// manyKeysJSON is a typed skill body whose parameters hold n properties,
// about 1.25 MiB for n=151,000.
func manyKeysJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"description":"heavy","http":{"method":"GET","url":"https://example.com/x","timeoutMs":1000},"parameters":{"type":"object","properties":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"`)
		b.WriteString(strconv.FormatInt(int64(i), 36))
		b.WriteString(`":0`)
	}
	b.WriteString(`}}}`)
	return b.Bytes()
}

// manyKeysSkillYAML is a raw skill file just under 256 KiB with as many
// parameter properties as fit.
func manyKeysSkillYAML(salt int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "description: heavy %d\nhttp:\n  method: GET\n  url: https://example.com/x\n  timeoutMs: 1000\nparameters:\n  type: object\n  properties:\n", salt)
	for i := 0; b.Len() < 255<<10; i++ {
		fmt.Fprintf(&b, "    p%s: {type: string}\n", strconv.FormatInt(int64(i), 36))
	}
	return b.Bytes()
}

// TestFairnessTypedPutManyKeys: item 2, first half. b sends a typed skill
// PUT with a great many keys in a loop while a does file PUTs: the 1.25
// MiB body with 151,000 keys of the review (over the 1 MiB request limit),
// and the most keys that fit under the limit, which reach the parsers
// (~20 ms of CPU each: backend stripEcho unmarshals the whole body with
// encoding/json before compile.DecodeView's limits apply).
func TestFairnessTypedPutManyKeys(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		name string
		keys int
		big  bool // over the 1 MiB limit of a request body
		want int
	}{
		{name: "151,000 keys in 1.25 MiB", keys: 151000, big: true, want: 413},
		{name: "115,000 keys under 1 MiB", keys: 115000, want: 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := quietAgent(e)
			b := otherAgent(e, "json-bomb")
			body := manyKeysJSON(tc.keys)
			require.Equal(t, tc.big, len(body) > 1<<20, "body of %d bytes, over 1 MiB: want %v", len(body), tc.big)
			url := e.srv.URL + "/agents/" + b + "/draft/skills/heavy"
			ac := newFairClient(1)
			r := runFairness(t, "typed PUT with "+tc.name, filePutProbe(e, newFairClient(1), a), attack{
				workers: 1, maxEach: 5000, floor: fairWriteFloor,
				hit: func(ctx context.Context, _, _ int) int {
					code, _, _ := fairDo(ctx, ac, fairReq{method: "PUT", url: url, key: e.other, body: body, contentType: "application/json"})
					return code
				},
			})
			onlyStatuses(t, r.attackAnswers, tc.want)
		})
	}
}

// TestFairnessListHeavySkills: item 2, second half. b's agents:read key
// lists 8 skills of 256 KiB each while a reads its own skills.
//
// Each of b's requests costs 0.2–0.5 CPU-s and ~110 MB of garbage: backend
// Typed → compile.ReadView re-parses every skill file with yaml.v3 in full
// on every GET (no cache by blob, limits applied after the parse). a's p99
// goes from 2–27 ms to 10–85 ms with one such loop (bound 60 ms; over it
// in 2 of 10 runs on a busy machine), and to 43–250 ms with two loops.
func TestFairnessListHeavySkills(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	b := otherAgent(e, "heavy-skills")
	for i := range 8 {
		e.must(200, "PUT", fmt.Sprintf("/agents/%s/draft/files/skills/heavy-%d.yaml", b, i), e.other, manyKeysSkillYAML(i))
	}
	bReader := e.key("b", "b-reader", server.ScopeAgentsRead)
	url := e.srv.URL + "/agents/" + b + "/draft/skills"
	ac := newFairClient(4)
	pc := newFairClient(1)
	probeURL := e.srv.URL + "/agents/" + a + "/draft/skills"
	r := runFairness(t, "GET /draft/skills over 8 heavy skills", func(ctx context.Context, _ int) error {
		code, body, err := fairDo(ctx, pc, fairReq{method: "GET", url: probeURL, key: e.reader})
		return expectStatus("GET a's /draft/skills", code, body, err, 200)
	}, attack{
		workers: 1, maxEach: 500,
		hit: func(ctx context.Context, _, _ int) int {
			code, _, _ := fairDo(ctx, ac, fairReq{method: "GET", url: url, key: bReader})
			return code
		},
	})
	onlyStatuses(t, r.attackAnswers, 200)
}

// TestFairnessHugeDiff: item 3. b asks for the diff of 131,000 changed
// lines while a diffs and reads its own agent.
//
// Until repo/ bounds diffs, the test stops at the first size whose single
// diff takes over 1.5 s (16,384 changed lines: 1.9–5 s; 131,000 would take
// minutes, and the daemon goes on after the client hangs up). Measured by
// hand at 16,384 lines, a's p99 held (2.6 → 26.5 ms, bound 60 ms): the diff
// takes one core and b's agent lock, not a's.
func TestFairnessHugeDiff(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	e.must(200, "PUT", "/agents/"+a+"/draft/files/knowledge/delta.md", e.admin, []byte("# Delta\n\nsmall change\n"))
	bReader := e.key("b", "b-reader", server.ScopeAgentsRead)
	// bigDiff makes an agent of b whose draft changes every one of lines
	// lines of one file against its published version, and times one
	// diff request of it alone.
	bigDiff := func(lines int) (string, time.Duration, int, error) {
		b := otherAgent(e, fmt.Sprintf("big-diff-%d", lines))
		e.must(200, "PUT", "/agents/"+b+"/draft/files/knowledge/big.md", e.other, bytes.Repeat([]byte("a\n"), lines))
		e.must(201, "POST", "/agents/"+b+"/publish", e.other, map[string]any{})
		e.must(200, "PUT", "/agents/"+b+"/draft/files/knowledge/big.md", e.other, bytes.Repeat([]byte("b\n"), lines))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		code, _, err := fairDo(ctx, newFairClient(1), fairReq{method: "GET", url: e.srv.URL + "/agents/" + b + "/versions/draft/diff", key: bReader})
		return b, time.Since(start), code, err
	}
	// Grow the diff step by step: without a budget a diff costs time
	// quadratic in its lines, the daemon goes on computing after the
	// client hangs up, and the full size would hold the test for minutes.
	const lines = 131000
	var b string
	for n := 4096; ; n = min(2*n, lines) {
		id, took, code, err := bigDiff(n)
		t.Logf("one diff of %d changed lines (%d added and deleted): status %d in %s", n, 2*n, code, took)
		if err != nil || took > 1500*time.Millisecond {
			t.Skipf("KNOWN: waiting for diff budget (repo/): one diff of %d changed lines took %s (status %d, err %v); %d lines would take ~%.0f× longer",
				n, took, code, err, lines, math.Pow(float64(lines)/float64(n), 2))
		}
		require.Equal(t, 200, code, "diff of %d changed lines", n)
		if n == lines {
			b = id
			break
		}
	}

	pc := newFairClient(1)
	diffURL := e.srv.URL + "/agents/" + a + "/versions/draft/diff"
	fileURL := e.srv.URL + "/agents/" + a + "/draft/files/agent.yaml"
	ac := newFairClient(4)
	r := runFairness(t, "diff of 131,000 changed lines", func(ctx context.Context, i int) error {
		if i%2 == 0 {
			code, body, err := fairDo(ctx, pc, fairReq{method: "GET", url: diffURL, key: e.reader})
			return expectStatus("GET a's draft diff", code, body, err, 200)
		}
		code, body, err := fairDo(ctx, pc, fairReq{method: "GET", url: fileURL, key: e.reader})
		return expectStatus("GET a's agent.yaml", code, body, err, 200)
	}, attack{
		workers: 2, maxEach: 200,
		hit: func(ctx context.Context, w, i int) int {
			u := e.srv.URL + "/agents/" + b + "/versions/draft/diff"
			if (w+i)%2 == 1 {
				u = e.srv.URL + "/agents/" + b + "/prepublish-report"
			}
			code, _, _ := fairDo(ctx, ac, fairReq{method: "GET", url: u, key: bReader})
			return code
		},
	})
	onlyStatuses(t, r.attackAnswers, 200)
}

// heavyPattern returns an RE2 pattern whose program has at most insts
// instructions and is costly to run: every thread stays alive over the text.
func heavyPattern(t *testing.T, insts int) string {
	t.Helper()
	best := ""
	for n := 10; n <= 1000; n += 10 { // RE2 repeats at most 1000 times
		p := fmt.Sprintf("[a-z].{%d}[a-z].{%d}q", n, n)
		re, err := syntax.Parse(p, syntax.Perl)
		require.NoError(t, err)
		prog, err := syntax.Compile(re.Simplify())
		require.NoError(t, err)
		if len(prog.Inst) > insts {
			break
		}
		best = p
	}
	require.NotEmpty(t, best, "no pattern fits %d instructions", insts)
	return best
}

// guardrailYAML is a block guardrail with the given patterns.
func guardrailYAML(patterns []string) []byte {
	var b bytes.Buffer
	b.WriteString("description: heavy\napplies: both\nblock:\n  message: blocked\n  patterns:\n")
	for _, p := range patterns {
		fmt.Fprintf(&b, "    - '%s'\n", p)
	}
	return b.Bytes()
}

// TestFairnessHeavyGuardrails: item 4. b's agent carries guardrails as
// heavy as compile allows, and b's sessions post long messages while a
// chats with its own agent.
func TestFairnessHeavyGuardrails(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	b := otherAgent(e, "regex-bomb")

	// 300 heavy patterns, as in the review: the draft stores them, but they
	// do not compile (too many, too large), so no session can run them.
	pat := heavyPattern(t, 1900)
	many := make([]string, 300)
	for i := range many {
		many[i] = pat
	}
	e.must(200, "PUT", "/agents/"+b+"/draft/files/guardrails/g300.yaml", e.other, guardrailYAML(many))
	problemCode(t, e.do("POST", "/chat/sessions", e.other, map[string]any{"agentId": b, "draftMode": true}), 422, "compile_failed")
	e.must(200, "DELETE", "/agents/"+b+"/draft/files/guardrails/g300.yaml", e.other, nil)

	// The heaviest set that compiles: find it by adding patterns to
	// guardrails until the compiler refuses one more.
	var kept int
	for g := 0; g < 30; g++ {
		path := fmt.Sprintf("/agents/%s/draft/files/guardrails/g%02d.yaml", b, g)
		e.must(200, "PUT", path, e.other, guardrailYAML([]string{pat, pat, pat, pat, pat}))
		if e.do("POST", "/chat/sessions", e.other, map[string]any{"agentId": b, "draftMode": true}).StatusCode != 201 {
			e.must(200, "DELETE", path, e.other, nil)
			break
		}
		kept += 5
	}
	require.Positive(t, kept, "no heavy guardrail compiles")
	t.Logf("b's agent runs %d patterns %q (each direction)", kept, pat)

	const sessions = 4
	bSessions := make([]string, sessions)
	for i := range bSessions {
		bSessions[i] = str(t, e.must(201, "POST", "/chat/sessions", e.other, map[string]any{"agentId": b, "draftMode": true}).json(t), "id")
	}
	text := strings.Repeat("abcdefghij", 409) // 4,090 bytes: every thread of the pattern stays alive
	msg, err := json.Marshal(map[string]any{"text": text})
	require.NoError(t, err)

	aSession := str(t, e.must(201, "POST", "/chat/sessions", e.chatOnly, map[string]any{"agentId": a}).json(t), "id")
	aMsg, err := json.Marshal(map[string]any{"text": "Where is my order?"})
	require.NoError(t, err)
	pc := newFairClient(1)
	ac := newFairClient(sessions)
	aURL := e.srv.URL + "/chat/sessions/" + aSession + "/messages"
	r := runFairness(t, fmt.Sprintf("%d heavy guardrail patterns, %d sessions", kept, sessions), func(ctx context.Context, _ int) error {
		code, body, err := fairDo(ctx, pc, fairReq{method: "POST", url: aURL, key: e.chatOnly, body: aMsg, contentType: "application/json"})
		return expectStatus("a's message", code, body, err, 200)
	}, attack{
		workers: sessions, maxEach: 5000,
		hit: func(ctx context.Context, w, _ int) int {
			code, _, _ := fairDo(ctx, ac, fairReq{method: "POST", url: e.srv.URL + "/chat/sessions/" + bSessions[w] + "/messages", key: e.other, body: msg, contentType: "application/json"})
			return code
		},
	})
	onlyStatuses(t, r.attackAnswers, 200)
}

// gzipBomb is an upload-pack request body that inflates to n bytes of
// pkt-line flushes.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte("0000"), 1<<14)
	for written := 0; written < n; written += len(chunk) {
		_, err := zw.Write(chunk)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// pktLine frames s as one pkt-line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// TestFairnessGitBombsAndClones: item 5, git. b sends 12 concurrent
// gzip-bomb upload-pack requests and 40 concurrent clones (the server side
// of one: advertisement and pack) while a calls /healthz and the API.
//
// a's p99 here is 37–67 ms against a bound of 60: the default of 8 git
// processes at once keeps more processes runnable than a 2-core machine
// has cores, and a's request waits for the kernel's scheduler. With 2
// processes (an experiment, not the default) it is 4–6 ms.
func TestFairnessGitBombsAndClones(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	a := quietAgent(e)
	b := otherAgent(e, "git-flood")
	e.must(201, "POST", "/agents/"+b+"/draft/commits", e.other, map[string]any{"changes": []map[string]any{
		{"path": "knowledge/a.md", "content": strings.Repeat("lorem ipsum dolor sit amet\n", 5000)},
	}})
	head := str(t, e.must(200, "GET", "/agents/"+b+"/draft", e.other, nil).json(t), "revision")
	bomb := gzipBomb(t, 64<<20)
	t.Logf("gzip bomb: %d bytes inflating to %d", len(bomb), 64<<20)
	clone := []byte(pktLine("want "+head+" ofs-delta\n") + "0000" + pktLine("done\n"))
	gitURL := e.srv.URL + "/git/" + b + ".git"

	pc := newFairClient(1)
	healthz := e.srv.URL + "/healthz"
	agentURL := e.srv.URL + "/agents/" + a
	ac := newFairClient(60)
	const bombs, clones = 12, 40
	r := runFairness(t, "12 gzip bombs and 40 clones", func(ctx context.Context, i int) error {
		if i%2 == 0 {
			code, body, err := fairDo(ctx, pc, fairReq{method: "GET", url: healthz})
			return expectStatus("GET /healthz", code, body, err, 200)
		}
		code, body, err := fairDo(ctx, pc, fairReq{method: "GET", url: agentURL, key: e.reader})
		return expectStatus("GET a's agent", code, body, err, 200)
	}, attack{
		workers: bombs + clones, maxEach: 200,
		hit: func(ctx context.Context, w, i int) int {
			if w < bombs {
				code, _, _ := fairDo(ctx, ac, fairReq{method: "POST", url: gitURL + "/git-upload-pack", key: e.other, body: bomb,
					contentType: "application/x-git-upload-pack-request", headers: []string{"Content-Encoding", "gzip"}})
				return code
			}
			if i%2 == 0 {
				code, _, _ := fairDo(ctx, ac, fairReq{method: "GET", url: gitURL + "/info/refs?service=git-upload-pack", key: e.other})
				return code
			}
			code, _, _ := fairDo(ctx, ac, fairReq{method: "POST", url: gitURL + "/git-upload-pack", key: e.other, body: clone,
				contentType: "application/x-git-upload-pack-request"})
			return code
		},
	})
	// Bombs are refused (413 past the inflated limit, 400 when they are not
	// a valid request); clones are served, or shed with 503 when every git
	// process slot stays busy.
	onlyStatuses(t, r.attackAnswers, 200, 400, 413, 503)
	assert.Positive(t, r.attackAnswers[200], "no clone was served: %v", r.attackAnswers)
}

// TestFairnessHangingWebhooks: item 5, webhooks. b registers 50 webhooks
// whose endpoints never answer and keeps firing events, while a's webhook
// deliveries are timed from the edit to their arrival.
func TestFairnessHangingWebhooks(t *testing.T) {
	skipShort(t)
	e := newEnv(t)
	disp := webhook.New(webhook.Options{Store: e.store, Client: webhook.NewClient(true, webhook.DefaultTimeout), Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = disp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.withDispatcher(disp)

	// a's consumer answers at once; each arrival is signalled.
	arrived := make(chan struct{}, 1000)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
		arrived <- struct{}{}
	}))
	t.Cleanup(fast.Close)
	// b's endpoints hold every request until the test ends.
	var hanging atomic.Int64
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close

	a := quietAgent(e)
	e.must(201, "POST", "/webhooks", e.admin, map[string]any{"url": fast.URL + "/a", "events": []string{"draft.updated"}, "agentId": a})
	b := otherAgent(e, "hooks")
	for i := range 50 {
		e.must(201, "POST", "/webhooks", e.other, map[string]any{"url": fmt.Sprintf("%s/b/%d", slow.URL, i), "events": []string{"draft.updated"}})
	}
	problemCode(t, e.do("POST", "/webhooks", e.other, map[string]any{"url": slow.URL + "/b/51", "events": []string{"draft.updated"}}), 422, "validation_failed")
	// Deliveries of a's setup (if any) are drained before timing.
	time.Sleep(200 * time.Millisecond)
	for len(arrived) > 0 {
		<-arrived
	}

	pc := newFairClient(1)
	aURL := e.srv.URL + "/agents/" + a + "/draft/files/knowledge/hooked.md"
	ac := newFairClient(2)
	bURL := e.srv.URL + "/agents/" + b + "/draft/files/knowledge/spam.md"
	r := runFairness(t, "50 hanging webhooks", func(ctx context.Context, i int) error {
		code, body, err := fairDo(ctx, pc, fairReq{method: "PUT", url: aURL, key: e.admin, body: fmt.Appendf(nil, "edit %d\n", i)})
		if err := expectStatus("PUT a's file", code, body, err, 200); err != nil {
			return err
		}
		select {
		case <-arrived:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("a's draft.updated %d not delivered: %w", i, ctx.Err())
		}
	}, attack{
		workers: 1, maxEach: 2000, floor: fairWriteFloor,
		hit: func(ctx context.Context, _, i int) int {
			// A burst of 20 edits first (1,000 deliveries that hang),
			// then one more every 250 ms: the load is the hanging
			// deliveries, not b's writes.
			code, _, _ := fairDo(ctx, ac, fairReq{method: "PUT", url: bURL, key: e.other, body: fmt.Appendf(nil, "spam %d\n", i)})
			if i >= 20 {
				select {
				case <-ctx.Done():
				case <-time.After(250 * time.Millisecond):
				}
			}
			return code
		},
	})
	onlyStatuses(t, r.attackAnswers, 200)
	assert.Positive(t, hanging.Load(), "b's endpoints were never called")
	t.Logf("b's endpoints held %d requests", hanging.Load())
}
