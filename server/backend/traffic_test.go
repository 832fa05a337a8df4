package backend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// publishN publishes n versions of the acme fixture (each with one more
// article) and returns the agent.
func (w *world) publishN(tb testing.TB, n int) backend.Agent {
	tb.Helper()
	ctx := context.Background()
	a := w.agentFromFixture(tb)
	for i := 1; i <= n; i++ {
		if i > 1 {
			_, err := w.b.Commit(ctx, w.admin, a.ID, backend.CommitInput{Changes: []backend.Change{{
				Path: fmt.Sprintf("knowledge/extra-%d.md", i), Content: []byte(fmt.Sprintf("# Extra %d\n\nmore text %d\n", i, i)),
			}}})
			require.NoError(tb, err)
		}
		_, err := w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
		require.NoError(tb, err)
	}
	return a
}

func ptr(s string) *string { return &s }

func split(pairs ...any) backend.ChannelInput {
	in := backend.ChannelInput{Mode: "split"}
	for i := 0; i+1 < len(pairs); i += 2 {
		in.Split = append(in.Split, backend.SplitWeight{Version: pairs[i].(string), Weight: float64(pairs[i+1].(int))})
	}
	return in
}

// events returns the outbox events of one type, oldest first.
func (w *world) events(tb testing.TB, typ string) []map[string]any {
	tb.Helper()
	evs, _, err := w.st.EventsAfter(context.Background(), 0, 1000)
	require.NoError(tb, err)
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var body map[string]any
		require.NoError(tb, json.Unmarshal(ev.Payload, &body))
		out = append(out, body)
	}
	return out
}

func TestChannelsDefaultToFollow(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.agentFromFixture(t)
	chs, err := w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, []backend.Channel{{Channel: "chat", Mode: "follow"}, {Channel: "phone", Mode: "follow"}}, chs, "unpublished: follow, serving nothing")

	a = w.publishN(t, 2)
	chs, err = w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, []backend.Channel{{Channel: "chat", Serves: "v2", Mode: "follow"}, {Channel: "phone", Serves: "v2", Mode: "follow"}}, chs)
}

func TestSetChannelValidation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.publishN(t, 3)
	for _, tc := range []struct {
		name     string
		in       backend.ChannelInput
		pointers []string
	}{
		{"no mode", backend.ChannelInput{}, []string{"/mode"}},
		{"bad mode", backend.ChannelInput{Mode: "canary"}, []string{"/mode"}},
		{"follow with version", backend.ChannelInput{Mode: "follow", Version: ptr("v1")}, []string{"/version"}},
		{"pin without version", backend.ChannelInput{Mode: "pin"}, []string{"/version"}},
		{"pin malformed", backend.ChannelInput{Mode: "pin", Version: ptr("3")}, []string{"/version"}},
		{"pin unknown", backend.ChannelInput{Mode: "pin", Version: ptr("v9")}, []string{"/version"}},
		{"split of one", split("v1", 100), []string{"/split"}},
		{"split of six", split("v1", 10, "v2", 10, "v3", 20, "v1", 20, "v2", 20, "v3", 20), []string{"/split", "/split/3/version", "/split/4/version", "/split/5/version"}},
		{"split sum", split("v1", 50, "v2", 40), []string{"/split"}},
		{"split zero weight", split("v1", 100, "v2", 0), []string{"/split/1/weight"}},
		{"split negative", split("v1", 110, "v2", -10), []string{"/split/0/weight", "/split/1/weight"}},
		{"split fraction", backend.ChannelInput{Mode: "split", Split: []backend.SplitWeight{{Version: "v1", Weight: 50.5}, {Version: "v2", Weight: 49.5}}}, []string{"/split/0/weight", "/split/1/weight"}},
		{"split duplicate", split("v2", 50, "v2", 50), []string{"/split/1/version"}},
		{"split unknown", split("v1", 50, "v7", 50), []string{"/split/1/version"}},
		{"split with version", backend.ChannelInput{Mode: "split", Version: ptr("v1"), Split: split("v1", 50, "v2", 50).Split}, []string{"/version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.b.SetChannel(ctx, w.admin, a.ID, "chat", tc.in)
			e := backend.ErrorOf(err)
			require.NotNil(t, e, "err=%v", err)
			assert.Equal(t, "validation_failed", e.Code)
			var got []string
			for _, fe := range e.Extra["errors"].([]backend.FieldError) {
				got = append(got, fe.Pointer)
			}
			assert.Equal(t, tc.pointers, got)
		})
	}
	_, err := w.b.SetChannel(ctx, w.admin, a.ID, "sms", backend.ChannelInput{Mode: "follow"})
	assert.Equal(t, "not_found", code(err), "unknown channel")
	_, err = w.b.SetChannel(ctx, w.other, a.ID, "chat", backend.ChannelInput{Mode: "follow"})
	assert.Equal(t, "agent_not_found", code(err), "another workspace")
	_, err = w.b.Channels(ctx, w.other, a.ID)
	assert.Equal(t, "agent_not_found", code(err), "another workspace")
	deps, _, err := w.b.Deployments(ctx, w.admin, a.ID, "", 50)
	require.NoError(t, err)
	assert.Len(t, deps, 3, "refused changes record nothing")
	assert.Empty(t, w.events(t, backend.EventChannelUpdated))
}

