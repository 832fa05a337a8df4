//go:build !linux

package postgres

import "time"

// leaseNow is the clock key leases are measured on: Go's monotonic clock
// (see clock_linux.go for why Linux uses CLOCK_BOOTTIME instead).
func leaseNow() int64 { return int64(time.Since(processStart)) }

var processStart = time.Now()
