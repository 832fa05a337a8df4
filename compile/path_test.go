package compile

import (
	"errors"
	"testing"
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
			if err == nil {
				t.Errorf("ParsePath(%q) = (%q, %q, nil), want an error", tt.path, kind, slug)
			} else if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("ParsePath(%q) error %v does not wrap ErrInvalidPath", tt.path, err)
			}
			continue
		}
		if err != nil || kind != tt.wantKind || slug != tt.wantSlug {
			t.Errorf("ParsePath(%q) = (%q, %q, %v), want (%q, %q, nil)", tt.path, kind, slug, err, tt.wantKind, tt.wantSlug)
		}
		if got := PathFor(kind, slug); got != tt.path {
			t.Errorf("PathFor(%q, %q) = %q, want %q", kind, slug, got, tt.path)
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
		if got := PathFor(tt.kind, tt.slug); got != tt.want {
			t.Errorf("PathFor(%q, %q) = %q, want %q", tt.kind, tt.slug, got, tt.want)
		}
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
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("KindFromPlural(%q) = (%q, %v), want (%q, %v)", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
