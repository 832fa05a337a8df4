package responder

import (
	"math"
	"strings"

	"github.com/flowyte/flowyte/compile"
)

// BM25 parameters and the minimum score a passage needs to be an answer.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
	// minScore rejects passages that share only very common terms with the
	// question. With the BM25 idf below one matching term in a one-passage
	// knowledge base scores about 0.29, so a knowledge base of any size can
	// answer, while a term present in nearly every passage cannot answer
	// alone.
	minScore = 0.25
)

// passage is one retrievable unit of an article.
type passage struct {
	article string  // article slug
	reply   string  // the text answered, trimmed and bounded
	norm    float64 // k1 * (1 - b + b*len/avgLen)
}

// posting is one (passage, term frequency) pair.
type posting struct {
	passage int
	tf      float64
}

// termEntry is the inverted index entry of one term.
type termEntry struct {
	idf      float64
	postings []posting // ascending passage order
}

// index is a BM25 index over the passages of every article.
type index struct {
	passages []passage
	terms    map[string]*termEntry
}

// buildIndex splits articles into passages (by Markdown heading, then by
// paragraph) and indexes each passage's words together with its heading
// and its article's title and tags.
func buildIndex(articles []compile.Article) *index {
	ix := &index{terms: make(map[string]*termEntry)}
	var lengths []int
	total := 0
	for _, a := range articles {
		meta := a.Title + " " + strings.Join(a.Tags, " ")
		for _, s := range splitPassages(a.Content) {
			words := terms(meta + " " + s.heading + " " + s.text)
			if len(words) == 0 {
				continue
			}
			p := len(ix.passages)
			ix.passages = append(ix.passages, passage{article: a.Slug, reply: bound(s.text, maxReply)})
			lengths = append(lengths, len(words))
			total += len(words)
			// Count in first-seen order so postings stay in passage order
			// without depending on map iteration.
			tf := make(map[string]int, len(words))
			var order []string
			for _, w := range words {
				if tf[w] == 0 {
					order = append(order, w)
				}
				tf[w]++
			}
			for _, w := range order {
				e := ix.terms[w]
				if e == nil {
					e = &termEntry{}
					ix.terms[w] = e
				}
				e.postings = append(e.postings, posting{passage: p, tf: float64(tf[w])})
			}
		}
	}
	n := len(ix.passages)
	if n == 0 {
		return ix
	}
	avg := float64(total) / float64(n)
	for i := range ix.passages {
		ix.passages[i].norm = bm25K1 * (1 - bm25B + bm25B*float64(lengths[i])/avg)
	}
	for _, e := range ix.terms {
		df := float64(len(e.postings))
		e.idf = math.Log(1 + (float64(n)-df+0.5)/(df+0.5))
	}
	return ix
}

// search returns the best passage for text and whether it scores at least
// minScore. Ties go to the earlier passage (articles are in slug order).
func (ix *index) search(text string) (passage, bool) {
	if len(ix.passages) == 0 {
		return passage{}, false
	}
	q := terms(text)
	if len(q) == 0 {
		return passage{}, false
	}
	scores := make([]float64, len(ix.passages))
	seen := make(map[string]bool, len(q))
	for _, w := range q {
		if seen[w] {
			continue
		}
		seen[w] = true
		e := ix.terms[w]
		if e == nil {
			continue
		}
		for _, p := range e.postings {
			scores[p.passage] += e.idf * p.tf * (bm25K1 + 1) / (p.tf + ix.passages[p.passage].norm)
		}
	}
	best := -1
	for i, s := range scores {
		if s >= minScore && (best < 0 || s > scores[best]) {
			best = i
		}
	}
	if best < 0 {
		return passage{}, false
	}
	return ix.passages[best], true
}

// section is one passage candidate: a paragraph and its nearest heading.
type section struct {
	heading string
	text    string
}

// splitPassages splits Markdown into paragraphs, each carrying the text of
// the nearest heading above it. Headings inside fenced code blocks are
// content, and blank lines there do not split.
func splitPassages(md string) []section {
	var out []section
	var heading string
	var para []string
	inFence := false
	flush := func() {
		if t := strings.TrimSpace(strings.Join(para, "\n")); t != "" {
			out = append(out, section{heading: heading, text: t})
		}
		para = para[:0]
	}
	for _, line := range strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			para = append(para, line)
			continue
		}
		if inFence {
			para = append(para, line)
			continue
		}
		if h, ok := atxHeading(line); ok {
			flush()
			heading = h
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		para = append(para, line)
	}
	flush()
	return out
}

// atxHeading reports whether line is a Markdown ATX heading ("# Title",
// up to three leading spaces, one to six #) and returns its text.
func atxHeading(line string) (string, bool) {
	s := line
	for i := 0; i < 3 && strings.HasPrefix(s, " "); i++ {
		s = s[1:]
	}
	n := 0
	for n < len(s) && s[n] == '#' {
		n++
	}
	if n == 0 || n > 6 {
		return "", false
	}
	if n < len(s) && s[n] != ' ' && s[n] != '\t' {
		return "", false
	}
	h := strings.TrimSpace(s[n:])
	h = strings.TrimSpace(strings.TrimRight(h, "#"))
	return h, true
}
