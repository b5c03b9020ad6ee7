package tenant

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Company is a tenant: its agents, API keys and sessions live under its slug.
// Durations are stored as nanoseconds (time.Duration); zero means "the
// server's default" for every setting that has one.
type Company struct {
	Slug             string        `json:"slug"` // ^[a-z0-9][a-z0-9-]{1,39}$, fixed at creation
	Name             string        `json:"name"`
	AllowedOrigins   []string      `json:"allowed_origins,omitempty"`    // web origins ("https://shop.example") that may embed or call Tandem for this company
	Branding         Branding      `json:"branding,omitzero"`            // how the join page presents the company
	PINLength        int           `json:"pin_length,omitempty"`         // 0: the store's Config.PINLength
	PINLifetime      time.Duration `json:"pin_lifetime,omitempty"`       // 0: the store's Config.PINLifetime
	IdleTimeout      time.Duration `json:"idle_timeout,omitempty"`       // end a session nobody used this long; 0: the server's default
	MaxSessionLength time.Duration `json:"max_session_length,omitempty"` // end a session this long after it started; 0: the server's default
	AgentMustAdmit   bool          `json:"agent_must_admit,omitempty"`   // a customer who entered the PIN waits until an agent admits them
	AuditRetention   time.Duration `json:"audit_retention,omitempty"`    // how long audit events are kept; 0: the server's default
	MaxSessions      int           `json:"max_sessions,omitempty"`       // sessions not ended at once; 0: no limit
	Policy           Policy        `json:"policy,omitzero"`              // masking, blocking and URL rules
	CreatedAt        time.Time     `json:"created_at"`
	Disabled         bool          `json:"disabled,omitempty"` // a disabled company's agents, keys and logins stop working and it gets no new sessions
}

// Branding is what the company's join page shows. Every field is optional.
type Branding struct {
	Name    string `json:"name,omitempty"`     // shown instead of Company.Name; at most 100 bytes
	Colour  string `json:"colour,omitempty"`   // accent colour, "#rrggbb"
	LogoURL string `json:"logo_url,omitempty"` // absolute https (or http) URL of the logo image
}

// Bounds of a company's settings.
const (
	// maxPINLifetime bounds a company's PIN lifetime: a PIN is meant to be
	// read out and typed within minutes.
	maxPINLifetime    = 24 * time.Hour
	minSetting        = time.Minute // shortest PIN lifetime, idle timeout or session length
	maxIdleTimeout    = 24 * time.Hour
	maxSessionLength  = 7 * 24 * time.Hour
	minAuditRetention = 24 * time.Hour
	maxAuditRetention = 10 * 365 * 24 * time.Hour
	maxOrigins        = 50
	MaxSessionsLimit  = 10000 // the highest concurrent-session quota a company can have
	maxLogoURL        = 2048
)

var colourRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// validate checks the fields a caller may set, and normalises them (names
// trimmed, origins and colour lower-cased).
func (c *Company) validate() error {
	if !validSlug(c.Slug) {
		return fmt.Errorf("%w: company slug %q must match %s", ErrInvalid, c.Slug, slugRe)
	}
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" || len(c.Name) > 200 {
		return fmt.Errorf("%w: company name must be 1 to 200 bytes", ErrInvalid)
	}
	if c.PINLength != 0 && (c.PINLength < MinPINLength || c.PINLength > MaxPINLength) {
		return fmt.Errorf("%w: PIN length %d (want %d to %d)", ErrInvalid, c.PINLength, MinPINLength, MaxPINLength)
	}
	for _, d := range []struct {
		what     string
		v        time.Duration
		min, max time.Duration
	}{
		{"PIN lifetime", c.PINLifetime, minSetting, maxPINLifetime},
		{"idle timeout", c.IdleTimeout, minSetting, maxIdleTimeout},
		{"maximum session length", c.MaxSessionLength, minSetting, maxSessionLength},
		{"audit retention", c.AuditRetention, minAuditRetention, maxAuditRetention},
	} {
		if d.v != 0 && (d.v < d.min || d.v > d.max) {
			return fmt.Errorf("%w: %s %s (want 0 for the default, or %s to %s)", ErrInvalid, d.what, d.v, d.min, d.max)
		}
	}
	if c.MaxSessions < 0 || c.MaxSessions > MaxSessionsLimit {
		return fmt.Errorf("%w: max sessions %d (want 0 for no limit, or 1 to %d)", ErrInvalid, c.MaxSessions, MaxSessionsLimit)
	}
	if len(c.AllowedOrigins) > maxOrigins {
		return fmt.Errorf("%w: more than %d allowed origins", ErrInvalid, maxOrigins)
	}
	for i, o := range c.AllowedOrigins {
		norm, err := normOrigin(o)
		if err != nil {
			return fmt.Errorf("allowed origin: %w", err)
		}
		c.AllowedOrigins[i] = norm
	}
	if err := c.Policy.validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	return c.Branding.validate()
}

