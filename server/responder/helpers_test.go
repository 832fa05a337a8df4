package responder

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

// mustNew builds an engine for a and fails the test on error.
func mustNew(tb testing.TB, a *compile.Artifact) *Engine {
	tb.Helper()
	e, err := New(a)
	require.NoError(tb, err, "New")
	return e
}

// richArtifact is a support agent with six articles, three skills, three
// guardrails and three playbooks.
func richArtifact() *compile.Artifact {
	return &compile.Artifact{
		Format: compile.FormatVersion,
		Settings: compile.Settings{
			Name:     "Acme support",
			Greeting: "Hi! I'm the Acme assistant.",
			Fallback: "I'm not sure about that. Try asking about orders, shipping or returns.",
		},
		Knowledge: []compile.Article{
			{
				Slug:  "billing",
				Title: "Billing and invoices",
				Tags:  []string{"invoice", "payment"},
				Content: "# Invoices\n\nInvoices are emailed on the first day of every month. " +
					"You can also download them from Settings > Billing.\n\n" +
					"# Payment methods\n\nWe accept Visa, Mastercard and American Express. " +
					"Bank transfers are available for annual plans.\n",
			},
			{
				Slug:  "hours",
				Title: "Opening hours",
				Tags:  []string{"schedule"},
				Content: "Our support team is available Monday to Friday, 9am to 6pm CET.\n\n" +
					"## Holidays\n\nOn public holidays the team is closed; email us and we reply the next working day.\n",
			},
			{
				Slug:  "passwords",
				Title: "Resetting your password",
				Tags:  []string{"login", "account"},
				Content: "Forgot your password? Click \"Forgot password\" on the sign-in page and follow the link we email you. " +
					"The link expires after 30 minutes.\n\n" +
					"## Two-factor authentication\n\nIf you lost your authenticator device, contact support with a photo ID to disable two-factor authentication.\n",
			},
			{
				Slug:  "returns",
				Title: "Returns policy",
				Tags:  []string{"return", "refund"},
				Content: "# Returns\n\nYou can return any unused item within 30 days of delivery for a full refund. " +
					"Refunds go back to the original payment method within 5 business days.\n\n" +
					"# Damaged items\n\nIf an item arrived damaged, send us a photo and we ship a replacement for free.\n",
			},
			{
				Slug:  "shipping",
				Title: "Shipping",
				Tags:  []string{"delivery"},
				Content: "Standard shipping takes 3 to 5 business days within the EU. Express shipping arrives the next day when ordered before noon.\n\n" +
					"International shipping outside the EU takes 7 to 14 days and customs duties are paid by the recipient.\n",
			},
			{
				Slug:  "warranty",
				Title: "Warranty",
				Tags:  []string{"guarantee"},
				Content: "Every product carries a two-year warranty against manufacturing defects. " +
					"Keep your receipt: the warranty claim needs the order number.\n",
			},
		},
		Skills: []compile.Skill{
			{
				Slug:       "create-ticket",
				Parameters: map[string]any{"type": "object", "properties": map[string]any{"email": map[string]any{"type": "string"}, "summary": map[string]any{"type": "string"}, "priority": map[string]any{"type": "integer"}}, "required": []any{"email", "summary"}},
				HTTP:       compile.SkillHTTP{Method: "POST", URL: "https://help.example.com/api/tickets", Headers: map[string]string{"Authorization": "Bearer test", "X-Source": "flowyte"}, TimeoutMs: 5000},
			},
			{
				Slug:       "order-status",
				Parameters: map[string]any{"type": "object", "properties": map[string]any{"orderId": map[string]any{"type": "string"}, "lang": map[string]any{"type": "string"}}, "required": []any{"orderId"}},
				HTTP:       compile.SkillHTTP{Method: "GET", URL: "https://shop.example.com/orders/{orderId}/status", TimeoutMs: 2000},
			},
			{
				Slug:       "cancel-order",
				Parameters: map[string]any{"type": "object", "properties": map[string]any{"orderId": map[string]any{"type": "string"}}, "required": []any{"orderId"}},
				HTTP:       compile.SkillHTTP{Method: "DELETE", URL: "https://shop.example.com/orders/{orderId}", TimeoutMs: 3000},
			},
		},
		Guardrails: []compile.Guardrail{
			{
				Slug: "no-abuse", Applies: "both",
				Block: &compile.Block{Phrases: []string{"idiot", "stupid bot"}, Patterns: []string{`(?i)\bkill\s+you\b`}, Message: "Let's keep this conversation respectful."},
			},
			{
				Slug: "pii", Applies: "both",
				Redact: &compile.Redact{Patterns: []string{`\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b`, `[\w.+-]+@[\w-]+\.[\w.]+`}},
			},
			{
				Slug: "no-competitors", Applies: "output",
				Block: &compile.Block{Phrases: []string{"megacorp"}, Message: "I can only talk about Acme products."},
			},
		},
		Playbooks: []compile.Playbook{
			{
				Slug:     "cancel",
				Triggers: []string{"cancel my order", "cancel order"},
				Steps: []compile.Step{
					{Ask: "Which order should I cancel?", Save: "order"},
					{Skill: "cancel-order", With: map[string]string{"orderId": "{{order}}"}},
					{Say: "Order {{order}} is cancelled."},
				},
			},
			{
				Slug:     "order-status",
				Triggers: []string{"where is my order", "order status", "track"},
				Steps: []compile.Step{
					{Ask: "What is your order number?", Save: "order"},
					{Skill: "order-status", With: map[string]string{"orderId": "{{order}}", "lang": "en"}},
					{Say: "I've looked up order {{order}} for you."},
				},
			},
			{
				Slug:     "support-ticket",
				Triggers: []string{"talk to a human", "open a ticket"},
				Steps: []compile.Step{
					{Say: "Sure, I'll open a ticket."},
					{Ask: "What's your email?", Save: "email"},
					{Ask: "Briefly, what is the problem?", Save: "summary"},
					{Skill: "create-ticket", With: map[string]string{"email": "{{email}}", "summary": "{{summary}}", "priority": "2"}},
					{Say: "Thanks, a colleague will follow up about: {{summary}}"},
					{Handoff: "human support"},
				},
			},
		},
	}
}
