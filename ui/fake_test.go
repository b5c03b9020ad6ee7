package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/demo"
)

// fakeSession is a session as docs/api.md answers it.
type fakeSession struct {
	ID        string `json:"id"`
	Company   string `json:"company"`
	State     string `json:"state"`
	StartURL  string `json:"start_url"`
	PIN       string `json:"pin,omitempty"`
	JoinURL   string `json:"join_url"`
	AgentURL  string `json:"agent_url"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
	EndReason string `json:"end_reason,omitempty"`
	// The customer's arrival, consent and admission.
	Customer   map[string]string `json:"customer,omitempty"`
	ConsentAt  string            `json:"consent_at,omitempty"`
	MustAdmit  bool              `json:"must_admit"`
	AdmittedAt string            `json:"admitted_at,omitempty"`
}

// fakeConsent is the consent screen of the customer's session (s_joined),
// as GET /api/v1/sessions/{id}/consent answers it.
type fakeConsent struct {
	SessionID string            `json:"session_id"`
	Company   map[string]string `json:"company"`
	Agents    []string          `json:"agents"`
	Consented bool              `json:"consented"`
	MustAdmit bool              `json:"must_admit"`
	Admitted  bool              `json:"admitted"`
}

// request is one API call the pages made.
type request struct {
	Method, Path, ContentType, AcceptLanguage, Body string
}

// fakeServer serves the ui Handler, the demo shop, and a small fake of the
// API routes the pages call. Its WebSocket answers with a real pion peer
// (fakeWorker) that streams a VP8 frame and records the DataChannel input.
type fakeServer struct {
	*httptest.Server
	worker *fakeWorker

	mu       sync.Mutex
	loggedIn bool              // guarded by mu
	sessions []*fakeSession    // guarded by mu
	requests []request         // guarded by mu
	consent  fakeConsent       // guarded by mu; the customer already shares unless a test says otherwise
	failing  int               // guarded by mu; non-zero: POST .../consent answers this status
	branding map[string]string // guarded by mu; the demo company's branding, all "" unless a test says otherwise
	role     string            // guarded by mu; the signed-in agent's role, "agent" unless a test says otherwise
	admin    fakeAdmin         // guarded by mu; the company admin routes (fakeadmin_test.go)
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{worker: newFakeWorker(), role: "agent", admin: newFakeAdmin(), consent: fakeConsent{
		SessionID: "s_joined", Company: map[string]string{"slug": "demo", "name": "Demo Inc."},
		Agents: []string{"Aiko Tanaka"}, Consented: true, Admitted: true,
	}}
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.Handle("/demo/", demo.Handler())
	mux.HandleFunc("/test/blank", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>blank</title>")
	})
	mux.HandleFunc("/api/v1/", f.api)
	mux.HandleFunc("GET /api/v1/sessions/{id}/ws", func(w http.ResponseWriter, r *http.Request) {
		f.record(r, "")
		f.worker.accept(w, r)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.worker.close()
		f.Close()
	})
	return f
}

// setBranding sets the demo company's branding as GET /api/v1/companies/demo
// answers it.
func (f *fakeServer) setBranding(b map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.branding = b
}

func (f *fakeServer) record(r *http.Request, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, Body: body,
		ContentType: r.Header.Get("Content-Type"), AcceptLanguage: r.Header.Get("Accept-Language"),
	})
}

// calls returns the recorded calls of method and path.
func (f *fakeServer) calls(method, path string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) addSession(s fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append([]*fakeSession{&s}, f.sessions...)
}

func (f *fakeServer) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.ID == id {
			s.State = state
			if state != "waiting" {
				s.PIN = ""
			}
		}
	}
}

// update changes a session under the lock.
func (f *fakeServer) update(id string, fn func(*fakeSession)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.ID == id {
			fn(s)
		}
	}
}

// setConsent changes the customer's consent screen under the lock.
func (f *fakeServer) setConsent(fn func(*fakeConsent)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.consent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// api is the fake of docs/api.md: just enough for the pages.
func (f *fakeServer) api(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	f.record(r, string(b))
	f.mu.Lock()
	defer f.mu.Unlock()
	agent := map[string]any{"id": "a_1", "email": "agent@demo.test", "name": "Aiko Tanaka", "role": f.role, "company": "demo"}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	switch {
	case r.Method == "POST" && path == "/auth/login":
		var req struct{ Email, Password string }
		if json.Unmarshal(b, &req) != nil || req.Email != "agent@demo.test" || req.Password != "secret" {
			apiError(w, 401, "invalid_credentials", "wrong email or password")
			return
		}
		f.loggedIn = true
		writeJSON(w, 200, map[string]any{"agent": agent})
	case r.Method == "POST" && path == "/auth/logout":
		f.loggedIn = false
		w.WriteHeader(204)
	case r.Method == "GET" && path == "/auth/me":
		if !f.loggedIn {
			apiError(w, 401, "unauthenticated", "sign in first")
			return
		}
		writeJSON(w, 200, map[string]any{"agent": agent, "company": map[string]string{"slug": "demo", "name": "Demo Inc."}})
	case r.Method == "GET" && strings.HasPrefix(path, "/companies/"):
		if slug := strings.TrimPrefix(path, "/companies/"); slug == "demo" {
			b := map[string]string{"name": "", "colour": "", "logo_url": ""}
			for k, v := range f.branding { // f.mu is held
				b[k] = v
			}
			writeJSON(w, 200, map[string]any{"slug": "demo", "name": "Demo Inc.", "branding": b})
		} else {
			apiError(w, 404, "not_found", "no such company")
		}
	case r.Method == "POST" && path == "/join":
		var req struct{ Company, PIN string }
		_ = json.Unmarshal(b, &req)
		switch {
		case req.PIN == "999999":
			w.Header().Set("Retry-After", "30")
			apiError(w, 429, "rate_limited", "slow down")
		case req.Company == "demo" && req.PIN == "123456":
			writeJSON(w, 200, map[string]string{"session_id": "s_joined", "customer_url": "/s/s_joined"})
		case strings.HasPrefix(r.Header.Get("Accept-Language"), "ja"):
			apiError(w, 404, "invalid_pin", "サーバー: PINが無効です")
		default:
			apiError(w, 404, "invalid_pin", "Server: that PIN is not valid")
		}
	case strings.HasPrefix(path, "/sessions/") && strings.HasSuffix(path, "/consent"):
		switch id := strings.TrimSuffix(strings.TrimPrefix(path, "/sessions/"), "/consent"); {
		case id != "s_joined":
			apiError(w, 404, "not_found", "no such object")
		case r.Method == "POST" && f.failing != 0:
			apiError(w, f.failing, "not_ready", "the shared browser did not answer")
		case r.Method == "POST":
			f.consent.Consented = true
			writeJSON(w, 200, f.consent)
		default:
			writeJSON(w, 200, f.consent)
		}
	default:
		if !f.loggedIn {
			apiError(w, 401, "unauthenticated", "sign in first")
			return
		}
		if f.adminAPI(w, r, path, b) {
			return
		}
		f.sessionsAPI(w, r, path, b)
	}
}

// sessionsAPI answers the session routes; f.mu is held.
func (f *fakeServer) sessionsAPI(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	switch {
	case r.Method == "POST" && path == "/sessions":
		var req struct {
			StartURL string `json:"start_url"`
		}
		if json.Unmarshal(body, &req) != nil || !strings.HasPrefix(req.StartURL, "http") {
			apiError(w, 400, "invalid_start_url", "bad start_url")
			return
		}
		id := fmt.Sprintf("s_%d", len(f.sessions)+1)
		now := time.Now().UTC()
		s := &fakeSession{
			ID: id, Company: "demo", State: "waiting", StartURL: req.StartURL, PIN: "48213907",
			JoinURL: f.URL + "/join/demo", AgentURL: f.URL + "/agent/s/" + id,
			CreatedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(10 * time.Minute).Format(time.RFC3339),
		}
		f.sessions = append([]*fakeSession{s}, f.sessions...)
		writeJSON(w, 201, s)
	case r.Method == "GET" && path == "/sessions":
		writeJSON(w, 200, map[string]any{"sessions": f.sessions})
	case r.Method == "GET" && strings.HasPrefix(path, "/sessions/") && strings.HasSuffix(path, "/audit"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/sessions/"), "/audit")
		for _, s := range f.sessions {
			if s.ID == id {
				writeJSON(w, 200, map[string]any{"events": fakeAudit(s)})
				return
			}
		}
		apiError(w, 404, "not_found", "no such session")
	case r.Method == "POST" && strings.HasPrefix(path, "/sessions/") && strings.HasSuffix(path, "/admit"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/sessions/"), "/admit")
		for _, s := range f.sessions {
			if s.ID != id {
				continue
			}
			if s.State != "active" {
				apiError(w, 409, "conflict", "Server: not now")
				return
			}
			if s.MustAdmit && s.AdmittedAt == "" {
				s.AdmittedAt = time.Now().UTC().Format(time.RFC3339)
			}
			writeJSON(w, 200, s)
			return
		}
		apiError(w, 404, "not_found", "no such session")
	case strings.HasPrefix(path, "/sessions/"):
		id := strings.TrimPrefix(path, "/sessions/")
		for _, s := range f.sessions {
			if s.ID != id {
				continue
			}
			if r.Method == "DELETE" {
				s.State, s.EndReason, s.PIN = "ended", "agent_ended", ""
			}
			writeJSON(w, 200, s)
			return
		}
		apiError(w, 404, "not_found", "no such session")
	default:
		apiError(w, 404, "not_found", "no such route")
	}
}

// fakeAudit is the audit trail of docs/api.md that a session in its state
// would have: made and ended by the signed-in agent (a_1), joined by the
// customer and by another agent, ended by the agent or by the system.
func fakeAudit(s *fakeSession) []map[string]any {
	t0, _ := time.Parse(time.RFC3339, s.CreatedAt)
	var out []map[string]any
	add := func(actor, typ string, details map[string]string) {
		out = append(out, map[string]any{
			"id": fmt.Sprintf("e_%d", len(out)+1), "time": t0.Add(time.Duration(len(out)) * time.Second).Format(time.RFC3339),
			"company": s.Company, "session": s.ID, "actor": actor, "type": typ, "details": details,
		})
	}
	add("agent:a_1", "session.created", map[string]string{"start_url": s.StartURL})
	add("agent:a_1", "pin.issued", map[string]string{"expires_at": s.ExpiresAt})
	if s.State == "waiting" {
		return out
	}
	add("customer", "pin.redeemed", map[string]string{"network": "127.0.0.0/24"})
	add("customer", "customer.joined", map[string]string{"viewer_id": "v_c"})
	add("agent:a_2", "agent.joined", map[string]string{"viewer_id": "a_2-v_x", "name": "Ken Sato"})
	if s.ConsentAt != "" {
		add("customer", "consent.given", nil)
	}
	if s.AdmittedAt != "" {
		add("agent:a_1", "customer.admitted", nil)
	}
	if s.State == "ended" {
		ender := "system"
		if s.EndReason == "agent_ended" {
			ender = "agent:a_1"
		}
		add(ender, "session.ended", map[string]string{"reason": s.EndReason})
		add("agent:a_2", "agent.left", map[string]string{"viewer_id": "a_2-v_x", "name": "Ken Sato"})
	}
	return out
}
