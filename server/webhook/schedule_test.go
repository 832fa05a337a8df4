package webhook

import (
	"errors"
	"slices"
	"testing"
	"time"
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
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", " ", "5s,,5m", "5", "-5s", "xd", "5s,abc", "1.5d"} {
		if got, err := ParseSchedule(in); !errors.Is(err, ErrBadSchedule) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want ErrBadSchedule", in, got, err)
		}
	}
	long := "1s"
	for range MaxScheduleSteps {
		long += ",1s"
	}
	if _, err := ParseSchedule(long); !errors.Is(err, ErrBadSchedule) {
		t.Errorf("ParseSchedule(%d steps) err = %v, want ErrBadSchedule", MaxScheduleSteps+1, err)
	}
}

func TestDefaultSchedule(t *testing.T) {
	s := DefaultSchedule()
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 10 * time.Hour}
	if !slices.Equal(s[:len(want)], want) {
		t.Fatalf("DefaultSchedule starts %v, want Standard Webhooks' %v", s[:len(want)], want)
	}
	var total time.Duration
	for _, d := range s {
		total += d
	}
	if total < 60*time.Hour || total > 84*time.Hour {
		t.Fatalf("DefaultSchedule spans %v, want about 3 days", total)
	}
	s[0] = 0
	if DefaultSchedule()[0] != 5*time.Second {
		t.Fatalf("DefaultSchedule returned shared state: mutation leaked")
	}
}

func TestJitterAndRetryAfter(t *testing.T) {
	for range 200 {
		if got := tenPercentJitter(10 * time.Second); got < 9*time.Second || got > 11*time.Second {
			t.Fatalf("tenPercentJitter(10s) = %v, want within 9s..11s", got)
		}
	}
	if got := tenPercentJitter(0); got != 0 {
		t.Fatalf("tenPercentJitter(0) = %v, want 0", got)
	}
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
		{now.Add(90 * time.Second).Format(http1123), 90 * time.Second},
		{now.Add(-time.Hour).Format(http1123), 0},
	} {
		if got := retryAfter(c.in, now); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
