package responder

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTurnOutcome checks how each kind of turn is classified for the
// outcome counters.
func TestTurnOutcome(t *testing.T) {
	e := mustNew(t, richArtifact())
	cancel := State{Playbook: "cancel", Step: 0}
	ticket := State{Playbook: "support-ticket", Step: 2, Vars: map[string]string{"email": "a@b.c"}}
	for _, tc := range []struct {
		name string
		st   State
		text string
		want Outcome
	}{
		{"fallback", State{}, "what is the meaning of life", Outcome{Fallback: true}},
		{"knowledge", State{}, "how long does express shipping take", Outcome{}},
		{"input block", State{}, "you stupid bot", Outcome{Blocked: true}},
		{"output block", cancel, "megacorp", Outcome{Blocked: true, PlaybookCompleted: true}},
		{"playbook starts", State{}, "cancel my order", Outcome{}},
		{"playbook completes", cancel, "A-1", Outcome{PlaybookCompleted: true}},
		{"handoff", ticket, "it broke", Outcome{Handoff: true}},
		{"block while waiting", cancel, "idiot", Outcome{Blocked: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.Respond(tc.st, tc.text)
			assert.Equal(t, tc.want, got.Outcome, "reply %q trace %+v", got.Reply, got.Trace)
		})
	}
}
