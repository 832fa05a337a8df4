package postgres

import (
	"time"

	"golang.org/x/sys/unix"
)

// leaseNow is the clock key leases are measured on, in nanoseconds from
// an arbitrary origin. On Linux it is CLOCK_BOOTTIME, which goes on
// through a system suspend (Go's monotonic clock does not), so a daemon
// never wakes up trusting a lease that ran out while it slept.
func leaseNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return int64(time.Since(processStart))
	}
	return ts.Nano()
}

var processStart = time.Now()
