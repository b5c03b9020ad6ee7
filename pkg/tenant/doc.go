// Package tenant stores Tandem's tenants and everything that belongs to one:
// companies, their agents and API keys, session records with their PINs,
// agents' login tokens and customers' session tokens. The data lives in
// JetStream key-value buckets (file storage, Config.Replicas replicas), so any
// number of gateways share it and it survives restarts.
//
// Open creates or binds the buckets and returns a *Store; the Store holds no
// goroutines and needs no Close (the JetStream connection belongs to the
// caller, usually pkg/bus). All methods are safe for concurrent use, also
// across processes: every read-modify-write is a compare-and-swap on the
// entry's revision, and every uniqueness rule (company slug, agent e-mail,
// live PIN) is enforced by a KV Create, which the server refuses when the key
// exists.
//
// # Keys
//
// Every key of an object that belongs to a company starts with the company's
// slug ("<company>.<id>"), so one company's objects can never be reached
// under another's. Keys looked up by a secret the caller presents (a login
// token, a customer token, an API key secret, an e-mail address) are the
// secret's SHA-256 in hex, because the caller does not know the company yet;
// the value they point to names the company and the object, and the object is
// checked again. PIN keys are "<company>.<sha256(company:pin)>": a PIN is only
// ever looked up together with its company, and no raw PIN is kept in a key,
// its history or a delete marker. The raw PIN is stored only in the waiting
// session's record (Session.PIN), and cleared when the PIN is redeemed or the
// session leaves the waiting state. Raw tokens are never stored.
//
//	bucket            key                        value
//	tandem_companies  <slug>                     Company
//	tandem_agents     <company>.<agent id>       Agent
//	tandem_emails     <sha256(lower(email))>     {company, agent_id}
//	tandem_apikeys    <company>.<key id>         APIKey + secret hash
//	tandem_secrets    api.<sha256(secret)>       {company, id}
//	                  login.<sha256(token)>      {company, agent_id, expires_at}
//	                  cust.<sha256(token)>       {company, session_id}
//	tandem_pins       <company>.<sha256(c:pin)>  {session_id, expires_at}
//	tandem_sessions   <company>.<session id>     Session + customer token hashes
//
// PIN and login entries carry a per-key TTL (a little longer than their
// lifetime) and removals of secrets leave purge markers that expire, so the
// secrets and pins buckets do not grow without bound. This needs NATS server
// 2.11 or newer (per-message TTL).
//
// # Errors
//
// Callers act on the sentinels ErrNotFound, ErrExists, ErrInvalid,
// ErrInvalidPIN and ErrBadCredentials (checked with errors.Is); any other
// error is trouble with NATS. RedeemPIN answers exactly ErrInvalidPIN for a
// wrong, used, expired, malformed or other company's PIN, and Authenticate
// exactly ErrBadCredentials for an unknown e-mail, a wrong password or a
// disabled agent, after the same argon2 work in every case.
//
// Nothing in this package logs PINs, passwords or tokens.
package tenant
