package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// Scopes an API key may hold.
const (
	ScopeAgentsRead    = "agents:read"
	ScopeAgentsWrite   = "agents:write"
	ScopeChatWrite     = "chat:write"
	ScopeWebhooksWrite = "webhooks:write"
	ScopeKeysWrite     = "keys:write"
)

// AllScopes lists every scope, the bootstrap key's set.
var AllScopes = []string{ScopeAgentsRead, ScopeAgentsWrite, ScopeChatWrite, ScopeWebhooksWrite, ScopeKeysWrite}

const (
	keyPrefix   = "flowyte_sk_"
	keyRandLen  = 32
	keyCRCLen   = 6
	base62Chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrMalformedKey is returned by ParseKey for a string that is not a
// well-formed flowyte key (prefix, length, alphabet or checksum).
var ErrMalformedKey = errors.New("malformed api key")

// ErrBadScope is returned by ValidScopes for an unknown scope name.
var ErrBadScope = errors.New("unknown scope")

// NewKeySecret returns a fresh API key: flowyte_sk_ + 32 random base62
// characters + 6 base62 characters of the CRC32 of the random part.
func NewKeySecret() (string, error) {
	var b strings.Builder
	b.WriteString(keyPrefix)
	limit := big.NewInt(int64(len(base62Chars)))
	random := make([]byte, 0, keyRandLen)
	for range keyRandLen {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		random = append(random, base62Chars[n.Int64()])
	}
	b.Write(random)
	b.WriteString(keyChecksum(random))
	return b.String(), nil
}

// keyChecksum is the 6-character base62 CRC32 of the random part.
func keyChecksum(random []byte) string {
	n := uint64(crc32.ChecksumIEEE(random))
	out := make([]byte, keyCRCLen)
	for i := keyCRCLen - 1; i >= 0; i-- {
		out[i] = base62Chars[n%62]
		n /= 62
	}
	return string(out)
}

// ParseKey checks a key's shape and checksum without touching the database,
// so garbage is refused before any lookup.
func ParseKey(s string) error {
	if !strings.HasPrefix(s, keyPrefix) || len(s) != len(keyPrefix)+keyRandLen+keyCRCLen {
		return ErrMalformedKey
	}
	body := s[len(keyPrefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62Chars, body[i]) < 0 {
			return ErrMalformedKey
		}
	}
	if keyChecksum([]byte(body[:keyRandLen])) != body[keyRandLen:] {
		return ErrMalformedKey
	}
	return nil
}

// HashKey is the stored form of a key: SHA-256 of the whole secret. Keys
// carry 190 bits of entropy, so a fast hash is the right one.
func HashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ValidScopes reports an error naming the first unknown scope.
func ValidScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("%w: at least one scope is required", ErrBadScope)
	}
	for _, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return fmt.Errorf("%w %q (known: %s)", ErrBadScope, sc, strings.Join(AllScopes, ", "))
		}
	}
	return nil
}

// KeyWriter is the part of a Store that creates keys (the CLI uses it
// without a running daemon).
type KeyWriter interface {
	Write(ctx context.Context, fn func(tx store.Tx) error) error
}

// CreateKey makes a key (and the workspace if new) and returns its secret,
// which is never stored: only its hash is.
func CreateKey(ctx context.Context, st KeyWriter, workspace, name string, scopes []string, now time.Time) (string, store.Key, error) {
	return CreateJournaledKey(ctx, st, nil, workspace, name, scopes, now)
}

// CreateJournaledKey is CreateKey that also records the key in j (before
// the secret is returned), so a database that loses the row gets it back.
func CreateJournaledKey(ctx context.Context, st KeyWriter, j *KeyJournal, workspace, name string, scopes []string, now time.Time) (string, store.Key, error) {
	if err := ValidScopes(scopes); err != nil {
		return "", store.Key{}, err
	}
	if strings.TrimSpace(name) == "" || strings.TrimSpace(workspace) == "" {
		return "", store.Key{}, errors.New("workspace and name are required")
	}
	secret, err := NewKeySecret()
	if err != nil {
		return "", store.Key{}, err
	}
	key, err := storeKey(ctx, st, j, secret, workspace, name, scopes, now)
	if err != nil {
		return "", store.Key{}, fmt.Errorf("create key: %w", err)
	}
	return secret, key, nil
}

// RestoreKey puts back a key whose secret is known (the bootstrap key's
// file) into a database that lost it.
func RestoreKey(ctx context.Context, st KeyWriter, j *KeyJournal, secret, workspace, name string, scopes []string, now time.Time) (store.Key, error) {
	if err := ParseKey(secret); err != nil {
		return store.Key{}, err
	}
	key, err := storeKey(ctx, st, j, secret, workspace, name, scopes, now)
	if err != nil {
		return store.Key{}, fmt.Errorf("restore key: %w", err)
	}
	return key, nil
}

// storeKey writes the key with secret (and its workspace if new): the
// journal first, so a crash between the two leaves a journaled key whose
// row recovery restores (or, for a fresh key, whose secret nobody has,
// which is harmless).
func storeKey(ctx context.Context, st KeyWriter, j *KeyJournal, secret, workspace, name string, scopes []string, now time.Time) (store.Key, error) {
	var key store.Key
	err := st.Write(ctx, func(tx store.Tx) error {
		ws, err := tx.EnsureWorkspace(ctx, workspace, now)
		if err != nil {
			return err
		}
		key = store.Key{ID: store.NewID("key_"), WorkspaceID: ws.ID, WorkspaceName: ws.Name, Name: name,
			Scopes: slices.Clone(scopes), CreatedAt: now.UTC()}
		if err := j.record(key, HashKey(secret)); err != nil {
			return err
		}
		return tx.CreateKey(ctx, key, HashKey(secret))
	})
	return key, err
}

