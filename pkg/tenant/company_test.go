package tenant

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The settings beyond slug and name are stored, normalised, survive a
// restart, and are refused out of range without changing what is stored.
func TestCompanySettings(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	want, err := s.UpdateCompany(ctx, "acme", func(c *Company) error {
		c.Branding = Branding{Name: "  Acme Help ", Colour: "#A0B1C2", LogoURL: "https://cdn.acme.test/logo.png"}
		c.PINLength = MaxPINLength
		c.PINLifetime = 5 * time.Minute
		c.IdleTimeout = 10 * time.Minute
		c.MaxSessionLength = 2 * time.Hour
		c.AgentMustAdmit = true
		c.AuditRetention = 90 * 24 * time.Hour
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateCompany(settings) = %v", err)
	}
	if want.Branding != (Branding{Name: "Acme Help", Colour: "#a0b1c2", LogoURL: "https://cdn.acme.test/logo.png"}) {
		t.Errorf("branding stored as %+v, want trimmed and lower-cased", want.Branding)
	}
	e.restart()
	got, err := e.store.GetCompany(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("company after restart (-want +got):\n%s", d)
	}

	for name, fn := range map[string]func(*Company){
		"PIN length 5":          func(c *Company) { c.PINLength = 5 },
		"PIN length 11":         func(c *Company) { c.PINLength = MaxPINLength + 1 },
		"PIN lifetime 1s":       func(c *Company) { c.PINLifetime = time.Second },
		"idle timeout negative": func(c *Company) { c.IdleTimeout = -time.Minute },
		"idle timeout 2 days":   func(c *Company) { c.IdleTimeout = 48 * time.Hour },
		"session length 8 days": func(c *Company) { c.MaxSessionLength = 8 * 24 * time.Hour },
		"audit retention 1h":    func(c *Company) { c.AuditRetention = time.Hour },
		"audit retention 11y":   func(c *Company) { c.AuditRetention = 11 * 365 * 24 * time.Hour },
		"colour name":           func(c *Company) { c.Branding.Colour = "red" },
		"colour short":          func(c *Company) { c.Branding.Colour = "#abc" },
		"logo javascript":       func(c *Company) { c.Branding.LogoURL = "javascript:alert(1)" },
		"logo relative":         func(c *Company) { c.Branding.LogoURL = "/logo.png" },
		"logo with user":        func(c *Company) { c.Branding.LogoURL = "https://u:p@x.test/l.png" },
		"branding name long":    func(c *Company) { c.Branding.Name = strings.Repeat("x", 101) },
		"too many origins": func(c *Company) {
			c.AllowedOrigins = nil
			for i := range maxOrigins + 1 {
				c.AllowedOrigins = append(c.AllowedOrigins, "https://o"+strings.Repeat("x", i%5)+".test")
			}
		},
	} {
		if _, err := e.store.UpdateCompany(ctx, "acme", func(c *Company) error { fn(c); return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateCompany(%s) error = %v, want ErrInvalid", name, err)
		}
	}
	after, err := e.store.GetCompany(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, after); d != "" {
		t.Errorf("refused updates changed the company (-want +got):\n%s", d)
	}
	// Zero puts each setting back to the default.
	reset, err := e.store.UpdateCompany(ctx, "acme", func(c *Company) error {
		c.PINLength, c.PINLifetime, c.IdleTimeout, c.MaxSessionLength, c.AuditRetention = 0, 0, 0, 0, 0
		c.Branding = Branding{}
		return nil
	})
	if err != nil || reset.PINLength != 0 || reset.Branding != (Branding{}) {
		t.Errorf("reset = %+v, %v", reset, err)
	}
}

func TestGetAPIKey(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	k, _, err := s.CreateAPIKey(ctx, "acme", "CRM")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAPIKey(ctx, "acme", k.ID)
	if err != nil || !cmp.Equal(got, k) {
		t.Errorf("GetAPIKey = %+v, %v; want %+v", got, err, k)
	}
	if err := s.RevokeAPIKey(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAPIKey(ctx, "acme", k.ID); err != nil || !got.Revoked {
		t.Errorf("GetAPIKey(revoked) = %+v, %v; want it, revoked", got, err)
	}
	for _, c := range []struct{ company, id string }{{"beta", k.ID}, {"acme", "k_nope"}, {"acme", "a.b"}, {"*", k.ID}} {
		if _, err := s.GetAPIKey(ctx, c.company, c.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAPIKey(%q, %q) error = %v, want ErrNotFound", c.company, c.id, err)
		}
	}
}

// A new password voids the logins issued before it, not those after.
func TestSetPasswordEndsOldLogins(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	a := e.agent("acme", "ann@acme.test")
	old, _, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := s.SetPassword(ctx, "acme", a.ID, "a new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupLogin(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupLogin(login from before the new password) error = %v, want ErrNotFound", err)
	}
	e.clock.Advance(time.Second)
	fresh, _, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.LookupLogin(ctx, fresh); err != nil || got.ID != a.ID {
		t.Errorf("LookupLogin(new login) = %+v, %v", got, err)
	}
	// Other changes to the agent leave logins alone.
	if _, err := s.UpdateAgent(ctx, "acme", a.ID, func(a *Agent) error { a.Name = "Ann B."; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupLogin(ctx, fresh); err != nil {
		t.Errorf("LookupLogin after a rename: %v", err)
	}
}
