// Package keys holds Matrix's signing primitives: unpadded base64 (standard
// and URL-safe), ed25519 signing keys with their key IDs, the key file format
// that Synapse's `signing.key` uses, and signing and verifying JSON objects
// (spec appendix "Signing JSON").
//
// It supports the one algorithm Matrix defines, ed25519. Signatures under
// other algorithms are ignored when verifying, as the spec requires.
// Verification refuses what libsodium (the reference implementation's
// library) refuses and Go's crypto/ed25519 alone would accept: public keys
// that are non-canonical or of small order, and signatures whose R is of
// small order. Base64 of hashes, signatures and keys is decoded in either
// alphabet, with or without padding. A key without a known expiry is
// expired where room versions enforce key validity; our own keys use
// NoExpiry. The package never reads files or clocks: callers pass bytes
// and times in.
package keys

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Base64 encodes b as unpadded standard base64.
func Base64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// Base64URL encodes b as unpadded URL-safe base64.
func Base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeBase64 decodes unpadded or padded base64 in either alphabet
// (standard, URL-safe, or a mix), as the reference implementation does for
// hashes, signatures and keys: a server that refused a URL-safe content
// hash that others accept would redact an event they keep.
func DecodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case '-':
				return '+'
			case '_':
				return '/'
			}
			return r
		}, s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// DecodeBase64URL decodes URL-safe base64 with or without padding, and
// nothing else (for identifiers, where the alphabet is part of the format).
func DecodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// AlgorithmEd25519 is the only signing algorithm Matrix defines.
const AlgorithmEd25519 = "ed25519"

// KeyID is a signing key identifier, `<algorithm>:<version>`.
type KeyID string

// ParseKeyID checks the form of a key ID: an algorithm and a version
// separated by ':', the version made of [a-zA-Z0-9_].
func ParseKeyID(s string) (KeyID, error) {
	alg, ver, ok := strings.Cut(s, ":")
	if !ok || alg == "" {
		return "", fmt.Errorf("key ID %q: want <algorithm>:<version>", s)
	}
	if ver == "" {
		return "", fmt.Errorf("key ID %q: empty version", s)
	}
	for i := 0; i < len(ver); i++ {
		c := ver[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "", fmt.Errorf("key ID %q: version has %q at %d (only a-z, A-Z, 0-9 and _ are allowed)", s, c, i)
		}
	}
	return KeyID(s), nil
}

// Algorithm returns the part before ':'.
func (k KeyID) Algorithm() string { a, _, _ := strings.Cut(string(k), ":"); return a }

// Version returns the part after ':'.
func (k KeyID) Version() string { _, v, _ := strings.Cut(string(k), ":"); return v }

// SigningKey is an ed25519 private key with its key ID.
type SigningKey struct {
	ID   KeyID
	Priv ed25519.PrivateKey
	// ExpiredTS is 0 for a key in use. For a key the server no longer
	// signs with, it is when the key stopped being used (ms): the key is
	// published under old_verify_keys and checks only what it signed
	// before then.
	ExpiredTS int64
}

// Public returns the public half.
func (k *SigningKey) Public() ed25519.PublicKey { return k.Priv.Public().(ed25519.PublicKey) }

// PublicBase64 returns the public key as unpadded base64, as published by
// the key server.
func (k *SigningKey) PublicBase64() string { return Base64(k.Public()) }

// Sign signs message.
func (k *SigningKey) Sign(message []byte) []byte { return ed25519.Sign(k.Priv, message) }

// Generate makes a new ed25519 key with the given version, reading
// randomness from rand (crypto/rand.Reader in production).
func Generate(version string, rand io.Reader) (*SigningKey, error) {
	id, err := ParseKeyID(AlgorithmEd25519 + ":" + version)
	if err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return &SigningKey{ID: id, Priv: priv}, nil
}

// FromSeed builds a key from a 32-byte ed25519 seed.
func FromSeed(id KeyID, seed []byte) (*SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key %s: seed is %d bytes, want %d", id, len(seed), ed25519.SeedSize)
	}
	return &SigningKey{ID: id, Priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// ErrKeyFile is matched by every error about a key file's contents.
var ErrKeyFile = errors.New("invalid signing key file")

// ParseKeyFile reads a key file in Synapse's `signing.key` format: one key
// per line, `ed25519 <version> <unpadded base64 seed>`. Blank lines are
// skipped. Keys of other algorithms are an error (Matrix has none).
//
// Axon extends the format for keys that were rotated out: a fourth field,
// the millisecond timestamp at which the key expired, marks an old key
// (see SigningKey.ExpiredTS). A file of Synapse's never has one. At least
// one key must be in use; the first such key is the one that signs.
func ParseKeyFile(data []byte) ([]*SigningKey, error) {
	var out []*SigningKey
	current := 0
	seen := map[KeyID]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("%w: line %d: want `ed25519 <key version> <base64 seed> [<expired_ts>]`, got %d fields", ErrKeyFile, line, len(f))
		}
		if f[0] != AlgorithmEd25519 {
			return nil, fmt.Errorf("%w: line %d: algorithm %q is not ed25519", ErrKeyFile, line, f[0])
		}
		id, err := ParseKeyID(f[0] + ":" + f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKeyFile, line, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: line %d: key %s appears twice", ErrKeyFile, line, id)
		}
		seen[id] = true
		seed, err := DecodeBase64(f[2])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: seed is not base64: %w", ErrKeyFile, line, err)
		}
		k, err := FromSeed(id, seed)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKeyFile, line, err)
		}
		if len(f) == 4 {
			ts, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil || ts <= 0 {
				return nil, fmt.Errorf("%w: line %d: expiry %q is not a positive millisecond timestamp", ErrKeyFile, line, f[3])
			}
			k.ExpiredTS = ts
		} else {
			current++
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if current == 0 {
		return nil, fmt.Errorf("%w: no key in use (every key has an expiry)", ErrKeyFile)
	}
	// The signing key comes first.
	slices.SortStableFunc(out, func(a, b *SigningKey) int {
		return cmp.Compare(min(a.ExpiredTS, 1), min(b.ExpiredTS, 1))
	})
	return out, nil
}

// FormatKeyFile writes keys in the `signing.key` format.
func FormatKeyFile(keys ...*SigningKey) []byte {
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s %s", k.ID.Algorithm(), k.ID.Version(), Base64(k.Priv.Seed()))
		if k.ExpiredTS > 0 {
			fmt.Fprintf(&b, " %d", k.ExpiredTS)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
