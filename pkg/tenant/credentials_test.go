package tenant

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
)

func TestLogins(t *testing.T) {
	e := newEnv(t, Config{LoginLifetime: time.Hour})
	ctx, s := e.ctx, e.store
	e.company("acme")
	a := e.agent("acme", "ann@acme.test")
	tok, exp, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatalf("CreateLogin: %v", err)
	}
	if !exp.Equal(e.clock.Now().Add(time.Hour)) || len(tok) != 43 {
		t.Errorf("CreateLogin = %d-char token expiring %v; want 43 chars, %v", len(tok), exp, e.clock.Now().Add(time.Hour))
	}
	if got, err := s.LookupLogin(ctx, tok); err != nil || got.ID != a.ID {
		t.Errorf("LookupLogin = %+v, %v; want agent %s", got, err, a.ID)
	}
	for _, bad := range []string{"", "x", tok + "x", strings.ToUpper(tok), auth.HashToken(tok)} {
		if _, err := s.LookupLogin(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupLogin(%.10q...) error = %v, want ErrNotFound", bad, err)
		}
	}

	// Expiry.
	e.clock.Advance(time.Hour - time.Second)
	if _, err := s.LookupLogin(ctx, tok); err != nil {
		t.Errorf("LookupLogin 1s before expiry: %v", err)
	}
	e.clock.Advance(time.Second)
	if _, err := s.LookupLogin(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupLogin at expiry error = %v, want ErrNotFound", err)
	}

	// Logout.
	tok2, _, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLogin(ctx, tok2); err != nil {
		t.Fatalf("DeleteLogin: %v", err)
	}
	if _, err := s.LookupLogin(ctx, tok2); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupLogin after DeleteLogin error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteLogin(ctx, tok2); err != nil {
		t.Errorf("second DeleteLogin: %v", err)
	}

	// Disabling the agent kills its live logins; a disabled agent gets none.
	tok3, _, err := s.CreateLogin(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAgent(ctx, "acme", a.ID, func(a *Agent) error { a.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupLogin(ctx, tok3); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupLogin(disabled agent) error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.CreateLogin(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateLogin(disabled agent) error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.CreateLogin(ctx, Agent{Company: "acme", ID: "a_ghost"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateLogin(unknown agent) error = %v, want ErrNotFound", err)
	}
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	e.company("beta")
	k, secret, err := s.CreateAPIKey(ctx, "acme", " CRM ")
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	if !strings.HasPrefix(secret, "tdm_") || len(secret) != 4+43 || !strings.HasPrefix(k.ID, "k_") || k.Name != "CRM" || k.Company != "acme" {
		t.Errorf("CreateAPIKey = %+v, %d-char secret", k, len(secret))
	}
	if got, err := s.LookupAPIKey(ctx, secret); err != nil || !cmp.Equal(got, k) {
		t.Errorf("LookupAPIKey = %+v, %v; want %+v", got, err, k)
	}
	for _, bad := range []string{"", "tdm_", secret[4:], secret + "x", "tdm_" + auth.HashToken(secret)} {
		if _, err := s.LookupAPIKey(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupAPIKey(%.8q...) error = %v, want ErrNotFound", bad, err)
		}
	}
	e.clock.Advance(time.Second)
	k2, secret2, err := s.CreateAPIKey(ctx, "acme", "Help desk")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateAPIKey(ctx, "beta", "Other"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateAPIKey(ctx, "acme", " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateAPIKey(empty name) error = %v, want ErrInvalid", err)
	}
	if _, _, err := s.CreateAPIKey(ctx, "ghost", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateAPIKey(unknown company) error = %v, want ErrNotFound", err)
	}

	// Revoking: another company cannot, the owner can, twice.
	if err := s.RevokeAPIKey(ctx, "beta", k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIKey(other company) error = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, "acme", k.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, "acme", k.ID); err != nil {
		t.Errorf("second RevokeAPIKey: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, "acme", "k_ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIKey(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.LookupAPIKey(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAPIKey(revoked) error = %v, want ErrNotFound", err)
	}
	if _, err := s.secrets.Get(ctx, apiSecretKey(auth.HashToken(secret))); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("revoked key's index entry: %v, want gone", err)
	}
	if _, err := s.LookupAPIKey(ctx, secret2); err != nil {
		t.Errorf("LookupAPIKey(other key after revoke): %v", err)
	}
	list, err := s.ListAPIKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	k.Revoked = true
	if d := cmp.Diff([]APIKey{k, k2}, list); d != "" {
		t.Errorf("ListAPIKeys (-want +got):\n%s", d)
	}

	// A disabled company's keys stop working.
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIKey(ctx, secret2); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAPIKey(disabled company) error = %v, want ErrNotFound", err)
	}
}
