package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

type env struct {
	g      *Gateway
	srv    *httptest.Server
	store  *tenant.Store
	nc     *nats.Conn
	keyA   string
	keyB   string
	leases chan worker.LeaseRequest
	gates  chan worker.Gate // what the worker stand-in was told (consent.go); full: dropped
	audit  *audit.Log
	dir    string // the embedded NATS server's store
}

const (
	password      = "correct horse battery"
	operatorToken = "operator-token-for-tests-0123456789"
)

// newEnv starts a real embedded NATS, the store, and the gateway with two
// companies. With a worker stand-in, lease requests are answered by a NATS
// responder that records them (the media side is tested in pkg/worker and
// end to end in cmd/tandem).
func newEnv(t *testing.T, withWorker bool) *env {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx := context.Background()
	dir := t.TempDir()
	b, err := bus.Start(ctx, bus.Config{Dir: dir, Port: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	store, err := tenant.Open(ctx, b.JetStream(), tenant.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	auditLog, err := audit.Open(ctx, b.JetStream(), audit.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, nc: b.Conn(), leases: make(chan worker.LeaseRequest, 16), gates: make(chan worker.Gate, 16),
		audit: auditLog, dir: dir}
	for _, c := range []string{"acme", "beta"} {
		if _, err := store.CreateCompany(ctx, tenant.Company{Slug: c, Name: strings.ToUpper(c)}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateAgent(ctx, c, "agent@"+c+".test", "Agent "+c, password, tenant.RoleAgent); err != nil {
			t.Fatal(err)
		}
		_, key, err := store.CreateAPIKey(ctx, c, "test")
		if err != nil {
			t.Fatal(err)
		}
		if c == "acme" {
			e.keyA = key
		} else {
			e.keyB = key
		}
	}
	if withWorker {
		sub, err := b.Conn().Subscribe(worker.SubjectLease, func(m *nats.Msg) {
			var req worker.LeaseRequest
			_ = json.Unmarshal(m.Data, &req)
			e.leases <- req
			_ = m.Respond([]byte(`{"worker_id":"w_test"}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		gates, err := b.Conn().Subscribe(worker.GateSubject("w_test"), func(m *nats.Msg) {
			var g worker.Gate
			_ = json.Unmarshal(m.Data, &g)
			select {
			case e.gates <- g:
			default:
			}
			_ = m.Respond([]byte(`{}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gates.Unsubscribe() })
	}
	e.g = New(Config{AdminToken: operatorToken, Audit: auditLog}, store, b.Conn(), prometheus.NewRegistry(), log)
	e.srv = httptest.NewServer(e.g.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.Body, err)
	}
	return m
}

func (r reply) wantError(t *testing.T, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	m := r.json(t)
	if m["error"] != code || m["message"] == "" || m["message"] == nil {
		t.Fatalf("body %s, want error %q with a message", r.Body, code)
	}
}

func (e *env) do(t *testing.T, c *http.Client, method, path, body string, hdr map[string]string) reply {
	t.Helper()
	if c == nil {
		c = e.srv.Client()
	}
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func bearer(k string) map[string]string { return map[string]string{"Authorization": "Bearer " + k} }

func (e *env) agentClient(t *testing.T, company string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	r := e.do(t, c, "POST", "/api/v1/auth/login", `{"email":"agent@`+company+`.test","password":"`+password+`"}`, nil)
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return c
}

func (e *env) createSession(t *testing.T, key string) map[string]any {
	t.Helper()
	r := e.do(t, nil, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/shop"}`, bearer(key))
	if r.Status != http.StatusCreated {
		t.Fatalf("create session: %d %s", r.Status, r.Body)
	}
	return r.json(t)
}

func TestLoginLogoutMe(t *testing.T) {
	e := newEnv(t, false)
	e.do(t, nil, "POST", "/api/v1/auth/login", `{"email":"agent@acme.test","password":"wrong password"}`, nil).wantError(t, 401, "invalid_credentials")
	e.do(t, nil, "POST", "/api/v1/auth/login", `{"email":"nobody@acme.test","password":"wrong password"}`, nil).wantError(t, 401, "invalid_credentials")
	e.do(t, nil, "GET", "/api/v1/auth/me", "", nil).wantError(t, 401, "unauthenticated")
	c := e.agentClient(t, "acme")
	r := e.do(t, c, "GET", "/api/v1/auth/me", "", nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"slug":"acme"`)) {
		t.Fatalf("me = %d %s", r.Status, r.Body)
	}
	if bytes.Contains(r.Body, []byte("password")) {
		t.Errorf("me leaks the password hash: %s", r.Body)
	}
	if r := e.do(t, c, "POST", "/api/v1/auth/logout", "", nil); r.Status != 204 {
		t.Fatalf("logout = %d", r.Status)
	}
	e.do(t, c, "GET", "/api/v1/auth/me", "", nil).wantError(t, 401, "unauthenticated")
}

func TestBadRequestsGetJSONErrors(t *testing.T) {
	e := newEnv(t, true)
	key := bearer(e.keyA)
	big := `{"start_url":"https://example.com/` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"no credentials", "POST", "/api/v1/sessions", `{"start_url":"https://example.com/"}`, nil, 401, "unauthenticated"},
		{"bad api key", "POST", "/api/v1/sessions", `{"start_url":"https://example.com/"}`, bearer("tdm_nope"), 401, "unauthenticated"},
		{"not json", "POST", "/api/v1/sessions", `start_url=x`, key, 400, "invalid_json"},
		{"empty body", "POST", "/api/v1/sessions", ``, key, 400, "invalid_json"},
		{"unknown field", "POST", "/api/v1/sessions", `{"start_url":"https://example.com/","x":1}`, key, 400, "invalid_json"},
		{"wrong type", "POST", "/api/v1/sessions", `{"start_url":42}`, key, 400, "invalid_json"},
		{"two objects", "POST", "/api/v1/sessions", `{"start_url":"https://a.test/"}{}`, key, 400, "invalid_json"},
		{"missing url", "POST", "/api/v1/sessions", `{}`, key, 400, "invalid_start_url"},
		{"relative url", "POST", "/api/v1/sessions", `{"start_url":"/shop"}`, key, 400, "invalid_start_url"},
		{"file url", "POST", "/api/v1/sessions", `{"start_url":"file:///etc/passwd"}`, key, 400, "invalid_start_url"},
		{"javascript url", "POST", "/api/v1/sessions", `{"start_url":"javascript:alert(1)"}`, key, 400, "invalid_start_url"},
		{"credentials in url", "POST", "/api/v1/sessions", `{"start_url":"https://u:p@example.com/"}`, key, 400, "invalid_start_url"},
		{"too large", "POST", "/api/v1/sessions", big, key, 413, "too_large"},
		{"unknown route", "GET", "/api/v1/nothing", "", nil, 404, "not_found"},
		{"wrong method", "PUT", "/api/v1/join", `{}`, nil, 405, "method_not_allowed"},
		{"bad session id", "GET", "/api/v1/sessions/..%2f", "", key, 404, "not_found"},
		{"unknown session", "GET", "/api/v1/sessions/s_unknown", "", key, 404, "not_found"},
		{"join without body", "POST", "/api/v1/join", ``, nil, 400, "invalid_json"},
		{"join wrong type", "POST", "/api/v1/join", `{"company":"acme","pin":123456}`, nil, 400, "invalid_json"},
		{"ws bad role", "GET", "/api/v1/sessions/s_abc/ws?role=admin", "", nil, 400, "invalid_role"},
		{"ws no cookie", "GET", "/api/v1/sessions/s_abc/ws?role=customer", "", nil, 401, "unauthenticated"},
		{"unknown company", "GET", "/api/v1/companies/nope", "", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(t, nil, tt.method, tt.path, tt.body, tt.hdr).wantError(t, tt.status, tt.code)
		})
	}
	// Nothing was stored by any of them.
	list, err := e.store.ListSessions(context.Background(), "acme")
	if err != nil || len(list) != 0 {
		t.Fatalf("sessions after bad requests = %v, %v; want none", list, err)
	}
}

func TestNoWorkerAnswers503(t *testing.T) {
	e := newEnv(t, false)
	e.g.cfg.LeaseTimeout = time.Second
	e.do(t, nil, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/"}`, bearer(e.keyA)).wantError(t, 503, "no_capacity")
	list, _ := e.store.ListSessions(context.Background(), "acme")
	if len(list) != 1 || list[0].State != tenant.SessionEnded || list[0].PIN != "" {
		t.Fatalf("sessions = %+v; want the one attempt recorded as ended, without a PIN", list)
	}
}

func TestCreateSessionContract(t *testing.T) {
	e := newEnv(t, true)
	s := e.createSession(t, e.keyA)
	for _, k := range []string{"id", "pin", "join_url", "agent_url", "expires_at"} {
		if s[k] == nil || s[k] == "" {
			t.Errorf("create answer lacks %q: %v", k, s)
		}
	}
	if s["join_url"] != e.srv.URL+"/join/acme" || s["agent_url"] != e.srv.URL+"/agent/s/"+s["id"].(string) {
		t.Errorf("links = %v, %v", s["join_url"], s["agent_url"])
	}
	req := <-e.leases
	if req.Company != "acme" || req.SessionID != s["id"] || req.StartURL != "https://example.com/shop" || req.JoinBy.IsZero() {
		t.Errorf("lease request = %+v", req)
	}
	// The company's limits travel with the lease.
	if _, err := e.store.UpdateCompany(context.Background(), "acme", func(c *tenant.Company) error {
		c.IdleTimeout, c.MaxSessionLength = 3*time.Minute, time.Hour
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.createSession(t, e.keyA)
	if req := <-e.leases; req.IdleTimeout != 3*time.Minute || req.MaxDuration != time.Hour {
		t.Errorf("lease request limits = %v, %v; want the company's 3m, 1h", req.IdleTimeout, req.MaxDuration)
	}
	// An agent's cookie works as well as a key, and sees the session listed.
	c := e.agentClient(t, "acme")
	r := e.do(t, c, "GET", "/api/v1/sessions", "", nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(s["id"].(string))) {
		t.Fatalf("list = %d %s", r.Status, r.Body)
	}
	// Ending it twice is fine and says ended.
	for range 2 {
		r = e.do(t, c, "DELETE", "/api/v1/sessions/"+s["id"].(string), "", nil)
		if r.Status != 200 || r.json(t)["state"] != "ended" || r.json(t)["pin"] != nil {
			t.Fatalf("end = %d %s", r.Status, r.Body)
		}
	}
}

func TestOtherCompanyGetsNotFound(t *testing.T) {
	e := newEnv(t, true)
	s := e.createSession(t, e.keyA)
	id := s["id"].(string)
	b := e.agentClient(t, "beta")
	for _, r := range []reply{
		e.do(t, nil, "GET", "/api/v1/sessions/"+id, "", bearer(e.keyB)),
		e.do(t, nil, "DELETE", "/api/v1/sessions/"+id, "", bearer(e.keyB)),
		e.do(t, b, "GET", "/api/v1/sessions/"+id, "", nil),
		e.do(t, b, "DELETE", "/api/v1/sessions/"+id, "", nil),
		e.do(t, b, "GET", "/api/v1/sessions/"+id+"/ws?role=agent", "", nil),
	} {
		r.wantError(t, 404, "not_found")
	}
	r := e.do(t, nil, "GET", "/api/v1/sessions", "", bearer(e.keyB))
	if bytes.Contains(r.Body, []byte(id)) {
		t.Fatalf("beta lists acme's session: %s", r.Body)
	}
	if got, _ := e.store.GetSession(context.Background(), "acme", id); got.State != tenant.SessionWaiting {
		t.Fatalf("acme's session is %s after beta's attempts, want waiting", got.State)
	}
}

func TestJoinAnswersEveryBadPINAlike(t *testing.T) {
	e := newEnv(t, true)
	s := e.createSession(t, e.keyA)
	pin := s["pin"].(string)
	wrong := "000000"
	if wrong == pin {
		wrong = "111111"
	}
	join := func(company, pin string, hdr map[string]string) reply {
		return e.do(t, nil, "POST", "/api/v1/join", `{"company":"`+company+`","pin":"`+pin+`"}`, hdr)
	}
	first := join("acme", wrong, nil)
	first.wantError(t, 404, "invalid_pin")
	for name, r := range map[string]reply{
		"other company":   join("beta", pin, nil),
		"unknown company": join("nope", pin, nil),
		"malformed":       join("acme", "12ab", nil),
		"too short":       join("acme", "123", nil),
	} {
		if r.Status != first.Status || !bytes.Equal(r.Body, first.Body) {
			t.Errorf("%s: %d %s, want exactly %d %s", name, r.Status, r.Body, first.Status, first.Body)
		}
	}
	ja := join("acme", wrong, map[string]string{"Accept-Language": "ja-JP,ja;q=0.9"})
	if ja.Status != 404 || !strings.Contains(ja.json(t)["message"].(string), "PIN") || bytes.Equal(ja.Body, first.Body) {
		t.Errorf("Japanese answer = %s", ja.Body)
	}

	ok := join("acme", pin, nil)
	if ok.Status != 200 || ok.json(t)["customer_url"] != e.srv.URL+"/s/"+s["id"].(string) {
		t.Fatalf("join = %d %s", ok.Status, ok.Body)
	}
	if ck := ok.Header.Get("Set-Cookie"); !strings.Contains(ck, "tandem_customer=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
		t.Errorf("customer cookie = %q", ck)
	}
	again := join("acme", pin, nil)
	if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("second redemption = %d %s, want the invalid-PIN answer", again.Status, again.Body)
	}
}

func TestJoinFailureBudget(t *testing.T) {
	e := newEnv(t, true)
	s := e.createSession(t, e.keyA)
	post := func(remote, pin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/join", strings.NewReader(`{"company":"acme","pin":"`+pin+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		e.g.Handler().ServeHTTP(rec, req)
		return rec
	}
	limited := false
	for i := range 40 {
		rec := post("203.0.113.7:4000", "99999"+string(rune('0'+i%10)))
		if rec.Code == http.StatusTooManyRequests {
			if rec.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 wrong PINs from one address were never refused")
	}
	// A neighbour in the same /24 shares the budget; the real customer elsewhere does not.
	if rec := post("203.0.113.99:4000", s["pin"].(string)); rec.Code != http.StatusTooManyRequests {
		t.Errorf("same /24 = %d, want 429", rec.Code)
	}
	if rec := post("198.51.100.20:5000", s["pin"].(string)); rec.Code != http.StatusOK {
		t.Errorf("the customer from another network = %d %s, want 200", rec.Code, rec.Body)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, false)
	if r := e.do(t, nil, "GET", "/healthz", "", nil); r.Status != 200 {
		t.Errorf("healthz = %d", r.Status)
	}
	e.do(t, nil, "GET", "/readyz", "", nil).wantError(t, 503, "not_ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := json.Marshal(worker.Status{WorkerID: "w_1", MaxSessions: 4, At: time.Now()})
		_ = e.nc.Publish("tandem.worker.w_1.status", st)
		if r := e.do(t, nil, "GET", "/readyz", "", nil); r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz never became ready after a worker heartbeat")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.do(t, nil, "GET", "/metrics", "", nil); r.Status != 200 {
		t.Errorf("metrics = %d", r.Status)
	}
}

// Behind a trusted load balancer the client is the last address in
// X-Forwarded-For that no trusted proxy added: a guesser behind the proxy
// spends its own budget, not everyone's. From anywhere else the header is
// not believed, and a forwarded value that does not parse is not either.
func TestTrustedProxies(t *testing.T) {
	e := newEnv(t, true)
	e.g.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	s := e.createSession(t, e.keyA)
	post := func(remote, forwarded, pin string) int {
		req := httptest.NewRequest("POST", "/api/v1/join", strings.NewReader(`{"company":"acme","pin":"`+pin+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		rec := httptest.NewRecorder()
		e.g.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	// The guesser, through the proxy, with a forged first hop.
	limited := false
	for i := range 40 {
		if post("10.1.1.1:4000", "192.0.2.55, 203.0.113.7", "99999"+string(rune('0'+i%10))) == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 wrong PINs through the proxy were never refused")
	}
	// Its /24 is refused whatever first hop it forges; the real customer,
	// through the same proxy, is not.
	if code := post("10.1.1.1:4000", "198.51.100.9, 203.0.113.80", "123456"); code != http.StatusTooManyRequests {
		t.Errorf("the guesser's network with another forged hop = %d, want 429", code)
	}
	if code := post("10.1.1.1:4000", "198.51.100.20", s["pin"].(string)); code != http.StatusOK {
		t.Errorf("the customer through the proxy = %d, want 200", code)
	}

	ip := func(remote, forwarded string) string {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		return e.g.clientIP(req).String()
	}
	for _, tt := range []struct{ remote, forwarded, want string }{
		{"203.0.113.7:1", "198.51.100.1", "203.0.113.7"},         // not from a proxy: the header is not believed
		{"10.0.0.2:1", "198.51.100.1, 10.0.0.3", "198.51.100.1"}, // two proxies of ours
		{"10.0.0.2:1", "not-an-address", "10.0.0.2"},             // nonsense: the proxy's own
		{"10.0.0.2:1", "", "10.0.0.2"},                           // a proxy's own request
		{"[::ffff:10.0.0.2]:1", "198.51.100.1", "198.51.100.1"},  // IPv4-mapped proxy
		{"10.0.0.2:1", "2001:db8::1", "2001:db8::1"},             // an IPv6 client
		{"10.0.0.2:1", "10.0.0.7, 10.0.0.8", "10.0.0.7"},         // only proxies: the first
	} {
		if got := ip(tt.remote, tt.forwarded); got != tt.want {
			t.Errorf("client of %s with X-Forwarded-For %q = %s, want %s", tt.remote, tt.forwarded, got, tt.want)
		}
	}
}
