// Package server is flowyte's HTTP API: gin routes (routes.go shows them
// all), authentication, RFC 9457 problems, agents and drafts, versions,
// diffs, chat sessions, webhooks and the read-only git endpoint.
package server
