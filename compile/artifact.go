package compile

// FormatVersion is the version of the compiled artifact layout written into
// Artifact.Format. Bump it only with a migration story for readers.
//
// Format 1 embedded each knowledge article's body ("content"). Format 2
// names the article's source file instead, by its git blob id ("blob"):
// the file knowledge/<slug>.md of the same release tree, which holds the
// body. LoadArtifact reads both.
const FormatVersion = 2

// ArtifactPath is where the compiled artifact lives in a release tree.
const ArtifactPath = "compiled/agent.json"

// Artifact is the compiled agent: the decoded content of compiled/agent.json.
// Every list is sorted by Slug so the encoding is deterministic.
type Artifact struct {
	Format     int         `json:"format"`
	Settings   Settings    `json:"settings"`
	Knowledge  []Article   `json:"knowledge"`
	Skills     []Skill     `json:"skills"`
	Guardrails []Guardrail `json:"guardrails"`
	Playbooks  []Playbook  `json:"playbooks"`
}

// Settings is agent.yaml, and the typed view of GET/PUT .../draft/settings.
type Settings struct {
	Name        string `json:"name" yaml:"name" validate:"required,max=200"`
	Description string `json:"description,omitempty" yaml:"description,omitempty" validate:"max=2000"`
	Language    string `json:"language,omitempty" yaml:"language,omitempty" validate:"omitempty,bcp47_language_tag"`
	Persona     string `json:"persona,omitempty" yaml:"persona,omitempty" validate:"max=8000"`
	Greeting    string `json:"greeting,omitempty" yaml:"greeting,omitempty" validate:"max=2000"`
	Fallback    string `json:"fallback,omitempty" yaml:"fallback,omitempty" validate:"max=2000"`
	Voice       *Voice `json:"voice,omitempty" yaml:"voice,omitempty"`
	Model       *Model `json:"model,omitempty" yaml:"model,omitempty"`
}

// Voice selects the text-to-speech voice used on the phone channel.
type Voice struct {
	Provider string `json:"provider" yaml:"provider" validate:"required,max=100"`
	VoiceID  string `json:"voiceId" yaml:"voiceId" validate:"required,max=200"`
}

// Model selects the language model and its sampling temperature.
type Model struct {
	Name        string   `json:"name" yaml:"name" validate:"required,max=200"`
	Temperature *float64 `json:"temperature,omitempty" yaml:"temperature,omitempty" validate:"omitempty,gte=0,lte=2"`
}

// Article is one knowledge/<slug>.md file. Content is the Markdown body
// without the front matter.
//
// In the artifact (format 2) an article is its slug, title, tags and
// Blob, not its Content: the body stays in the source file, which the
// release tree holds beside the artifact (see LoadArtifact). Content is
// the "content" of the typed view (and of a format-1 artifact).
type Article struct {
	Slug    string   `json:"slug" yaml:"-"`
	Title   string   `json:"title,omitempty" yaml:"title,omitempty" validate:"max=300"`
	Tags    []string `json:"tags,omitempty" yaml:"tags,omitempty" validate:"max=50,dive,required,max=100"`
	Content string   `json:"content" yaml:"-"`
	// Blob is the git blob id (40 hex digits) of the file the article was
	// compiled from; set in a compile's artifact and by LoadArtifact, not
	// part of the typed view.
	Blob string `json:"-" yaml:"-"`
}

// Skill is one skills/<slug>.yaml file: an HTTP call the agent may make.
type Skill struct {
	Slug        string         `json:"slug" yaml:"-"`
	Description string         `json:"description" yaml:"description" validate:"max=2000"`
	Parameters  map[string]any `json:"parameters" yaml:"parameters" validate:"required"`
	HTTP        SkillHTTP      `json:"http" yaml:"http" validate:"required"`
}

// SkillHTTP is the request a skill would make. URL may hold {param}
// placeholders naming declared parameters.
type SkillHTTP struct {
	Method    string            `json:"method" yaml:"method" validate:"required,oneof=GET POST PUT PATCH DELETE"`
	URL       string            `json:"url" yaml:"url" validate:"required,max=2000"`
	Headers   map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	TimeoutMs int               `json:"timeoutMs" yaml:"timeoutMs" validate:"required,gte=1,lte=60000"`
}

// Guardrail is one guardrails/<slug>.yaml file. Exactly one of Block and
// Redact is set. Patterns are RE2.
type Guardrail struct {
	Slug        string  `json:"slug" yaml:"-"`
	Description string  `json:"description" yaml:"description" validate:"max=2000"`
	Applies     string  `json:"applies" yaml:"applies" validate:"required,oneof=input output both"`
	Block       *Block  `json:"block,omitempty" yaml:"block,omitempty"`
	Redact      *Redact `json:"redact,omitempty" yaml:"redact,omitempty"`
}

// Block refuses a message matching any phrase (case-insensitive substring)
// or pattern, answering Message instead.
type Block struct {
	Phrases  []string `json:"phrases,omitempty" yaml:"phrases,omitempty"`
	Patterns []string `json:"patterns,omitempty" yaml:"patterns,omitempty"`
	Message  string   `json:"message" yaml:"message" validate:"required"`
}

// Redact replaces every match of any pattern with "[redacted]".
type Redact struct {
	Patterns []string `json:"patterns" yaml:"patterns" validate:"required,min=1"`
}

// Playbook is one playbooks/<slug>.yaml file: a scripted conversation
// started by any of its trigger phrases.
type Playbook struct {
	Slug        string   `json:"slug" yaml:"-"`
	Description string   `json:"description" yaml:"description" validate:"max=2000"`
	Triggers    []string `json:"triggers" yaml:"triggers" validate:"required,min=1,dive,required"`
	Steps       []Step   `json:"steps" yaml:"steps" validate:"required,min=1"`
}

// Step is one playbook step; exactly one of Say, Ask (with Save), Skill
// (with With) and Handoff is set. Text fields may use {{var}} templating.
type Step struct {
	Say     string            `json:"say,omitempty" yaml:"say,omitempty"`
	Ask     string            `json:"ask,omitempty" yaml:"ask,omitempty"`
	Save    string            `json:"save,omitempty" yaml:"save,omitempty"`
	Skill   string            `json:"skill,omitempty" yaml:"skill,omitempty"`
	With    map[string]string `json:"with,omitempty" yaml:"with,omitempty"`
	Handoff string            `json:"handoff,omitempty" yaml:"handoff,omitempty"`
}
