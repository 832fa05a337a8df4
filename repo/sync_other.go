//go:build !unix

package repo

// syncAll is a no-op where sync(2) is not available.
func syncAll() {}
