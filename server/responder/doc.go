// Package responder is flowyte's deterministic built-in chat responder: it
// answers a user's message from a compiled agent ([compile.Artifact]) by
// applying input guardrails, continuing or starting a playbook, retrieving
// a knowledge passage with BM25, or falling back, and then applying output
// guardrails.
//
// An [Engine] is built once per artifact with [New] (regexes compiled and
// the knowledge index built there; the server keeps engines per draft tree
// and per version, so no turn compiles a pattern), or with [NewFrom] from
// the engine of an earlier draft, which analyses only the articles that
// changed and shares the rest of the index; it is then immutable and
// safe for concurrent use. A turn's guardrail matching is bounded: at most
// [MaxGuardrailText] bytes of text are examined, fewer for large patterns
// ([MaxGuardrailWork]), and longer text is cut. Skill calls in a trace show
// header names only, never their values. [Engine.Respond] is pure: no I/O, no clock, no network
// (skill steps are recorded as [SkillCall]s, never sent), and the same
// engine, [State] and text always give the same [Turn].
package responder
