package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

// Role is what an agent may do within the company.
type Role string

// Roles, from least to most privileged.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r == RoleAgent || r == RoleSupervisor || r == RoleAdmin }

// Agent is a person of one company who logs in with e-mail and password.
// PasswordHash is serialised: never hand an Agent to a client as JSON as it
// is.
type Agent struct {
	ID           string    `json:"id"`
	Company      string    `json:"company"`
	Email        string    `json:"email"` // trimmed and lower-cased; unique across all companies
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"password_hash"` // auth.HashPassword
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	LoginsSince  time.Time `json:"logins_since,omitzero"` // login tokens issued before this are void; SetPassword moves it
}

// MinPasswordLen is the shortest password CreateAgent and SetPassword
// accept, in characters.
const MinPasswordLen = 8

// emailRef is the e-mail index's value.
type emailRef struct {
	Company string `json:"company"`
	AgentID string `json:"agent_id"`
}

// normEmail trims and lower-cases an e-mail address.
func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// emailKey is the e-mail index key: hashed, so any address makes a valid key
// and the index lists no addresses.
func emailKey(normalized string) string { return auth.HashToken(normalized) }

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLen {
		return fmt.Errorf("%w: password shorter than %d characters", ErrInvalid, MinPasswordLen)
	}
	if len(pw) > auth.MaxPasswordLen {
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalid, auth.MaxPasswordLen)
	}
	return nil
}

// CreateAgent adds an agent to an existing company (ErrNotFound otherwise).
// The e-mail must be a plain address not used by any agent of any company
// (ErrExists); an empty name defaults to the e-mail, an empty role to
// RoleAgent; the password needs MinPasswordLen characters (ErrInvalid).
func (s *Store) CreateAgent(ctx context.Context, company string, email, name, password string, role Role) (Agent, error) {
	if _, err := s.GetCompany(ctx, company); err != nil {
		return Agent{}, fmt.Errorf("create agent: %w", err)
	}
	email = normEmail(email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Name != "" || addr.Address != email || len(email) > 254 {
		return Agent{}, fmt.Errorf("create agent: %w: not a plain e-mail address", ErrInvalid)
	}
	if name = strings.TrimSpace(name); name == "" {
		name = email
	}
	if len(name) > 200 {
		return Agent{}, fmt.Errorf("create agent: %w: name longer than 200 bytes", ErrInvalid)
	}
	if role == "" {
		role = RoleAgent
	}
	if !role.Valid() {
		return Agent{}, fmt.Errorf("create agent: %w: role %q", ErrInvalid, role)
	}
	if err := checkPassword(password); err != nil {
		return Agent{}, fmt.Errorf("create agent: %w", err)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return Agent{}, fmt.Errorf("create agent: hash password: %w", err)
	}
	a := Agent{
		ID:           auth.NewID("a_"),
		Company:      company,
		Email:        email,
		Name:         name,
		Role:         role,
		PasswordHash: hash,
		CreatedAt:    s.now().UTC(),
	}
	// Claim the address first: Create is atomic, so of two agents with one
	// address (in any companies, on any gateways) only one gets here.
	idxRev, err := createJSON(ctx, s.emails, emailKey(email), emailRef{Company: company, AgentID: a.ID})
	if err != nil {
		return Agent{}, fmt.Errorf("create agent: claim e-mail: %w", err)
	}
	if _, err := createJSON(ctx, s.agents, objKey(company, a.ID), a); err != nil {
		if perr := purge(ctx, s.emails, emailKey(email), idxRev); perr != nil {
			s.log.Warn("release e-mail claim", zap.String("company_id", company), zap.Error(perr))
		}
		return Agent{}, fmt.Errorf("create agent: %w", err)
	}
	s.log.Info("agent created", zap.String("company_id", company), zap.String("agent_id", a.ID), zap.String("role", string(role)))
	return a, nil
}

// GetAgent returns an agent of company, or ErrNotFound.
func (s *Store) GetAgent(ctx context.Context, company, id string) (Agent, error) {
	if !validSlug(company) || !validID(id) {
		return Agent{}, ErrNotFound
	}
	var a Agent
	if _, err := getJSON(ctx, s.agents, objKey(company, id), &a); err != nil {
		return Agent{}, fmt.Errorf("get agent %s: %w", id, err)
	}
	return a, nil
}

// ListAgents returns the company's agents, oldest first.
func (s *Store) ListAgents(ctx context.Context, company string) ([]Agent, error) {
	if !validSlug(company) {
		return nil, nil
	}
	as, err := listJSON[Agent](ctx, s.streamOf(s.agents), s.agents, company+".*")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(as, func(a, b Agent) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return as, nil
}

// UpdateAgent changes an agent with fn under compare-and-swap (fn may run
// more than once). Name, Role, Disabled and PasswordHash may change; ID,
// Company, Email and CreatedAt may not (ErrInvalid). Disabling an agent ends
// the use of its login tokens at once (LookupLogin checks).
func (s *Store) UpdateAgent(ctx context.Context, company, id string, fn func(*Agent) error) (Agent, error) {
	if !validSlug(company) || !validID(id) {
		return Agent{}, ErrNotFound
	}
	a, err := updateJSON(ctx, s.agents, objKey(company, id), func(a *Agent) error {
		old := *a
		if err := fn(a); err != nil {
			return err
		}
		if a.ID != old.ID || a.Company != old.Company || a.Email != old.Email || !a.CreatedAt.Equal(old.CreatedAt) {
			return fmt.Errorf("%w: id, company, e-mail and creation time are fixed", ErrInvalid)
		}
		if a.Name = strings.TrimSpace(a.Name); a.Name == "" {
			return fmt.Errorf("%w: empty name", ErrInvalid)
		}
		if !a.Role.Valid() {
			return fmt.Errorf("%w: role %q", ErrInvalid, a.Role)
		}
		return nil
	})
	if err != nil {
		return Agent{}, fmt.Errorf("update agent %s: %w", id, err)
	}
	return a, nil
}

// SetPassword replaces an agent's password (MinPasswordLen characters) and
// voids every login token issued before, so that a changed password also
// logs out whoever knew the old one.
func (s *Store) SetPassword(ctx context.Context, company, id, password string) error {
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	now := s.now().UTC()
	_, err = s.UpdateAgent(ctx, company, id, func(a *Agent) error {
		a.PasswordHash, a.LoginsSince = hash, now
		return nil
	})
	return err
}

// Authenticate returns the agent with this e-mail and password. An unknown
// e-mail, a wrong password, a disabled agent or a disabled company all give
// exactly ErrBadCredentials, and each costs one argon2 verification, so
// neither answer nor timing tells which. Other errors are trouble with NATS
// or a corrupt record.
func (s *Store) Authenticate(ctx context.Context, email, password string) (Agent, error) {
	email = normEmail(email)
	var ref emailRef
	_, err := getJSON(ctx, s.emails, emailKey(email), &ref)
	var a Agent
	if err == nil {
		a, err = s.GetAgent(ctx, ref.Company, ref.AgentID)
	}
	if errors.Is(err, ErrNotFound) {
		s.dummyVerify(password)
		return Agent{}, ErrBadCredentials
	}
	if err != nil {
		return Agent{}, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := s.verifyPassword(a.PasswordHash, password)
	if err != nil {
		s.log.Error("agent has a malformed password hash", zap.String("company_id", a.Company), zap.String("agent_id", a.ID))
		return Agent{}, fmt.Errorf("authenticate agent %s: %w", a.ID, err)
	}
	if !ok || a.Disabled || a.Email != email {
		return Agent{}, ErrBadCredentials
	}
	if _, err := s.activeCompany(ctx, a.Company); errors.Is(err, ErrNotFound) {
		return Agent{}, ErrBadCredentials
	} else if err != nil {
		return Agent{}, fmt.Errorf("authenticate: %w", err)
	}
	return a, nil
}

// dummyVerify spends the time of a real verification.
func (s *Store) dummyVerify(password string) {
	s.dummyOnce.Do(func() {
		h, err := s.hashPassword(auth.NewToken())
		if err != nil {
			s.log.Error("make dummy password hash", zap.Error(err))
			return
		}
		s.dummyHash = h
	})
	if s.dummyHash != "" {
		s.verifyPassword(s.dummyHash, password)
	}
}

// loginRecord is a login token's value.
type loginRecord struct {
	Company   string    `json:"company"`
	AgentID   string    `json:"agent_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func loginKey(token string) string { return "login." + auth.HashToken(token) }

// CreateLogin issues a login token for an agent (who must still exist and be
// enabled, else ErrNotFound) that LookupLogin accepts until it expires
// (Config.LoginLifetime) or DeleteLogin removes it. Only the token's hash is
// stored.
func (s *Store) CreateLogin(ctx context.Context, a Agent) (string, time.Time, error) {
	cur, err := s.GetAgent(ctx, a.Company, a.ID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create login: %w", err)
	}
	if cur.Disabled {
		return "", time.Time{}, fmt.Errorf("create login: agent %s is disabled: %w", a.ID, ErrNotFound)
	}
	token := auth.NewToken()
	now := s.now().UTC()
	expires := now.Add(s.cfg.LoginLifetime)
	rec := loginRecord{Company: cur.Company, AgentID: cur.ID, IssuedAt: now, ExpiresAt: expires}
	if _, err := createJSON(ctx, s.secrets, loginKey(token), rec, jetstream.KeyTTL(s.cfg.LoginLifetime+markerTTL)); err != nil {
		return "", time.Time{}, fmt.Errorf("create login: %w", err)
	}
	return token, expires, nil
}

// LookupLogin returns the agent a login token belongs to. An unknown or
// expired token, one issued before the agent's password last changed, or one
// whose agent or company is now disabled or gone, is ErrNotFound.
func (s *Store) LookupLogin(ctx context.Context, token string) (Agent, error) {
	if token == "" {
		return Agent{}, ErrNotFound
	}
	var rec loginRecord
	if _, err := getJSON(ctx, s.secrets, loginKey(token), &rec); err != nil {
		return Agent{}, fmt.Errorf("lookup login: %w", err)
	}
	if !s.now().Before(rec.ExpiresAt) {
		return Agent{}, fmt.Errorf("lookup login: expired: %w", ErrNotFound)
	}
	a, err := s.GetAgent(ctx, rec.Company, rec.AgentID)
	if err != nil {
		return Agent{}, fmt.Errorf("lookup login: %w", err)
	}
	if a.Disabled {
		return Agent{}, fmt.Errorf("lookup login: agent disabled: %w", ErrNotFound)
	}
	if rec.IssuedAt.Before(a.LoginsSince) {
		return Agent{}, fmt.Errorf("lookup login: issued before the password changed: %w", ErrNotFound)
	}
	if _, err := s.activeCompany(ctx, a.Company); err != nil {
		return Agent{}, fmt.Errorf("lookup login: %w", err)
	}
	return a, nil
}

// DeleteLogin removes a login token. Removing an unknown token is not an
// error.
func (s *Store) DeleteLogin(ctx context.Context, token string) error {
	if err := purge(ctx, s.secrets, loginKey(token), 0); err != nil {
		return fmt.Errorf("delete login: %w", err)
	}
	return nil
}
