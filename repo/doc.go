// Package repo owns every git operation of flowyte: each agent is a bare git
// repository under Options.Root whose refs/heads/draft holds the editable
// draft, whose annotated tags refs/tags/v<n> hold the published versions and
// whose refs/heads/published points at the release commit that is live.
//
// All access goes through go-git plumbing (no worktrees). Every write to one
// agent runs under that agent's lock. Reads do not take it: objects are
// immutable and refs are replaced by renames, so a reader with its own
// go-git handle (go-git is not safe for concurrent use) sees a consistent
// state; only the steps that delete objects or refs (housekeeping, Recover,
// Remove) shut readers out for their duration. Published and Latest use the
// writer's cached state and take the lock. Writes follow a fixed order: objects first,
// refs last, each ref moved by compare-and-swap through a git-compatible
// "<ref>.lock" file that is renamed into place, so a crash at any instant
// never leaves a ref pointing at a missing object. With Options.Sync the new
// loose objects, the ref files and their directories are fsynced before an
// operation reports success.
//
// go-git writes every object loose. Once Options.PackThreshold loose
// objects accumulate in a repository, a background Housekeep packs them
// with the git CLI (geometric repack, packed refs); every ref read and
// write here understands refs that live only in packed-refs.
package repo
