package backend

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// ChannelNames are an agent's channels (CONTRACT §8, §12).
var ChannelNames = []string{"chat", "phone"}

// Channel modes (CONTRACT §12).
const (
	ModeFollow = store.ModeFollow
	ModePin    = store.ModePin
	ModeSplit  = store.ModeSplit
)

// MaxCallerIDBytes caps a session's callerId.
const MaxCallerIDBytes = 256

// Channel is what one channel serves and how it chooses (CONTRACT §12).
type Channel struct {
	Channel string `json:"channel"`
	// Serves is the version a follow or pin channel serves, or the version
	// with the largest weight of a split (a tie goes to the newer version);
	// null when nothing is published.
	Serves any          `json:"serves"`
	Mode   string       `json:"mode"`
	Split  []SplitShare `json:"split"`
}

// SplitShare is one version of a split and its weight (percent).
type SplitShare struct {
	Version string `json:"version"`
	Weight  int    `json:"weight"`
}

// ChannelInput is one change of a channel: {mode: follow}, {mode: pin,
// version} or {mode: split, split: [{version, weight}]}.
type ChannelInput struct {
	Mode    string        `json:"mode"`
	Version *string       `json:"version,omitempty"`
	Split   []SplitWeight `json:"split,omitempty"`
}

// SplitWeight is one entry of a requested split. Weight is a JSON number
// so a fractional weight is a validation error (422), not a parse error.
type SplitWeight struct {
	Version string  `json:"version"`
	Weight  float64 `json:"weight"`
}

// channelView renders one channel given the stored non-follow modes.
func channelView(name string, published int, modes []store.ChannelMode) Channel {
	m, ok := findMode(modes, name)
	if !ok {
		return Channel{Channel: name, Serves: nullableVersion(published), Mode: ModeFollow}
	}
	out := Channel{Channel: name, Serves: nullableVersion(servedBy(m.Split)), Mode: m.Mode}
	if m.Mode == ModeSplit {
		out.Split = make([]SplitShare, len(m.Split))
		for i, e := range m.Split {
			out.Split[i] = SplitShare{Version: VersionID(e.Version), Weight: e.Weight}
		}
	}
	return out
}

func findMode(modes []store.ChannelMode, name string) (store.ChannelMode, bool) {
	for _, m := range modes {
		if m.Channel == name {
			return m, true
		}
	}
	return store.ChannelMode{}, false
}

// servedBy is the version with the largest weight; a tie goes to the
// newer version.
func servedBy(split []store.SplitEntry) int {
	best := store.SplitEntry{}
	for _, e := range split {
		if e.Weight > best.Weight || e.Weight == best.Weight && e.Version > best.Version {
			best = e
		}
	}
	return best.Version
}

// served is what a channel in mode m (ok false: follow) serves.
func served(m store.ChannelMode, ok bool, published int) int {
	if !ok {
		return published
	}
	return servedBy(m.Split)
}

// Channels lists the agent's channels, what each serves and how.
func (b *Backend) Channels(ctx context.Context, p Principal, agentID string) ([]Channel, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return nil, err
	}
	modes, err := b.channelModes(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Channel, 0, len(ChannelNames))
	for _, name := range ChannelNames {
		out = append(out, channelView(name, a.Published, modes))
	}
	return out, nil
}

