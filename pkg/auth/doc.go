// Package auth holds Tandem's credential primitives: argon2id password
// hashes, random bearer tokens and their storage hashes, opaque object IDs
// and numeric PINs.
//
// Everything here is stateless and safe for concurrent use. Storage lives in
// pkg/tenant, which keeps only HashToken of every token or API key it issues,
// never the token itself.
//
// Password hashing is deliberately expensive (argon2id, 64 MiB, one pass, two
// lanes, see Params). To bound memory under a login flood, at most
// MaxConcurrentHashes hashes or verifications run at once; further callers
// wait their turn.
//
// Nothing in this package logs, and no function returns a secret inside an
// error.
package auth
