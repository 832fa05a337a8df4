package responder

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/flowyte/flowyte/compile"
)

// redactedText replaces every redacted span.
const redactedText = "[redacted]"

// Run-time bounds of guardrail matching. Go's regexp (RE2) matches in time
// linear in the text, but the factor is the size of the pattern's program:
// measured up to about 40 ns per program instruction per byte of text
// (patterns like `[a-z].{100}q`, whose threads all stay alive). A turn's
// guardrails therefore examine at most MaxGuardrailText bytes of the user's
// message and of the reply, and fewer when the direction's patterns are
// large: at most MaxGuardrailWork / (their program instructions) bytes,
// never fewer than 64. Text beyond the bound is cut
// off (ending in "…") before the guardrails run, so nothing unexamined is
// stored or answered: the stored input and the reply are the cut text.
const (
	// MaxGuardrailText is the most bytes of a message, or of a reply, that
	// guardrails examine.
	MaxGuardrailText = 8 << 10
	// MaxGuardrailWork bounds, per direction and turn, the text bytes
	// examined times the program instructions of the direction's block
	// and redact patterns: about 0.16 s in the worst case measured,
	// typically well under a millisecond. Ten ordinary patterns (~30
	// instructions each) still see the whole MaxGuardrailText.
	MaxGuardrailWork = 4_000_000
	// minGuardrailText is the least text a turn examines; New refuses
	// patterns whose programs are too large for it within the work bound.
	minGuardrailText = 64
)

// ErrGuardrailsTooLarge is returned (wrapped) by [New] when the block and
// redact patterns of one direction have more than MaxGuardrailWork / 64
// (62,500) program instructions in all.
var ErrGuardrailsTooLarge = errors.New("responder: guardrail patterns too large")

// blockRule is one compiled block guardrail.
type blockRule struct {
	slug     string
	phrases  []string // lowercased, non-empty
	patterns []*regexp.Regexp
	message  string
}

// matches reports whether text (with lower its lowercase form) trips the rule.
func (r *blockRule) matches(text, lower string) bool {
	for _, p := range r.phrases {
		if strings.Contains(lower, p) {
			return true
		}
	}
	for _, re := range r.patterns {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// guardrails is the compiled guardrail set for one direction.
type guardrails struct {
	blocks []blockRule  // in artifact (slug) order
	redact []redactRule // every redact pattern of the direction
	insts  int          // program instructions of all the patterns
	limit  int          // most bytes of text examined (see MaxGuardrailWork)
}

// setLimit derives the examined-text bound from the patterns' size.
func (g *guardrails) setLimit(direction string) error {
	g.limit = MaxGuardrailText
	if g.insts == 0 {
		return nil
	}
	if g.insts > MaxGuardrailWork/minGuardrailText {
		return fmt.Errorf("%w: %s patterns compile to %d program instructions, limit %d",
			ErrGuardrailsTooLarge, direction, g.insts, MaxGuardrailWork/minGuardrailText)
	}
	g.limit = min(MaxGuardrailText, MaxGuardrailWork/g.insts)
	return nil
}

// cut shortens text to what the guardrails examine: at most g.limit bytes,
// cut at a rune boundary and ending in "…" when shortened.
func (g *guardrails) cut(text string) string {
	if len(text) <= g.limit {
		return text
	}
	const ellipsis = "…"
	n := g.limit - len(ellipsis)
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n] + ellipsis
}

// compilePattern compiles one guardrail pattern and returns its size in
// program instructions, as the matcher runs it.
func compilePattern(p string) (*regexp.Regexp, int, error) {
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, 0, err
	}
	parsed, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil, 0, err
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, 0, err
	}
	return re, len(prog.Inst), nil
}

// block returns the first block rule text trips, or nil.
func (g *guardrails) block(text string) *blockRule {
	if len(g.blocks) == 0 {
		return nil
	}
	lower := strings.ToLower(text)
	for i := range g.blocks {
		if g.blocks[i].matches(text, lower) {
			return &g.blocks[i]
		}
	}
	return nil
}

// redactRule is one redact pattern and the guardrail it belongs to.
type redactRule struct {
	slug string
	re   *regexp.Regexp
}

// apply redacts text: every non-empty match of every pattern is found in
// the original text, overlapping spans are merged, and each span becomes
// "[redacted]". It returns the slug of the first guardrail (in slug order)
// that matched, "" when nothing was replaced.
func (g *guardrails) apply(text string) (string, string) {
	var spans [][2]int
	first := ""
	for _, r := range g.redact {
		for _, m := range r.re.FindAllStringIndex(text, -1) {
			if m[1] > m[0] {
				spans = append(spans, [2]int{m[0], m[1]})
				if first == "" {
					first = r.slug
				}
			}
		}
	}
	if len(spans) == 0 {
		return text, ""
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i][0] != spans[j][0] {
			return spans[i][0] < spans[j][0]
		}
		return spans[i][1] < spans[j][1]
	})
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] < end; i++ {
			end = max(end, spans[i][1])
		}
		b.WriteString(text[pos:start])
		b.WriteString(redactedText)
		pos = end
	}
	b.WriteString(text[pos:])
	return b.String(), first
}

// compileGuardrails splits the artifact's guardrails into the input and
// output sets, each pattern compiled once (per engine, so per artifact),
// and sets each direction's examined-text bound. Patterns stay separate
// regexps: one alternation of them all matched up to 16× slower in
// measurements (RE2 loses its per-pattern literal and one-pass shortcuts).
func compileGuardrails(gs []compile.Guardrail) (in, out guardrails, err error) {
	for _, g := range gs {
		var toIn, toOut bool
		switch g.Applies {
		case "input":
			toIn = true
		case "output":
			toOut = true
		case "both":
			toIn, toOut = true, true
		default:
			return in, out, fmt.Errorf("guardrail %q: applies %q, want input, output or both", g.Slug, g.Applies)
		}
		if g.Block != nil {
			r := blockRule{slug: g.Slug, message: g.Block.Message}
			for _, p := range g.Block.Phrases {
				if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
					r.phrases = append(r.phrases, p)
				}
			}
			size := 0
			for _, p := range g.Block.Patterns {
				re, n, err := compilePattern(p)
				if err != nil {
					return in, out, fmt.Errorf("guardrail %q: block pattern %q: %w", g.Slug, p, err)
				}
				r.patterns = append(r.patterns, re)
				size += n
			}
			if toIn {
				in.blocks = append(in.blocks, r)
				in.insts += size
			}
			if toOut {
				out.blocks = append(out.blocks, r)
				out.insts += size
			}
		}
		if g.Redact != nil {
			for _, p := range g.Redact.Patterns {
				re, n, err := compilePattern(p)
				if err != nil {
					return in, out, fmt.Errorf("guardrail %q: redact pattern %q: %w", g.Slug, p, err)
				}
				if toIn {
					in.redact = append(in.redact, redactRule{slug: g.Slug, re: re})
					in.insts += n
				}
				if toOut {
					out.redact = append(out.redact, redactRule{slug: g.Slug, re: re})
					out.insts += n
				}
			}
		}
	}
	if err := in.setLimit("input"); err != nil {
		return in, out, err
	}
	if err := out.setLimit("output"); err != nil {
		return in, out, err
	}
	return in, out, nil
}