// parseChannel validates a channel change against the agent's versions:
// the mode and, for a pin or split, its entries in ascending version order.
func (b *Backend) parseChannel(ctx context.Context, a store.Agent, in ChannelInput) (string, []store.SplitEntry, error) {
	var errs []FieldError
	bad := func(pointer, code, msg string) {
		errs = append(errs, FieldError{Pointer: pointer, Code: code, Message: msg})
	}
	// exists reports whether ref names an existing version.
	exists := func(pointer, ref string) int {
		n, ok := ParseVersionNumber(ref)
		if !ok {
			bad(pointer, "invalid_version", "version must look like v<n>")
			return 0
		}
		if _, err := b.versionRow(ctx, a.ID, n); err != nil {
			bad(pointer, "unknown_version", "agent "+a.ID+" has no version "+ref)
			return 0
		}
		return n
	}
	var entries []store.SplitEntry
	switch in.Mode {
	case ModeFollow:
		if in.Version != nil {
			bad("/version", "not_allowed", "follow takes no version")
		}
		if in.Split != nil {
			bad("/split", "not_allowed", "follow takes no split")
		}
	case ModePin:
		if in.Split != nil {
			bad("/split", "not_allowed", "pin takes a version, not a split")
		}
		if in.Version == nil {
			bad("/version", "required", "pin needs a version")
		} else if n := exists("/version", *in.Version); n > 0 {
			entries = []store.SplitEntry{{Version: n, Weight: 100}}
		}
	case ModeSplit:
		if in.Version != nil {
			bad("/version", "not_allowed", "split takes a split, not a version")
		}
		if len(in.Split) < 2 || len(in.Split) > 5 {
			bad("/split", "count", "a split names 2 to 5 versions")
		}
		sum := 0.0
		seen := map[int]bool{}
		for i, e := range in.Split {
			ptr := "/split/" + strconv.Itoa(i)
			if e.Weight != math.Trunc(e.Weight) || e.Weight < 1 || e.Weight > 100 {
				bad(ptr+"/weight", "invalid_weight", "weight must be an integer from 1 to 100")
			}
			sum += e.Weight
			n := exists(ptr+"/version", e.Version)
			if n > 0 && seen[n] {
				bad(ptr+"/version", "duplicate", "each version appears once in a split")
			}
			seen[n] = true
			entries = append(entries, store.SplitEntry{Version: n, Weight: int(e.Weight)})
		}
		if len(in.Split) > 0 && sum != 100 {
			bad("/split", "sum", "weights must sum to 100, got "+strconv.FormatFloat(sum, 'f', -1, 64))
		}
		slices.SortFunc(entries, func(x, y store.SplitEntry) int { return x.Version - y.Version })
	case "":
		bad("/mode", "required", "mode is required: follow, pin or split")
	default:
		bad("/mode", "oneof", "mode must be one of: follow, pin, split")
	}
	if len(errs) > 0 {
		return "", nil, Errorf("validation_failed", "%s", errs[0].Message).With("errors", errs)
	}
	return in.Mode, entries, nil
}

// SetChannel changes how one channel picks its version. A change is a
// deployment (kind pin, split or follow) and a channel.updated event, in
// one transaction; setting the mode a channel already has changes nothing.
func (b *Backend) SetChannel(ctx context.Context, p Principal, agentID, channel string, in ChannelInput) (Channel, error) {
	a, err := b.agent(ctx, p, agentID)
	if err != nil {
		return Channel{}, err
	}
	if !slices.Contains(ChannelNames, channel) {
		return Channel{}, Errorf("not_found", "agent %s has no channel %q (chat or phone)", a.ID, channel)
	}
	mode, entries, err := b.parseChannel(ctx, a, in)
	if err != nil {
		return Channel{}, err
	}
	now := b.now()
	var out Channel
	changed := false
	err = b.writeAgent(ctx, a.ID, func(tx store.Tx) error {
		cur, err := tx.AgentByID(ctx, a.ID)
		if err != nil {
			return err
		}
		modes, err := tx.Channels(ctx, a.ID)
		if err != nil {
			return err
		}
		prev, had := findMode(modes, channel)
		next := store.ChannelMode{AgentID: a.ID, Channel: channel, Mode: mode, Split: entries, UpdatedAt: now, UpdatedBy: p.Key.Name}
		if mode == ModeFollow && !had || had && prev.Mode == mode && slices.Equal(prev.Split, entries) {
			out = channelView(channel, cur.Published, modes)
			return nil // no change
		}
		if mode == ModeFollow {
			err = tx.FollowChannel(ctx, a.ID, channel)
		} else {
			err = tx.SetChannel(ctx, next)
		}
		if err != nil {
			return err
		}
		after := []store.ChannelMode{}
		if mode != ModeFollow {
			after = append(after, next)
		}
		changed = true
		out = channelView(channel, cur.Published, after)
		return b.recordChannelChange(ctx, tx, cur, channel, served(prev, had, cur.Published), next, p.Key.Name, now)
	})
	if err != nil {
		return Channel{}, err
	}
	if changed {
		b.notifyWebhooks()
	}
	return out, nil
}

// recordChannelChange writes the deployment and the channel.updated event
// of one channel change (next.Mode follow: back to the published version).
func (b *Backend) recordChannelChange(ctx context.Context, tx store.Tx, a store.Agent, channel string, from int, next store.ChannelMode, by string, now time.Time) error {
	to := a.Published
	var split []store.SplitEntry
	if next.Mode != ModeFollow {
		to = servedBy(next.Split)
	}
	if next.Mode == ModeSplit {
		split = next.Split
	}
	did, err := tx.InsertDeployment(ctx, store.Deployment{
		AgentID: a.ID, At: now, By: by, Kind: next.Mode, From: from, To: to, Channel: channel, Split: split,
	})
	if err != nil {
		return err
	}
	data := channelEventData{
		AgentID: a.ID, PreviousVersion: nullableVersion(from), By: by, CloneURL: b.eventCloneURL(a.ID),
		Channel: channel, Mode: next.Mode, DeploymentID: did,
	}
	if to > 0 {
		v, err := tx.Version(ctx, a.ID, to)
		if err != nil {
			return err
		}
		data.Version, data.Number, data.Tag = VersionID(to), to, "refs/tags/"+VersionID(to)
		data.Commit, data.CompiledDigest = v.Commit, v.Digest
	}
	if split != nil {
		shares := make([]SplitShare, len(split))
		for i, e := range split {
			shares[i] = SplitShare{Version: VersionID(e.Version), Weight: e.Weight}
		}
		data.Split = shares
	}
	ev, err := newEvent(a.WorkspaceID, a.ID, EventChannelUpdated, deploymentDedupe(a.ID, did), now, data)
	if err != nil {
		return err
	}
	return tx.InsertEvent(ctx, ev)
}

// followAll returns every channel of agent a to follow in tx (the
// emergency brake of a rollback): one follow deployment and one
// channel.updated event per channel that was pinned or split. a.Published
// must already be the pointer's new position.
func (b *Backend) followAll(ctx context.Context, tx store.Tx, a store.Agent, by string, now time.Time) error {
	modes, err := tx.Channels(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, m := range modes {
		if err := tx.FollowChannel(ctx, a.ID, m.Channel); err != nil {
			return err
		}
		next := store.ChannelMode{AgentID: a.ID, Channel: m.Channel, Mode: ModeFollow}
		if err := b.recordChannelChange(ctx, tx, a, m.Channel, servedBy(m.Split), next, by, now); err != nil {
			return err
		}
	}
	return nil
}

// pickVersion chooses the version a new session on channel serves: the
// published one (follow), the pinned one, or one of a split's versions by
// weight — by a stable hash of (agent, channel, callerID) when callerID
// is set, at random otherwise. 0 when nothing is published.
func (b *Backend) pickVersion(ctx context.Context, a store.Agent, channel, callerID string) (int, error) {
	modes, err := b.channelModes(ctx, a.ID)
	if err != nil {
		return 0, err
	}
	m, ok := findMode(modes, channel)
	switch {
	case !ok:
		return a.Published, nil
	case m.Mode == ModePin:
		return m.Split[0].Version, nil
	}
	bucket := rand.IntN(100)
	if callerID != "" {
		bucket = CallerBucket(a.ID, channel, callerID)
	}
	return pickBucket(m.Split, bucket), nil
}

// CallerBucket is the bucket 0..99 of a caller on one channel of one
// agent: the first 8 bytes of SHA-256("agent\x00channel\x00caller"), big
// endian, modulo 100. The same caller always lands in the same bucket.
func CallerBucket(agentID, channel, callerID string) int {
	sum := sha256.Sum256([]byte(agentID + "\x00" + channel + "\x00" + callerID))
	return int(binary.BigEndian.Uint64(sum[:8]) % 100)
}

// pickBucket maps a bucket 0..99 onto a split by cumulative weights, in
// ascending version order: raising a newer version's weight only moves
// callers from older versions to it.
func pickBucket(split []store.SplitEntry, bucket int) int {
	c := 0
	for _, e := range split {
		c += e.Weight
		if bucket < c {
			return e.Version
		}
	}
	return split[len(split)-1].Version
}

// channelModes returns the agent's non-follow channels, from a cache that
// writeAgent invalidates (every channel write goes through it).
func (b *Backend) channelModes(ctx context.Context, agentID string) ([]store.ChannelMode, error) {
	if m, ok := b.chans.get(agentID); ok {
		return m, nil
	}
	gen := b.chans.generation(agentID)
	m, err := b.store.Channels(ctx, agentID)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = []store.ChannelMode{}
	}
	b.chans.put(agentID, m, gen)
	return m, nil
}

// channelEventData is the data of channel.updated: the members every
// event carries, naming the version the channel now serves (version,
// number, tag, commit, compiledDigest; null when nothing is published) and
// what it served before (previousVersion), plus the channel, its mode, the
// split (null unless mode is split) and the deployment's id.
type channelEventData struct {
	AgentID         string       `json:"agentId"`
	Version         any          `json:"version"`
	Number          any          `json:"number"`
	PreviousVersion any          `json:"previousVersion"`
	Tag             any          `json:"tag"`
	Commit          any          `json:"commit"`
	CompiledDigest  any          `json:"compiledDigest"`
	By              string       `json:"by"`
	CloneURL        string       `json:"cloneUrl"`
	Channel         string       `json:"channel"`
	Mode            string       `json:"mode"`
	Split           []SplitShare `json:"split"`
	DeploymentID    int64        `json:"deploymentId"`
}
