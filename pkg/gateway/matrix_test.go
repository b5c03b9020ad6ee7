package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// Who may call a route.
type routeClass int

const (
	classPublic     routeClass = iota + 1 // anyone
	classViewer                           // the session's customer (role=customer) or a logged-in agent of its company (role=agent)
	classCustomer                         // the session's customer only (the tandem_customer cookie)
	classCaller                           // a logged-in agent of any role, or an API key
	classAgent                            // a logged-in agent of any role
	classSupervisor                       // a logged-in supervisor or admin
	classAdmin                            // a logged-in admin: their own company
	classOperator                         // the operator token
)

// routeCase is one route of the matrix: who may call it, a request that an
// admitted caller makes without harm (an invalid body for routes that
// create, a no-op for routes that change), and the status it gets.
type routeCase struct {
	class   routeClass
	path    string // with the ids of the objects of acme (or gamma for the platform)
	body    string
	allowed int
}

// callerKind is one kind of caller of the matrix.
type callerKind struct {
	name   string
	client *http.Client
	hdr    map[string]string
}

// The ids the matrix fills into paths.
type matrixIDs struct {
	active, waiting   string // acme's sessions: the customer's (joined) and one to end
	target, victimKey string // an acme agent to rename and an acme key to revoke
	gammaAgent        string // the platform routes act on company gamma
	gammaKey          string
}

// routeTable classifies every /api/v1 route of the router. A route missing
// here fails TestRoleRouteMatrix until someone decides who may call it.
func routeTable(ids matrixIDs) map[string]routeCase {
	return map[string]routeCase{
		"POST /api/v1/auth/login":                          {classPublic, "/api/v1/auth/login", `{}`, 400},
		"POST /api/v1/auth/logout":                         {classPublic, "/api/v1/auth/logout", ``, 204},
		"GET /api/v1/auth/me":                              {classAgent, "/api/v1/auth/me", ``, 200},
		"POST /api/v1/sessions":                            {classCaller, "/api/v1/sessions", `{}`, 400},
		"GET /api/v1/sessions":                             {classCaller, "/api/v1/sessions", ``, 200},
		"GET /api/v1/sessions/:id":                         {classCaller, "/api/v1/sessions/" + ids.active, ``, 200},
		"DELETE /api/v1/sessions/:id":                      {classCaller, "/api/v1/sessions/" + ids.waiting, ``, 200},
		"GET /api/v1/sessions/:id/audit":                   {classCaller, "/api/v1/sessions/" + ids.active + "/audit", ``, 200},
		"GET /api/v1/sessions/:id/ws":                      {classViewer, "/api/v1/sessions/" + ids.active + "/ws", ``, http.StatusUpgradeRequired},
		"GET /api/v1/sessions/:id/consent":                 {classCustomer, "/api/v1/sessions/" + ids.active + "/consent", ``, 200},
		"POST /api/v1/sessions/:id/consent":                {classCustomer, "/api/v1/sessions/" + ids.active + "/consent", ``, 200},
		"POST /api/v1/sessions/:id/admit":                  {classAgent, "/api/v1/sessions/" + ids.active + "/admit", ``, 200},
		"GET /api/v1/companies/:slug/embed":                {classPublic, "/api/v1/companies/acme/embed", ``, http.StatusForbidden}, // no Origin header
		"POST /api/v1/join":                                {classPublic, "/api/v1/join", `{"company":1}`, 400},
		"GET /api/v1/companies/:slug":                      {classPublic, "/api/v1/companies/acme", ``, 200},
		"GET /api/v1/openapi.json":                         {classPublic, "/api/v1/openapi.json", ``, 200},
		"GET /api/v1/agents":                               {classAdmin, "/api/v1/agents", ``, 200},
		"POST /api/v1/agents":                              {classAdmin, "/api/v1/agents", `{}`, 400},
		"PATCH /api/v1/agents/:id":                         {classAdmin, "/api/v1/agents/" + ids.target, `{"name":"Target"}`, 200},
		"GET /api/v1/apikeys":                              {classAdmin, "/api/v1/apikeys", ``, 200},
		"POST /api/v1/apikeys":                             {classAdmin, "/api/v1/apikeys", `{}`, 400},
		"DELETE /api/v1/apikeys/:id":                       {classAdmin, "/api/v1/apikeys/" + ids.victimKey, ``, 200},
		"GET /api/v1/company":                              {classAdmin, "/api/v1/company", ``, 200},
		"PATCH /api/v1/company":                            {classAdmin, "/api/v1/company", `{}`, 200},
		"POST /api/v1/admin/companies":                     {classOperator, "/api/v1/admin/companies", `{}`, 400},
		"GET /api/v1/admin/companies":                      {classOperator, "/api/v1/admin/companies", ``, 200},
		"GET /api/v1/admin/companies/:slug":                {classOperator, "/api/v1/admin/companies/gamma", ``, 200},
		"PATCH /api/v1/admin/companies/:slug":              {classOperator, "/api/v1/admin/companies/gamma", `{}`, 200},
		"DELETE /api/v1/admin/companies/:slug":             {classOperator, "/api/v1/admin/companies/gamma", ``, 200},
		"GET /api/v1/admin/companies/:slug/agents":         {classOperator, "/api/v1/admin/companies/gamma/agents", ``, 200},
		"POST /api/v1/admin/companies/:slug/agents":        {classOperator, "/api/v1/admin/companies/gamma/agents", `{}`, 400},
		"PATCH /api/v1/admin/companies/:slug/agents/:id":   {classOperator, "/api/v1/admin/companies/gamma/agents/" + ids.gammaAgent, `{"name":"Gamma agent"}`, 200},
		"GET /api/v1/admin/companies/:slug/apikeys":        {classOperator, "/api/v1/admin/companies/gamma/apikeys", ``, 200},
		"POST /api/v1/admin/companies/:slug/apikeys":       {classOperator, "/api/v1/admin/companies/gamma/apikeys", `{}`, 400},
		"DELETE /api/v1/admin/companies/:slug/apikeys/:id": {classOperator, "/api/v1/admin/companies/gamma/apikeys/" + ids.gammaKey, ``, 200},
	}
}

