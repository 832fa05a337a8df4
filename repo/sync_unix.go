//go:build unix

package repo

import "syscall"

// syncAll flushes every filesystem's dirty data to disk.
func syncAll() { syscall.Sync() }
