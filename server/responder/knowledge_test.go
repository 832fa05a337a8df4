package responder

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

// vocabulary is small so that articles share terms and document
// frequencies matter.
var vocabulary = []string{
	"refund", "refunds", "shipping", "express", "parcel", "invoice", "password", "reset",
	"delivery", "damaged", "return", "policy", "hours", "holiday", "account", "login",
	"payment", "visa", "transfer", "warehouse", "tracking", "label", "weekend", "support",
}

func randomArticle(r *rand.Rand, slug string) compile.Article {
	words := func(n int) string {
		out := ""
		for i := range n {
			if i > 0 {
				out += " "
			}
			out += vocabulary[r.IntN(len(vocabulary))]
		}
		return out
	}
	content := ""
	for p := range 1 + r.IntN(4) {
		if r.IntN(2) == 0 {
			content += fmt.Sprintf("## %s %d\n\n", words(2), p)
		}
		content += words(3+r.IntN(20)) + ".\n\n"
	}
	a := compile.Article{Slug: slug, Title: words(1 + r.IntN(3)), Content: content}
	if r.IntN(3) == 0 {
		a.Tags = []string{vocabulary[r.IntN(len(vocabulary))]}
	}
	return a
}

// sameAnswers asserts that got answers every query as want does.
func sameAnswers(t *testing.T, want, got *index, queries []string) {
	t.Helper()
	require.Equal(t, want.n, got.n, "live passages")
	require.Equal(t, want.avg, got.avg, "average length")
	for _, q := range queries {
		wp, wok := want.search(q)
		gp, gok := got.search(q)
		require.Equal(t, wok, gok, "query %q", q)
		require.Equal(t, wp, gp, "query %q", q)
	}
}

// TestRebuildIndexAnswersAsAFreshIndex edits, adds and deletes articles at
// random for many rounds (crossing the overlay bound several times) and
// checks after each that the index reusing the previous one answers every
// query exactly as an index built from scratch.
func TestRebuildIndexAnswersAsAFreshIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	arts := map[string]compile.Article{}
	for i := range 120 {
		slug := fmt.Sprintf("a%03d", i)
		arts[slug] = randomArticle(r, slug)
	}
	list := func() []compile.Article {
		out := make([]compile.Article, 0, len(arts))
		for _, a := range arts {
			out = append(out, a)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
		return out
	}
	var queries []string
	for i := range 60 {
		q := ""
		for range 1 + i%4 {
			q += vocabulary[r.IntN(len(vocabulary))] + " "
		}
		queries = append(queries, q)
	}
	prev := buildIndex(list())
	overlays, compactions := 0, 0
	next := 1000
	for round := range 300 {
		for range 1 + r.IntN(3) {
			switch op := r.IntN(10); {
			case op < 6 && len(arts) > 0: // edit
				keys := make([]string, 0, len(arts))
				for k := range arts {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				k := keys[r.IntN(len(keys))]
				a := randomArticle(r, k)
				if r.IntN(4) == 0 { // only the title or tags change
					a.Content = arts[k].Content
				}
				arts[k] = a
			case op < 8: // add
				slug := fmt.Sprintf("a%04d", next)
				next++
				arts[slug] = randomArticle(r, slug)
			default: // delete
				for k := range arts {
					delete(arts, k)
					break
				}
			}
		}
		cur := list()
		got := rebuildIndex(prev, cur)
		if got.base == prev.base {
			overlays++
		} else {
			compactions++
		}
		sameAnswers(t, buildIndex(cur), got, queries)
		if round%50 == 0 {
			// Nothing changed: the same index, re-derived, shares everything.
			again := rebuildIndex(got, cur)
			assert.Same(t, got.base, again.base)
			sameAnswers(t, got, again, queries)
		}
		prev = got
	}
	assert.Greater(t, overlays, 100, "most rebuilds reuse the segment")
	assert.Greater(t, compactions, 2, "the overlay bound was crossed")
}

// TestRebuildIndexAnalysesOnlyTheChange checks that a one-article edit
// shares every other article's analysis and puts only that article in the
// overlay.
func TestRebuildIndexAnalysesOnlyTheChange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	arts := make([]compile.Article, 500)
	for i := range arts {
		arts[i] = randomArticle(r, fmt.Sprintf("a%03d", i))
	}
	first := buildIndex(arts)
	edited := slices.Clone(arts)
	edited[250] = randomArticle(r, edited[250].Slug)
	second := rebuildIndex(first, edited)
	require.Same(t, first.base, second.base)
	require.Len(t, second.overlay.articles, 1)
	assert.Equal(t, "a250", second.overlay.articles[0].slug)
	assert.True(t, second.dead[250])
	assert.Equal(t, 1, countTrue(second.dead))

	// A second edit elsewhere keeps the first one's analysis.
	edited2 := slices.Clone(edited)
	edited2[10] = randomArticle(r, edited2[10].Slug)
	third := rebuildIndex(second, edited2)
	require.Len(t, third.overlay.articles, 2)
	assert.Same(t, second.overlay.articles[0], third.overlay.articles[1])
}

// TestNewFromMatchesNew checks the engine-level entry: NewFrom over the
// rich artifact with one article changed answers like New.
func TestNewFromMatchesNew(t *testing.T) {
	a := richArtifact()
	prev := mustNew(t, a)
	b := richArtifact()
	b.Knowledge[0].Content = "# Invoices\n\nInvoices are now sent on the fifth day of every month.\n"
	fresh := mustNew(t, b)
	reused, err := NewFrom(prev, b)
	require.NoError(t, err)
	for _, q := range []string{"when are invoices sent", "how long does express shipping take", "reset my password", "refund"} {
		assert.Equal(t, fresh.Respond(State{}, q), reused.Respond(State{}, q), q)
	}
	turn := reused.Respond(State{}, "when are invoices sent")
	assert.Contains(t, turn.Reply, "fifth day")
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
