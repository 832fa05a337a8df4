package backend

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/flowyte/flowyte/server/responder"
	"github.com/flowyte/flowyte/server/store"
)

// MaxOutcomeVersions caps the versions of one outcomes request.
const MaxOutcomeVersions = 20

// Outcome is one version's outcomes over a time range (CONTRACT §12).
// A message is one user turn; fallbackRate is fallbacks per message (0
// without messages).
type Outcome struct {
	Version            string  `json:"version"`
	Sessions           int64   `json:"sessions"`
	Messages           int64   `json:"messages"`
	FallbackRate       float64 `json:"fallbackRate"`
	GuardrailBlocks    int64   `json:"guardrailBlocks"`
	PlaybooksCompleted int64   `json:"playbooksCompleted"`
	Handoffs           int64   `json:"handoffs"`
}

// Outcomes is the outcomes of several versions, side by side.
type Outcomes struct {
	Data []Outcome `json:"data"`
}

// outcomeDelta is what one turn of a published session adds.
func outcomeDelta(ss store.Session, o responder.Outcome, at time.Time) store.OutcomeDelta {
	return store.OutcomeDelta{
		AgentID: ss.AgentID, Version: ss.Version, At: at, Messages: 1,
		Fallbacks: b2i(o.Fallback), GuardrailBlocks: b2i(o.Blocked),
		PlaybooksCompleted: b2i(o.PlaybookCompleted), Handoffs: b2i(o.Handoff),
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Outcomes returns the outcomes of versions ("v<n>" or "published") of an
// agent between from and to (zero: unbounded; counters are hourly, so the
// range widens to whole hours). Without versions, it reports every version
// a channel serves now (the published one, pins and splits). Draft
// sessions are not counted.
func (b *Backend) Outcomes(ctx context.Context, p Principal, agentID string, versions []string, from, to time.Time) (Outcomes, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Outcomes{}, err
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return Outcomes{}, Errorf("invalid_request", "to is before from")
	}
	if len(versions) > MaxOutcomeVersions {
		return Outcomes{}, Errorf("invalid_request", "at most %d versions at once", MaxOutcomeVersions)
	}
	var ns []int
	if len(versions) == 0 {
		if ns, err = b.servedVersions(ctx, a); err != nil {
			return Outcomes{}, err
		}
	}
	for _, ref := range versions {
		n, ok := ParseVersionNumber(ref)
		if ref == "published" {
			n, ok = a.Published, a.Published > 0
		}
		if !ok {
			return Outcomes{}, Errorf("version_not_found", "%q is not a version of agent %s (v<n> or published)", ref, a.ID)
		}
		if _, err := b.versionRow(ctx, a.ID, n); errors.Is(err, store.ErrNotFound) {
			return Outcomes{}, Errorf("version_not_found", "agent %s has no version %s", a.ID, ref)
		} else if err != nil {
			return Outcomes{}, err
		}
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	rows, err := b.store.Outcomes(ctx, a.ID, ns, from, to)
	if err != nil {
		return Outcomes{}, err
	}
	out := Outcomes{Data: make([]Outcome, 0, len(rows))}
	for _, r := range rows {
		o := Outcome{
			Version: VersionID(r.Version), Sessions: r.Sessions, Messages: r.Messages,
			GuardrailBlocks: r.GuardrailBlocks, PlaybooksCompleted: r.PlaybooksCompleted, Handoffs: r.Handoffs,
		}
		if r.Messages > 0 {
			o.FallbackRate = float64(r.Fallbacks) / float64(r.Messages)
		}
		out.Data = append(out.Data, o)
	}
	return out, nil
}

// servedVersions is every version a channel of a serves now, ascending.
func (b *Backend) servedVersions(ctx context.Context, a store.Agent) ([]int, error) {
	modes, err := b.channelModes(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	var ns []int
	add := func(n int) {
		if n > 0 && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	for _, name := range ChannelNames {
		m, ok := findMode(modes, name)
		if !ok {
			add(a.Published)
			continue
		}
		for _, e := range m.Split {
			add(e.Version)
		}
	}
	slices.Sort(ns)
	return ns, nil
}
