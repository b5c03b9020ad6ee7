package gateway

import (
	"sync"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/tenant"
)

// A company's quota of sessions at once: beyond it creation answers 429
// session_quota and stores nothing; ending a session frees its place;
// concurrent creations never go past it; the quota is a validated setting.
func TestSessionQuota(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	e.addAgent(t, "acme", "boss@acme.test", tenant.RoleAdmin)
	boss := e.loginAs(t, "boss@acme.test", password)
	for _, bad := range []string{`{"max_sessions":-1}`, `{"max_sessions":10001}`, `{"max_sessions":"2"}`} {
		if r := e.do(t, boss, "PATCH", "/api/v1/company", bad, nil); r.Status != 400 {
			t.Errorf("PATCH %s = %d %s, want 400", bad, r.Status, r.Body)
		}
	}
	if r := e.do(t, boss, "PATCH", "/api/v1/company", `{"max_sessions":2}`, nil); r.Status != 200 || r.json(t)["max_sessions"] != float64(2) {
		t.Fatalf("PATCH max_sessions = %d %s", r.Status, r.Body)
	}
	go func() { // the fake worker's lease requests are not looked at here
		for range e.leases {
		}
	}()

	// Four at once: two get places.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() {
			codes[i] = e.do(t, boss, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/shop"}`, nil).Status
		})
	}
	wg.Wait()
	created, refused := 0, 0
	for _, c := range codes {
		switch c {
		case 201:
			created++
		case 429:
			refused++
		}
	}
	if created != 2 || refused != 2 {
		t.Fatalf("four creations at once with a quota of 2: %v", codes)
	}
	r := e.do(t, boss, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/shop"}`, nil)
	if r.Status != 429 || r.json(t)["error"] != "session_quota" || r.json(t)["message"] == "" {
		t.Fatalf("a third session = %d %s, want 429 session_quota", r.Status, r.Body)
	}
	all, err := e.store.ListSessions(t.Context(), "acme")
	if err != nil || len(all) != 2 {
		t.Fatalf("stored sessions = %d, %v; want the 2 created", len(all), err)
	}
	// Ending one frees its place.
	if r := e.do(t, boss, "DELETE", "/api/v1/sessions/"+all[0].ID, "", nil); r.Status != 200 {
		t.Fatalf("end = %d %s", r.Status, r.Body)
	}
	if r := e.do(t, boss, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/shop"}`, nil); r.Status != 201 {
		t.Fatalf("after an end = %d %s, want 201", r.Status, r.Body)
	}
}
