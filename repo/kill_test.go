package repo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

const killHelperEnv = "FLOWYTE_REPO_KILL_HELPER_ROOT"

// TestKillHelper is the child process of TestKillDuringWrites: it commits
// and publishes on one agent until it is killed.
func TestKillHelper(t *testing.T) {
	root := os.Getenv(killHelperEnv)
	if root == "" {
		t.Skip("helper process only")
	}
	s, err := Open(Options{Root: root, Compile: fakeCompile, Sync: false})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(fmt.Sprintf("k/%d.md", i%50), fmt.Sprint(i))}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Publish(ctx, testID, PublishRequest{Notes: fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if _, err := s.Rollback(ctx, testID, 1+i%3, nil, nil); err != nil {
				t.Fatal(err)
			}
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
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+round*97) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		if err := s.Recover(ctx, testID); err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		mustFsck(t, dir)
		vs, err := s.Versions(ctx, testID)
		if err != nil {
			t.Fatalf("round %d: versions: %v", round, err)
		}
		for i, v := range vs {
			if v.Number != i+1 {
				t.Fatalf("round %d: version %d at index %d, want contiguous", round, v.Number, i)
			}
		}
		if _, err := s.Published(ctx, testID); err != nil {
			t.Fatalf("round %d: published: %v", round, err)
		}
		latest, _ := s.Latest(ctx, testID)
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprintf("round %d", round)))
		if v := mustPublish(t, s, testID, ""); v.Number != latest+1 {
			t.Fatalf("round %d: next version %d, want %d", round, v.Number, latest+1)
		}
	}
	if n, _ := s.Latest(ctx, testID); n <= 9 {
		t.Fatalf("latest=%d: the helper never published", n)
	}
}
