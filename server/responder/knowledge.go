package responder

import (
	"math"
	"slices"
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

// maxOverlay bounds how many articles an index keeps beside its shared
// segment (new or changed since it) before [rebuildIndex] merges them in.
// Each rebuild re-merges the overlay, so it bounds the cost of a one-article
// change; the merge that empties it costs one pass over every article's
// cached terms, once per maxOverlay changes.
const maxOverlay = 64

// article is one article analysed: its passages and the terms of each,
// computed once and shared by every index holding the article unchanged.
type article struct {
	slug, title, content string
	tags                 []string
	passages             []passage
	// terms maps each term to its postings over this article's passages
	// (local passage numbers, ascending).
	terms map[string][]posting
	total int // terms over all passages
}

// passage is one retrievable unit of an article.
type passage struct {
	article string // article slug
	reply   string // the text answered, trimmed and bounded
	length  int    // number of terms
}

// posting is one (passage, term frequency) pair.
type posting struct {
	passage int
	tf      float64
}

// same reports whether a is the analysis of art.
func (a *article) same(art *compile.Article) bool {
	return a.slug == art.Slug && a.title == art.Title && a.content == art.Content && slices.Equal(a.tags, art.Tags)
}

// analyse splits an article into passages (by Markdown heading, then by
// paragraph) and counts each passage's terms together with its heading and
// the article's title and tags.
func analyse(art *compile.Article) *article {
	a := &article{slug: art.Slug, title: art.Title, content: art.Content, tags: art.Tags, terms: map[string][]posting{}}
	meta := art.Title + " " + strings.Join(art.Tags, " ")
	for _, s := range splitPassages(art.Content) {
		words := terms(meta + " " + s.heading + " " + s.text)
		if len(words) == 0 {
			continue
		}
		p := len(a.passages)
		a.passages = append(a.passages, passage{article: art.Slug, reply: bound(s.text, maxReply), length: len(words)})
		a.total += len(words)
		tf := make(map[string]int, len(words))
		for _, w := range words {
			tf[w]++
		}
		for w, n := range tf {
			a.terms[w] = append(a.terms[w], posting{passage: p, tf: float64(n)})
		}
	}
	return a
}

// segment is an inverted index over articles in slug order: passages are
// numbered across them, and each term's postings ascend.
type segment struct {
	articles []*article
	owner    []int // passage → its article's position in articles
	passages []passage
	terms    map[string][]posting
	total    int
}

// newSegment merges the analysed articles (in slug order) into one index;
// no text is read again.
func newSegment(arts []*article) *segment {
	n, terms := 0, 0
	for _, a := range arts {
		n += len(a.passages)
		terms += len(a.terms)
	}
	s := &segment{articles: arts, owner: make([]int, 0, n), passages: make([]passage, 0, n), terms: make(map[string][]posting, terms/2+1)}
	for i, a := range arts {
		base := len(s.passages)
		s.passages = append(s.passages, a.passages...)
		for range a.passages {
			s.owner = append(s.owner, i)
		}
		s.total += a.total
		for w, ps := range a.terms {
			dst := s.terms[w]
			for _, p := range ps {
				dst = append(dst, posting{passage: base + p.passage, tf: p.tf})
			}
			s.terms[w] = dst
		}
	}
	return s
}

// index is the BM25 index of an engine's knowledge: a segment, which the
// indexes of later drafts share, less its articles that changed or went
// (dead), plus a small segment of the articles that are new or changed
// since. Scores are those of one index over the live articles in slug
// order: statistics (passage count, average length, document frequency)
// count live passages only.
type index struct {
	base    *segment
	dead    []bool         // by base article; nil when none
	deadDF  map[string]int // postings of dead articles, by term
	overlay *segment
	n       int     // live passages
	avg     float64 // live terms per passage
}

// buildIndex indexes articles (in slug order) from scratch.
func buildIndex(arts []compile.Article) *index {
	as := make([]*article, len(arts))
	for i := range arts {
		as[i] = analyse(&arts[i])
	}
	return compact(as)
}

// compact indexes analysed articles as one segment.
func compact(as []*article) *index {
	seg := newSegment(as)
	ix := &index{base: seg, overlay: newSegment(nil), n: len(seg.passages)}
	if ix.n > 0 {
		ix.avg = float64(seg.total) / float64(ix.n)
	}
	return ix
}

// rebuildIndex indexes arts (in slug order) reusing prev: articles whose
// slug, title, tags and content are unchanged keep their analysis and,
// when they sit in prev's segment, their place in it. Only new or changed
// articles are analysed, so the cost follows the change (plus a pass over
// the article list).
func rebuildIndex(prev *index, arts []compile.Article) *index {
	if prev == nil {
		return buildIndex(arts)
	}
	inBase := make(map[string]int, len(prev.base.articles))
	for i, a := range prev.base.articles {
		if prev.dead == nil || !prev.dead[i] {
			inBase[a.slug] = i
		}
	}
	inOverlay := make(map[string]*article, len(prev.overlay.articles))
	for _, a := range prev.overlay.articles {
		inOverlay[a.slug] = a
	}
	all := make([]*article, len(arts))
	kept := make([]bool, len(prev.base.articles))
	var overlay []*article
	for i := range arts {
		art := &arts[i]
		if j, ok := inBase[art.Slug]; ok && prev.base.articles[j].same(art) {
			all[i] = prev.base.articles[j]
			kept[j] = true
			continue
		}
		if a, ok := inOverlay[art.Slug]; ok && a.same(art) {
			all[i] = a
		} else {
			all[i] = analyse(art)
		}
		overlay = append(overlay, all[i])
	}
	deadCount := 0
	for _, k := range kept {
		if !k {
			deadCount++
		}
	}
	if len(overlay)+deadCount > maxOverlay {
		return compact(all)
	}
	ix := &index{base: prev.base, overlay: newSegment(overlay)}
	total := ix.overlay.total
	ix.n = len(ix.overlay.passages)
	if deadCount > 0 {
		ix.dead = make([]bool, len(kept))
		ix.deadDF = map[string]int{}
	}
	for j, a := range prev.base.articles {
		if kept[j] {
			ix.n += len(a.passages)
			total += a.total
			continue
		}
		ix.dead[j] = true
		for w, ps := range a.terms {
			ix.deadDF[w] += len(ps)
		}
	}
	if ix.n > 0 {
		ix.avg = float64(total) / float64(ix.n)
	}
	return ix
}

// norm is BM25's length normalisation of a passage of length terms.
func (ix *index) norm(length int) float64 {
	return bm25K1 * (1 - bm25B + bm25B*float64(length)/ix.avg)
}

// search returns the best passage for text and whether it scores at least
// minScore. Ties go to the earlier passage (articles in slug order).
func (ix *index) search(text string) (passage, bool) {
	if ix.n == 0 {
		return passage{}, false
	}
	q := terms(text)
	if len(q) == 0 {
		return passage{}, false
	}
	baseScores := make([]float64, len(ix.base.passages))
	overScores := make([]float64, len(ix.overlay.passages))
	seen := make(map[string]bool, len(q))
	for _, w := range q {
		if seen[w] {
			continue
		}
		seen[w] = true
		bp, op := ix.base.terms[w], ix.overlay.terms[w]
		df := len(bp) - ix.deadDF[w] + len(op)
		if df <= 0 {
			continue
		}
		idf := math.Log(1 + (float64(ix.n)-float64(df)+0.5)/(float64(df)+0.5))
		for _, p := range bp {
			if ix.dead != nil && ix.dead[ix.base.owner[p.passage]] {
				continue
			}
			baseScores[p.passage] += idf * p.tf * (bm25K1 + 1) / (p.tf + ix.norm(ix.base.passages[p.passage].length))
		}
		for _, p := range op {
			overScores[p.passage] += idf * p.tf * (bm25K1 + 1) / (p.tf + ix.norm(ix.overlay.passages[p.passage].length))
		}
	}
	b, bok := best(baseScores)
	o, ook := best(overScores)
	switch {
	case bok && ook:
		bs, os := baseScores[b], overScores[o]
		// Slugs are unique among live articles; passages of one article
		// are consecutive, so slug order breaks a tie between segments.
		if os > bs || (os == bs && ix.overlay.passages[o].article < ix.base.passages[b].article) {
			return ix.overlay.passages[o], true
		}
		return ix.base.passages[b], true
	case bok:
		return ix.base.passages[b], true
	case ook:
		return ix.overlay.passages[o], true
	}
	return passage{}, false
}

// best returns the first highest score at least minScore.
func best(scores []float64) (int, bool) {
	b := -1
	for i, s := range scores {
		if s >= minScore && (b < 0 || s > scores[b]) {
			b = i
		}
	}
	return b, b >= 0
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
