package server

import (
	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/dashboard"
)

// routes is the whole API at a glance.
func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.RemoveExtraSlash = false
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.ContextWithFallback = true
	r.Use(requestID, s.accessLog, s.problemMiddleware, s.checkRequest)
	r.NoRoute(func(c *gin.Context) {
		fail(c, problem("not_found", "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(s.noMethod)

	// Every GET answers HEAD too (same headers, such as ETag; no body).
	get := func(path string, h ...gin.HandlerFunc) {
		r.GET(path, h...)
		r.HEAD(path, h...)
	}

	read := s.requireScope(ScopeAgentsRead)
	write := s.requireScope(ScopeAgentsWrite)
	chat := s.requireScope(ScopeChatWrite)
	hooks := s.requireScope(ScopeWebhooksWrite)
	keys := s.requireScope(ScopeKeysWrite)

	// Operations (no key, but /metrics: any key with agents:read).
	get("/healthz", s.healthz)
	get("/readyz", s.readyz)
	get("/metrics", read, s.metricsHandler())
	get("/openapi.json", s.openAPI)
	get("/problems/:code", s.problemPage)

	// Agents and the draft (§4).
	r.POST("/agents", write, s.createAgent)
	get("/agents", read, s.listAgents)
	get("/agents/:id", read, s.getAgent)
	r.DELETE("/agents/:id", write, s.deleteAgent)
	get("/agents/:id/draft", read, s.getDraft)
	get("/agents/:id/draft/files/*path", read, s.getDraftFile)
	r.PUT("/agents/:id/draft/files/*path", write, s.putDraftFile)
	r.DELETE("/agents/:id/draft/files/*path", write, s.deleteDraftFile)
	r.POST("/agents/:id/draft/commits", write, s.commitDraft)
	get("/agents/:id/draft/history", read, s.draftHistory)
	get("/agents/:id/draft/settings", read, s.getSettings)
	r.PUT("/agents/:id/draft/settings", write, s.putSettings)
	get("/agents/:id/draft/:kind", read, s.listTyped)
	get("/agents/:id/draft/:kind/:name", read, s.getTyped)
	r.PUT("/agents/:id/draft/:kind/:name", write, s.putTyped)
	r.DELETE("/agents/:id/draft/:kind/:name", write, s.deleteTyped)

	// Versions (§5).
	r.POST("/agents/:id/publish", write, s.publish)
	r.POST("/agents/:id/rollback", write, s.rollback)
	get("/agents/:id/versions", read, s.listVersions)
	get("/agents/:id/versions/:v", read, s.getVersion)
	get("/agents/:id/versions/:v/compiled", read, s.getCompiled)
	get("/agents/:id/versions/:v/files/*path", read, s.getVersionFile)
	get("/agents/:id/versions/:v/diff", read, s.diff)
	get("/agents/:id/prepublish-report", read, s.prepublishReport)
	get("/agents/:id/deployments", read, s.listDeployments)

	// Test suites and the release gate (§11).
	r.POST("/agents/:id/test-runs", write, s.createTestRun)
	get("/agents/:id/test-runs", read, s.listTestRuns)
	get("/agents/:id/test-runs/:runId", read, s.getTestRun)

	// Sandbox, channels, sessions (§8); pins, splits, outcomes (§12).
	get("/agents/:id/channels", read, s.channels)
	r.PUT("/agents/:id/channels/:channel", write, s.putChannel)
	get("/agents/:id/outcomes", read, s.outcomes)
	get("/usage", read, s.usage)
	r.POST("/chat/sessions", chat, s.createSession)
	get("/chat/sessions/:sid", chat, s.getSession)
	r.POST("/chat/sessions/:sid/messages", chat, s.postMessage)

	// Webhooks (§9).
	r.POST("/webhooks", hooks, s.createWebhook)
	get("/webhooks", hooks, s.listWebhooks)
	get("/webhooks/:wid", hooks, s.getWebhook)
	r.DELETE("/webhooks/:wid", hooks, s.deleteWebhook)
	get("/webhooks/:wid/deliveries", hooks, s.listDeliveries)
	r.POST("/webhooks/:wid/deliveries/:eid/redeliver", hooks, s.redeliver)

	// API keys (an addition to the contract, scope keys:write).
	r.POST("/keys", keys, s.createKey)
	get("/keys", keys, s.listKeys)
	r.DELETE("/keys/:kid", keys, s.revokeKey)

	// Dashboard (§13): sign-in sessions, the single-page app at "/" with its
	// client routes under /ui/, and its assets.
	dash := gin.WrapH(s.sessions)
	r.POST("/session", dash)
	get("/session", dash)
	r.DELETE("/session", dash)
	pages := gin.WrapH(dashboard.NewAssets())
	get("/", pages)
	get("/assets/*file", pages)
	get("/ui/*path", pages)

	// Read-only smart HTTP (§7); the git handler authenticates itself.
	git := s.gitHandler()
	r.Any("/git/*path", func(c *gin.Context) {
		if kid := git.Serve(c.Writer, c.Request); kid != "" {
			c.Set("flowyte.keyId", kid) // for the access log
		}
	})
	return r
}