func TestChannelChangesAreDeploymentsAndEvents(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.publishN(t, 3)

	ch, err := w.b.SetChannel(ctx, w.admin, a.ID, "phone", backend.ChannelInput{Mode: "pin", Version: ptr("v1")})
	require.NoError(t, err)
	assert.Equal(t, backend.Channel{Channel: "phone", Serves: "v1", Mode: "pin"}, ch)

	// Weights given newest first come back in ascending version order;
	// serves is the largest weight, a tie going to the newer version.
	ch, err = w.b.SetChannel(ctx, w.admin, a.ID, "chat", split("v3", 45, "v2", 45, "v1", 10))
	require.NoError(t, err)
	assert.Equal(t, backend.Channel{Channel: "chat", Serves: "v3", Mode: "split",
		Split: []backend.SplitShare{{Version: "v1", Weight: 10}, {Version: "v2", Weight: 45}, {Version: "v3", Weight: 45}}}, ch)

	again, err := w.b.SetChannel(ctx, w.admin, a.ID, "chat", split("v1", 10, "v2", 45, "v3", 45))
	require.NoError(t, err)
	assert.Equal(t, ch, again, "the same split again")

	chs, err := w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, []backend.Channel{ch, {Channel: "phone", Serves: "v1", Mode: "pin"}}, chs)

	deps, _, err := w.b.Deployments(ctx, w.admin, a.ID, "", 50)
	require.NoError(t, err)
	require.Len(t, deps, 5, "3 publishes, a pin, a split; the repeated split changed nothing")
	assert.Equal(t, "split", deps[0].Kind)
	assert.Equal(t, "chat", deps[0].Channel)
	assert.Equal(t, "v3", deps[0].From)
	assert.Equal(t, "v3", deps[0].To)
	assert.Equal(t, ch.Split, deps[0].Split)
	assert.Equal(t, "pin", deps[1].Kind)
	assert.Equal(t, "phone", deps[1].Channel)
	assert.Equal(t, "v1", deps[1].To)
	assert.Nil(t, deps[1].Split)
	assert.Nil(t, deps[2].Channel, "a publish names no channel")

	evs := w.events(t, backend.EventChannelUpdated)
	require.Len(t, evs, 2)
	data := evs[1]["data"].(map[string]any)
	assert.Equal(t, "chat", data["channel"])
	assert.Equal(t, "split", data["mode"])
	assert.Equal(t, "v3", data["version"])
	assert.Equal(t, "v3", data["previousVersion"])
	assert.Len(t, data["split"], 3)
	assert.EqualValues(t, deps[0].ID, data["deploymentId"])
	assert.Equal(t, "https://flowyte.example/git/"+a.ID+".git", data["cloneUrl"])

	// Publish moves only follow channels.
	_, err = w.b.Commit(ctx, w.admin, a.ID, backend.CommitInput{Changes: []backend.Change{{Path: "knowledge/v4.md", Content: []byte("# V4\n\nfour\n")}}})
	require.NoError(t, err)
	_, err = w.b.Publish(ctx, w.admin, a.ID, backend.PublishInput{})
	require.NoError(t, err)
	_, err = w.b.SetChannel(ctx, w.admin, a.ID, "phone", backend.ChannelInput{Mode: "follow"})
	require.NoError(t, err)
	_, err = w.b.SetChannel(ctx, w.admin, a.ID, "phone", backend.ChannelInput{Mode: "pin", Version: ptr("v2")})
	require.NoError(t, err)
	chs, err = w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, "v3", chs[0].Serves, "the split stays after a publish")
	assert.Equal(t, "v2", chs[1].Serves)

	// Rollback returns every channel to follow, in its transaction.
	_, err = w.b.Rollback(ctx, w.admin, a.ID, backend.RollbackInput{Version: "v2"})
	require.NoError(t, err)
	chs, err = w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, []backend.Channel{{Channel: "chat", Serves: "v2", Mode: "follow"}, {Channel: "phone", Serves: "v2", Mode: "follow"}}, chs)
	deps, _, err = w.b.Deployments(ctx, w.admin, a.ID, "", 3)
	require.NoError(t, err)
	kinds := []string{deps[0].Kind, deps[1].Kind, deps[2].Kind}
	assert.Equal(t, []string{"follow", "follow", "rollback"}, kinds)
	assert.Equal(t, "v3", deps[1].From, "the chat split served v3")
	assert.Equal(t, "v2", deps[1].To)
	evs = w.events(t, backend.EventChannelUpdated)
	assert.Len(t, evs, 6, "pin, split, follow, pin, and two follows by the rollback")

	// A rollback to the version already live still pulls the brake.
	_, err = w.b.SetChannel(ctx, w.admin, a.ID, "chat", backend.ChannelInput{Mode: "pin", Version: ptr("v4")})
	require.NoError(t, err)
	_, err = w.b.Rollback(ctx, w.admin, a.ID, backend.RollbackInput{Version: "v2"})
	require.NoError(t, err)
	chs, err = w.b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, "follow", chs[0].Mode)
}

