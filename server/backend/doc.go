// Package backend holds flowyte's use cases: agents, draft edits, publish,
// rollback, diffs and the pre-publish report, conversation test runs and
// the release gate on them, chat sessions and their responders, channels
// (follow, pin, split) and outcomes per version, the webhook registry, API
// keys, recovery and reconciliation,
// and the caches in front of them with their invalidation.
//
// It takes plain Go values and returns domain types and typed errors
// (*Error, mapped from repo, compile and store errors by ErrorOf). It
// imports neither gin nor net/http: the HTTP API, the git handler and the
// dashboard are thin transports over one *Backend. The metadata database
// sits behind the Store interface defined here.
package backend
