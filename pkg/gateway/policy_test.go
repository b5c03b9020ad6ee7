package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// A company admin stores the company's masking, blocking and URL rules;
// bad rules are refused and change nothing.
func TestCompanyPolicySettings(t *testing.T) {
	e := newEnv(t, false)
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	c := e.loginAs(t, "boss@acme.test", password)

	body := `{"policy":{
		"mask":[{"selector":"#iban, .account-number","urls":["https://bank.example/*"]}],
		"private_by_default":true,
		"unmask":[{"selector":"input[name='search']"}],
		"mask_frame_origins":["https://PAY.example"],
		"block":[{"selector":"button[data-action=\"delete\"]","urls":["*/settings/*"]}],
		"block_mode":"denylist",
		"url_allow":["https://bank.example/*"],
		"url_deny":["https://bank.example/admin*"]}}`
	r := e.do(t, c, "PATCH", "/api/v1/company", body, nil)
	if r.Status != 200 {
		t.Fatalf("PATCH policy = %d %s", r.Status, r.Body)
	}
	var got struct{ Policy tenant.Policy }
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := tenant.Policy{
		Mask:             []tenant.ScopedSelector{{Selector: "#iban, .account-number", URLs: []string{"https://bank.example/*"}}},
		PrivateByDefault: true,
		Unmask:           []tenant.ScopedSelector{{Selector: "input[name='search']"}},
		MaskFrameOrigins: []string{"https://pay.example"},
		Block:            []tenant.ScopedSelector{{Selector: `button[data-action="delete"]`, URLs: []string{"*/settings/*"}}},
		BlockMode:        "denylist",
		URLAllow:         []string{"https://bank.example/*"},
		URLDeny:          []string{"https://bank.example/admin*"},
	}
	if d := cmp.Diff(want, got.Policy); d != "" {
		t.Fatalf("policy answered (-want +got):\n%s", d)
	}
	stored, _ := e.store.GetCompany(context.Background(), "acme")
	if d := cmp.Diff(want, stored.Policy); d != "" {
		t.Fatalf("policy stored (-want +got):\n%s", d)
	}

	before := e.snapshot(t)
	for name, bad := range map[string]string{
		"unbalanced selector": `{"policy":{"mask":[{"selector":"input[name=x"}]}}`,
		"empty selector":      `{"policy":{"block":[{"selector":"  "}]}}`,
		"bad block mode":      `{"policy":{"block_mode":"sometimes"}}`,
		"bad control mode":    `{"policy":{"control":"always"}}`,
		"bad request pattern": `{"policy":{"block_requests":["ftp://shop.example/*"]}}`,
		"pattern with space":  `{"policy":{"url_deny":["https://a.example/ x"]}}`,
		"pattern scheme":      `{"policy":{"url_allow":["ftp://a.example/*"]}}`,
		"frame origin path":   `{"policy":{"mask_frame_origins":["https://pay.example/form"]}}`,
		"unknown field":       `{"policy":{"masks":[]}}`,
		"wrong type":          `{"policy":{"mask":"#iban"}}`,
	} {
		r := e.do(t, c, "PATCH", "/api/v1/company", bad, nil)
		if r.Status != 400 {
			t.Errorf("%s: PATCH = %d %s, want 400", name, r.Status, r.Body)
		}
	}
	e.wantUnchanged(t, before)
}

// The company's blocking rules and control mode reach the worker with the
// lease, and a worker's blocked-input event becomes an audit event naming
// the agent, the selector and the method.
func TestBlockPolicyReachesTheWorkerAndRefusalsAreAudited(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	boss := e.loginAs(t, "boss@acme.test", password)
	if r := e.do(t, boss, "PATCH", "/api/v1/company", `{"policy":{"block":[{"selector":"#buy","urls":["https://shop.example/*"]}],
		"block_mode":"allowlist","allow":[{"selector":".help"}],"control":"never","block_requests":["https://shop.example/api/buy*"]}}`, nil); r.Status != 200 {
		t.Fatalf("PATCH policy = %d %s", r.Status, r.Body)
	}
	agent, agentID := e.agentID(t, "acme")
	r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://shop.example/cart"}`, nil)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"].(string)
	lease := <-e.leases
	want := block.Policy{Block: []mask.Selector{{Selector: "#buy", URLs: []string{"https://shop.example/*"}}},
		Allow: []mask.Selector{{Selector: ".help"}}, Allowlist: true, Requests: []string{"https://shop.example/api/buy*"}}
	if d := cmp.Diff(want, lease.Block); d != "" {
		t.Fatalf("lease's block policy (-want +got):\n%s", d)
	}
	if lease.Control != worker.ControlNever {
		t.Fatalf("lease's control mode %q, want never", lease.Control)
	}

	e.g.handleEvent(context.Background(), worker.Event{Type: worker.EventInputRefused, Company: "acme", SessionID: id,
		ViewerID: agentID + "-v1", Role: worker.RoleAgent, Reason: worker.RefusedBlocked,
		Selector: "#buy", Method: "implicit submission", At: time.Now()})
	events, err := e.audit.List(context.Background(), "acme", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == audit.TypeInputRefused {
			if ev.Details["selector"] != "#buy" || ev.Details["method"] != "implicit submission" || ev.Details["reason"] != "blocked" ||
				ev.Actor != audit.AgentActor(agentID) {
				t.Fatalf("audit event %+v lacks the agent, selector, method or reason", ev)
			}
			return
		}
	}
	t.Fatalf("no input.refused audit event in %+v", events)
}

