package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks 1.0.
const (
	// HeaderID carries the message id: flowyte's event id, the same on
	// every retry and redelivery, for receivers to deduplicate on.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt's unix time in seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries space-separated "v1,<base64>" signatures.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every webhook secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is the clock skew Verify accepts when given a zero
// tolerance: five minutes either way, as the specification recommends.
const DefaultTolerance = 5 * time.Minute

// ErrInvalidSecret is returned when a secret is not "whsec_" followed by
// standard base64 of 24 to 64 bytes.
var ErrInvalidSecret = errors.New("webhook: invalid secret")

// ErrMissingHeaders is returned by Verify when webhook-id,
// webhook-timestamp or webhook-signature is absent.
var ErrMissingHeaders = errors.New("webhook: missing webhook headers")

// ErrTimestampOutOfRange is returned by Verify when webhook-timestamp is not
// a unix time within the tolerance of now (a replay or a skewed clock).
var ErrTimestampOutOfRange = errors.New("webhook: timestamp out of tolerance")

// ErrNoMatchingSignature is returned by Verify when no "v1," signature in
// webhook-signature matches the message.
var ErrNoMatchingSignature = errors.New("webhook: no matching signature")

// NewSecret returns a fresh signing secret: "whsec_" followed by standard
// base64 of 24 bytes from crypto/rand.
func NewSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// secretKey decodes the HMAC key of secret: the base64 part after "whsec_".
// Like the reference libraries it also accepts the bare base64 part.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrInvalidSecret)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("%w: %d key bytes, want 24 to 64", ErrInvalidSecret, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value for one message:
// "v1," + base64(HMAC-SHA256(key, msgID + "." + unix(ts) + "." + body)),
// keyed with the base64-decoded part of secret after "whsec_".
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received message the way a consumer should: the three
// headers are present, webhook-timestamp is within tolerance of now (zero
// means [DefaultTolerance]) and one of the space-separated "v1,<sig>"
// entries of webhook-signature matches body, compared in constant time.
// It returns nil, [ErrMissingHeaders], [ErrTimestampOutOfRange],
// [ErrNoMatchingSignature] or [ErrInvalidSecret].
func Verify(secret string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, tsRaw, sigs := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	unix, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: not a unix time", ErrTimestampOutOfRange)
	}
	skew := now.Unix() - unix
	if skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		return ErrTimestampOutOfRange
	}
	want := mac(key, id, unix, body)
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
