package tenant

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The customer's arrival, consent and admission are recorded once and then
// stay as they are; must-admit is the company's setting at creation.
func TestSessionConsentFields(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.AgentMustAdmit = true; return nil }); err != nil {
		t.Fatal(err)
	}
	strict := e.session("acme")
	if !strict.MustAdmit || strict.JoinedAt != nil || strict.ConsentAt != nil || strict.AdmittedAt != nil {
		t.Fatalf("new session of a must-admit company = %+v; want MustAdmit and no times", strict)
	}
	if _, err := s.UpdateCompany(ctx, "acme", func(c *Company) error { c.AgentMustAdmit = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSession(ctx, "acme", strict.ID); !got.MustAdmit {
		t.Errorf("changing the company's setting changed a live session: %+v", got)
	}
	if lax := e.session("acme"); lax.MustAdmit {
		t.Errorf("session after the setting was turned off has MustAdmit")
	}
	// Fields a caller sends to CreateSession are not taken.
	now := e.clock.Now()
	forged, err := s.CreateSession(ctx, Session{Company: "acme", StartURL: "https://x.test/", MustAdmit: true,
		JoinedAt: &now, ConsentAt: &now, AdmittedAt: &now, AdmittedBy: "agent:a_x", Customer: &Client{Browser: "X"}})
	if err != nil {
		t.Fatal(err)
	}
	if forged.MustAdmit || forged.JoinedAt != nil || forged.ConsentAt != nil || forged.AdmittedAt != nil || forged.AdmittedBy != "" || forged.Customer != nil {
		t.Errorf("CreateSession kept caller-set consent fields: %+v", forged)
	}

	e.clock.Advance(time.Second)
	red, err := s.RedeemPIN(ctx, "acme", strict.PIN)
	if err != nil {
		t.Fatal(err)
	}
	if red.JoinedAt == nil || !red.JoinedAt.Equal(e.clock.Now()) {
		t.Errorf("JoinedAt after redeeming = %v, want %v", red.JoinedAt, e.clock.Now())
	}

	consent := e.clock.Now().Add(time.Second)
	got, err := s.UpdateSession(ctx, "acme", strict.ID, func(s *Session) error {
		s.ConsentAt, s.Customer = &consent, &Client{Browser: "Chrome", OS: "Android", Device: "phone"}
		return nil
	})
	if err != nil || got.ConsentAt == nil || !got.ConsentAt.Equal(consent) || got.Customer.Browser != "Chrome" {
		t.Fatalf("set consent = %+v, %v", got, err)
	}
	later := consent.Add(time.Minute)
	for name, fn := range map[string]func(*Session){
		"clear consent":  func(s *Session) { s.ConsentAt = nil },
		"move consent":   func(s *Session) { s.ConsentAt = &later },
		"move consent *": func(s *Session) { *s.ConsentAt = later }, // through the pointer fn was given
		"clear joined":   func(s *Session) { s.JoinedAt = nil },
		"must admit":     func(s *Session) { s.MustAdmit = false },
	} {
		if _, err := s.UpdateSession(ctx, "acme", strict.ID, func(s *Session) error { fn(s); return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateSession(%s) error = %v, want ErrInvalid", name, err)
		}
	}
	admit := later
	got, err = s.UpdateSession(ctx, "acme", strict.ID, func(s *Session) error {
		s.AdmittedAt, s.AdmittedBy = &admit, "agent:a_1"
		return nil
	})
	if err != nil || got.AdmittedAt == nil || got.AdmittedBy != "agent:a_1" || !got.ConsentAt.Equal(consent) {
		t.Fatalf("admit = %+v, %v", got, err)
	}
	if _, err := s.UpdateSession(ctx, "acme", strict.ID, func(s *Session) error { s.AdmittedAt = nil; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("clearing the admission error = %v, want ErrInvalid", err)
	}
	// What was stored survives a reload unchanged.
	stored, err := s.GetSession(ctx, "acme", strict.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got, stored); d != "" {
		t.Errorf("stored session (-updated +stored):\n%s", d)
	}
}

func TestSessionAgents(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, s := e.ctx, e.store
	e.company("acme")
	sess := e.session("acme")
	if got, err := s.SessionAgents(ctx, "acme", sess.ID); err != nil || len(got) != 0 {
		t.Fatalf("SessionAgents of a new session = %v, %v", got, err)
	}
	for _, a := range []SessionAgent{{"a_1", "Ann"}, {"a_2", "Ben"}, {"a_1", "Ann"}, {"a_1", "Ann Lee"}} {
		if err := s.AddSessionAgent(ctx, "acme", sess.ID, a); err != nil {
			t.Fatalf("AddSessionAgent(%v): %v", a, err)
		}
	}
	got, err := s.SessionAgents(ctx, "acme", sess.ID)
	if want := []SessionAgent{{"a_1", "Ann Lee"}, {"a_2", "Ben"}}; err != nil || !cmp.Equal(got, want) {
		t.Errorf("SessionAgents = %v, %v; want %v", got, err, want)
	}
	if err := s.AddSessionAgent(ctx, "acme", sess.ID, SessionAgent{ID: "a.*", Name: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddSessionAgent(bad id) error = %v, want ErrInvalid", err)
	}
	if err := s.AddSessionAgent(ctx, "acme", "s_ghost", SessionAgent{ID: "a_1", Name: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddSessionAgent(unknown session) error = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionAgents(ctx, "beta", sess.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("SessionAgents of another company's session: %v, want ErrNotFound", err)
	}
	for i := range maxSessionAgents + 5 {
		if err := s.AddSessionAgent(ctx, "acme", sess.ID, SessionAgent{ID: fmt.Sprintf("a_x%d", i), Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.SessionAgents(ctx, "acme", sess.ID); len(got) != maxSessionAgents || got[0].ID != "a_1" {
		t.Errorf("after many agents: %d kept, first %v; want %d, a_1 first", len(got), got[0], maxSessionAgents)
	}
	if _, err := s.EndSession(ctx, "acme", sess.ID, "agent_ended"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSessionAgent(ctx, "acme", sess.ID, SessionAgent{ID: "a_late", Name: "Late"}); err != nil {
		t.Errorf("AddSessionAgent(ended) = %v, want nil (nothing changes)", err)
	}
	if got, _ := s.SessionAgents(ctx, "acme", sess.ID); len(got) != maxSessionAgents {
		t.Errorf("an ended session took a new agent")
	}
}
