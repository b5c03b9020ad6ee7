package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// TokenBytes is the entropy of NewToken, in bytes (256 bits).
const TokenBytes = 32

// NewToken returns a fresh bearer token: TokenBytes from the operating
// system's CSPRNG, unpadded base64url (43 characters).
func NewToken() string {
	b := make([]byte, TokenBytes)
	rand.Read(b) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the lower-case hex SHA-256 of token (64 characters). It is
// the storage key for login tokens, customer tokens and API keys: a stolen
// copy of the store yields no usable credential. A plain hash suffices because
// the tokens themselves carry 256 bits of entropy.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// idAlphabet is RFC 4648 base32, lower-cased: safe in URLs, NATS subjects and
// KV keys, and unambiguous when read aloud.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// IDChars is the number of random characters NewID appends (100 bits).
const IDChars = 20

// NewID returns prefix followed by IDChars random base32 characters, for
// example NewID("s_") = "s_k5q2x...". IDs are unguessable but are not
// secrets; authorization never rests on knowing one.
func NewID(prefix string) string {
	b := make([]byte, IDChars)
	rand.Read(b) // never fails; see crypto/rand.Read
	var sb strings.Builder
	sb.Grow(len(prefix) + IDChars)
	sb.WriteString(prefix)
	for _, c := range b {
		sb.WriteByte(idAlphabet[c&31]) // 256 is a multiple of 32: no bias
	}
	return sb.String()
}

// NewPIN returns n decimal digits drawn uniformly from the CSPRNG. n below 1
// yields "".
func NewPIN(n int) string {
	if n < 1 {
		return ""
	}
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		rand.Read(buf) // never fails; see crypto/rand.Read
		for _, c := range buf {
			// 250 = 25·10: rejecting 250..255 keeps every digit equally likely.
			if c < 250 && len(out) < n {
				out = append(out, '0'+c%10)
			}
		}
	}
	return string(out)
}
