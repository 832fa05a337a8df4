package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// writeRecords commits attempt outcomes in groups: whatever has queued up
// while the previous transaction ran goes into the next one.
func (d *Dispatcher) writeRecords(in <-chan record) {
	for r := range in {
		batch := []record{r}
	gather:
		for len(batch) < 256 {
			select {
			case r, ok := <-in:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		attempts := make([]store.WebhookAttempt, len(batch))
		for i, b := range batch {
			attempts[i] = b.attempt
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.store.RecordWebhookAttempts(ctx, attempts)
		cancel()
		for _, b := range batch {
			b.done <- err
		}
	}
}

// deliver POSTs the event to the webhook once and returns the outcome to
// record, or false when the attempt was cut short by shutdown.
// The request ends by deadline at the latest.
func (d *Dispatcher) deliver(ctx context.Context, hook store.Webhook, m store.WebhookMessage, deadline time.Time) (store.WebhookAttempt, bool) {
	start := d.now()
	a := store.WebhookAttempt{
		Delivery: store.Delivery{
			WebhookID: hook.ID, EventID: m.EventID, Type: m.EventType, Attempt: m.Attempts + 1, At: start,
		},
		Rev: m.Rev,
	}
	code, retryAfter, errText := d.post(ctx, hook, m, start, deadline)
	if ctx.Err() != nil && code == 0 {
		return a, false
	}
	end := d.now()
	a.Delivery.DurationMs = max(end.Sub(start).Milliseconds(), 0)
	a.Delivery.ResponseCode = code
	a.Delivery.Error = truncate(errText, maxErrorText)
	lg := d.log.With().Str("webhook", hook.ID).Str("event", m.EventID).Int("attempt", a.Delivery.Attempt).
		Int("status", code).Int64("durationMs", a.Delivery.DurationMs).Logger()
	switch {
	case code >= 200 && code < 300:
		a.Delivery.Status, a.MessageStatus = store.DeliverySucceeded, store.DeliverySucceeded
		lg.Debug().Msg("webhook delivered")
	case code == http.StatusGone:
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.DeliveryFailed
		a.Disable = "endpoint answered 410 Gone"
		lg.Warn().Msg("webhook endpoint gone: disabled")
	case errText == errEventGone || errText == errBadSecret || m.Manual || m.Step >= len(d.schedule):
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.DeliveryFailed
		a.Step = m.Step
		lg.Warn().Str("error", a.Delivery.Error).Msg("webhook delivery failed")
	default:
		delay := d.jitter(d.schedule[m.Step])
		if retryAfter > delay {
			delay = min(retryAfter, d.maxRetryAfter)
		}
		// The attempt failed; the message stays pending for its retry.
		a.Delivery.Status, a.MessageStatus = store.DeliveryFailed, store.MessagePending
		a.Step = m.Step + 1
		a.NextAt = end.Add(delay)
		lg.Info().Str("error", a.Delivery.Error).Dur("retryIn", delay).Msg("webhook delivery failed, will retry")
	}
	return a, true
}

const (
	errEventGone = "event no longer exists"
	errBadSecret = "invalid signing secret"
)

// post sends one request and returns the response status (0: none), the
// Retry-After delay asked for, and an error text without secrets. The
// request gives up after the attempt timeout or at deadline, whichever
// comes first.
func (d *Dispatcher) post(ctx context.Context, hook store.Webhook, m store.WebhookMessage, ts, deadline time.Time) (int, time.Duration, string) {
	if m.EventMissing {
		return 0, 0, errEventGone
	}
	sig, err := Sign(hook.Secret, m.EventID, ts, m.Payload)
	if err != nil {
		return 0, 0, errBadSecret
	}
	timeout := d.attemptTimeout
	if left := time.Until(deadline); left < timeout {
		timeout = max(left, time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return 0, 0, "bad endpoint url"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowyte-webhooks/1")
	req.Header.Set(HeaderID, m.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, describe(err, timeout.Round(time.Millisecond))
	}
	// Drain a little so the connection can be reused; the body is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	var text string
	switch {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		text = fmt.Sprintf("status %d: redirects are not followed", code)
	default:
		text = fmt.Sprintf("status %d", code)
	}
	return code, retryAfter(resp.Header.Get("Retry-After"), d.now()), text
}

// describe turns a transport error into log text: no URL (its query may
// hold a token), no resolver or local address (internal), the reason only.
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, ErrPrivateAddress) {
		var op *net.OpError
		if errors.As(err, &op) && op.Addr != nil {
			return "refused: " + op.Addr.String() + " is a private or reserved address"
		}
		return "refused: private or reserved address"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		if timeout > 0 {
			return "timeout after " + timeout.String()
		}
		return "timeout"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return lookupFailure(de.Name, err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		// Without op.Source: the daemon's own address is internal.
		s := op.Op
		if op.Addr != nil {
			s += " " + op.Addr.String()
		}
		return s + ": " + op.Err.Error()
	}
	return stripURL(err).Error()
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP date)
// into a delay from now; 0 when absent, unparsable or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
