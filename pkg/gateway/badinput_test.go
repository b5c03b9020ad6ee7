package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// Bad input on the management routes gets a clear JSON error, and nothing
// stored changes: not even the valid part of a request that fails.
func TestManagementBadInput(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	admin := e.loginAs(t, "boss@acme.test", password)
	agents, _ := e.store.ListAgents(ctx, "acme")
	keys, _ := e.store.ListAPIKeys(ctx, "acme")
	agentID, keyID := agents[0].ID, keys[0].ID
	if agents[0].Email != "agent@acme.test" {
		t.Fatalf("first agent is %s", agents[0].Email)
	}
	big := strings.Repeat("x", 70<<10)
	op := operator()
	opText := map[string]string{"Authorization": "Bearer " + operatorToken, "Content-Type": "text/plain"}

	tests := []struct {
		name, method, path, body string
		client                   *http.Client
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		// The operator's routes.
		{"company: empty body", "POST", "/api/v1/admin/companies", ``, nil, op, 400, "invalid_json"},
		{"company: not JSON", "POST", "/api/v1/admin/companies", `slug=x`, nil, op, 400, "invalid_json"},
		{"company: text/plain", "POST", "/api/v1/admin/companies", `{"slug":"ok1","name":"X"}`, nil, opText, 415, "unsupported_media_type"},
		{"company: no name", "POST", "/api/v1/admin/companies", `{"slug":"ok1"}`, nil, op, 400, "invalid_request"},
		{"company: no slug", "POST", "/api/v1/admin/companies", `{"name":"X"}`, nil, op, 400, "invalid_request"},
		{"company: slug number", "POST", "/api/v1/admin/companies", `{"slug":5,"name":"X"}`, nil, op, 400, "invalid_json"},
		{"company: bad slug", "POST", "/api/v1/admin/companies", `{"slug":"Bad Slug","name":"X"}`, nil, op, 400, "invalid_request"},
		{"company: dotted slug", "POST", "/api/v1/admin/companies", `{"slug":"a.b","name":"X"}`, nil, op, 400, "invalid_request"},
		{"company: origins string", "POST", "/api/v1/admin/companies", `{"slug":"ok1","name":"X","allowed_origins":"https://x.test"}`, nil, op, 400, "invalid_json"},
		{"company: bad origin", "POST", "/api/v1/admin/companies", `{"slug":"ok1","name":"X","allowed_origins":["ftp://x.test"]}`, nil, op, 400, "invalid_request"},
		{"company: unknown field", "POST", "/api/v1/admin/companies", `{"slug":"ok1","name":"X","pin_length":6}`, nil, op, 400, "invalid_json"},
		{"company: too large", "POST", "/api/v1/admin/companies", `{"slug":"ok1","name":"` + big + `"}`, nil, op, 413, "too_large"},
		{"company: taken", "POST", "/api/v1/admin/companies", `{"slug":"acme","name":"Other"}`, nil, op, 409, "exists"},
		{"patch: unknown company", "PATCH", "/api/v1/admin/companies/nope", `{"name":"X"}`, nil, op, 404, "not_found"},
		{"patch: bad slug in path", "PATCH", "/api/v1/admin/companies/a.b", `{"name":"X"}`, nil, op, 404, "not_found"},
		{"patch: PIN length 5, with a valid name", "PATCH", "/api/v1/admin/companies/acme", `{"name":"New","pin_length":5}`, nil, op, 400, "invalid_request"},
		{"patch: PIN length 11", "PATCH", "/api/v1/admin/companies/acme", `{"pin_length":11}`, nil, op, 400, "invalid_request"},
		{"patch: PIN length string", "PATCH", "/api/v1/admin/companies/acme", `{"pin_length":"6"}`, nil, op, 400, "invalid_json"},
		{"patch: PIN length fraction", "PATCH", "/api/v1/admin/companies/acme", `{"pin_length":6.5}`, nil, op, 400, "invalid_json"},
		{"patch: negative lifetime", "PATCH", "/api/v1/admin/companies/acme", `{"pin_lifetime":-1}`, nil, op, 400, "invalid_request"},
		{"patch: huge lifetime", "PATCH", "/api/v1/admin/companies/acme", `{"pin_lifetime":99999999999}`, nil, op, 400, "invalid_request"},
		{"patch: short idle timeout", "PATCH", "/api/v1/admin/companies/acme", `{"idle_timeout":5}`, nil, op, 400, "invalid_request"},
		{"patch: long session", "PATCH", "/api/v1/admin/companies/acme", `{"max_session_length":700000}`, nil, op, 400, "invalid_request"},
		{"patch: short retention", "PATCH", "/api/v1/admin/companies/acme", `{"audit_retention":60}`, nil, op, 400, "invalid_request"},
		{"patch: colour name", "PATCH", "/api/v1/admin/companies/acme", `{"branding":{"colour":"blue"}}`, nil, op, 400, "invalid_request"},
		{"patch: logo javascript", "PATCH", "/api/v1/admin/companies/acme", `{"branding":{"logo_url":"javascript:alert(1)"}}`, nil, op, 400, "invalid_request"},
		{"patch: branding string", "PATCH", "/api/v1/admin/companies/acme", `{"branding":"red"}`, nil, op, 400, "invalid_json"},
		{"patch: branding unknown", "PATCH", "/api/v1/admin/companies/acme", `{"branding":{"font":"x"}}`, nil, op, 400, "invalid_json"},
		{"patch: empty name", "PATCH", "/api/v1/admin/companies/acme", `{"name":"  "}`, nil, op, 400, "invalid_request"},
		{"patch: slug", "PATCH", "/api/v1/admin/companies/acme", `{"slug":"other"}`, nil, op, 400, "invalid_json"},
		{"patch: disabled string", "PATCH", "/api/v1/admin/companies/acme", `{"disabled":"yes"}`, nil, op, 400, "invalid_json"},
		{"patch: origin with path", "PATCH", "/api/v1/admin/companies/acme", `{"allowed_origins":["https://a.test/b"]}`, nil, op, 400, "invalid_request"},
		{"patch: two objects", "PATCH", "/api/v1/admin/companies/acme", `{}{"disabled":true}`, nil, op, 400, "invalid_json"},
		{"patch: too large", "PATCH", "/api/v1/admin/companies/acme", `{"name":"` + big + `"}`, nil, op, 413, "too_large"},
		{"disable: unknown company", "DELETE", "/api/v1/admin/companies/nope", ``, nil, op, 404, "not_found"},
		{"agent: unknown company", "POST", "/api/v1/admin/companies/nope/agents", `{"email":"x@nope.test","password":"` + password + `"}`, nil, op, 404, "not_found"},
		{"agent: empty object", "POST", "/api/v1/admin/companies/acme/agents", `{}`, nil, op, 400, "invalid_request"},
		{"agent: no password", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"x@acme.test"}`, nil, op, 400, "invalid_request"},
		{"agent: short password", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"x@acme.test","password":"short"}`, nil, op, 400, "invalid_request"},
		{"agent: bad e-mail", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"X <x@acme.test>","password":"` + password + `"}`, nil, op, 400, "invalid_request"},
		{"agent: bad role", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"x@acme.test","password":"` + password + `","role":"root"}`, nil, op, 400, "invalid_request"},
		{"agent: e-mail number", "POST", "/api/v1/admin/companies/acme/agents", `{"email":1,"password":"` + password + `"}`, nil, op, 400, "invalid_json"},
		{"agent: taken e-mail", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"agent@beta.test","password":"` + password + `"}`, nil, op, 409, "exists"},
		{"agent: too large", "POST", "/api/v1/admin/companies/acme/agents", `{"email":"x@acme.test","password":"` + big + `"}`, nil, op, 413, "too_large"},
		{"agent patch: unknown agent", "PATCH", "/api/v1/admin/companies/acme/agents/a_nope", `{"name":"X"}`, nil, op, 404, "not_found"},
		{"agent patch: other company", "PATCH", "/api/v1/admin/companies/beta/agents/" + agentID, `{"name":"X"}`, nil, op, 404, "not_found"},
		{"agent patch: bad role", "PATCH", "/api/v1/admin/companies/acme/agents/" + agentID, `{"name":"New","role":"root"}`, nil, op, 400, "invalid_request"},
		{"agent patch: short password, with a valid name", "PATCH", "/api/v1/admin/companies/acme/agents/" + agentID, `{"name":"New","password":"short"}`, nil, op, 400, "invalid_request"},
		{"agent patch: disabled number", "PATCH", "/api/v1/admin/companies/acme/agents/" + agentID, `{"disabled":1}`, nil, op, 400, "invalid_json"},
		{"agent patch: e-mail", "PATCH", "/api/v1/admin/companies/acme/agents/" + agentID, `{"email":"new@acme.test"}`, nil, op, 400, "invalid_json"},
		{"key: unknown company", "POST", "/api/v1/admin/companies/nope/apikeys", `{"name":"CRM"}`, nil, op, 404, "not_found"},
		{"key: no name", "POST", "/api/v1/admin/companies/acme/apikeys", `{}`, nil, op, 400, "invalid_request"},
		{"key: name number", "POST", "/api/v1/admin/companies/acme/apikeys", `{"name":5}`, nil, op, 400, "invalid_json"},
		{"key: long name", "POST", "/api/v1/admin/companies/acme/apikeys", `{"name":"` + strings.Repeat("n", 300) + `"}`, nil, op, 400, "invalid_request"},
		{"revoke: unknown key", "DELETE", "/api/v1/admin/companies/acme/apikeys/k_nope", ``, nil, op, 404, "not_found"},
		{"revoke: other company", "DELETE", "/api/v1/admin/companies/beta/apikeys/" + keyID, ``, nil, op, 404, "not_found"},
		{"revoke: bad id", "DELETE", "/api/v1/admin/companies/acme/apikeys/a.b", ``, nil, op, 404, "not_found"},

		// A company admin's routes.
		{"admin agent: empty object", "POST", "/api/v1/agents", `{}`, admin, nil, 400, "invalid_request"},
		{"admin agent: wrong types", "POST", "/api/v1/agents", `{"email":["x"],"password":true}`, admin, nil, 400, "invalid_json"},
		{"admin agent: too large", "POST", "/api/v1/agents", `{"name":"` + big + `"}`, admin, nil, 413, "too_large"},
		{"admin patch: unknown agent", "PATCH", "/api/v1/agents/a_nope", `{}`, admin, nil, 404, "not_found"},
		{"admin patch: bad role", "PATCH", "/api/v1/agents/" + agentID, `{"role":"owner"}`, admin, nil, 400, "invalid_request"},
		{"admin patch: long name", "PATCH", "/api/v1/agents/" + agentID, `{"name":"` + strings.Repeat("n", 201) + `"}`, admin, nil, 400, "invalid_request"},
		{"admin key: empty name", "POST", "/api/v1/apikeys", `{"name":"  "}`, admin, nil, 400, "invalid_request"},
		{"admin key: unknown field", "POST", "/api/v1/apikeys", `{"name":"x","key":"tdm_mine"}`, admin, nil, 400, "invalid_json"},
		{"admin revoke: unknown", "DELETE", "/api/v1/apikeys/k_nope", ``, admin, nil, 404, "not_found"},
		{"admin company: PIN length 11", "PATCH", "/api/v1/company", `{"name":"New","pin_length":11}`, admin, nil, 400, "invalid_request"},
		{"admin company: disabled", "PATCH", "/api/v1/company", `{"disabled":true}`, admin, nil, 400, "invalid_json"},
		{"admin company: blank name", "PATCH", "/api/v1/company", `{"name":"   "}`, admin, nil, 400, "invalid_request"},
		{"admin company: array", "PATCH", "/api/v1/company", `[]`, admin, nil, 400, "invalid_json"},
		{"admin company: too large", "PATCH", "/api/v1/company", `{"allowed_origins":["` + big + `"]}`, admin, nil, 413, "too_large"},
	}
	before := e.snapshot(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(t, tt.client, tt.method, tt.path, tt.body, tt.hdr).wantError(t, tt.status, tt.code)
		})
	}
	e.wantUnchanged(t, before)
}
