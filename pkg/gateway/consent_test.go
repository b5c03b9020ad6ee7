package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

const androidUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"

// joinAs redeems pin for company with a fresh cookie jar and a User-Agent,
// and returns the customer's client.
func (e *env) joinAs(t *testing.T, company, pin, ua string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if r := e.do(t, c, "POST", "/api/v1/join", `{"company":"`+company+`","pin":"`+pin+`"}`, map[string]string{"User-Agent": ua}); r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	return c
}

// nextGate returns the next Gate the worker stand-in was told, or fails.
func (e *env) nextGate(t *testing.T) worker.Gate {
	t.Helper()
	select {
	case g := <-e.gates:
		return g
	case <-time.After(10 * time.Second):
		t.Fatal("the worker was never told about the gate")
		return worker.Gate{}
	}
}

// noGate checks that the worker stand-in was told nothing.
func (e *env) noGate(t *testing.T, when string) {
	t.Helper()
	select {
	case g := <-e.gates:
		t.Errorf("%s: the worker was told %+v", when, g)
	default:
	}
}

// TestConsentByTheCustomerOnly: the customer's page learns who will see
// the tab; only that customer's cookie gives consent; the worker is told;
// the agent sees the customer arrive with a reduced browser name.
func TestConsentByTheCustomerOnly(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	agent, agentID := e.agentID(t, "acme")
	r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/shop"}`, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	s := r.json(t)
	id := s["id"].(string)
	if lease := <-e.leases; lease.MustAdmit {
		t.Errorf("lease of a company without must-admit asks for it: %+v", lease)
	}
	customer := e.joinAs(t, "acme", s["pin"].(string), androidUA)

	// The agent sees the customer arrive, the browser reduced.
	got := e.do(t, agent, "GET", "/api/v1/sessions/"+id, "", nil).json(t)
	cust, _ := got["customer"].(map[string]any)
	if cust["browser"] != "Chrome" || cust["os"] != "Android" || cust["device"] != "phone" || cust["joined_at"] == nil ||
		got["consent_at"] != nil || got["must_admit"] != false {
		t.Errorf("session after the join = %v", got)
	}

	// Who will see it: the creating agent, then agents who joined as viewers.
	e.publishEvent(t, worker.Event{Type: worker.EventViewerJoined, Company: "acme", SessionID: id,
		ViewerID: agentViewerID("a_other"), Role: worker.RoleAgent, Name: "Ken Sato"})
	e.publishEvent(t, worker.Event{Type: worker.EventViewerJoined, Company: "acme", SessionID: id,
		ViewerID: agentViewerID(agentID), Role: worker.RoleAgent, Name: "Agent acme"})
	want := map[string]any{
		"session_id": id, "company": map[string]any{"slug": "acme", "name": "ACME"},
		"agents": []any{"Agent acme", "Ken Sato"}, "consented": false, "must_admit": false, "admitted": true,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		view := e.do(t, customer, "GET", "/api/v1/sessions/"+id+"/consent", "", nil)
		if view.Status != 200 {
			t.Fatalf("consent view = %d %s", view.Status, view.Body)
		}
		d := cmp.Diff(want, view.json(t))
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consent view (-want +got):\n%s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Nobody else gets it or gives it: no cookie is 401, another session's
	// customer (of this company or another) is 404.
	other := e.createSession(t, e.keyA)
	<-e.leases
	otherCustomer := e.joinAs(t, "acme", other["pin"].(string), androidUA)
	beta := e.createSession(t, e.keyB)
	<-e.leases
	betaCustomer := e.joinAs(t, "beta", beta["pin"].(string), androidUA)
	for _, method := range []string{"GET", "POST"} {
		for name, tc := range map[string]struct {
			c      *http.Client
			hdr    map[string]string
			status int
			code   string
		}{
			"anonymous":             {nil, nil, 401, "unauthenticated"},
			"the agent":             {agent, nil, 401, "unauthenticated"},
			"an API key":            {nil, bearer(e.keyA), 401, "unauthenticated"},
			"another customer":      {otherCustomer, nil, 404, "not_found"},
			"another company's one": {betaCustomer, nil, 404, "not_found"},
		} {
			t.Run(method+" as "+name, func(t *testing.T) {
				e.do(t, tc.c, method, "/api/v1/sessions/"+id+"/consent", "", tc.hdr).wantError(t, tc.status, tc.code)
			})
		}
	}
	e.do(t, customer, "POST", "/api/v1/sessions/s_nope/consent", "", nil).wantError(t, 404, "not_found")
	e.do(t, customer, "POST", "/api/v1/sessions/"+id+"/admit", "", nil).wantError(t, 401, "unauthenticated")
	if st, _ := e.store.GetSession(context.Background(), "acme", id); st.ConsentAt != nil {
		t.Fatalf("consent recorded by someone else: %+v", st)
	}
	e.noGate(t, "before the consent")

	// The customer agrees: recorded once, the worker told each time.
	for i := range 2 {
		r := e.do(t, customer, "POST", "/api/v1/sessions/"+id+"/consent", "", nil)
		if r.Status != 200 || r.json(t)["consented"] != true {
			t.Fatalf("consent %d = %d %s", i, r.Status, r.Body)
		}
		if g := e.nextGate(t); g != (worker.Gate{Company: "acme", SessionID: id, Consented: true, Admitted: true}) {
			t.Errorf("gate %d = %+v", i, g)
		}
	}
	got = e.do(t, agent, "GET", "/api/v1/sessions/"+id, "", nil).json(t)
	if got["consent_at"] == nil {
		t.Errorf("session after consent has no consent_at: %v", got)
	}
	// A viewer connecting tells the worker again (a lost message heals).
	e.do(t, customer, "GET", "/api/v1/sessions/"+id+"/ws?role=customer", "", nil)
	if g := e.nextGate(t); !g.Consented {
		t.Errorf("gate on connect = %+v", g)
	}
	evs := e.waitAudit(t, id, "the consent", func(evs []audit.Event) bool { return count(evs, audit.TypeConsentGiven) > 0 })
	for _, ev := range evs {
		switch ev.Type {
		case audit.TypeConsentGiven:
			if ev.Actor != audit.ActorCustomer {
				t.Errorf("consent.given by %q", ev.Actor)
			}
		case audit.TypePINRedeemed:
			if ev.Details["browser"] != "Chrome" || ev.Details["os"] != "Android" || ev.Details["device"] != "phone" {
				t.Errorf("pin.redeemed details = %v", ev.Details)
			}
		}
	}
	if n := count(evs, audit.TypeConsentGiven); n != 1 {
		t.Errorf("%d consent.given records, want 1: %v", n, summary(evs))
	}
	// The User-Agent itself is never stored.
	for _, raw := range []string{"Pixel 8", "537.36", "Mozilla"} {
		if bytes.Contains(e.streamBytes(t, "acme"), []byte(raw)) {
			t.Errorf("the audit stream holds %q of the User-Agent", raw)
		}
	}

	// Ended: the cookie dies with the session.
	e.do(t, agent, "DELETE", "/api/v1/sessions/"+id, "", nil)
	e.do(t, customer, "POST", "/api/v1/sessions/"+id+"/consent", "", nil).wantError(t, 404, "not_found")
}

// TestAdmitByAnAgentOnly: with "agent must admit", the customer waits after
// consenting until an agent of the company admits them.
func TestAdmitByAnAgentOnly(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	if _, err := e.store.UpdateCompany(ctx, "acme", func(c *tenant.Company) error { c.AgentMustAdmit = true; return nil }); err != nil {
		t.Fatal(err)
	}
	agent, agentID := e.agentID(t, "acme")
	s := e.createSession(t, e.keyA)
	id := s["id"].(string)
	if lease := <-e.leases; !lease.MustAdmit {
		t.Errorf("lease of a must-admit company = %+v, want MustAdmit", lease)
	}
	admitPath := "/api/v1/sessions/" + id + "/admit"
	e.do(t, agent, "POST", admitPath, "", nil).wantError(t, 409, "conflict") // nobody to admit yet

	customer := e.joinAs(t, "acme", s["pin"].(string), "")
	view := e.do(t, customer, "GET", "/api/v1/sessions/"+id+"/consent", "", nil).json(t)
	if view["must_admit"] != true || view["admitted"] != false || view["agents"] == nil {
		t.Errorf("consent view = %v", view)
	}
	if got := e.do(t, agent, "GET", "/api/v1/sessions/"+id, "", nil).json(t); got["customer"] == nil || got["customer"].(map[string]any)["browser"] != nil {
		t.Errorf("a customer without a User-Agent = %v, want joined_at only", got["customer"])
	}
	e.do(t, customer, "POST", "/api/v1/sessions/"+id+"/consent", "", nil)
	if g := e.nextGate(t); !g.Consented || g.Admitted {
		t.Errorf("gate after consent = %+v, want consented, not admitted", g)
	}

	betaAgent := e.agentClient(t, "beta")
	for name, tc := range map[string]struct {
		c      *http.Client
		hdr    map[string]string
		status int
		code   string
	}{
		"anonymous":         {nil, nil, 401, "unauthenticated"},
		"the customer":      {customer, nil, 401, "unauthenticated"},
		"an API key":        {nil, bearer(e.keyA), 403, "forbidden"},
		"another company's": {betaAgent, nil, 404, "not_found"},
	} {
		t.Run(name, func(t *testing.T) { e.do(t, tc.c, "POST", admitPath, "", tc.hdr).wantError(t, tc.status, tc.code) })
	}
	e.noGate(t, "after refused admissions")
	if st, _ := e.store.GetSession(ctx, "acme", id); st.AdmittedAt != nil {
		t.Fatalf("admitted by someone else: %+v", st)
	}

	for i := range 2 {
		r := e.do(t, agent, "POST", admitPath, "", nil)
		if r.Status != 200 || r.json(t)["admitted_at"] == nil {
			t.Fatalf("admit %d = %d %s", i, r.Status, r.Body)
		}
		if g := e.nextGate(t); g != (worker.Gate{Company: "acme", SessionID: id, Consented: true, Admitted: true}) {
			t.Errorf("gate after admit %d = %+v", i, g)
		}
	}
	if view := e.do(t, customer, "GET", "/api/v1/sessions/"+id+"/consent", "", nil).json(t); view["admitted"] != true {
		t.Errorf("consent view after the admission = %v", view)
	}
	st, _ := e.store.GetSession(ctx, "acme", id)
	if st.AdmittedBy != "agent:"+agentID {
		t.Errorf("admitted by %q, want agent:%s", st.AdmittedBy, agentID)
	}
	evs := e.sessionAudit(t, agent, nil, id)
	if n := count(evs, audit.TypeCustomerAdmitted); n != 1 {
		t.Errorf("%d customer.admitted records, want 1: %v", n, summary(evs))
	}
	for _, ev := range evs {
		if ev.Type == audit.TypeCustomerAdmitted && ev.Actor != "agent:"+agentID {
			t.Errorf("customer.admitted by %q", ev.Actor)
		}
	}
	e.do(t, agent, "DELETE", "/api/v1/sessions/"+id, "", nil)
	e.do(t, agent, "POST", admitPath, "", nil).wantError(t, 409, "conflict")

	// Where no admission is needed, admitting is a no-op.
	if _, err := e.store.UpdateCompany(ctx, "acme", func(c *tenant.Company) error { c.AgentMustAdmit = false; return nil }); err != nil {
		t.Fatal(err)
	}
	lax := e.createSession(t, e.keyA)
	<-e.leases
	e.joinAs(t, "acme", lax["pin"].(string), "")
	if r := e.do(t, agent, "POST", "/api/v1/sessions/"+lax["id"].(string)+"/admit", "", nil); r.Status != 200 || r.json(t)["admitted_at"] != nil {
		t.Errorf("admit where not needed = %d %s", r.Status, r.Body)
	}
	e.noGate(t, "admitting where not needed")
}

// TestConsentWorkerSilent: a worker that does not answer makes the consent
// a 503 that the customer can retry; the record is kept.
func TestConsentWorkerSilent(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	s, err := e.store.CreateSession(ctx, tenant.Session{Company: "acme", StartURL: "https://example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateSession(ctx, "acme", s.ID, func(r *tenant.Session) error { r.WorkerID = "w_gone"; return nil }); err != nil {
		t.Fatal(err)
	}
	customer := e.joinAs(t, "acme", s.PIN, "")
	e.do(t, customer, "POST", "/api/v1/sessions/"+s.ID+"/consent", "", nil).wantError(t, 503, "not_ready")
	if view := e.do(t, customer, "GET", "/api/v1/sessions/"+s.ID+"/consent", "", nil).json(t); view["consented"] != true {
		t.Errorf("consent view after a silent worker = %v, want the consent kept", view)
	}
}
