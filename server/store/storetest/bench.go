package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// Bench measures the operations a daemon does most, so engines can be
// compared: the publish mirror (one transaction: version, deployment,
// agent row, event), a session creation, an agent read and a key stamp.
func Bench(b *testing.B, open func(b *testing.B) Engine) {
	ctx := context.Background()
	setup := func(b *testing.B) (Engine, string) {
		s := open(b)
		ws := mustWorkspace(b, s, "bench")
		mustAgent(b, s, ws.ID, "agt_bench", t0)
		return s, ws.ID
	}
	b.Run("PublishTx", func(b *testing.B) {
		s, ws := setup(b)
		b.ResetTimer()
		for i := range b.N {
			n := i + 1
			err := s.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertVersion(ctx, store.Version{AgentID: "agt_bench", Number: n, Commit: "c", Digest: "d", CreatedAt: t0}); err != nil {
					return err
				}
				if _, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_bench", At: t0, Kind: store.DeployPublish, From: n - 1, To: n}); err != nil {
					return err
				}
				if err := tx.SetPublished(ctx, "agt_bench", n, n); err != nil {
					return err
				}
				return tx.InsertEvent(ctx, store.Event{ID: store.NewID("evt_"), WorkspaceID: ws, AgentID: "agt_bench",
					Type: "version.published", Payload: []byte(`{}`), CreatedAt: t0, Dedupe: fmt.Sprintf("p:%d", n)})
			})
			require.NoError(b, err)
		}
	})
	b.Run("CreateSession", func(b *testing.B) {
		s, ws := setup(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				err := s.Write(ctx, func(tx store.Tx) error {
					return tx.CreateSession(ctx, store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_bench",
						Channel: "chat", DraftMode: true, CreatedAt: t0})
				})
				require.NoError(b, err)
			}
		})
	})
	b.Run("AgentByID", func(b *testing.B) {
		s, _ := setup(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, err := s.AgentByID(ctx, "agt_bench")
				require.NoError(b, err)
			}
		})
	})
	b.Run("KeysStamp", func(b *testing.B) {
		s, _ := setup(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = s.KeysStamp()
			}
		})
	})
}