// normOrigin checks that o is scheme://host[:port] and lower-cases the host.
func normOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q is not scheme://host[:port]", ErrInvalid, o)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

func (b *Branding) validate() error {
	b.Name = strings.TrimSpace(b.Name)
	if len(b.Name) > 100 {
		return fmt.Errorf("%w: branding name longer than 100 bytes", ErrInvalid)
	}
	if b.Colour != "" && !colourRe.MatchString(b.Colour) {
		return fmt.Errorf("%w: branding colour %q is not #rrggbb", ErrInvalid, b.Colour)
	}
	b.Colour = strings.ToLower(b.Colour)
	if b.LogoURL != "" {
		u, err := url.Parse(b.LogoURL)
		if err != nil || len(b.LogoURL) > maxLogoURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("%w: branding logo_url must be an absolute http or https URL", ErrInvalid)
		}
	}
	return nil
}

// CreateCompany stores a new company and returns it as stored (CreatedAt
// set, name trimmed, origins normalised). The slug must be free (ErrExists)
// and the fields valid (ErrInvalid).
func (s *Store) CreateCompany(ctx context.Context, c Company) (Company, error) {
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	if err := c.validate(); err != nil {
		return Company{}, err
	}
	c.CreatedAt = s.now().UTC()
	if _, err := createJSON(ctx, s.companies, c.Slug, c); err != nil {
		return Company{}, fmt.Errorf("create company %s: %w", c.Slug, err)
	}
	s.log.Info("company created", zap.String("company_id", c.Slug))
	return c, nil
}

// GetCompany returns the company with this slug, or ErrNotFound.
func (s *Store) GetCompany(ctx context.Context, slug string) (Company, error) {
	if !validSlug(slug) {
		return Company{}, ErrNotFound
	}
	var c Company
	if _, err := getJSON(ctx, s.companies, slug, &c); err != nil {
		return Company{}, fmt.Errorf("get company %s: %w", slug, err)
	}
	return c, nil
}

// ListCompanies returns every company, ordered by slug.
func (s *Store) ListCompanies(ctx context.Context) ([]Company, error) {
	cs, err := listJSON[Company](ctx, s.streamOf(s.companies), s.companies, ">")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cs, func(a, b Company) int { return strings.Compare(a.Slug, b.Slug) })
	return cs, nil
}

// UpdateCompany changes a company with fn under compare-and-swap (fn may run
// more than once). The slug and CreatedAt cannot change (ErrInvalid), and the
// result must be valid.
func (s *Store) UpdateCompany(ctx context.Context, slug string, fn func(*Company) error) (Company, error) {
	if !validSlug(slug) {
		return Company{}, ErrNotFound
	}
	c, err := updateJSON(ctx, s.companies, slug, func(c *Company) error {
		old := *c
		c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
		if err := fn(c); err != nil {
			return err
		}
		if c.Slug != old.Slug || !c.CreatedAt.Equal(old.CreatedAt) {
			return fmt.Errorf("%w: slug and creation time are fixed", ErrInvalid)
		}
		return c.validate()
	})
	if err != nil {
		return Company{}, fmt.Errorf("update company %s: %w", slug, err)
	}
	return c, nil
}

// activeCompany returns the company if it exists and is not disabled.
func (s *Store) activeCompany(ctx context.Context, slug string) (Company, error) {
	c, err := s.GetCompany(ctx, slug)
	if err != nil {
		return Company{}, err
	}
	if c.Disabled {
		return Company{}, fmt.Errorf("company %s is disabled: %w", slug, ErrNotFound)
	}
	return c, nil
}
