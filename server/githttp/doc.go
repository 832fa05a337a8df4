// Package githttp serves an agent's bare repository read-only over git's
// smart HTTP protocol (v0, v1 and v2) by running
// `git upload-pack --stateless-rpc`, so a stock git client can clone and
// fetch it; pushes are refused.
package githttp
