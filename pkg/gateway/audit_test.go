package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// runGateway runs e.g.Run (which turns worker events into records) until
// the test ends.
func (e *env) runGateway(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// publishEvent publishes a worker's session event, as the worker hosting
// the session does.
func (e *env) publishEvent(t *testing.T, ev worker.Event) {
	t.Helper()
	ev.At = time.Now()
	b, _ := json.Marshal(ev)
	if err := e.nc.Publish(worker.EventSubject(ev.Company, ev.SessionID), b); err != nil {
		t.Fatal(err)
	}
}

// sessionAudit GETs a session's audit events.
func (e *env) sessionAudit(t *testing.T, c *http.Client, hdr map[string]string, id string) []audit.Event {
	t.Helper()
	r := e.do(t, c, "GET", "/api/v1/sessions/"+id+"/audit", "", hdr)
	if r.Status != http.StatusOK {
		t.Fatalf("audit of %s = %d %s", id, r.Status, r.Body)
	}
	var body struct {
		Events []audit.Event `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Events == nil {
		t.Fatalf("audit body %s: %v (want an events array)", r.Body, err)
	}
	return body.Events
}

// waitAudit polls a session's audit events until done says they are complete.
func (e *env) waitAudit(t *testing.T, id, what string, done func([]audit.Event) bool) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := e.sessionAudit(t, nil, bearer(e.keyA), id)
		if done(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit of %s never had %s: %v", id, what, summary(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary is "actor type" of each event, for messages and comparisons.
func summary(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Actor + " " + ev.Type
	}
	return out
}

func count(evs []audit.Event, typ string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// agentID logs in as the company's agent and returns the client and its ID.
func (e *env) agentID(t *testing.T, company string) (*http.Client, string) {
	t.Helper()
	c := e.agentClient(t, company)
	me := e.do(t, c, "GET", "/api/v1/auth/me", "", nil).json(t)
	return c, me["agent"].(map[string]any)["id"].(string)
}

// streamBytes returns every stored byte (subjects, headers, bodies) of a
// company's audit stream.
func (e *env) streamBytes(t *testing.T, company string) []byte {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, audit.StreamName(company))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get record %d: %v", seq, err)
		}
		buf.WriteString(m.Subject)
		for k, vs := range m.Header {
			buf.WriteString(k + ":" + strings.Join(vs, ","))
		}
		buf.Write(m.Data)
	}
	return buf.Bytes()
}

func TestAuditTrailOfASession(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	ctx := context.Background()
	agentA, agentIDA := e.agentID(t, "acme")

	// Created by the API key: session.created and pin.issued, without the PIN.
	s := e.createSession(t, e.keyA)
	id, pin := s["id"].(string), s["pin"].(string)
	keys, err := e.store.ListAPIKeys(ctx, "acme")
	if err != nil || len(keys) != 1 {
		t.Fatalf("API keys of acme = %v, %v", keys, err)
	}
	keyActor := "apikey:" + keys[0].ID
	evs := e.sessionAudit(t, nil, bearer(e.keyA), id)
	if d := cmp.Diff([]string{keyActor + " session.created", keyActor + " pin.issued"}, summary(evs)); d != "" {
		t.Fatalf("audit after create (-want +got):\n%s", d)
	}
	if evs[0].Company != "acme" || evs[0].Session != id || evs[0].Details["start_url"] != "https://example.com/shop" ||
		evs[1].Details["expires_at"] != s["expires_at"] || evs[0].Time.IsZero() || evs[0].ID == evs[1].ID {
		t.Errorf("audit after create = %+v", evs)
	}
	// The agent's cookie works as well as the key.
	if got := e.sessionAudit(t, agentA, nil, id); len(got) != 2 {
		t.Errorf("audit through the agent's cookie = %v", summary(got))
	}

	// Wrong PINs (one malformed, one of ten digits that no session could
	// have) are pin.failed of the company; an unknown company's are nothing.
	const wrongPIN = "9081726354"
	for _, body := range []string{
		`{"company":"acme","pin":"` + wrongPIN + `"}`,
		`{"company":"acme","pin":"12ab"}`,
		`{"company":"nope","pin":"` + wrongPIN + `"}`,
	} {
		e.do(t, nil, "POST", "/api/v1/join", body, nil).wantError(t, 404, "invalid_pin")
	}
	e.g.settle() // the records are written after the answers
	company, err := e.audit.ListCompany(ctx, "acme", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, ev := range company {
		if ev.Type == audit.TypePINFailed {
			failed++
			if ev.Session != "" || ev.Actor != audit.ActorCustomer || ev.Details["network"] != "127.0.0.0/24" {
				t.Errorf("pin.failed = %+v", ev)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d pin.failed records, want 2: %v", failed, summary(company))
	}
	if got := e.sessionAudit(t, nil, bearer(e.keyA), id); count(got, audit.TypePINFailed) != 0 {
		t.Errorf("a failed PIN landed in the session's trail: %v", summary(got))
	}
	if got, _ := e.audit.ListCompany(ctx, "nope", time.Time{}, 0); len(got) != 0 {
		t.Errorf("an unknown company got records: %v", summary(got))
	}

	// The right PIN: pin.redeemed by the customer.
	if r := e.do(t, nil, "POST", "/api/v1/join", `{"company":"acme","pin":"`+pin+`"}`, nil); r.Status != 200 {
		t.Fatalf("join = %d %s", r.Status, r.Body)
	}
	evs = e.sessionAudit(t, nil, bearer(e.keyA), id)
	if last := evs[len(evs)-1]; last.Type != audit.TypePINRedeemed || last.Actor != audit.ActorCustomer || last.Details["network"] != "127.0.0.0/24" {
		t.Errorf("after the join, last record = %+v", last)
	}

	// No PIN, right or wrong, anywhere in the stream or on disk.
	stream := e.streamBytes(t, "acme")
	if bytes.Contains(stream, []byte(wrongPIN)) || bytes.Contains(stream, []byte(pin)) {
		t.Errorf("a PIN is in the audit stream: %q", stream)
	}
	if !bytes.Contains(stream, []byte(audit.TypePINFailed)) {
		t.Fatalf("the stream scan sees no pin.failed; it is broken")
	}
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(wrongPIN)) {
			t.Errorf("the wrong PIN is stored in %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// The worker reports the viewers: customer.joined, agent.joined (the
	// agent's viewer ID names the agent).
	agentViewer := agentViewerID(agentIDA)
	e.publishEvent(t, worker.Event{Type: worker.EventViewerJoined, Company: "acme", SessionID: id, ViewerID: "v_cust1", Role: worker.RoleCustomer, Name: "customer"})
	e.publishEvent(t, worker.Event{Type: worker.EventViewerJoined, Company: "acme", SessionID: id, ViewerID: agentViewer, Role: worker.RoleAgent, Name: "Agent acme"})
	e.publishEvent(t, worker.Event{Type: "viewers", Company: "acme", SessionID: id, Customers: 1, Agents: 1})
	evs = e.waitAudit(t, id, "both joins", func(evs []audit.Event) bool { return count(evs, audit.TypeAgentJoined) == 1 })
	joins := evs[len(evs)-2:]
	if joins[0].Type != audit.TypeCustomerJoined || joins[0].Actor != "customer" || joins[0].Details["viewer_id"] != "v_cust1" {
		t.Errorf("customer join = %+v", joins[0])
	}
	if joins[1].Actor != "agent:"+agentIDA || joins[1].Details["name"] != "Agent acme" || joins[1].Details["viewer_id"] != agentViewer {
		t.Errorf("agent join = %+v", joins[1])
	}

	// The agent ends it: session.ended by the agent. The worker's own
	// "ended" then arrives (twice, as from a retry) with the viewers'
	// leaving: still one session.ended.
	r := e.do(t, agentA, "DELETE", "/api/v1/sessions/"+id, "", nil)
	if r.Status != 200 {
		t.Fatalf("DELETE = %d %s", r.Status, r.Body)
	}
	for range 2 {
		e.publishEvent(t, worker.Event{Type: "ended", Company: "acme", SessionID: id, Reason: worker.ReasonAgentEnded})
	}
	e.publishEvent(t, worker.Event{Type: worker.EventViewerLeft, Company: "acme", SessionID: id, ViewerID: "v_cust1", Role: worker.RoleCustomer})
	e.publishEvent(t, worker.Event{Type: worker.EventViewerLeft, Company: "acme", SessionID: id, ViewerID: agentViewer, Role: worker.RoleAgent, Name: "Agent acme"})
	evs = e.waitAudit(t, id, "both leaves", func(evs []audit.Event) bool { return count(evs, audit.TypeAgentLeft) == 1 })
	agentActor := "agent:" + agentIDA
	want := []string{
		keyActor + " session.created", keyActor + " pin.issued", "customer pin.redeemed",
		"customer customer.joined", agentActor + " agent.joined",
		agentActor + " session.ended", "customer customer.left", agentActor + " agent.left",
	}
	if d := cmp.Diff(want, summary(evs)); d != "" {
		t.Errorf("the whole trail (-want +got):\n%s", d)
	}
	for _, ev := range evs {
		if ev.Type == audit.TypeSessionEnded && ev.Details["reason"] != worker.ReasonAgentEnded {
			t.Errorf("session.ended = %+v", ev)
		}
	}

	// Another company sees none of it.
	agentB := e.agentClient(t, "beta")
	e.do(t, nil, "GET", "/api/v1/sessions/"+id+"/audit", "", bearer(e.keyB)).wantError(t, 404, "not_found")
	e.do(t, agentB, "GET", "/api/v1/sessions/"+id+"/audit", "", nil).wantError(t, 404, "not_found")
	e.do(t, nil, "GET", "/api/v1/sessions/"+id+"/audit", "", nil).wantError(t, 401, "unauthenticated")
	e.do(t, nil, "GET", "/api/v1/sessions/s_unknown/audit", "", bearer(e.keyA)).wantError(t, 404, "not_found")
	if got, err := e.audit.ListCompany(ctx, "beta", time.Time{}, 0); err != nil || len(got) != 0 {
		t.Errorf("beta's trail = %v, %v; want empty", summary(got), err)
	}
}

func TestWorkerEndIsRecordedOnce(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	id := e.createSession(t, e.keyA)["id"].(string)
	// The worker ends it on its own (nobody joined); the event comes twice.
	for range 2 {
		e.publishEvent(t, worker.Event{Type: "ended", Company: "acme", SessionID: id, Reason: worker.ReasonPINExpired})
	}
	// A marker after them: once it is recorded, both ends were handled.
	e.publishEvent(t, worker.Event{Type: worker.EventViewerLeft, Company: "acme", SessionID: id, ViewerID: "v_marker", Role: worker.RoleCustomer})
	evs := e.waitAudit(t, id, "the marker", func(evs []audit.Event) bool { return count(evs, audit.TypeCustomerLeft) == 1 })
	if n := count(evs, audit.TypeSessionEnded); n != 1 {
		t.Fatalf("%d session.ended records, want 1: %v", n, summary(evs))
	}
	for _, ev := range evs {
		if ev.Type == audit.TypeSessionEnded && (ev.Actor != audit.ActorSystem || ev.Details["reason"] != worker.ReasonPINExpired) {
			t.Errorf("session.ended = %+v", ev)
		}
	}
	got, err := e.store.GetSession(context.Background(), "acme", id)
	if err != nil || got.State != tenant.SessionEnded || got.EndReason != worker.ReasonPINExpired {
		t.Errorf("session = %+v, %v; want ended as pin_expired", got, err)
	}
	// An agent's DELETE afterwards changes nothing and records nothing.
	if r := e.do(t, nil, "DELETE", "/api/v1/sessions/"+id, "", bearer(e.keyA)); r.Status != 200 {
		t.Fatalf("DELETE = %d %s", r.Status, r.Body)
	}
	if evs := e.sessionAudit(t, nil, bearer(e.keyA), id); count(evs, audit.TypeSessionEnded) != 1 {
		t.Errorf("after a late DELETE: %v", summary(evs))
	}
}

func TestEndSessionOnceHasOneWinner(t *testing.T) {
	e := newEnv(t, true)
	id := e.createSession(t, e.keyA)["id"].(string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, changed, err := e.g.endSessionOnce(context.Background(), "acme", id, fmt.Sprintf("r%d", i))
			if err != nil {
				t.Errorf("endSessionOnce: %v", err)
			}
			if changed {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d calls ended the session, want exactly 1", wins)
	}
}

func TestFailedStartIsAudited(t *testing.T) {
	e := newEnv(t, false)
	e.g.cfg.LeaseTimeout = 500 * time.Millisecond
	e.do(t, nil, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/?email=a@b.test#x"}`, bearer(e.keyA)).wantError(t, 503, "no_capacity")
	list, err := e.store.ListSessions(context.Background(), "acme")
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions = %v, %v", list, err)
	}
	evs := e.sessionAudit(t, nil, bearer(e.keyA), list[0].ID)
	if got := summary(evs); len(got) != 2 || evs[0].Type != audit.TypeSessionCreated || evs[1].Type != audit.TypeSessionEnded ||
		evs[1].Actor != audit.ActorSystem || evs[1].Details["reason"] != worker.ReasonError {
		t.Errorf("audit of a failed start = %+v", evs)
	}
	if u := evs[0].Details["start_url"]; u != "https://example.com/" {
		t.Errorf("audited start_url = %q, want it without query and fragment", u)
	}
}

func TestAgentViewerID(t *testing.T) {
	a := "a_" + strings.Repeat("z", 20)
	v := agentViewerID(a)
	if !signaling.ValidToken(v) {
		t.Fatalf("agentViewerID(%q) = %q, not a subject token", a, v)
	}
	if got, ok := agentOfViewer(v); !ok || got != a {
		t.Errorf("agentOfViewer(%q) = %q, %v; want %q", v, got, ok, a)
	}
	if v2 := agentViewerID(a); v2 == v {
		t.Errorf("two viewer IDs of one agent are equal: %q", v)
	}
	for _, id := range []string{"v_abc", "a_-v_x", "-v_x", ""} {
		if got, ok := agentOfViewer(id); ok {
			t.Errorf("agentOfViewer(%q) = %q, true; want false", id, got)
		}
	}
}

func TestAuditURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 3000)
	for _, tt := range []struct{ in, want string }{
		{"https://example.com/shop?card=4111111111111111#top", "https://example.com/shop"},
		{"https://example.com/?", "https://example.com/"},
		{long, long[:audit.MaxDetailValue-3] + "..."},
	} {
		if got := auditURL(tt.in); got != tt.want {
			t.Errorf("auditURL(%.40q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}
