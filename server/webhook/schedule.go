package webhook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxScheduleSteps bounds the number of retries a schedule may hold.
const MaxScheduleSteps = 50

// ErrBadSchedule is returned (wrapped) by [ParseSchedule].
var ErrBadSchedule = errors.New("webhook: bad retry schedule")

// DefaultSchedule returns the default retry schedule: the delays before
// each retry after the immediate first attempt. It is Standard Webhooks'
// recommendation (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) extended by two
// daily retries, so an endpoint gets 10 attempts over about 3.1 days.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
		5 * time.Hour, 10 * time.Hour, 10 * time.Hour, 24 * time.Hour, 24 * time.Hour,
	}
}

// ParseSchedule parses a comma-separated list of retry delays such as
// "5s,5m,30m,2h,5h,10h,10h" (the --webhook-retry-schedule flag). Each item
// is a Go duration or a whole number of days ("1d"); items must not be
// negative; at least one and at most [MaxScheduleSteps] items.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadSchedule)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxScheduleSteps {
		return nil, fmt.Errorf("%w: %d steps, at most %d", ErrBadSchedule, len(parts), MaxScheduleSteps)
	}
	out := make([]time.Duration, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		var d time.Duration
		if days, ok := strings.CutSuffix(p, "d"); ok {
			n, err := strconv.ParseUint(days, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("%w: %q", ErrBadSchedule, p)
			}
			d = time.Duration(n) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(p); err != nil {
				return nil, fmt.Errorf("%w: %q", ErrBadSchedule, p)
			}
		}
		if d < 0 {
			return nil, fmt.Errorf("%w: negative delay %q", ErrBadSchedule, p)
		}
		out = append(out, d)
	}
	return out, nil
}
