package backend_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// BenchmarkSessionCreateSplitVsFollow creates sessions on one agent's
// follow channel (chat) and on its split channel (phone, three versions,
// sticky callers), side by side in one run. Target: split within 10% of
// follow (ratio ≤ 1.10).
func BenchmarkSessionCreateSplitVsFollow(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	a := w.publishN(b, 3)
	_, err := w.b.SetChannel(ctx, w.admin, a.ID, "phone", split("v1", 10, "v2", 30, "v3", 60))
	require.NoError(b, err)
	follow := backend.SessionInput{AgentID: a.ID, Channel: "chat"}
	splitIn := func(i int) backend.SessionInput {
		return backend.SessionInput{AgentID: a.ID, Channel: "phone", CallerID: fmt.Sprintf("+1555%07d", i)}
	}
	create := func(in backend.SessionInput) time.Duration {
		t0 := time.Now()
		if _, err := w.b.CreateSession(ctx, w.admin, in); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := range 100 { // warm the engines of every version
		create(follow)
		create(splitIn(i))
	}
	// One follow and one split session in turn, the order swapped every
	// pair, so drift (WAL growth, checkpoints, GC, a busy machine) hits both
	// alike; medians keep the other tenants of the machine out.
	const n = 2000
	var fs, ss []time.Duration
	i := 0
	for b.Loop() {
		for range n {
			if i%2 == 0 {
				fs = append(fs, create(follow))
				ss = append(ss, create(splitIn(i)))
			} else {
				ss = append(ss, create(splitIn(i)))
				fs = append(fs, create(follow))
			}
			i++
		}
	}
	fm, sm := median(fs), median(ss)
	b.ReportMetric(float64(fm.Nanoseconds()), "follow-p50-ns")
	b.ReportMetric(float64(sm.Nanoseconds()), "split-p50-ns")
	b.ReportMetric(float64(sm)/float64(fm), "split/follow")
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkOutcomes1M answers GET outcomes for two versions whose counters
// hold 1,000,000 recorded messages over 90 days of hourly buckets
// (counters are inserted directly: recording a million turns through the
// responder would measure the responder). Target: under 5 ms.
func BenchmarkOutcomes1M(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	a := w.publishN(b, 2)
	const hours = 90 * 24
	start := time.Now().Add(-hours * time.Hour)
	total := 0
	require.NoError(b, w.st.Write(ctx, func(tx store.Tx) error {
		for v := 1; v <= 2; v++ {
			for h := range hours {
				msgs := 1_000_000 / (2 * hours)
				if v == 2 && h == hours-1 {
					msgs = 1_000_000 - total // the remainder lands in the last bucket
				}
				total += msgs
				err := tx.AddOutcomes(ctx, store.OutcomeDelta{AgentID: a.ID, Version: v, At: start.Add(time.Duration(h) * time.Hour),
					Sessions: msgs / 4, Messages: msgs, Fallbacks: msgs / 10, GuardrailBlocks: msgs / 50, PlaybooksCompleted: msgs / 8, Handoffs: msgs / 20})
				if err != nil {
					return err
				}
			}
		}
		return nil
	}))
	var got backend.Outcomes
	for b.Loop() {
		var err error
		got, err = w.b.Outcomes(ctx, w.admin, a.ID, []string{"v1", "v2"}, time.Time{}, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
	}
	require.Len(b, got.Data, 2)
	require.Equal(b, int64(1_000_000), got.Data[0].Messages+got.Data[1].Messages)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
}
