package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const killHelperEnv = "FLOWYTE_REPO_KILL_HELPER_ROOT"

// TestKillHelper is the child process of TestKillDuringWrites: it commits
// and publishes on one agent until it is killed.
func TestKillHelper(t *testing.T) {
	root := os.Getenv(killHelperEnv)
	if root == "" {
		t.Skip("helper process only")
	}
	// A low threshold: housekeeping runs (and gets killed) too.
	s, err := Open(Options{Root: root, Compile: fakeCompile, Sync: false, PackThreshold: 40})
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; ; i++ {
		_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(fmt.Sprintf("k/%d.md", i%50), fmt.Sprintf("%d-%d", os.Getpid(), i))}}, nil)
		require.NoError(t, err)
		_, err = s.Publish(ctx, testID, PublishRequest{Notes: fmt.Sprint(i)}, nil)
		require.NoError(t, err)
		if i%7 == 0 {
			_, err := s.Rollback(ctx, testID, 1+i%3, nil, nil)
			require.NoError(t, err)
		}
	}
}

// TestKillDuringWrites SIGKILLs a writer at arbitrary instants and checks
// that the repository stays consistent: fsck passes, every ref resolves,
// versions stay contiguous and work resumes after Recover.
func TestKillDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	for i := 0; i < 3; i++ {
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprint(i)))
		mustPublish(t, s, testID, "")
	}
	dir := s.Path(testID)
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killHelperEnv+"="+s.o.Root)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		before, err := listRefs(dir)
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Kill at an arbitrary instant once the helper is writing (its start
		// is slow under -race): after its first new tag.
		deadline := time.Now().Add(30 * time.Second)
		for {
			refs, err := listRefs(dir)
			require.NoError(t, err)
			if len(refs) > len(before) {
				break
			}
			require.True(t, time.Now().Before(deadline), "round %d: the helper never published: %s", round, &out)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(50+round*97) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		require.NoError(t, s.Recover(ctx, testID), "round %d: recover", round)
		mustFsck(t, dir)
		vs, err := s.Versions(ctx, testID)
		require.NoError(t, err, "round %d: versions", round)
		for i, v := range vs {
			require.Equal(t, i+1, v.Number, "round %d: versions not contiguous", round)
		}
		_, err = s.Published(ctx, testID)
		require.NoError(t, err, "round %d: published", round)
		latest, err := s.Latest(ctx, testID)
		require.NoError(t, err)
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprintf("round %d", round)))
		assert.Equal(t, latest+1, mustPublish(t, s, testID, "").Number, "round %d: next version", round)
	}
	n, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Greater(t, n, 9, "the helper never published")
}
