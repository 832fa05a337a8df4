package repo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadsSkipTheWriterLock holds the agent lock (as a long publish
// would) and checks that every read path still answers.
func TestReadsSkipTheWriterLock(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("one\n")})
	v1 := mustPublish(t, s, testID, "")
	c := mustCommit(t, s, testID, set("agent.yaml", "two\n"))

	a, err := s.lock(ctx, testID)
	require.NoError(t, err)
	defer s.unlock(a)
	done := make(chan struct{})
	go func() {
		defer close(done)
		data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "agent.yaml")
		assert.NoError(t, err)
		assert.Equal(t, "one\n", string(data))
		data, _, err = s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "agent.yaml")
		assert.NoError(t, err)
		assert.Equal(t, "two\n", string(data))
		v, err := s.Version(ctx, testID, 1)
		assert.NoError(t, err)
		assert.Equal(t, v1, v)
		vs, err := s.Versions(ctx, testID)
		assert.NoError(t, err)
		assert.Len(t, vs, 1)
		d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevDraft}, true)
		assert.NoError(t, err)
		assert.Equal(t, 1, d.Additions)
		st, err := s.DiffStat(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevDraft}, true)
		assert.NoError(t, err)
		assert.Equal(t, 1, st.Deletions)
		dr, err := s.Draft(ctx, testID)
		assert.NoError(t, err)
		assert.Equal(t, c.Revision, dr.Revision)
		rev, _, files, err := s.DraftFiles(ctx, testID)
		assert.NoError(t, err)
		assert.Equal(t, c.Revision, rev)
		assert.Equal(t, "two\n", string(files["agent.yaml"]))
		_, fs, err := s.FilesAt(ctx, testID, c.Revision)
		assert.NoError(t, err)
		assert.Len(t, fs, 1)
		h, _, err := s.History(ctx, testID, "", 10)
		assert.NoError(t, err)
		assert.Len(t, h, 2)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "reads blocked behind the agent lock")
	}
}

// TestReadsDuringWritesAndHousekeeping runs readers of immutable versions
// and of the draft while a writer publishes and housekeeping packs and
// deletes loose objects and refs under them (run with -race).
func TestReadsDuringWritesAndHousekeeping(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("v1\n")})
	mustPublish(t, s, testID, "")
	want, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, compiledPath)
	require.NoError(t, err)

	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, compiledPath)
				if !assert.NoError(t, err) || !assert.Equal(t, want, data) {
					return
				}
				v, err := s.Version(ctx, testID, 1)
				if !assert.NoError(t, err) || !assert.Equal(t, 1, v.Number) {
					return
				}
				_, err = s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevDraft}, true)
				if !assert.NoError(t, err) {
					return
				}
				_, _, _, err = s.DraftFiles(ctx, testID)
				if !assert.NoError(t, err) {
					return
				}
				reads.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			_, err := s.Housekeep(ctx, testID)
			if !assert.NoError(t, err) {
				return
			}
		}
	}()
	for i := 2; i <= 40; i++ {
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprintf("v%d\n", i)))
		mustPublish(t, s, testID, "")
	}
	stop.Store(true)
	wg.Wait()
	assert.Positive(t, reads.Load())
	assert.Positive(t, s.HousekeepingStats().Repacks)
	require.NoError(t, s.Recover(ctx, testID))
	mustFsck(t, s.Path(testID))
	vs, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	assert.Len(t, vs, 40)
}
