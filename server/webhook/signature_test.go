package webhook

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	assert.Equal(t, vectorSignature, got)
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
			if c.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, c.want)
			}
		})
	}
	h := vectorHeaders(vectorSignature)
	h.Set(HeaderID, "msg_other")
	assert.ErrorIs(t, Verify(vectorSecret, h, body, ts, 0), ErrNoMatchingSignature, "Verify with another msg id")
	assert.NoError(t, Verify(vectorSecret, vectorHeaders(vectorSignature), body, ts.Add(time.Hour), 2*time.Hour),
		"Verify with a 2h tolerance one hour late")
}

func TestNewSecretRoundTrip(t *testing.T) {
	s1, err := NewSecret()
	require.NoError(t, err)
	s2, err := NewSecret()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(s1, "whsec_"), "NewSecret = %q, want a whsec_ secret", s1)
	assert.NotEqual(t, s1, s2, "two secrets")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, "whsec_"))
	require.NoError(t, err)
	assert.Len(t, key, 24, "secret key bytes")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"version.published"}`)
	sig, err := Sign(s1, "evt_1", now, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, "1800000000")
	h.Set(HeaderSignature, sig)
	assert.NoError(t, Verify(s1, h, body, now, time.Minute), "Verify(own signature)")
	assert.ErrorIs(t, Verify(s2, h, body, now, time.Minute), ErrNoMatchingSignature, "Verify with another secret")
	for _, bad := range []string{"whsec_!!!", "whsec_c2hvcnQ=", ""} {
		_, err := Sign(bad, "m", now, body)
		assert.ErrorIs(t, err, ErrInvalidSecret, "Sign(%q)", bad)
	}
}
