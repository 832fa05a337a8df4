package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the daemon's Prometheus instrumentation.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowyte_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowyte_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
	m.requests = reuse(reg, m.requests)
	m.latency = reuse(reg, m.latency)
	return m
}

// reuse registers c, or returns the collector already registered under
// its name (several transports share one backend's registry).
func reuse[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// requestID echoes a sane client X-Request-Id or makes one.
func requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

// checkRequest refuses a query string that does not parse (a malformed
// percent-escape is a client error, not something to ignore) and sets the
// body read deadline.
func (s *Server) checkRequest(c *gin.Context) {
	c.Set(ctxBodyTimeout, s.deps.BodyTimeout)
	if strings.HasPrefix(c.Request.URL.Path, "/git/") {
		c.Next()
		return
	}
	if _, err := url.ParseQuery(c.Request.URL.RawQuery); err != nil {
		fail(c, problem("invalid_request", "the query string does not parse: %v", err))
		return
	}
	c.Next()
}

// validRequestID reports whether a client's request id is safe to echo:
// 1 to 1024 bytes of visible ASCII, spaces and tabs (no control bytes that
// could split a header or a log line).
func validRequestID(id string) bool {
	if id == "" || len(id) > 1024 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if (ch < 0x20 && ch != '\t') || ch > 0x7e {
			return false
		}
	}
	return true
}

// accessLog writes one line per request and feeds the metrics.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())
	ev := s.log.Info()
	if status >= 500 {
		ev = s.log.Error()
	}
	ev = ev.Str("method", c.Request.Method).
		Str("route", route).
		Str("path", c.Request.URL.Path).
		Int("status", status).
		Dur("latency", elapsed).
		Str("requestId", c.GetString(ctxRequestID)).
		Int("bytes", c.Writer.Size())
	if kid := c.GetString("flowyte.keyId"); kid != "" {
		ev = ev.Str("keyId", kid)
	}
	if code := c.GetString(ctxErrorCode); code != "" {
		ev = ev.Str("problem", code)
	}
	ev.Msg("request")
}