// apiRoutes lists "METHOD /path" of every /api/v1 route of the router,
// leaving out the catch-all that answers unknown paths.
func apiRoutes(g *Gateway) []string {
	var out []string
	for _, r := range g.echo.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || strings.HasSuffix(r.Path, "*") || r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// expected is the status a caller kind gets on a route of a class: the
// route's allowed status, or the denial. An admin of another company is
// admitted where its role is, and then finds none of acme's objects.
func expected(kind string, rc routeCase, namesObject bool) int {
	admitted := map[routeClass][]string{
		classPublic:     {"anonymous", "customer", "agent", "supervisor", "admin", "apikey", "operator", "other-admin"},
		classViewer:     {"customer", "agent", "supervisor", "admin", "other-admin"},
		classCustomer:   {"customer"},
		classCaller:     {"agent", "supervisor", "admin", "apikey", "other-admin"},
		classAgent:      {"agent", "supervisor", "admin", "other-admin"},
		classSupervisor: {"supervisor", "admin", "other-admin"},
		classAdmin:      {"admin", "other-admin"},
		classOperator:   {"operator"},
	}[rc.class]
	switch {
	case slices.Contains(admitted, kind):
		if kind == "other-admin" && namesObject && rc.class != classPublic {
			return http.StatusNotFound
		}
		return rc.allowed
	case rc.class == classOperator, rc.class == classCustomer:
		return http.StatusUnauthorized
	case kind == "anonymous" || kind == "customer" || kind == "operator":
		return http.StatusUnauthorized
	default: // authenticated as an agent or a key, but not enough
		return http.StatusForbidden
	}
}

// TestRoleRouteMatrix calls every /api/v1 route of the router as every kind
// of caller and checks the status: allowed, or denied with 401, 403 or 404,
// and a denial carries nothing but the error.
func TestRoleRouteMatrix(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	e.g.limiter.mu.Lock()
	e.g.limiter.budgets["operator"] = 1 << 20 // the matrix fails the operator check on purpose, often
	e.g.limiter.mu.Unlock()

	// acme: the customer's session, one to end, people of every role, a key to revoke.
	active := e.createSession(t, e.keyA)
	waiting := e.createSession(t, e.keyA)
	<-e.leases
	<-e.leases
	jar, _ := cookiejar.New(nil)
	customer := &http.Client{Jar: jar}
	if r := e.do(t, customer, "POST", "/api/v1/join", `{"company":"acme","pin":"`+active["pin"].(string)+`"}`, nil); r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	e.addAgent(t, "acme", "sup@acme.test", tenant.RoleSupervisor)
	e.addAgent(t, "acme", "admin@acme.test", tenant.RoleAdmin)
	e.addAgent(t, "beta", "admin@beta.test", tenant.RoleAdmin)
	target := e.addAgent(t, "acme", "target@acme.test", tenant.RoleAgent)
	victim, _, err := e.store.CreateAPIKey(ctx, "acme", "victim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateCompany(ctx, tenant.Company{Slug: "gamma", Name: "Gamma"}); err != nil {
		t.Fatal(err)
	}
	gammaAgent := e.addAgent(t, "gamma", "agent@gamma.test", tenant.RoleAgent)
	gammaKey, _, err := e.store.CreateAPIKey(ctx, "gamma", "gamma")
	if err != nil {
		t.Fatal(err)
	}
	ids := matrixIDs{
		active: active["id"].(string), waiting: waiting["id"].(string),
		target: target.ID, victimKey: victim.ID, gammaAgent: gammaAgent.ID, gammaKey: gammaKey.ID,
	}
	callers := []callerKind{
		{name: "anonymous"},
		{name: "customer", client: customer},
		{name: "agent", client: e.agentClient(t, "acme")},
		{name: "supervisor", client: e.loginAs(t, "sup@acme.test", password)},
		{name: "admin", client: e.loginAs(t, "admin@acme.test", password)},
		{name: "apikey", hdr: bearer(e.keyA)},
		{name: "operator", hdr: operator()},
		{name: "other-admin", client: e.loginAs(t, "admin@beta.test", password)},
	}
	// What an answer to someone outside acme must never carry.
	acmeSecrets := []string{ids.active, ids.waiting, target.ID, victim.ID, "target@acme.test", "agent@acme.test", `"acme"`, "ACME"}

	table := routeTable(ids)
	routes := apiRoutes(e.g)
	for _, rt := range routes {
		if _, ok := table[rt]; !ok {
			t.Errorf("route %s is not classified in routeTable: decide who may call it", rt)
		}
	}
	for rt := range table {
		if !slices.Contains(routes, rt) {
			t.Errorf("routeTable lists %s, which the router does not have", rt)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Logging out ends the callers' logins: that route goes last.
	slices.SortStableFunc(routes, func(a, b string) int {
		return boolInt(a == "POST /api/v1/auth/logout") - boolInt(b == "POST /api/v1/auth/logout")
	})
	for _, rt := range routes {
		rc := table[rt]
		method, _, _ := strings.Cut(rt, " ")
		namesObject := strings.Contains(rt, "/:")
		for _, k := range callers {
			t.Run(rt+"/"+k.name, func(t *testing.T) {
				path := rc.path
				if rc.class == classViewer {
					path += map[bool]string{true: "?role=customer", false: "?role=agent"}[k.name == "customer"]
				}
				r := e.do(t, k.client, method, path, rc.body, k.hdr)
				want := expected(k.name, rc, namesObject)
				if r.Status != want {
					t.Fatalf("%s %s as %s = %d %s, want %d", method, path, k.name, r.Status, r.Body, want)
				}
				if want == http.StatusUnauthorized || want == http.StatusForbidden || want == http.StatusNotFound {
					var m map[string]any
					if err := json.Unmarshal(r.Body, &m); err != nil || len(m) != 2 || m["error"] == nil || m["message"] == nil {
						t.Errorf("denial body %s, want exactly {error, message}", r.Body)
					}
				}
				if k.name == "other-admin" || want >= 400 {
					for _, s := range acmeSecrets {
						if rc.class != classPublic && bytes.Contains(r.Body, []byte(s)) {
							t.Errorf("answer to %s carries acme's %s: %s", k.name, s, r.Body)
						}
					}
				}
			})
		}
	}
	// The harmless requests harmed nothing else: only gamma was disabled,
	// and no agent of acme or beta.
	for _, slug := range []string{"acme", "beta"} {
		co, _ := e.store.GetCompany(ctx, slug)
		as, _ := e.store.ListAgents(ctx, slug)
		for _, a := range as {
			if a.Disabled {
				t.Errorf("agent %s of %s was disabled", a.Email, slug)
			}
		}
		if co.Disabled {
			t.Errorf("company %s was disabled", slug)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
