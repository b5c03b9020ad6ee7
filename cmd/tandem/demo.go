package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

const (
	demoCompany = "demo"
	demoEmail   = "agent@demo.test"
	demoKeyName = "demo"
)

type demoCreds struct{ Password, APIKey string }

// seedDemo makes sure the demo company, its agent and an API key exist, and
// sets the agent's password and the key to the given values or to fresh ones,
// so that what is printed always works.
func seedDemo(ctx context.Context, s *tenant.Store, password, apiKey string) (demoCreds, error) {
	_, err := s.CreateCompany(ctx, tenant.Company{Slug: demoCompany, Name: "Demo Shop デモショップ"})
	if err != nil && !errors.Is(err, tenant.ErrExists) {
		return demoCreds{}, fmt.Errorf("company: %w", err)
	}
	if password == "" {
		password = auth.NewToken()[:16]
	}
	if err := ensureAgent(ctx, s, password); err != nil {
		return demoCreds{}, fmt.Errorf("agent: %w", err)
	}
	if apiKey == "" {
		_, apiKey, err = s.CreateAPIKey(ctx, demoCompany, demoKeyName)
	} else {
		err = s.ImportAPIKey(ctx, demoCompany, demoKeyName, apiKey)
	}
	if err != nil {
		return demoCreds{}, fmt.Errorf("api key: %w", err)
	}
	return demoCreds{Password: password, APIKey: apiKey}, nil
}

// ensureAgent creates the demo agent, or sets its password when it exists.
func ensureAgent(ctx context.Context, s *tenant.Store, password string) error {
	_, err := s.CreateAgent(ctx, demoCompany, demoEmail, "Demo Agent デモ担当", password, tenant.RoleAdmin)
	if !errors.Is(err, tenant.ErrExists) {
		return err
	}
	agents, err := s.ListAgents(ctx, demoCompany)
	if err != nil {
		return err
	}
	for _, a := range agents {
		if a.Email == demoEmail {
			return s.SetPassword(ctx, demoCompany, a.ID, password)
		}
	}
	return fmt.Errorf("%s belongs to another company", demoEmail)
}
