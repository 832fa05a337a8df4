package compile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path     string
		wantKind Kind
		wantSlug string
		wantErr  bool
	}{
		{"agent.yaml", KindSettings, "", false},
		{"knowledge/shipping.md", KindKnowledge, "shipping", false},
		{"knowledge/a.md", KindKnowledge, "a", false},
		{"knowledge/0-day-returns.md", KindKnowledge, "0-day-returns", false},
		{"skills/order-status.yaml", KindSkills, "order-status", false},
		{"guardrails/pii.yaml", KindGuardrails, "pii", false},
		{"playbooks/track-order.yaml", KindPlaybooks, "track-order", false},
		{"tests/booking.yaml", KindTests, "booking", false},
		{"tests/booking.yml", "", "", true},
		{"tests/Booking.yaml", "", "", true},
		{"tests/sub/booking.yaml", "", "", true},
		{"compiled/tests.json", "", "", true},
		{"playbooks/" + repeat("a", 64) + ".yaml", KindPlaybooks, repeat("a", 64), false},
		{"playbooks/" + repeat("a", 65) + ".yaml", "", "", true},
		{"", "", "", true},
		{"../x", "", "", true},
		{"knowledge/../agent.yaml", "", "", true},
		{"/abs", "", "", true},
		{"/agent.yaml", "", "", true},
		{".git/config", "", "", true},
		{"foo/bar.txt", "", "", true},
		{"notes.txt", "", "", true},
		{"agent.yml", "", "", true},
		{"Agent.yaml", "", "", true},
		{"knowledge/a\x00.md", "", "", true},
		{`knowledge\a.md`, "", "", true},
		{"compiled/agent.json", "", "", true},
		{"knowledge/A.md", "", "", true},
		{"knowledge/a.yaml", "", "", true},
		{"skills/x.yml", "", "", true},
		{"skills/x.md", "", "", true},
		{"skills/", "", "", true},
		{"skills", "", "", true},
		{"knowledge/", "", "", true},
		{"knowledge/.md", "", "", true},
		{"knowledge/-a.md", "", "", true},
		{"knowledge/a_b.md", "", "", true},
		{"knowledge/a b.md", "", "", true},
		{"knowledge/sub/a.md", "", "", true},
		{"knowledge//a.md", "", "", true},
		{"./agent.yaml", "", "", true},
		{"settings/x.yaml", "", "", true},
		{"knowledge/é.md", "", "", true},
	}
	for _, tt := range tests {
		kind, slug, err := ParsePath(tt.path)
		if tt.wantErr {
			assert.ErrorIs(t, err, ErrInvalidPath, "ParsePath(%q) = (%q, %q)", tt.path, kind, slug)
			continue
		}
		if assert.NoError(t, err, "ParsePath(%q)", tt.path) {
			assert.Equal(t, tt.wantKind, kind, "ParsePath(%q) kind", tt.path)
			assert.Equal(t, tt.wantSlug, slug, "ParsePath(%q) slug", tt.path)
			assert.Equal(t, tt.path, PathFor(kind, slug), "PathFor(%q, %q)", kind, slug)
		}
	}
}

func TestPathFor(t *testing.T) {
	tests := []struct {
		kind Kind
		slug string
		want string
	}{
		{KindSettings, "", "agent.yaml"},
		{KindSettings, "ignored", "agent.yaml"},
		{KindKnowledge, "faq", "knowledge/faq.md"},
		{KindSkills, "s", "skills/s.yaml"},
		{KindGuardrails, "g", "guardrails/g.yaml"},
		{KindPlaybooks, "p", "playbooks/p.yaml"},
		{KindTests, "t", "tests/t.yaml"},
		{Kind("nope"), "p", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, PathFor(tt.kind, tt.slug), "PathFor(%q, %q)", tt.kind, tt.slug)
	}
}

func TestKindFromPlural(t *testing.T) {
	tests := []struct {
		in     string
		want   Kind
		wantOK bool
	}{
		{"knowledge", KindKnowledge, true},
		{"skills", KindSkills, true},
		{"guardrails", KindGuardrails, true},
		{"playbooks", KindPlaybooks, true},
		{"tests", KindTests, true},
		{"settings", "", false},
		{"skill", "", false},
		{"Skills", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := KindFromPlural(tt.in)
		assert.Equal(t, tt.want, got, "KindFromPlural(%q)", tt.in)
		assert.Equal(t, tt.wantOK, ok, "KindFromPlural(%q) ok", tt.in)
	}
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }
