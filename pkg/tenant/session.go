package tenant

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// SessionState is where a session is in its life: waiting → active → ended
// (or waiting → ended).
type SessionState string

// Session states.
const (
	SessionWaiting SessionState = "waiting" // PIN issued, the customer has not joined
	SessionActive  SessionState = "active"  // the customer redeemed the PIN
	SessionEnded   SessionState = "ended"   // over; terminal
)

func (st SessionState) valid() bool {
	return st == SessionWaiting || st == SessionActive || st == SessionEnded
}

// Session is the record of one co-browsing session.
type Session struct {
	ID           string       `json:"id"`
	Company      string       `json:"company"`
	StartURL     string       `json:"start_url"`
	CreatedBy    string       `json:"created_by,omitempty"` // agent or API key ID
	State        SessionState `json:"state"`
	CreatedAt    time.Time    `json:"created_at"`
	PINExpiresAt time.Time    `json:"pin_expires_at"`
	EndedAt      *time.Time   `json:"ended_at,omitempty"`
	EndReason    string       `json:"end_reason,omitempty"`
	WorkerID     string       `json:"worker_id,omitempty"`
	PIN          string       `json:"pin,omitempty"` // only while waiting; cleared when redeemed or ended

	// The customer's arrival and consent (SECURITY.md P3). Once set, the
	// times and MustAdmit never change.
	MustAdmit  bool       `json:"must_admit,omitempty"`  // the company's "agent must admit" when the session was created
	JoinedAt   *time.Time `json:"joined_at,omitempty"`   // when the customer redeemed the PIN
	Customer   *Client    `json:"customer,omitempty"`    // the customer's browser, reduced; nil until known
	ConsentAt  *time.Time `json:"consent_at,omitempty"`  // when the customer agreed to share the tab
	AdmittedAt *time.Time `json:"admitted_at,omitempty"` // when an agent let the customer in (MustAdmit only)
	AdmittedBy string     `json:"admitted_by,omitempty"` // who did: "agent:<id>"
}

// Client is what Tandem keeps of a customer's browser: a reduced form of
// its User-Agent from a fixed vocabulary, never the header itself.
type Client struct {
	Browser string `json:"browser,omitempty"` // "Chrome", "Safari", "Firefox", "Edge", ...; "" unknown
	OS      string `json:"os,omitempty"`      // "Android", "iOS", "Windows", "macOS", ...; "" unknown
	Device  string `json:"device,omitempty"`  // "phone", "tablet" or "desktop"; "" unknown
}

// SessionAgent is an agent who joined a session's viewers.
type SessionAgent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// maxSessionAgents bounds the agents one session record keeps.
const maxSessionAgents = 32

// sessionRecord is what the sessions bucket holds.
type sessionRecord struct {
	Session
	CustomerTokens []string       `json:"customer_tokens,omitempty"` // auth.HashToken of each live customer token
	Agents         []SessionAgent `json:"agents,omitempty"`          // agents who joined, in order; see AddSessionAgent
}

// pinRecord is a live PIN's value.
type pinRecord struct {
	SessionID string    `json:"session_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// customerRecord is a customer token's value.
type customerRecord struct {
	Company   string `json:"company"`
	SessionID string `json:"session_id"`
}

// maxCustomerTokens bounds the tokens one session can hand out.
const maxCustomerTokens = 32

// maxPINTries bounds the attempts to find a PIN not live in the company.
const maxPINTries = 16

// pinKey is a PIN's key: the company, then a hash of company and PIN, so
// that keys, history and markers never hold a raw PIN and any input makes a
// valid key.
func pinKey(company, pin string) string {
	sum := sha256.Sum256([]byte(company + ":" + pin))
	return company + "." + hex.EncodeToString(sum[:])
}

func customerKey(token string) string { return "cust." + auth.HashToken(token) }

// validPIN reports whether pin could have been issued: all digits, of a
// possible length.
func validPIN(pin string) bool {
	if len(pin) < MinPINLength || len(pin) > MaxPINLength {
		return false
	}
	return strings.Trim(pin, "0123456789") == ""
}

// CreateSession records a new waiting session for sess.Company (which must
// exist, else ErrNotFound, and be enabled, else ErrInvalid) and issues its
// PIN: digits from the CSPRNG, of the company's PIN length (or the store's),
// not live for any other session of the company, valid for the company's PIN
// lifetime (or the store's). sess.ID may be empty (a new "s_" ID is made) or
// a caller-chosen ID (ErrExists if taken); StartURL must be an absolute http
// or https URL; CreatedBy and WorkerID are kept; every other field is set
// here (MustAdmit from the company's AgentMustAdmit). The returned session
// carries the PIN.
func (s *Store) CreateSession(ctx context.Context, sess Session) (Session, error) {
	c, err := s.GetCompany(ctx, sess.Company)
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	if c.Disabled {
		return Session{}, fmt.Errorf("create session: %w: company %s is disabled", ErrInvalid, c.Slug)
	}
	if sess.ID == "" {
		sess.ID = auth.NewID("s_")
	} else if !validID(sess.ID) {
		return Session{}, fmt.Errorf("create session: %w: id %q", ErrInvalid, sess.ID)
	}
	if u, err := url.Parse(sess.StartURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Session{}, fmt.Errorf("create session: %w: start URL must be an absolute http(s) URL", ErrInvalid)
	}
	length, lifetime := s.cfg.PINLength, s.cfg.PINLifetime
	if c.PINLength != 0 {
		length = c.PINLength
	}
	if c.PINLifetime != 0 {
		lifetime = c.PINLifetime
	}
	now := s.now().UTC()
	sess.State = SessionWaiting
	sess.CreatedAt = now
	sess.PINExpiresAt = now.Add(lifetime)
	sess.EndedAt, sess.EndReason = nil, ""
	sess.MustAdmit = c.AgentMustAdmit
	sess.JoinedAt, sess.Customer, sess.ConsentAt, sess.AdmittedAt, sess.AdmittedBy = nil, nil, nil, nil, ""

	pin, pinRev, err := s.issuePIN(ctx, sess.Company, sess.ID, length, sess.PINExpiresAt, lifetime)
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	sess.PIN = pin
	if _, err := createJSON(ctx, s.sessions, objKey(sess.Company, sess.ID), sessionRecord{Session: sess}); err != nil {
		if perr := purge(ctx, s.pins, pinKey(sess.Company, pin), pinRev); perr != nil {
			s.log.Warn("release PIN of unmade session", zap.String("company_id", sess.Company), zap.Error(perr))
		}
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	s.log.Info("session created", zap.String("company_id", sess.Company), zap.String("session_id", sess.ID))
	return sess, nil
}

// issuePIN claims a PIN of length digits for the session with KV Create,
// which fails if the PIN is live in the company; then it draws again.
func (s *Store) issuePIN(ctx context.Context, company, sessionID string, length int, expires time.Time, lifetime time.Duration) (string, uint64, error) {
	for range maxPINTries {
		pin := s.newPIN(length)
		key := pinKey(company, pin)
		rev, err := createJSON(ctx, s.pins, key, pinRecord{SessionID: sessionID, ExpiresAt: expires},
			jetstream.KeyTTL(lifetime+markerTTL))
		if err == nil {
			return pin, rev, nil
		}
		if !errors.Is(err, ErrExists) {
			return "", 0, fmt.Errorf("issue PIN: %w", err)
		}
		// Taken. If only by an expired PIN the server has not dropped yet,
		// drop it now so it stops taking room; either way, draw again.
		var old pinRecord
		if oldRev, err := getJSON(ctx, s.pins, key, &old); err == nil && !s.now().Before(old.ExpiresAt) {
			_ = purge(ctx, s.pins, key, oldRev) // losing this race is fine
		}
	}
	return "", 0, fmt.Errorf("issue PIN: no free %d-digit PIN in %d tries", length, maxPINTries)
}

// RedeemPIN spends a company's PIN and returns its session, now active,
// without PIN, and with JoinedAt set. The PIN's entry is removed by compare-and-swap, so of any
// number of concurrent redemptions (on any gateways) exactly one succeeds. A
// wrong, used, expired, malformed or other company's PIN, or one whose
// session is no longer waiting, gives exactly ErrInvalidPIN; other errors are
// trouble with NATS. Every failure up to the CAS costs one KV read.
func (s *Store) RedeemPIN(ctx context.Context, company, pin string) (Session, error) {
	key := pinKey("-", pin) // a key no PIN is stored under
	if validSlug(company) && validPIN(pin) {
		key = pinKey(company, pin)
	}
	var rec pinRecord
	rev, err := getJSON(ctx, s.pins, key, &rec)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidPIN
	}
	if err != nil {
		return Session{}, fmt.Errorf("redeem PIN: %w", err)
	}
	// An expired entry is left for its TTL to remove, so that this answer
	// costs what an unknown PIN's does.
	if !s.now().Before(rec.ExpiresAt) || !validID(rec.SessionID) {
		return Session{}, ErrInvalidPIN
	}
	if err := purge(ctx, s.pins, key, rev); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return Session{}, ErrInvalidPIN // someone else redeemed it first
	} else if err != nil {
		return Session{}, fmt.Errorf("redeem PIN: %w", err)
	}
	// The PIN is ours alone now; move its session on.
	sess, err := s.updateSession(ctx, company, rec.SessionID, func(r *sessionRecord) error {
		if r.State != SessionWaiting || subtle.ConstantTimeCompare([]byte(r.PIN), []byte(pin)) != 1 ||
			!s.now().Before(r.PINExpiresAt) {
			return ErrInvalidPIN
		}
		r.State = SessionActive
		r.PIN = ""
		t := s.now().UTC()
		r.JoinedAt = &t
		return nil
	})
	if errors.Is(err, ErrInvalidPIN) || errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidPIN
	}
	if err != nil {
		return Session{}, fmt.Errorf("redeem PIN: %w", err)
	}
	s.log.Info("PIN redeemed", zap.String("company_id", company), zap.String("session_id", sess.ID))
	return sess, nil
}

// GetSession returns a session of company, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, company, id string) (Session, error) {
	rec, _, err := s.getSession(ctx, company, id)
	return rec.Session, err
}

func (s *Store) getSession(ctx context.Context, company, id string) (sessionRecord, uint64, error) {
	if !validSlug(company) || !validID(id) {
		return sessionRecord{}, 0, ErrNotFound
	}
	var rec sessionRecord
	rev, err := getJSON(ctx, s.sessions, objKey(company, id), &rec)
	if err != nil {
		return sessionRecord{}, 0, fmt.Errorf("get session %s: %w", id, err)
	}
	return rec, rev, nil
}

// ListSessions returns the company's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, company string) ([]Session, error) {
	if !validSlug(company) {
		return nil, nil
	}
	recs, err := listJSON[sessionRecord](ctx, s.streamOf(s.sessions), s.sessions, company+".*")
	if err != nil {
		return nil, err
	}
	out := make([]Session, len(recs))
	for i, r := range recs {
		out[i] = r.Session
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

// LiveSessionsOn returns every company's sessions that have not ended and
// are hosted by a worker that lost says is gone: the gateways end them
// when a worker stops sending heartbeats.
func (s *Store) LiveSessionsOn(ctx context.Context, lost func(workerID string) bool) ([]Session, error) {
	recs, err := listJSON[sessionRecord](ctx, s.streamOf(s.sessions), s.sessions, "*.*")
	if err != nil {
		return nil, err
	}
	var out []Session
	for _, r := range recs {
		if r.State != SessionEnded && r.WorkerID != "" && lost(r.WorkerID) {
			out = append(out, r.Session)
		}
	}
	return out, nil
}

// UpdateSession changes a session with fn under compare-and-swap; fn may run
// more than once and must depend only on its argument. ID, Company,
// CreatedAt, StartURL and MustAdmit are fixed, JoinedAt, ConsentAt and
// AdmittedAt cannot change once set, the PIN can only be cleared, an ended
// session cannot be revived, and the state must be one of the three
// (ErrInvalid). Leaving the waiting state
// clears the PIN and removes it; entering the ended state (use EndSession)
// sets EndedAt if fn did not and revokes the session's customer tokens.
func (s *Store) UpdateSession(ctx context.Context, company, id string, fn func(*Session) error) (Session, error) {
	return s.updateSession(ctx, company, id, func(r *sessionRecord) error { return fn(&r.Session) })
}

// updateSession is UpdateSession on the whole record. fn may return
// errNoChange to write nothing.
func (s *Store) updateSession(ctx context.Context, company, id string, fn func(*sessionRecord) error) (Session, error) {
	if !validSlug(company) || !validID(id) {
		return Session{}, ErrNotFound
	}
	var old sessionRecord
	var revoke []string
	rec, err := updateJSON(ctx, s.sessions, objKey(company, id), func(r *sessionRecord) error {
		revoke = nil
		old = *r
		old.CustomerTokens = slices.Clone(r.CustomerTokens)
		// fn must not reach into old.
		r.Agents = slices.Clone(r.Agents)
		for _, p := range []**time.Time{&r.EndedAt, &r.JoinedAt, &r.ConsentAt, &r.AdmittedAt} {
			if *p != nil {
				t := **p
				*p = &t
			}
		}
		if r.Customer != nil {
			c := *r.Customer
			r.Customer = &c
		}
		if err := fn(r); err != nil {
			return err
		}
		if r.ID != old.ID || r.Company != old.Company || !r.CreatedAt.Equal(old.CreatedAt) || r.StartURL != old.StartURL ||
			r.MustAdmit != old.MustAdmit {
			return fmt.Errorf("%w: id, company, creation time, start URL and must-admit are fixed", ErrInvalid)
		}
		if !keptTime(old.JoinedAt, r.JoinedAt) || !keptTime(old.ConsentAt, r.ConsentAt) || !keptTime(old.AdmittedAt, r.AdmittedAt) {
			return fmt.Errorf("%w: the join, consent and admission times are fixed once set", ErrInvalid)
		}
		if !r.State.valid() {
			return fmt.Errorf("%w: state %q", ErrInvalid, r.State)
		}
		if r.PIN != "" && r.PIN != old.PIN {
			return fmt.Errorf("%w: a PIN is issued only by CreateSession", ErrInvalid)
		}
		if old.State == SessionEnded && r.State != SessionEnded {
			return fmt.Errorf("%w: an ended session stays ended", ErrInvalid)
		}
		if r.State != SessionWaiting {
			r.PIN = ""
		}
		if r.State == SessionEnded {
			if r.EndedAt == nil {
				t := s.now().UTC()
				r.EndedAt = &t
			}
			revoke, r.CustomerTokens = r.CustomerTokens, nil
		}
		return nil
	})
	if err != nil {
		return Session{}, fmt.Errorf("update session %s: %w", id, err)
	}
	// The record is the truth (RedeemPIN and LookupCustomerToken check it);
	// removing the PIN and token entries only stops them taking room, so a
	// failure here is logged, not returned.
	log := s.log.With(zap.String("company_id", company), zap.String("session_id", id))
	if old.PIN != "" && rec.PIN == "" {
		key := pinKey(company, old.PIN)
		var pr pinRecord
		if rev, err := getJSON(ctx, s.pins, key, &pr); err == nil && pr.SessionID == id {
			if err := purge(ctx, s.pins, key, rev); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				log.Warn("remove PIN of session", zap.Error(err))
			}
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			log.Warn("read PIN of session", zap.Error(err))
		}
	}
	for _, h := range revoke {
		if err := purge(ctx, s.secrets, "cust."+h, 0); err != nil {
			log.Warn("remove customer token of ended session", zap.Error(err))
		}
	}
	return rec.Session, nil
}

// keptTime reports whether a time that may be set once was left alone:
// unset before, or the same after.
func keptTime(old, now *time.Time) bool {
	return old == nil || (now != nil && now.Equal(*old))
}

// AddSessionAgent records that agent a joined the session's viewers. An
// agent already recorded keeps its place and gets a's name; past
// maxSessionAgents agents, new ones are not recorded. An ended session
// changes nothing.
func (s *Store) AddSessionAgent(ctx context.Context, company, id string, a SessionAgent) error {
	if !validID(a.ID) || len(a.Name) > 200 {
		return fmt.Errorf("add session agent: %w: id %q or a name over 200 bytes", ErrInvalid, a.ID)
	}
	_, err := s.updateSession(ctx, company, id, func(r *sessionRecord) error {
		if r.State == SessionEnded {
			return errNoChange
		}
		for i := range r.Agents {
			if r.Agents[i].ID == a.ID {
				if r.Agents[i].Name == a.Name {
					return errNoChange
				}
				r.Agents[i].Name = a.Name
				return nil
			}
		}
		if len(r.Agents) >= maxSessionAgents {
			return errNoChange
		}
		r.Agents = append(r.Agents, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("add session agent: %w", err)
	}
	return nil
}

// SessionAgents returns the agents who joined the session's viewers, in the
// order they first joined, or ErrNotFound.
func (s *Store) SessionAgents(ctx context.Context, company, id string) ([]SessionAgent, error) {
	rec, _, err := s.getSession(ctx, company, id)
	if err != nil {
		return nil, err
	}
	return rec.Agents, nil
}

// EndSession ends a session with reason (such as "agent_ended"): the state
// becomes ended, its PIN stops working and its customer tokens are revoked.
// Ending an ended session changes nothing and returns it as it is.
func (s *Store) EndSession(ctx context.Context, company, id, reason string) (Session, error) {
	if reason == "" || len(reason) > 64 {
		return Session{}, fmt.Errorf("end session: %w: reason must be 1 to 64 bytes", ErrInvalid)
	}
	var changed bool
	sess, err := s.updateSession(ctx, company, id, func(r *sessionRecord) error {
		if changed = r.State != SessionEnded; !changed {
			return errNoChange
		}
		t := s.now().UTC()
		r.State, r.EndedAt, r.EndReason = SessionEnded, &t, reason
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	if changed {
		s.log.Info("session ended", zap.String("company_id", company), zap.String("session_id", id), zap.String("reason", reason))
	}
	return sess, nil
}

// CreateCustomerToken issues a token for the customer of an active session
// (ErrNotFound if the session is unknown, waiting or ended). The token works
// in LookupCustomerToken until the session ends. Only its hash is stored.
func (s *Store) CreateCustomerToken(ctx context.Context, company, sessionID string) (string, error) {
	token := auth.NewToken()
	hash := auth.HashToken(token)
	_, err := s.updateSession(ctx, company, sessionID, func(r *sessionRecord) error {
		if r.State != SessionActive {
			return fmt.Errorf("session is %s: %w", r.State, ErrNotFound)
		}
		if len(r.CustomerTokens) >= maxCustomerTokens {
			return fmt.Errorf("%w: session has %d customer tokens already", ErrInvalid, maxCustomerTokens)
		}
		r.CustomerTokens = append(r.CustomerTokens, hash)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("create customer token: %w", err)
	}
	if _, err := createJSON(ctx, s.secrets, "cust."+hash, customerRecord{Company: company, SessionID: sessionID}); err != nil {
		return "", fmt.Errorf("create customer token: %w", err)
	}
	return token, nil
}

// LookupCustomerToken returns the company and session a customer token
// belongs to. An unknown token, or one whose session has ended, is
// ErrNotFound.
func (s *Store) LookupCustomerToken(ctx context.Context, token string) (company, sessionID string, err error) {
	if token == "" {
		return "", "", ErrNotFound
	}
	hash := auth.HashToken(token)
	var cr customerRecord
	if _, err := getJSON(ctx, s.secrets, "cust."+hash, &cr); err != nil {
		return "", "", fmt.Errorf("lookup customer token: %w", err)
	}
	rec, _, err := s.getSession(ctx, cr.Company, cr.SessionID)
	if err != nil {
		return "", "", fmt.Errorf("lookup customer token: %w", err)
	}
	if rec.State == SessionEnded || !slices.Contains(rec.CustomerTokens, hash) {
		return "", "", fmt.Errorf("lookup customer token: session over: %w", ErrNotFound)
	}
	return rec.Company, rec.ID, nil
}
