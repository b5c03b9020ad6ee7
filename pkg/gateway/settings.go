package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// companyJSON is a company with all its settings as the operator and the
// company's admins see it. Durations are whole seconds; 0 means the
// server's default.
type companyJSON struct {
	Slug             string        `json:"slug"`
	Name             string        `json:"name"`
	AllowedOrigins   []string      `json:"allowed_origins"`
	Branding         brandingJSON  `json:"branding"`
	PINLength        int           `json:"pin_length"`
	PINLifetime      int64         `json:"pin_lifetime"`
	IdleTimeout      int64         `json:"idle_timeout"`
	MaxSessionLength int64         `json:"max_session_length"`
	AgentMustAdmit   bool          `json:"agent_must_admit"`
	AuditRetention   int64         `json:"audit_retention"`
	MaxSessions      int           `json:"max_sessions"`
	Policy           tenant.Policy `json:"policy"`
	Disabled         bool          `json:"disabled"`
	CreatedAt        time.Time     `json:"created_at"`
}

type brandingJSON struct {
	Name    string `json:"name"`
	Colour  string `json:"colour"`
	LogoURL string `json:"logo_url"`
}

func toCompanyJSON(c tenant.Company) companyJSON {
	origins := slices.Clone(c.AllowedOrigins)
	if origins == nil {
		origins = []string{}
	}
	return companyJSON{
		Slug:             c.Slug,
		Name:             c.Name,
		AllowedOrigins:   origins,
		Branding:         brandingJSON{Name: c.Branding.Name, Colour: c.Branding.Colour, LogoURL: c.Branding.LogoURL},
		PINLength:        c.PINLength,
		PINLifetime:      seconds(c.PINLifetime),
		IdleTimeout:      seconds(c.IdleTimeout),
		MaxSessionLength: seconds(c.MaxSessionLength),
		AgentMustAdmit:   c.AgentMustAdmit,
		AuditRetention:   seconds(c.AuditRetention),
		MaxSessions:      c.MaxSessions,
		Policy:           c.Policy,
		Disabled:         c.Disabled,
		CreatedAt:        c.CreatedAt,
	}
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// settingsPatch is the body of PATCH /company and the settings part of the
// operator's PATCH /admin/companies/{slug}: every field is optional, and
// only the fields present change. The slug and the creation time never
// change.
type settingsPatch struct {
	Name             *string        `json:"name"`
	AllowedOrigins   *[]string      `json:"allowed_origins"`
	Branding         *brandingPatch `json:"branding"`
	PINLength        *int           `json:"pin_length"`
	PINLifetime      *int64         `json:"pin_lifetime"`
	IdleTimeout      *int64         `json:"idle_timeout"`
	MaxSessionLength *int64         `json:"max_session_length"`
	AgentMustAdmit   *bool          `json:"agent_must_admit"`
	AuditRetention   *int64         `json:"audit_retention"`
	MaxSessions      *int           `json:"max_sessions"`
	Policy           *tenant.Policy `json:"policy"` // replaced whole
}

// brandingPatch changes the branding fields present; "" clears one.
type brandingPatch struct {
	Name    *string `json:"name"`
	Colour  *string `json:"colour"`
	LogoURL *string `json:"logo_url"`
}

// platformPatch is what the operator may change: the settings and whether
// the company is disabled.
type platformPatch struct {
	settingsPatch
	Disabled *bool `json:"disabled"`
}

// maxSeconds bounds durations before they become time.Durations, so that no
// value overflows; the store checks the real ranges.
const maxSeconds = 20 * 365 * 24 * 3600

// durations converts the patch's seconds, refusing negative and absurd ones.
func (p settingsPatch) durations() (map[string]*time.Duration, error) {
	out := map[string]*time.Duration{}
	for name, v := range map[string]*int64{
		"pin_lifetime": p.PINLifetime, "idle_timeout": p.IdleTimeout,
		"max_session_length": p.MaxSessionLength, "audit_retention": p.AuditRetention,
	} {
		if v == nil {
			continue
		}
		if *v < 0 || *v > maxSeconds {
			return nil, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("%s must be a number of seconds from 0 to %d", name, maxSeconds))
		}
		d := time.Duration(*v) * time.Second
		out[name] = &d
	}
	return out, nil
}

// apply returns a function that changes a company as the patch says, for
// Store.UpdateCompany (which validates the result). It fails before
// anything is stored if a duration is out of range.
func (p settingsPatch) apply() (func(*tenant.Company), error) {
	ds, err := p.durations()
	if err != nil {
		return nil, err
	}
	return func(c *tenant.Company) {
		if p.Name != nil {
			c.Name = *p.Name
		}
		if p.AllowedOrigins != nil {
			c.AllowedOrigins = slices.Clone(*p.AllowedOrigins)
		}
		if b := p.Branding; b != nil {
			if b.Name != nil {
				c.Branding.Name = *b.Name
			}
			if b.Colour != nil {
				c.Branding.Colour = *b.Colour
			}
			if b.LogoURL != nil {
				c.Branding.LogoURL = *b.LogoURL
			}
		}
		if p.PINLength != nil {
			c.PINLength = *p.PINLength
		}
		if p.AgentMustAdmit != nil {
			c.AgentMustAdmit = *p.AgentMustAdmit
		}
		if p.MaxSessions != nil {
			c.MaxSessions = *p.MaxSessions
		}
		if p.Policy != nil {
			c.Policy = *p.Policy
		}
		for name, field := range map[string]*time.Duration{
			"pin_lifetime": &c.PINLifetime, "idle_timeout": &c.IdleTimeout,
			"max_session_length": &c.MaxSessionLength, "audit_retention": &c.AuditRetention,
		} {
			if d := ds[name]; d != nil {
				*field = *d
			}
		}
	}, nil
}
