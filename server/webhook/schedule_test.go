package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSchedule(t *testing.T) {
	good := []struct {
		in   string
		want []time.Duration
	}{
		{"5s,5m,30m,2h,5h,10h,10h", []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}},
		{" 10ms , 20ms ", []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}},
		{"1d,1h30m", []time.Duration{24 * time.Hour, 90 * time.Minute}},
		{"0s", []time.Duration{0}},
	}
	for _, c := range good {
		got, err := ParseSchedule(c.in)
		if assert.NoError(t, err, "ParseSchedule(%q)", c.in) {
			assert.Equal(t, c.want, got, "ParseSchedule(%q)", c.in)
		}
	}
	long := "1s"
	for range MaxScheduleSteps {
		long += ",1s"
	}
	for _, in := range []string{"", " ", "5s,,5m", "5", "-5s", "xd", "5s,abc", "1.5d", long} {
		_, err := ParseSchedule(in)
		assert.ErrorIs(t, err, ErrBadSchedule, "ParseSchedule(%.40q)", in)
	}
}

func TestDefaultSchedule(t *testing.T) {
	s := DefaultSchedule()
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 10 * time.Hour}
	require.GreaterOrEqual(t, len(s), len(want))
	assert.Equal(t, want, s[:len(want)], "DefaultSchedule starts with Standard Webhooks' schedule")
	var total time.Duration
	for _, d := range s {
		total += d
	}
	assert.True(t, total >= 60*time.Hour && total <= 84*time.Hour, "DefaultSchedule spans %v, want about 3 days", total)
	s[0] = 0
	assert.Equal(t, 5*time.Second, DefaultSchedule()[0], "DefaultSchedule returns no shared state")
}

func TestJitterAndRetryAfter(t *testing.T) {
	for range 200 {
		got := tenPercentJitter(10 * time.Second)
		require.True(t, got >= 9*time.Second && got <= 11*time.Second, "tenPercentJitter(10s) = %v, want within 9s..11s", got)
	}
	assert.Zero(t, tenPercentJitter(0))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"99999999999", 365 * 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http1123), 90 * time.Second},
		{now.Add(-time.Hour).Format(http1123), 0},
	} {
		assert.Equal(t, c.want, retryAfter(c.in, now), "retryAfter(%q)", c.in)
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
