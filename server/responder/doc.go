// Package responder is flowyte's deterministic built-in chat responder: it
// answers a user's message from a compiled agent ([compile.Artifact]) by
// applying input guardrails, continuing or starting a playbook, retrieving
// a knowledge passage with BM25, or falling back, and then applying output
// guardrails.
//
// An [Engine] is built once per artifact with [New] (regexes compiled and
// the knowledge index built there) and is then immutable and safe for
// concurrent use. [Engine.Respond] is pure: no I/O, no clock, no network
// (skill steps are recorded as [SkillCall]s, never sent), and the same
// engine, [State] and text always give the same [Turn].
package responder
