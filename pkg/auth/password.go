package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformedHash reports an encoded password hash that is not a PHC-style
// argon2id string this package can verify, or whose parameters are outside
// the bounds it accepts.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen int    // bytes
	KeyLen  int    // bytes
}

// DefaultParams are the parameters HashPassword uses: 64 MiB, one pass, two
// lanes, 16-byte salt, 32-byte key. This is stronger than OWASP's first
// argon2id recommendation (46 MiB, t=1, p=1); one hash took about 0.1 s on
// the 2-core development machine under load.
var DefaultParams = Params{Memory: 64 * 1024, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}

// Limits on what VerifyPassword accepts from an encoded hash, so that a
// tampered record cannot make verification arbitrarily expensive.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	// MaxPasswordLen is the longest password, in bytes, HashPassword and
	// VerifyPassword accept; longer input is refused before any hashing.
	MaxPasswordLen = 1024
)

// MaxConcurrentHashes is how many argon2 computations run at once in this
// process; each holds Params.Memory of RAM while it runs.
const MaxConcurrentHashes = 4

// hashSlots bounds concurrent argon2 computations (see MaxConcurrentHashes).
var hashSlots = make(chan struct{}, MaxConcurrentHashes)

// errPasswordTooLong is returned for passwords over MaxPasswordLen.
var errPasswordTooLong = errors.New("auth: password too long")

// b64 is the PHC string encoding: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// HashPassword hashes pw with argon2id and DefaultParams under a fresh random
// salt and returns the PHC-style string
// "$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>" (unpadded standard base64).
// It blocks while MaxConcurrentHashes other hashes are running.
func HashPassword(pw string) (string, error) {
	return HashPasswordWith(pw, DefaultParams)
}

// HashPasswordWith is HashPassword with explicit parameters, for operators
// who tune the cost and for tests that need cheap hashes. Parameters that
// VerifyPassword would refuse are an error wrapping ErrMalformedHash.
func HashPasswordWith(pw string, p Params) (string, error) {
	if len(pw) > MaxPasswordLen {
		return "", errPasswordTooLong
	}
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails; see crypto/rand.Read
	key := idKey([]byte(pw), salt, p)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the encoded argon2id hash,
// comparing in constant time. A malformed or out-of-bounds encoding is an
// error wrapping ErrMalformedHash; a password over MaxPasswordLen is simply
// wrong (false, nil).
func VerifyPassword(encoded, pw string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordLen {
		return false, nil
	}
	got := idKey([]byte(pw), salt, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// check reports parameters outside the bounds VerifyPassword accepts.
func (p Params) check() error {
	if p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return fmt.Errorf("%w: parameters out of bounds", ErrMalformedHash)
	}
	if p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen || p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		return fmt.Errorf("%w: salt or key length out of bounds", ErrMalformedHash)
	}
	return nil
}

// idKey runs argon2id while holding one of hashSlots.
func idKey(pw, salt []byte, p Params) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen))
}

// decodeHash parses "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func decodeHash(encoded string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: want 5 $-separated fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformedHash, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || seen[name] {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, kv)
		}
		seen[name] = true
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, kv)
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, kv)
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, fmt.Errorf("%w: unknown parameter %q", ErrMalformedHash, name)
		}
	}
	if !seen["m"] || !seen["t"] || !seen["p"] {
		return p, nil, nil, fmt.Errorf("%w: missing parameter", ErrMalformedHash)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: bad hash", ErrMalformedHash)
	}
	p.SaltLen, p.KeyLen = len(salt), len(key)
	if err := p.check(); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}
