// Package compile turns an agent's draft files into its compiled artifact,
// compiled/agent.json, and its test suites (Result.Tests, from
// tests/<slug>.yaml), and owns the draft format: which paths exist
// (ParsePath), the typed JSON views of files (DecodeView, ReadView) and
// their canonical encoding (EncodeFile).
//
// The package is pure: no file system, network, clock, git or database.
// Compile is deterministic: the same draft tree gives the same bytes and
// digest on any machine at any time.
//
// # The artifact
//
// compiled/agent.json (format 2, FormatVersion) holds the settings,
// skills, guardrails and playbooks, and for each knowledge article its
// slug, title, tags and the git blob id of its source file (BlobID, as
// git hash-object computes it), not its body: the release tree holds
// knowledge/<slug>.md beside the artifact, so the blob id pins the exact
// words and the digest covers them through it. LoadArtifact turns a
// stored artifact back into the compile's Artifact, reading the bodies
// from those blobs (format 2) or from the artifact itself (format 1,
// which embedded them).
//
// # Cost
//
// Compile parses every file. A Compiler with a Cache (bounded in bytes,
// keyed by path and content) parses only files it has not seen, so a
// one-file edit costs one parse plus work linear in the bytes of the draft
// (hashing the contents, assembling compiled/agent.json from per-file
// parts encoded once, and its digest). Parsing itself is linear in the
// size of a file and bounded by the limits of limits.go.
//
// Compiler.CompileDraft leaves the artifact's bytes and digest to be made
// on demand (Result.Encode, Result.EncodeParts, Digest), and
// Compiler.CompileEdit compiles an edit of an earlier Result from the
// changed files alone: a one-file edit then costs one parse plus a pass
// over the per-file results (no hashing of contents, no encoding), about
// a millisecond at 5,000 files. Each file's part of the artifact is kept
// deflated too (Part), so a zlib writer of the artifact compresses only
// what changed.
//
// # Diagnostics
//
// Compile reports problems as Diagnostics with a file, a 1-based line where
// known, a code and a message; DecodeView reports FieldErrors with a JSON
// pointer instead of a line. At most 50 problems are kept per file.
// Duplicate keys are found with a hash set, never by rescanning. The codes
// are:
//
// Errors (block publishing):
//
//   - yaml_syntax: the YAML does not parse, has several documents, or uses
//     aliases (*name), which are not supported.
//   - invalid_json: a typed-view body is not one JSON value (DecodeView only).
//   - invalid_encoding: a file is not valid UTF-8.
//   - invalid_path: a path outside the draft format (see ParsePath), or an
//     unknown kind or bad name given to DecodeView or ReadView.
//   - missing_settings: the tree has no agent.yaml.
//   - unknown_field: a field the format does not define; the message lists
//     the allowed ones.
//   - duplicate_field: the same field twice in one mapping.
//   - missing_field: a required field is absent or empty, or an ask step
//     has no save.
//   - invalid_type: a value of the wrong type (a list where a string is
//     expected, text where a number is expected, ...).
//   - invalid_value: a value out of range or of the wrong form: too long,
//     temperature outside 0..2, HTTP method or applies not in its list, a
//     blank trigger or phrase, a bad variable or skill name, a non-finite
//     number.
//   - limit_exceeded: a file goes over one of the limits of limits.go
//     (MaxDepth levels of nesting, MaxNodes values in one file or body,
//     MaxMappingKeys keys in one mapping, MaxSchemaNodes values in a
//     skill's parameters, MaxTestTurns turns in a test (reported as
//     invalid_value), MaxPatterns patterns in one
//     guardrail, MaxPatternLength bytes or MaxPatternProgram RE2
//     instructions in one pattern, MaxAgentPatternProgram instructions in
//     all the guardrails of an agent). Parsing stops at the limit, so a
//     hostile file costs time linear in its size.
//   - invalid_language: language is not a BCP 47 tag.
//   - invalid_front_matter: a knowledge file opens front matter with ---
//     and never closes it. (Bad fields inside front matter get the codes
//     above.)
//   - invalid_regex: a guardrail pattern is not valid RE2, or matches the
//     empty string (and so would match every message); a test's
//     replyMatches is not valid RE2.
//   - invalid_schema: a skill's parameters is not a JSON Schema of type
//     object, or refers to another document ($ref or $schema outside the
//     standard metaschemas; nothing is ever fetched).
//   - invalid_url: a skill url is not an absolute http or https URL with a
//     host, carries credentials, or has a {param} placeholder that is
//     malformed or not a declared parameter.
//   - invalid_header: a skill header name is not an HTTP field name or a
//     value holds a line break.
//   - invalid_guardrail: a guardrail without exactly one of block and
//     redact, or a block with neither phrases nor patterns.
//   - invalid_step: a playbook step without exactly one of say, ask, skill
//     and handoff, save without ask, or with without skill.
//   - invalid_template: a malformed {{var}} (bad name, unbalanced braces).
//   - undefined_variable: {{var}} in say, ask, with or handoff before any
//     earlier ask step saves var in that playbook.
//   - unknown_skill: a playbook step or a test's skillCalls names a skill
//     that has no file.
//   - unknown_guardrail, unknown_playbook, unknown_knowledge: a test
//     expects a guardrail, playbook or knowledge article that has no file.
//   - unknown_parameter: a step's (or an expected skill call's) with names
//     a parameter the skill does not declare.
//   - missing_parameter: a step's with lacks a parameter the skill's schema
//     lists as required.
//   - slug_mismatch: a typed-view body's slug differs from the name in the
//     URL (DecodeView only).
//
// Warnings (do not block):
//
//   - unused_skill: no playbook step uses the skill.
//   - empty_article: a knowledge article has no content.
//   - duplicate_trigger: the same trigger (case and spacing aside) appears
//     twice, across playbooks or within one.
package compile
