package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/backend"
)

type testRunRequest struct {
	Target string   `json:"target" validate:"max=20"`
	Tests  []string `json:"tests" validate:"max=1000,dive,required,max=100"`
}

func (s *Server) createTestRun(c *gin.Context) {
	var req testRunRequest
	if _, err := s.bindJSON(c, &req, true); err != nil {
		fail(c, err)
		return
	}
	run, err := s.backend.RunTests(c.Request.Context(), principal(c), c.Param("id"), backend.TestRunInput{Target: req.Target, Tests: req.Tests})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/agents/"+run.AgentID+"/test-runs/"+run.ID)
	writeJSON(c, http.StatusCreated, run)
}

func (s *Server) listTestRuns(c *gin.Context) {
	limit, err := parseLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	runs, next, err := s.backend.TestRuns(c.Request.Context(), principal(c), c.Param("id"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"data": runs, "nextCursor": nullableString(next)})
}

func (s *Server) getTestRun(c *gin.Context) {
	run, err := s.backend.TestRun(c.Request.Context(), principal(c), c.Param("id"), c.Param("runId"))
	if err != nil {
		fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, run)
}
