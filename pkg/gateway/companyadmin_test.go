package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

func TestCompanyAdminManagesOwnCompany(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	boss := e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	c := e.loginAs(t, "boss@acme.test", password)

	r := e.do(t, c, "GET", "/api/v1/agents", "", nil)
	var list struct{ Agents []managedAgentJSON }
	if err := json.Unmarshal(r.Body, &list); r.Status != 200 || err != nil || len(list.Agents) != 2 {
		t.Fatalf("list agents = %d %s", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte("hash")) || bytes.Contains(r.Body, []byte("argon2")) {
		t.Errorf("agent list leaks password hashes: %s", r.Body)
	}

	// A new supervisor; its e-mail is taken for every company after that.
	r = e.do(t, c, "POST", "/api/v1/agents", `{"email":"sue@acme.test","name":"Sue","password":"`+password+`","role":"supervisor"}`, nil)
	var sue managedAgentJSON
	if err := json.Unmarshal(r.Body, &sue); r.Status != 201 || err != nil || sue.Role != tenant.RoleSupervisor || sue.Company != "acme" {
		t.Fatalf("create agent = %d %s", r.Status, r.Body)
	}
	e.do(t, c, "POST", "/api/v1/agents", `{"email":"sue@acme.test","password":"`+password+`"}`, nil).wantError(t, 409, "exists")
	sueClient := e.loginAs(t, "sue@acme.test", password)

	// Rename and promote: the role counts from the next request of an
	// existing login.
	r = e.do(t, c, "PATCH", "/api/v1/agents/"+sue.ID, `{"name":"Sue Smith","role":"admin"}`, nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"name":"Sue Smith"`)) || !bytes.Contains(r.Body, []byte(`"role":"admin"`)) {
		t.Fatalf("patch agent = %d %s", r.Status, r.Body)
	}
	if r := e.do(t, sueClient, "GET", "/api/v1/agents", "", nil); r.Status != 200 {
		t.Errorf("promoted agent's list = %d %s", r.Status, r.Body)
	}
	// A new password: the old one and the logins made with it stop working.
	if r := e.do(t, c, "PATCH", "/api/v1/agents/"+sue.ID, `{"password":"a brand new password"}`, nil); r.Status != 200 {
		t.Fatalf("new password = %d %s", r.Status, r.Body)
	}
	e.do(t, sueClient, "GET", "/api/v1/auth/me", "", nil).wantError(t, 401, "unauthenticated")
	e.do(t, nil, "POST", "/api/v1/auth/login", `{"email":"sue@acme.test","password":"`+password+`"}`, nil).wantError(t, 401, "invalid_credentials")
	sueClient = e.loginAs(t, "sue@acme.test", "a brand new password")
	// Disabling ends the agent's login at once.
	if r := e.do(t, c, "PATCH", "/api/v1/agents/"+sue.ID, `{"disabled":true}`, nil); r.Status != 200 {
		t.Fatalf("disable = %d %s", r.Status, r.Body)
	}
	e.do(t, sueClient, "GET", "/api/v1/auth/me", "", nil).wantError(t, 401, "unauthenticated")

	// An admin cannot lock themselves out.
	e.do(t, c, "PATCH", "/api/v1/agents/"+boss.ID, `{"disabled":true}`, nil).wantError(t, 409, "conflict")
	e.do(t, c, "PATCH", "/api/v1/agents/"+boss.ID, `{"role":"agent"}`, nil).wantError(t, 409, "conflict")
	if a, _ := e.store.GetAgent(ctx, "acme", boss.ID); a.Disabled || a.Role != tenant.RoleAdmin {
		t.Errorf("admin after refused self-changes = %+v", a)
	}

	// API keys: shown once, listed without secret, revoked at once.
	r = e.do(t, c, "POST", "/api/v1/apikeys", `{"name":"Help desk"}`, nil)
	var key struct{ ID, Key, Name string }
	if err := json.Unmarshal(r.Body, &key); r.Status != 201 || err != nil || key.Key == "" || key.Name != "Help desk" {
		t.Fatalf("create key = %d %s", r.Status, r.Body)
	}
	r = e.do(t, c, "GET", "/api/v1/apikeys", "", nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(key.ID)) || bytes.Contains(r.Body, []byte(key.Key)) || bytes.Contains(r.Body, []byte("hash")) {
		t.Errorf("list keys = %d %s", r.Status, r.Body)
	}
	if r := e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(key.Key)); r.Status != 200 {
		t.Fatalf("new key = %d", r.Status)
	}
	for range 2 { // revoking twice is fine
		r = e.do(t, c, "DELETE", "/api/v1/apikeys/"+key.ID, "", nil)
		if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"revoked":true`)) {
			t.Fatalf("revoke = %d %s", r.Status, r.Body)
		}
	}
	e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(key.Key)).wantError(t, 401, "unauthenticated")

	// The company's settings; slug and disabled belong to the operator.
	r = e.do(t, c, "PATCH", "/api/v1/company", `{"name":"Acme Inc.","allowed_origins":["https://acme.test"],"pin_length":7,"pin_lifetime":120,"branding":{"colour":"#123456"}}`, nil)
	if r.Status != 200 {
		t.Fatalf("patch company = %d %s", r.Status, r.Body)
	}
	co, _ := e.store.GetCompany(ctx, "acme")
	if co.Name != "Acme Inc." || co.PINLength != 7 || co.PINLifetime != 2*time.Minute || co.Branding.Colour != "#123456" || len(co.AllowedOrigins) != 1 {
		t.Errorf("stored company = %+v", co)
	}
	e.do(t, c, "PATCH", "/api/v1/company", `{"disabled":true}`, nil).wantError(t, 400, "invalid_json")
	e.do(t, c, "PATCH", "/api/v1/company", `{"slug":"other"}`, nil).wantError(t, 400, "invalid_json")
	r = e.do(t, c, "GET", "/api/v1/company", "", nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"pin_lifetime":120`)) || !bytes.Contains(r.Body, []byte(`"slug":"acme"`)) {
		t.Errorf("get company = %d %s", r.Status, r.Body)
	}
	// The join page shows the new name.
	if r := e.do(t, nil, "GET", "/api/v1/companies/acme", "", nil); !bytes.Contains(r.Body, []byte("Acme Inc.")) {
		t.Errorf("public name = %s", r.Body)
	}
}
