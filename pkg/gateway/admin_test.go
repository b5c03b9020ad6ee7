package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// operator is the header of the operator's calls.
func operator() map[string]string { return bearer(operatorToken) }

// addAgent stores an agent of company with role and the test password.
func (e *env) addAgent(t *testing.T, company, email string, role tenant.Role) tenant.Agent {
	t.Helper()
	a, err := e.store.CreateAgent(context.Background(), company, email, "Name of "+email, password, role)
	if err != nil {
		t.Fatalf("CreateAgent(%s, %s): %v", company, email, err)
	}
	return a
}

// loginAs logs an agent in and returns a client that carries the cookie.
func (e *env) loginAs(t *testing.T, email, pw string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	if r := e.do(t, c, "POST", "/api/v1/auth/login", string(body), nil); r.Status != 200 {
		t.Fatalf("login as %s: %d %s", email, r.Status, r.Body)
	}
	return c
}

// storeState is everything the management routes can change.
type storeState struct {
	Companies []tenant.Company
	Agents    map[string][]tenant.Agent
	Keys      map[string][]tenant.APIKey
	Sessions  map[string][]tenant.Session
}

func (e *env) snapshot(t *testing.T) storeState {
	t.Helper()
	ctx := context.Background()
	cs, err := e.store.ListCompanies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := storeState{Companies: cs, Agents: map[string][]tenant.Agent{}, Keys: map[string][]tenant.APIKey{}, Sessions: map[string][]tenant.Session{}}
	for _, c := range cs {
		if st.Agents[c.Slug], err = e.store.ListAgents(ctx, c.Slug); err != nil {
			t.Fatal(err)
		}
		if st.Keys[c.Slug], err = e.store.ListAPIKeys(ctx, c.Slug); err != nil {
			t.Fatal(err)
		}
		if st.Sessions[c.Slug], err = e.store.ListSessions(ctx, c.Slug); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func (e *env) wantUnchanged(t *testing.T, before storeState) {
	t.Helper()
	if d := cmp.Diff(before, e.snapshot(t)); d != "" {
		t.Errorf("the store changed (-before +after):\n%s", d)
	}
}

func TestPlatformRoutesOffWithoutToken(t *testing.T) {
	e := newEnv(t, false)
	g := New(Config{}, e.store, e.nc, prometheus.NewRegistry(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	before := e.snapshot(t)
	n := 0
	for _, r := range g.echo.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/admin/") {
			continue
		}
		n++
		path := strings.NewReplacer(":slug", "acme", ":id", "a_x").Replace(r.Path)
		for _, hdr := range []map[string]string{nil, operator(), bearer("")} {
			req, _ := http.NewRequest(r.Method, srv.URL+path, strings.NewReader(`{"slug":"x1","name":"X","email":"x@x.test","password":"long enough","disabled":true}`))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body apiError
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 404 || body.Code != "not_found" {
				t.Errorf("%s %s with %v = %d %+v, want 404 not_found", r.Method, path, hdr, resp.StatusCode, body)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d platform routes found in the router", n)
	}
	e.wantUnchanged(t, before)
}

func TestOperatorToken(t *testing.T) {
	e := newEnv(t, false)
	for name, hdr := range map[string]map[string]string{
		"none":             nil,
		"empty":            bearer(""),
		"wrong":            bearer("operator-token-for-tests-012345678X"),
		"prefix":           bearer(operatorToken[:10]),
		"longer":           bearer(operatorToken + "x"),
		"lower-case basic": {"Authorization": "bearer " + operatorToken},
		"api key":          bearer(e.keyA),
	} {
		t.Run(name, func(t *testing.T) {
			e.do(t, nil, "GET", "/api/v1/admin/companies", "", hdr).wantError(t, 401, "unauthenticated")
		})
	}
	if r := e.do(t, nil, "GET", "/api/v1/admin/companies", "", operator()); r.Status != 200 {
		t.Fatalf("operator list = %d %s", r.Status, r.Body)
	}
	// The operator token is not a credential anywhere else.
	e.do(t, nil, "GET", "/api/v1/sessions", "", operator()).wantError(t, 401, "unauthenticated")
	e.do(t, nil, "GET", "/api/v1/agents", "", operator()).wantError(t, 401, "unauthenticated")

	// Guessing the token spends the network's failure budget.
	get := func(remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/admin/companies", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		e.g.Handler().ServeHTTP(rec, req)
		return rec
	}
	limited := false
	for range 40 {
		if rec := get("203.0.113.7:4000", "guess"); rec.Code == http.StatusTooManyRequests {
			limited = rec.Header().Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Fatal("40 wrong operator tokens were never refused with 429 and Retry-After")
	}
	if rec := get("203.0.113.8:4000", operatorToken); rec.Code != http.StatusTooManyRequests {
		t.Errorf("same /24 with the right token = %d, want 429", rec.Code)
	}
	if rec := get("198.51.100.1:4000", operatorToken); rec.Code != http.StatusOK {
		t.Errorf("another network = %d, want 200", rec.Code)
	}
}

func TestOperatorManagesCompanies(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()

	r := e.do(t, nil, "POST", "/api/v1/admin/companies", `{"slug":"gamma","name":" Gamma Ltd ","allowed_origins":["https://Shop.Gamma.test"]}`, operator())
	if r.Status != 201 {
		t.Fatalf("create company = %d %s", r.Status, r.Body)
	}
	var co companyJSON
	if err := json.Unmarshal(r.Body, &co); err != nil {
		t.Fatal(err)
	}
	if co.Slug != "gamma" || co.Name != "Gamma Ltd" || !cmp.Equal(co.AllowedOrigins, []string{"https://shop.gamma.test"}) || co.Disabled || co.CreatedAt.IsZero() {
		t.Errorf("created company = %+v", co)
	}
	e.do(t, nil, "POST", "/api/v1/admin/companies", `{"slug":"gamma","name":"Again"}`, operator()).wantError(t, 409, "exists")

	r = e.do(t, nil, "PATCH", "/api/v1/admin/companies/gamma", `{"name":"Gamma","branding":{"name":"Gamma Help","colour":"#00AA11","logo_url":"https://cdn.gamma.test/l.png"},
		"pin_length":8,"pin_lifetime":300,"idle_timeout":900,"max_session_length":7200,"agent_must_admit":true,"audit_retention":2592000}`, operator())
	if r.Status != 200 {
		t.Fatalf("patch company = %d %s", r.Status, r.Body)
	}
	stored, err := e.store.GetCompany(ctx, "gamma")
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Company{
		Slug: "gamma", Name: "Gamma", AllowedOrigins: []string{"https://shop.gamma.test"},
		Branding:  tenant.Branding{Name: "Gamma Help", Colour: "#00aa11", LogoURL: "https://cdn.gamma.test/l.png"},
		PINLength: 8, PINLifetime: 5 * time.Minute, IdleTimeout: 15 * time.Minute, MaxSessionLength: 2 * time.Hour,
		AgentMustAdmit: true, AuditRetention: 30 * 24 * time.Hour, CreatedAt: co.CreatedAt,
	}
	if d := cmp.Diff(want, stored); d != "" {
		t.Errorf("stored company (-want +got):\n%s", d)
	}
	if err := json.Unmarshal(r.Body, &co); err != nil || co.PINLifetime != 300 || co.Branding.Colour != "#00aa11" {
		t.Errorf("patch answer = %s", r.Body)
	}
	// The audit stream keeps records as long as the company now says.
	if got, err := e.audit.Retention(ctx, "gamma"); err != nil || got != 30*24*time.Hour {
		t.Errorf("audit retention of gamma = %v, %v; want 720h", got, err)
	}
	// A partial branding change keeps the other branding fields.
	r = e.do(t, nil, "PATCH", "/api/v1/admin/companies/gamma", `{"branding":{"colour":"#ffffff"}}`, operator())
	if err := json.Unmarshal(r.Body, &co); err != nil || co.Branding != (brandingJSON{Name: "Gamma Help", Colour: "#ffffff", LogoURL: "https://cdn.gamma.test/l.png"}) {
		t.Errorf("partial branding patch = %d %s", r.Status, r.Body)
	}
	r = e.do(t, nil, "GET", "/api/v1/admin/companies", "", operator())
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"slug":"gamma"`)) || !bytes.Contains(r.Body, []byte(`"slug":"acme"`)) {
		t.Errorf("list companies = %d %s", r.Status, r.Body)
	}

	// The first admin, and an API key.
	r = e.do(t, nil, "POST", "/api/v1/admin/companies/gamma/agents", `{"email":"Boss@Gamma.test","name":"Boss","password":"`+password+`","role":"admin"}`, operator())
	if r.Status != 201 || bytes.Contains(r.Body, []byte("password")) {
		t.Fatalf("create agent = %d %s", r.Status, r.Body)
	}
	var boss managedAgentJSON
	_ = json.Unmarshal(r.Body, &boss)
	if boss.Email != "boss@gamma.test" || boss.Role != tenant.RoleAdmin || boss.Company != "gamma" {
		t.Errorf("created agent = %+v", boss)
	}
	bossClient := e.loginAs(t, "boss@gamma.test", password)
	r = e.do(t, nil, "POST", "/api/v1/admin/companies/gamma/apikeys", `{"name":"CRM"}`, operator())
	var key struct {
		ID, Key string
	}
	if err := json.Unmarshal(r.Body, &key); r.Status != 201 || err != nil || !strings.HasPrefix(key.Key, tenant.APIKeyPrefix) || key.ID == "" {
		t.Fatalf("create key = %d %s", r.Status, r.Body)
	}
	if r := e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(key.Key)); r.Status != 200 {
		t.Errorf("the new key does not work: %d %s", r.Status, r.Body)
	}
	r = e.do(t, nil, "GET", "/api/v1/admin/companies/gamma/apikeys", "", operator())
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(key.ID)) || bytes.Contains(r.Body, []byte(key.Key)) || bytes.Contains(r.Body, []byte("hash")) {
		t.Errorf("list keys = %d %s; want the key without its secret", r.Status, r.Body)
	}
	r = e.do(t, nil, "GET", "/api/v1/admin/companies/gamma/agents", "", operator())
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(boss.ID)) || bytes.Contains(r.Body, []byte("hash")) || bytes.Contains(r.Body, []byte("argon")) {
		t.Errorf("list agents = %d %s", r.Status, r.Body)
	}

	// A live session, then the company is disabled: the session ends, the
	// worker is told, logins and keys stop, the join page forgets it, and
	// every record is still there.
	s := e.createSession(t, key.Key)
	<-e.leases
	ends := make(chan worker.EndRequest, 4)
	sub, err := e.nc.Subscribe(worker.EndSubject("w_test"), func(m *nats.Msg) {
		var req worker.EndRequest
		_ = json.Unmarshal(m.Data, &req)
		ends <- req
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	r = e.do(t, nil, "DELETE", "/api/v1/admin/companies/gamma", "", operator())
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"disabled":true`)) {
		t.Fatalf("disable = %d %s", r.Status, r.Body)
	}
	select {
	case req := <-ends:
		if req.Company != "gamma" || req.SessionID != s["id"] || req.Reason != reasonCompanyDisabled {
			t.Errorf("end request = %+v", req)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker was not asked to end the disabled company's session")
	}
	if got, _ := e.store.GetSession(ctx, "gamma", s["id"].(string)); got.State != tenant.SessionEnded || got.EndReason != reasonCompanyDisabled {
		t.Errorf("session after disable = %s %s", got.State, got.EndReason)
	}
	e.do(t, bossClient, "GET", "/api/v1/agents", "", nil).wantError(t, 401, "unauthenticated")
	e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(key.Key)).wantError(t, 401, "unauthenticated")
	e.do(t, nil, "POST", "/api/v1/auth/login", `{"email":"boss@gamma.test","password":"`+password+`"}`, nil).wantError(t, 401, "invalid_credentials")
	e.do(t, nil, "GET", "/api/v1/companies/gamma", "", nil).wantError(t, 404, "not_found")
	if as, _ := e.store.ListAgents(ctx, "gamma"); len(as) != 1 {
		t.Errorf("agents after disable = %v, want kept", as)
	}
	if r := e.do(t, nil, "DELETE", "/api/v1/admin/companies/gamma", "", operator()); r.Status != 200 {
		t.Errorf("disabling again = %d %s", r.Status, r.Body)
	}

	// Enabled again, everything works as before.
	if r := e.do(t, nil, "PATCH", "/api/v1/admin/companies/gamma", `{"disabled":false}`, operator()); r.Status != 200 {
		t.Fatalf("enable = %d %s", r.Status, r.Body)
	}
	bossClient = e.loginAs(t, "boss@gamma.test", password)
	if r := e.do(t, bossClient, "GET", "/api/v1/company", "", nil); r.Status != 200 || !bytes.Contains(r.Body, []byte(`"pin_length":8`)) {
		t.Errorf("own company after enabling = %d %s", r.Status, r.Body)
	}

	// The operator disables an agent and revokes the key.
	if r := e.do(t, nil, "PATCH", "/api/v1/admin/companies/gamma/agents/"+boss.ID, `{"disabled":true}`, operator()); r.Status != 200 {
		t.Fatalf("disable agent = %d %s", r.Status, r.Body)
	}
	e.do(t, bossClient, "GET", "/api/v1/company", "", nil).wantError(t, 401, "unauthenticated")
	r = e.do(t, nil, "DELETE", "/api/v1/admin/companies/gamma/apikeys/"+key.ID, "", operator())
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"revoked":true`)) {
		t.Fatalf("revoke = %d %s", r.Status, r.Body)
	}
	e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(key.Key)).wantError(t, 401, "unauthenticated")

	// Objects of one company are not found under another.
	e.do(t, nil, "PATCH", "/api/v1/admin/companies/acme/agents/"+boss.ID, `{"name":"x"}`, operator()).wantError(t, 404, "not_found")
	e.do(t, nil, "DELETE", "/api/v1/admin/companies/acme/apikeys/"+key.ID, "", operator()).wantError(t, 404, "not_found")
	e.do(t, nil, "GET", "/api/v1/admin/companies/nope/agents", "", operator()).wantError(t, 404, "not_found")
}
