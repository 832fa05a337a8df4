// Package githttp serves an agent's bare repository read-only over git's
// smart HTTP protocol (v0, v1 and v2) by running
// `git upload-pack --stateless-rpc`, so a stock git client can clone,
// fetch, deepen and partially clone it; pushes are refused. Errors are
// text/plain sentences git shows as "remote:" lines. Request bodies
// stream under a size limit and a read deadline, and a bounded number of
// upload-pack processes run at once.
package githttp
