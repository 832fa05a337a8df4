package responder

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokens splits s into lowercase runs of letters and digits.
func tokens(s string) []string {
	var out []string
	start := -1
	ascii := true
	for i, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
				ascii = true
			}
			if r >= utf8.RuneSelf || ('A' <= r && r <= 'Z') {
				ascii = false
			}
			continue
		}
		if start >= 0 {
			out = append(out, lowerWord(s[start:i], ascii))
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, lowerWord(s[start:], ascii))
	}
	return out
}

// lowerWord lowercases w; clean reports that w is already lowercase ASCII.
func lowerWord(w string, clean bool) string {
	if clean {
		return w
	}
	return strings.ToLower(w)
}

// terms returns the tokens of s without stopwords, plural-stemmed, for
// retrieval.
func terms(s string) []string {
	toks := tokens(s)
	out := toks[:0]
	for _, t := range toks {
		if !isStopword(t) {
			out = append(out, stem(t))
		}
	}
	return out
}

// stem is Harman's S-stemmer: it folds common English plurals ("refunds",
// "policies", "takes") onto their singular form. Words of three bytes or
// fewer are left alone.
func stem(w string) string {
	n := len(w)
	if n <= 3 {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && !strings.HasSuffix(w, "eies") && !strings.HasSuffix(w, "aies"):
		return w[:n-3] + "y"
	case strings.HasSuffix(w, "es") && !strings.HasSuffix(w, "aes") && !strings.HasSuffix(w, "ees") && !strings.HasSuffix(w, "oes"):
		return w[:n-1]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "ss"):
		return w[:n-1]
	}
	return w
}

// isStopword reports whether w is in the small English stopword list
// ignored by knowledge retrieval.
func isStopword(w string) bool {
	switch w {
	case "a", "about", "am", "an", "and", "any", "are", "as", "at",
		"be", "been", "but", "by",
		"can", "could",
		"did", "do", "does",
		"for", "from",
		"had", "has", "have", "he", "her", "his", "how",
		"i", "if", "in", "into", "is", "it", "its",
		"me", "my",
		"of", "on", "or", "our",
		"please",
		"s", "she", "should", "so",
		"t", "that", "the", "their", "them", "there", "these", "they", "this", "to",
		"us",
		"was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would",
		"you", "your":
		return true
	}
	return false
}

// render replaces every {{name}} (spaces around name allowed) in s with
// vars[name]; unknown names render empty, an unclosed "{{" stays literal.
func render(s string, vars map[string]string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(vars[strings.TrimSpace(s[i+2:i+2+j])])
		s = s[i+2+j+2:]
	}
	b.WriteString(s)
	return b.String()
}

// maxReply bounds a knowledge reply, in bytes.
const maxReply = 600

// bound trims s and shortens it to at most max bytes, cutting after the
// last sentence end that fits (if that keeps at least a third of max),
// else at the last space (adding "…"), else at a rune boundary.
func bound(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	cut := -1
	for i := 0; i < max; i++ {
		switch s[i] {
		case '.', '!', '?':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n' || s[i+1] == '\t' {
				cut = i + 1
			}
		}
	}
	if cut >= max/3 { // a sentence boundary that keeps most of the budget
		return strings.TrimSpace(s[:cut])
	}
	const ellipsis = "…"
	limit := max - len(ellipsis)
	if sp := strings.LastIndexAny(s[:limit], " \n\t"); sp > 0 {
		return strings.TrimSpace(s[:sp]) + ellipsis
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit] + ellipsis
}