// Principal is the authenticated caller.
type Principal struct {
	Key store.Key
}

// Has reports whether the principal holds scope (agents:write implies
// agents:read).
func (p Principal) Has(scope string) bool {
	for _, s := range p.Key.Scopes {
		if s == scope || (scope == ScopeAgentsRead && s == ScopeAgentsWrite) {
			return true
		}
	}
	return false
}

// Authenticate resolves a secret to its key: ErrUnauthenticated when
// empty, ErrInvalidKey when malformed, unknown or revoked.
func (b *Backend) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrUnauthenticated
	}
	if ParseKey(secret) != nil {
		return Principal{}, ErrInvalidKey
	}
	return b.AuthenticateHash(ctx, HashKey(secret))
}

// AuthenticateHash resolves a key by its stored hash (a dashboard session
// keeps the hash, never the secret): ErrInvalidKey when unknown or revoked.
func (b *Backend) AuthenticateHash(ctx context.Context, hash []byte) (Principal, error) {
	stamp := b.store.KeysStamp()
	if key, ok := b.keys.get(string(hash), stamp, b.now()); ok {
		b.touchKey(ctx, key.ID)
		return Principal{Key: key}, nil
	}
	key, err := b.store.KeyByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalidKey
	}
	if err != nil {
		return Principal{}, err
	}
	if key.RevokedAt != nil {
		return Principal{}, ErrInvalidKey
	}
	b.keys.put(string(hash), key, stamp, b.now())
	b.touchKey(ctx, key.ID)
	return Principal{Key: key}, nil
}

// touchKey records last use at most once a minute per key.
func (b *Backend) touchKey(ctx context.Context, id string) {
	now := b.now()
	b.touchMu.Lock()
	last, ok := b.touched[id]
	if ok && now.Sub(last) < time.Minute {
		b.touchMu.Unlock()
		return
	}
	if len(b.touched) > 10000 {
		clear(b.touched)
	}
	b.touched[id] = now
	b.touchMu.Unlock()
	_ = b.store.TouchKey(context.WithoutCancel(ctx), id, now)
}

// Key is the API key resource (an addition to the contract).
type Key struct {
	ID         string     `json:"id"`
	Workspace  string     `json:"workspace"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	Secret     string     `json:"secret,omitempty"`
}

func keyView(k store.Key) Key {
	return Key{ID: k.ID, Workspace: k.WorkspaceName, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt.UTC(), RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// NewKey mints a key in the caller's workspace. A key can only grant
// scopes it holds itself: keys:write is not a way to escalate.
func (b *Backend) NewKey(ctx context.Context, p Principal, name string, scopes []string) (Key, error) {
	for _, sc := range scopes {
		if !p.Has(sc) {
			return Key{}, Errorf("insufficient_scope", "a key can only grant scopes it holds; this one lacks %s", sc).With("scope", sc)
		}
	}
	secret, k, err := CreateJournaledKey(ctx, b.store, b.opts.Keys, p.Key.WorkspaceName, name, scopes, b.now())
	if err != nil {
		if errors.Is(err, ErrBadScope) {
			return Key{}, Invalid("/scopes", "oneof", err.Error())
		}
		return Key{}, err
	}
	out := keyView(k)
	out.Secret = secret
	return out, nil
}

// Keys lists the caller's workspace's keys (never their secrets).
func (b *Backend) Keys(ctx context.Context, p Principal) ([]Key, error) {
	keys, err := b.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := []Key{}
	for _, k := range keys {
		if k.WorkspaceID == p.Key.WorkspaceID {
			out = append(out, keyView(k))
		}
	}
	return out, nil
}

// RevokeKey revokes one key of the caller's workspace.
func (b *Backend) RevokeKey(ctx context.Context, p Principal, id string) error {
	keys, err := b.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == id && k.WorkspaceID == p.Key.WorkspaceID {
			return RevokeKey(ctx, b.store, b.opts.Keys, k.ID, b.now())
		}
	}
	return Errorf("key_not_found", "no key %q", id)
}

// KeyRevoker is the part of a Store that revokes keys.
type KeyRevoker interface {
	RevokeKey(ctx context.Context, id string, now time.Time) error
}

// RevokeKey revokes key id in the journal (first: a crash in between
// errs on the safe side, recovery revokes the row) and in the database.
func RevokeKey(ctx context.Context, st KeyRevoker, j *KeyJournal, id string, now time.Time) error {
	if err := j.revoke(id, now); err != nil {
		return err
	}
	return st.RevokeKey(ctx, id, now)
}

// keyCache remembers valid keys by hash. An entry is used only while the
// store's KeysStamp is unchanged (any revocation, by the daemon or the CLI,
// changes it) and for at most keyCacheTTL; unknown and revoked keys are
// never cached.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	key   store.Key
	stamp string
	at    time.Time
}

const keyCacheTTL = 30 * time.Second

func (kc *keyCache) get(hash, stamp string, now time.Time) (store.Key, bool) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	c, ok := kc.m[hash]
	if !ok || c.stamp != stamp || now.Sub(c.at) > keyCacheTTL {
		return store.Key{}, false
	}
	return c.key, true
}

func (kc *keyCache) put(hash string, k store.Key, stamp string, now time.Time) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if kc.m == nil || len(kc.m) > 10000 {
		kc.m = map[string]cachedKey{}
	}
	kc.m[hash] = cachedKey{key: k, stamp: stamp, at: now}
}
