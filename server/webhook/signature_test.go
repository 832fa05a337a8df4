package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The symmetric test vector published with the Standard Webhooks
// specification (and used by its reference libraries' tests).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeaders(sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, vectorMsgID)
	h.Set(HeaderTimestamp, "1614265330")
	h.Set(HeaderSignature, sig)
	return h
}

func TestSignStandardWebhooksVector(t *testing.T) {
	got, err := Sign(vectorSecret, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestVerify(t *testing.T) {
	ts := time.Unix(vectorTimestamp, 0)
	body := []byte(vectorPayload)
	cases := []struct {
		name    string
		headers http.Header
		body    []byte
		now     time.Time
		want    error
	}{
		{"vector", vectorHeaders(vectorSignature), body, ts, nil},
		{"within tolerance", vectorHeaders(vectorSignature), body, ts.Add(4 * time.Minute), nil},
		{"one of several signatures", vectorHeaders("v1,bm9wZQ== v2,xyz " + vectorSignature), body, ts, nil},
		{"tampered body", vectorHeaders(vectorSignature), []byte(`{"test": 2432232315}`), ts, ErrNoMatchingSignature},
		{"wrong signature", vectorHeaders("v1,Zm9vYmFy"), body, ts, ErrNoMatchingSignature},
		{"no v1 entry", vectorHeaders("v1a," + vectorSignature[3:]), body, ts, ErrNoMatchingSignature},
		{"old timestamp", vectorHeaders(vectorSignature), body, ts.Add(6 * time.Minute), ErrTimestampOutOfRange},
		{"future timestamp", vectorHeaders(vectorSignature), body, ts.Add(-6 * time.Minute), ErrTimestampOutOfRange},
		{"missing headers", http.Header{}, body, ts, ErrMissingHeaders},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(vectorSecret, c.headers, c.body, c.now, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify err = %v, want %v", err, c.want)
			}
		})
	}
	h := vectorHeaders(vectorSignature)
	h.Set(HeaderID, "msg_other")
	if err := Verify(vectorSecret, h, body, ts, 0); !errors.Is(err, ErrNoMatchingSignature) {
		t.Fatalf("Verify with another msg id: err = %v, want ErrNoMatchingSignature", err)
	}
	if err := Verify(vectorSecret, vectorHeaders(vectorSignature), body, ts.Add(time.Hour), 2*time.Hour); err != nil {
		t.Fatalf("Verify with a 2h tolerance one hour late: %v, want nil", err)
	}
}

func TestNewSecretRoundTrip(t *testing.T) {
	s1, err := NewSecret()
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	s2, _ := NewSecret()
	if !strings.HasPrefix(s1, "whsec_") || s1 == s2 {
		t.Fatalf("NewSecret = %q, %q; want distinct whsec_ secrets", s1, s2)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, "whsec_"))
	if err != nil || len(key) != 24 {
		t.Fatalf("secret key = %d bytes (err %v), want 24", len(key), err)
	}
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"version.published"}`)
	sig, err := Sign(s1, "evt_1", now, body)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, "1800000000")
	h.Set(HeaderSignature, sig)
	if err := Verify(s1, h, body, now, time.Minute); err != nil {
		t.Fatalf("Verify(own signature): %v, want nil", err)
	}
	if err := Verify(s2, h, body, now, time.Minute); !errors.Is(err, ErrNoMatchingSignature) {
		t.Fatalf("Verify with another secret: err = %v, want ErrNoMatchingSignature", err)
	}
	for _, bad := range []string{"whsec_!!!", "whsec_c2hvcnQ=", ""} {
		if _, err := Sign(bad, "m", now, body); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("Sign(%q) err = %v, want ErrInvalidSecret", bad, err)
		}
	}
}