// The company's URL lists reach the worker with the lease; a start page
// outside them is refused before anything is stored; a worker's blocked
// navigation becomes an audit event without the URL's query.
func TestURLPolicyReachesTheWorkerAndBlocksAreAudited(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	boss := e.loginAs(t, "boss@acme.test", password)
	if r := e.do(t, boss, "PATCH", "/api/v1/company", `{"policy":{"url_allow":["https://shop.example/*"],"url_deny":["https://shop.example/admin*"]}}`, nil); r.Status != 200 {
		t.Fatalf("PATCH policy = %d %s", r.Status, r.Body)
	}
	agent, _ := e.agentID(t, "acme")

	before := e.snapshot(t)
	for _, start := range []string{"https://elsewhere.example/", "https://shop.example/admin/users", "https://shop.example.evil/"} {
		r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"`+start+`"}`, nil)
		if r.Status != 403 || r.json(t)["error"] != "url_not_allowed" {
			t.Errorf("create at %s = %d %s, want 403 url_not_allowed", start, r.Status, r.Body)
		}
	}
	e.wantUnchanged(t, before)

	r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://shop.example/cart"}`, nil)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"].(string)
	lease := <-e.leases
	want := urlpolicy.Policy{Allow: []string{"https://shop.example/*"}, Deny: []string{"https://shop.example/admin*"}}
	if d := cmp.Diff(want, lease.URLs); d != "" {
		t.Fatalf("lease's URL policy (-want +got):\n%s", d)
	}

	e.g.handleEvent(context.Background(), worker.Event{Type: worker.EventNavBlocked, Company: "acme", SessionID: id,
		URL: "https://shop.example/admin/users", Selector: "https://shop.example/admin*", Reason: "top", At: time.Now()})
	events, err := e.audit.List(context.Background(), "acme", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == audit.TypeNavigationBlocked {
			if ev.Details["url"] != "https://shop.example/admin/users" || ev.Details["rule"] != "https://shop.example/admin*" ||
				ev.Details["where"] != "top" || ev.Actor != audit.ActorSystem {
				t.Fatalf("audit event %+v", ev)
			}
			return
		}
	}
	t.Fatalf("no navigation.blocked audit event in %+v", events)
}

// The company's screenshare policy reaches the worker with the lease, a
// bad value is refused, and the worker's screenshare events become audit
// events with the right actor (docs/screenshare.md).
func TestScreensharePolicyReachesTheWorkerAndSharesAreAudited(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	boss := e.loginAs(t, "boss@acme.test", password)
	if r := e.do(t, boss, "PATCH", "/api/v1/company", `{"policy":{"screenshare":"always"}}`, nil); r.Status != 400 {
		t.Errorf("PATCH screenshare always = %d %s, want 400", r.Status, r.Body)
	}
	agent, agentID := e.agentID(t, "acme")
	r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://shop.example/cart"}`, nil)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"].(string)
	if lease := <-e.leases; lease.Screenshare != worker.ScreenshareAsk {
		t.Fatalf("lease's screenshare %q, want ask (the default)", lease.Screenshare)
	}
	if r := e.do(t, boss, "PATCH", "/api/v1/company", `{"policy":{"screenshare":"never"}}`, nil); r.Status != 200 {
		t.Fatalf("PATCH screenshare never = %d %s", r.Status, r.Body)
	}
	if r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://shop.example/cart"}`, nil); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if lease := <-e.leases; lease.Screenshare != worker.ScreenshareNever {
		t.Fatalf("lease's screenshare %q, want never", lease.Screenshare)
	}

	viewer := agentID + "-v1"
	for _, ev := range []worker.Event{
		{Type: worker.EventScreenshare, Reason: worker.ScreenshareStarted, ViewerID: viewer, Role: worker.RoleAgent},
		{Type: worker.EventScreenshare, Reason: worker.ScreenshareStoppedAgent, ViewerID: viewer},
		{Type: worker.EventScreenshare, Reason: worker.ScreenshareCustomerLeft, ViewerID: "v_customer"},
	} {
		ev.Company, ev.SessionID, ev.At = "acme", id, time.Now()
		e.g.handleEvent(context.Background(), ev)
	}
	events, err := e.audit.List(context.Background(), "acme", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		if strings.HasPrefix(ev.Type, "screenshare.") {
			got = append(got, ev.Type+" "+ev.Actor+" "+ev.Details["reason"]+" "+ev.Details["viewer_id"])
		}
	}
	want := []string{
		audit.TypeScreenshareStart + " " + audit.ActorCustomer + "  " + viewer,
		audit.TypeScreenshareEnd + " " + audit.AgentActor(agentID) + " stopped_by_agent " + viewer,
		audit.TypeScreenshareEnd + " " + audit.ActorCustomer + " customer_left v_customer",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("screenshare audit events (-want +got):\n%s", d)
	}
}
