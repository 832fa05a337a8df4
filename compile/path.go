package compile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kind is the kind of a draft file, named like its directory.
type Kind string

// The kinds of draft files.
const (
	KindSettings   Kind = "settings"
	KindKnowledge  Kind = "knowledge"
	KindSkills     Kind = "skills"
	KindGuardrails Kind = "guardrails"
	KindPlaybooks  Kind = "playbooks"
	KindTests      Kind = "tests"
)

// SettingsPath is the path of the agent settings file.
const SettingsPath = "agent.yaml"

// ErrInvalidPath is returned (wrapped, with the reason) by ParsePath for a
// path that is not part of the draft format.
var ErrInvalidPath = errors.New("invalid path")

// slugPattern is the syntax of a file slug.
const slugPattern = `^[a-z0-9][a-z0-9-]{0,63}$`

var slugRE = regexp.MustCompile(slugPattern)

// ValidSlug reports whether s is a valid file slug (^[a-z0-9][a-z0-9-]{0,63}$).
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// extension returns the file extension of a kind's files.
func (k Kind) extension() string {
	switch k {
	case KindKnowledge:
		return ".md"
	case KindSkills, KindGuardrails, KindPlaybooks, KindTests:
		return ".yaml"
	}
	return ""
}

// ParsePath splits a draft path into its kind and slug. It accepts only the
// draft format: agent.yaml (KindSettings, slug ""), knowledge/<slug>.md,
// skills/<slug>.yaml, guardrails/<slug>.yaml, playbooks/<slug>.yaml and
// tests/<slug>.yaml.
// Anything else is an error wrapping ErrInvalidPath.
func ParsePath(p string) (kind Kind, slug string, err error) {
	bad := func(format string, args ...any) (Kind, string, error) {
		return "", "", fmt.Errorf("%w %q: %s", ErrInvalidPath, p, fmt.Sprintf(format, args...))
	}
	switch {
	case p == "":
		return bad("empty path")
	case strings.ContainsRune(p, 0):
		return bad("contains a NUL byte")
	case strings.Contains(p, `\`):
		return bad("use forward slashes")
	case strings.HasPrefix(p, "/"):
		return bad("must be relative to the agent root")
	case strings.HasSuffix(p, "/"):
		return bad("names a directory, not a file")
	}
	if p == SettingsPath {
		return KindSettings, "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("must not contain empty, . or .. segments")
		}
		if seg == ".git" {
			return bad("must not touch .git")
		}
	}
	dir, file, ok := strings.Cut(p, "/")
	if !ok {
		return bad("allowed at the root is only agent.yaml; other files live in knowledge/, skills/, guardrails/, playbooks/ or tests/")
	}
	k, ok := KindFromPlural(dir)
	if !ok {
		return bad("unknown directory %q (want knowledge, skills, guardrails, playbooks or tests)", dir)
	}
	if strings.Contains(file, "/") {
		return bad("subdirectories are not allowed under %s/", dir)
	}
	ext := k.extension()
	name, ok := strings.CutSuffix(file, ext)
	if !ok {
		return bad("files in %s/ must end in %s", dir, ext)
	}
	if !ValidSlug(name) {
		return bad("name %q must match %s", name, slugPattern)
	}
	return k, name, nil
}

// PathFor is the draft path of the file of the given kind and slug:
// "agent.yaml" for KindSettings (slug ignored), "knowledge/<slug>.md",
// "<kind>/<slug>.yaml" otherwise. It does not check the slug; an unknown
// kind gives "".
func PathFor(kind Kind, slug string) string {
	switch kind {
	case KindSettings:
		return SettingsPath
	case KindKnowledge, KindSkills, KindGuardrails, KindPlaybooks, KindTests:
		return string(kind) + "/" + slug + kind.extension()
	}
	return ""
}

// KindFromPlural maps a directory or URL segment ("knowledge", "skills",
// "guardrails", "playbooks", "tests") to its Kind. Settings is not a list kind and
// gives false.
func KindFromPlural(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindKnowledge, KindSkills, KindGuardrails, KindPlaybooks, KindTests:
		return k, true
	}
	return "", false
}
