// Package webhook delivers flowyte's events to registered HTTP endpoints
// following Standard Webhooks 1.0: signed POSTs with the webhook-id,
// webhook-timestamp and webhook-signature headers, retried with backoff
// across restarts, dialed through an SSRF-safe client.
//
// The pieces:
//
//   - [NewSecret], [Sign] and [Verify] implement the symmetric ("v1")
//     signature scheme of the specification.
//   - [CheckURL] validates an endpoint URL at registration and [NewClient]
//     builds the HTTP client that checks the resolved address again at dial
//     time (DNS can change) and never follows redirects.
//   - [Dispatcher] fans events out from the store's event outbox to the
//     matching webhooks and delivers them: one worker per endpoint with a
//     cap on its requests in flight (so a slow endpoint delays only itself),
//     a cap per workspace and a global cap on concurrent attempts, shared
//     fairly between workspaces (so one tenant's slow endpoints cannot stall
//     another's), a retry schedule ([DefaultSchedule], [ParseSchedule]) with
//     jitter and Retry-After, and a delivery log row per attempt.
//   - [MaxWebhooksPerWorkspace] is the registration limit the backend
//     enforces.
//
// Delivery is at least once: the fan-out cursor advances in the same
// transaction that queues the deliveries, and a delivery is marked done only
// after its attempt is recorded, so a crash can repeat an attempt but never
// lose one. Receivers deduplicate on webhook-id.
//
// Several daemons may share one PostgreSQL database, each running a
// Dispatcher over the same outbox and queue ([Store] is implemented by
// both engines). Fan-out locks the outbox cursor, so each event becomes
// messages once. A worker claims due messages before sending them
// (ClaimWebhookMessages: rows other daemons are claiming are skipped, and
// the claimed ones fall due again only after [Options.Lease]); an attempt
// is cut short at 3/4 of its lease, and its record settles the message,
// so no other daemon sends it again. A daemon that dies mid-attempt
// leaves its messages claimed until their lease ends; then another daemon
// sends them (the only case of a repeat). [Options.Wake] takes the other
// daemons' notifications (PostgreSQL LISTEN) so their events are fanned
// out and their due messages picked up before the next poll.
package webhook
