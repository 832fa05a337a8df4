package responder

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/flowyte/flowyte/compile"
)

// redactedText replaces every redacted span.
const redactedText = "[redacted]"

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
// output sets.
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
			for _, p := range g.Block.Patterns {
				re, err := regexp.Compile(p)
				if err != nil {
					return in, out, fmt.Errorf("guardrail %q: block pattern %q: %w", g.Slug, p, err)
				}
				r.patterns = append(r.patterns, re)
			}
			if toIn {
				in.blocks = append(in.blocks, r)
			}
			if toOut {
				out.blocks = append(out.blocks, r)
			}
		}
		if g.Redact != nil {
			for _, p := range g.Redact.Patterns {
				re, err := regexp.Compile(p)
				if err != nil {
					return in, out, fmt.Errorf("guardrail %q: redact pattern %q: %w", g.Slug, p, err)
				}
				if toIn {
					in.redact = append(in.redact, redactRule{slug: g.Slug, re: re})
				}
				if toOut {
					out.redact = append(out.redact, redactRule{slug: g.Slug, re: re})
				}
			}
		}
	}
	return in, out, nil
}
