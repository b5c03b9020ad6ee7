package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// fakeAdmin is the state behind the fake company admin routes of
// docs/api.md: the company's agents, API keys and settings.
type fakeAdmin struct {
	agents  []map[string]any
	keys    []map[string]any
	company map[string]any
	// badSetting, when set, makes PATCH /company answer 400 with it.
	badSetting string
}

func newFakeAdmin() fakeAdmin {
	return fakeAdmin{
		agents: []map[string]any{
			{"id": "a_1", "email": "agent@demo.test", "name": "Aiko Tanaka", "role": "admin", "company": "demo", "disabled": false, "created_at": "2026-01-05T09:00:00Z"},
			{"id": "a_2", "email": "ken@demo.test", "name": "Ken Sato", "role": "agent", "company": "demo", "disabled": false, "created_at": "2026-01-06T09:00:00Z"},
		},
		keys: []map[string]any{
			{"id": "k_1", "company": "demo", "name": "CRM", "created_at": "2026-02-01T09:00:00Z", "revoked": false},
		},
		company: map[string]any{
			"slug": "demo", "name": "Demo Inc.", "allowed_origins": []string{"https://shop.demo.test"},
			"branding":   map[string]any{"name": "", "colour": "", "logo_url": ""},
			"pin_length": 0, "pin_lifetime": 600, "idle_timeout": 0, "max_session_length": 0,
			"agent_must_admit": false, "audit_retention": 0, "disabled": false, "created_at": "2026-01-01T00:00:00Z",
		},
	}
}

// adminAPI answers the company admin routes and reports whether path was
// one of them; f.mu is held.
func (f *fakeServer) adminAPI(w http.ResponseWriter, r *http.Request, path string, body []byte) bool {
	a := &f.admin
	if path != "/agents" && !strings.HasPrefix(path, "/agents/") && path != "/apikeys" &&
		!strings.HasPrefix(path, "/apikeys/") && path != "/company" {
		return false
	}
	if f.role != "admin" {
		apiError(w, 403, "forbidden", "admins only")
		return true
	}
	var req map[string]any
	if len(body) > 0 && json.Unmarshal(body, &req) != nil {
		apiError(w, 400, "invalid_json", "bad JSON")
		return true
	}
	switch {
	case r.Method == "GET" && path == "/agents":
		writeJSON(w, 200, map[string]any{"agents": a.agents})
	case r.Method == "POST" && path == "/agents":
		if pw, _ := req["password"].(string); len(pw) < 8 {
			apiError(w, 400, "invalid_request", "Server: password too short")
			return true
		}
		ag := map[string]any{"id": fmt.Sprintf("a_%d", len(a.agents)+1), "email": req["email"], "name": req["name"],
			"role": req["role"], "company": "demo", "disabled": false, "created_at": "2026-03-01T09:00:00Z"}
		a.agents = append(a.agents, ag)
		writeJSON(w, 201, ag)
	case r.Method == "PATCH" && strings.HasPrefix(path, "/agents/"):
		id := strings.TrimPrefix(path, "/agents/")
		for _, ag := range a.agents {
			if ag["id"] != id {
				continue
			}
			if id == "a_1" && (req["disabled"] == true || (req["role"] != nil && req["role"] != "admin")) {
				apiError(w, 409, "conflict", "Server: you cannot disable or demote yourself")
				return true
			}
			for k, v := range req {
				ag[k] = v
			}
			writeJSON(w, 200, ag)
			return true
		}
		apiError(w, 404, "not_found", "no such agent")
	case r.Method == "GET" && path == "/apikeys":
		writeJSON(w, 200, map[string]any{"api_keys": a.keys})
	case r.Method == "POST" && path == "/apikeys":
		k := map[string]any{"id": fmt.Sprintf("k_%d", len(a.keys)+1), "company": "demo", "name": req["name"],
			"created_at": "2026-03-01T09:00:00Z", "revoked": false}
		a.keys = append(a.keys, k)
		out := map[string]any{"key": "tdm_SECRETfake0123456789"}
		for kk, v := range k {
			out[kk] = v
		}
		writeJSON(w, 201, out)
	case r.Method == "DELETE" && strings.HasPrefix(path, "/apikeys/"):
		for _, k := range a.keys {
			if k["id"] == strings.TrimPrefix(path, "/apikeys/") {
				k["revoked"] = true
				writeJSON(w, 200, k)
				return true
			}
		}
		apiError(w, 404, "not_found", "no such key")
	case r.Method == "GET" && path == "/company":
		writeJSON(w, 200, a.company)
	case r.Method == "PATCH" && path == "/company":
		if a.badSetting != "" {
			apiError(w, 400, "invalid_request", a.badSetting)
			return true
		}
		for k, v := range req {
			if k == "branding" {
				b := a.company["branding"].(map[string]any)
				for bk, bv := range v.(map[string]any) {
					b[bk] = bv
				}
				continue
			}
			a.company[k] = v
		}
		writeJSON(w, 200, a.company)
	default:
		apiError(w, 404, "not_found", "no such route")
	}
	return true
}

// setAdmin signs an agent with role in and changes the admin state under
// the lock.
func (f *fakeServer) setAdmin(role string, fn func(*fakeAdmin)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loggedIn, f.role = true, role
	if fn != nil {
		fn(&f.admin)
	}
}