// TestSplitIsStickyAndMatchesWeights proves the contract's numbers: over
// 10,000 callers each version's share is within 2 points of its weight,
// and a caller always gets the same version while the split stands.
func TestSplitIsStickyAndMatchesWeights(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.publishN(t, 3)
	_, err := w.b.SetChannel(ctx, w.admin, a.ID, "phone", split("v1", 20, "v2", 70, "v3", 10))
	require.NoError(t, err)

	const callers = 10000
	counts := map[string]int{}
	first := map[string]any{}
	for i := 0; i < callers; i++ {
		caller := fmt.Sprintf("+1555%07d", i)
		s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, Channel: "phone", CallerID: caller})
		require.NoError(t, err)
		counts[s.Version.(string)]++
		if i%500 == 0 {
			first[caller] = s.Version
		}
	}
	for v, weight := range map[string]int{"v1": 20, "v2": 70, "v3": 10} {
		share := float64(counts[v]) * 100 / callers
		assert.InDelta(t, weight, share, 2, "%s: share %.2f%%, weight %d%%", v, share, weight)
	}
	for caller, v := range first {
		for range 3 {
			s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, Channel: "phone", CallerID: caller})
			require.NoError(t, err)
			assert.Equal(t, v, s.Version, "caller %s moved", caller)
		}
	}
	// Raising the newest version's weight moves callers only towards it.
	_, err = w.b.SetChannel(ctx, w.admin, a.ID, "phone", split("v1", 20, "v2", 50, "v3", 30))
	require.NoError(t, err)
	for caller, v := range first {
		s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, Channel: "phone", CallerID: caller})
		require.NoError(t, err)
		if v != "v3" && s.Version != v {
			assert.Equal(t, "v3", s.Version, "caller %s left %v for another old version", caller, v)
		}
	}
	// Without callerId: random by weight.
	random := map[string]int{}
	for range 2000 {
		s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, Channel: "phone"})
		require.NoError(t, err)
		random[s.Version.(string)]++
	}
	assert.InDelta(t, 20, float64(random["v1"])*100/2000, 4, "random v1 share")
	assert.InDelta(t, 50, float64(random["v2"])*100/2000, 4, "random v2 share")
	// The chat channel still follows.
	s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, CallerID: "+15550000000"})
	require.NoError(t, err)
	assert.Equal(t, "v3", s.Version)
}

func TestPinnedChannelServesItsVersion(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.publishN(t, 2)
	_, err := w.b.SetChannel(ctx, w.admin, a.ID, "chat", backend.ChannelInput{Mode: "pin", Version: ptr("v1")})
	require.NoError(t, err)
	s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID})
	require.NoError(t, err)
	assert.Equal(t, "v1", s.Version)
	rep, err := w.b.PostMessage(ctx, w.admin, s.ID, "hello")
	require.NoError(t, err)
	assert.Equal(t, "v1", rep.ServedBy.Version)
	d, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, DraftMode: true, CallerID: "x"})
	require.NoError(t, err)
	assert.Nil(t, d.Version, "draft mode ignores channels")

	_, err = w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, CallerID: string(make([]byte, 257))})
	assert.Equal(t, "validation_failed", code(err), "callerId too long")
}

func TestOutcomesCountedPerVersion(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.publishN(t, 2)
	_, err := w.b.SetChannel(ctx, w.admin, a.ID, "phone", backend.ChannelInput{Mode: "pin", Version: ptr("v1")})
	require.NoError(t, err)

	say := func(channel string, texts ...string) {
		s, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, Channel: channel})
		require.NoError(t, err)
		for _, text := range texts {
			_, err := w.b.PostMessage(ctx, w.admin, s.ID, text)
			require.NoError(t, err)
		}
	}
	say("phone", "Tell me about quantum physics", "you stupid bot", "talk to a human")
	say("phone", "where is my order", "A-10442")
	say("chat", "Tell me about quantum physics", "Tell me about black holes", "what is your warranty")
	d, err := w.b.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID, DraftMode: true})
	require.NoError(t, err)
	_, err = w.b.PostMessage(ctx, w.admin, d.ID, "Tell me about quantum physics")
	require.NoError(t, err)

	out, err := w.b.Outcomes(ctx, w.admin, a.ID, []string{"v1", "v2"}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []backend.Outcome{
		{Version: "v1", Sessions: 2, Messages: 5, FallbackRate: 0.2, GuardrailBlocks: 1, PlaybooksCompleted: 1, Handoffs: 1},
		{Version: "v2", Sessions: 1, Messages: 3, FallbackRate: 2.0 / 3, GuardrailBlocks: 0, PlaybooksCompleted: 0, Handoffs: 0},
	}, out.Data, "the draft session is not counted")

	served, err := w.b.Outcomes(ctx, w.admin, a.ID, nil, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, out.Data, served.Data, "default: the versions channels serve")

	past, err := w.b.Outcomes(ctx, w.admin, a.ID, []string{"published"}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []backend.Outcome{{Version: "v2"}}, past.Data, "nothing counted in that range")

	_, err = w.b.Outcomes(ctx, w.admin, a.ID, []string{"v9"}, time.Time{}, time.Time{})
	assert.Equal(t, "version_not_found", code(err))
	_, err = w.b.Outcomes(ctx, w.other, a.ID, []string{"v1"}, time.Time{}, time.Time{})
	assert.Equal(t, "agent_not_found", code(err))
	_, err = w.b.Outcomes(ctx, w.admin, a.ID, nil, time.Now(), time.Now().Add(-time.Hour))
	assert.Equal(t, "invalid_request", code(err))
}

// TestRecoveredRollbackReturnsChannelsToFollow: a rollback whose database
// write never happened (the pointer moved in git only) is finished by
// recovery, brake included: every channel follows again.
func TestRecoveredRollbackReturnsChannelsToFollow(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	compiler := func(files map[string][]byte) ([]byte, error) {
		res := compile.Compile(files)
		if !res.OK() {
			return nil, res.Errors
		}
		return res.JSON, nil
	}
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: compiler})
	require.NoError(t, err)
	w := &world{b: backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop()}), st: st}
	w.admin = w.principal(t, "a", "admin", backend.AllScopes...)
	ctx := context.Background()
	a := w.publishN(t, 2)
	_, err = w.b.SetChannel(ctx, w.admin, a.ID, "chat", split("v1", 50, "v2", 50))
	require.NoError(t, err)

	two := 2
	_, err = repos.Rollback(ctx, a.ID, 1, &two, nil) // git moves; the database never hears of it
	require.NoError(t, err)
	b := backend.New(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop()})
	_, err = b.Recover(ctx)
	require.NoError(t, err)
	chs, err := b.Channels(ctx, w.admin, a.ID)
	require.NoError(t, err)
	assert.Equal(t, backend.Channel{Channel: "chat", Serves: "v1", Mode: "follow"}, chs[0])
	deps, _, err := b.Deployments(ctx, w.admin, a.ID, "", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"follow", "rollback"}, []string{deps[0].Kind, deps[1].Kind})
}
