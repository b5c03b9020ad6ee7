package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// runServe starts `tandem serve` in-process on data with the operator token
// and no warm browser, and returns its URL and a stop function that waits
// for serve to return.
func runServe(t *testing.T, data string) (string, func()) {
	t.Helper()
	cfg := serveConfig{Addr: "127.0.0.1:0", Data: data, LogLevel: "warn", ICELoopback: "auto", Warm: -1, AdminToken: testAdminToken,
		EgressAllow: listFlag{testEgressAllow}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { done <- serve(ctx, cfg, log, io.Discard, ready) }()
	select {
	case addr := <-ready:
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
		}
		t.Cleanup(stop)
		return "http://" + addr, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatal("serve did not start")
	}
	return "", nil
}

// call sends a JSON request with the given Authorization and returns the
// status and the decoded body.
func call(t *testing.T, method, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s = %d %q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, m
}

// auditTypes returns the event types of a session's audit trail.
func auditTypes(t *testing.T, server, key, id string) []string {
	t.Helper()
	code, m := call(t, "GET", server+"/api/v1/sessions/"+id+"/audit", key, "")
	if code != http.StatusOK {
		t.Fatalf("audit of %s = %d %v", id, code, m)
	}
	evs, _ := m["events"].([]any)
	var out []string
	for _, e := range evs {
		ev, _ := e.(map[string]any)
		typ, _ := ev["type"].(string)
		out = append(out, typ)
	}
	return out
}

// TestRestartKeepsData: a company, its agent, its API key, a session and
// the session's audit trail are all still there after `tandem serve` stops
// and starts again on the same data directory.
func TestRestartKeepsData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve twice and a browser")
	}
	data, err := os.MkdirTemp("", "tandem-restart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "<!doctype html><title>restart</title><p>hello")
	}))
	t.Cleanup(page.Close)

	server, stop := runServe(t, data)
	if code, m := call(t, "POST", server+"/api/v1/admin/companies", testAdminToken,
		`{"slug":"keep","name":"Keep Co","allowed_origins":["https://keep.test"]}`); code != http.StatusCreated {
		t.Fatalf("create company = %d %v", code, m)
	}
	if code, m := call(t, "POST", server+"/api/v1/admin/companies/keep/agents", testAdminToken,
		`{"email":"kim@keep.test","name":"Kim","password":"restart-password-1","role":"admin"}`); code != http.StatusCreated {
		t.Fatalf("create agent = %d %v", code, m)
	}
	code, m := call(t, "POST", server+"/api/v1/admin/companies/keep/apikeys", testAdminToken, `{"name":"crm"}`)
	key, _ := m["key"].(string)
	if code != http.StatusCreated || key == "" {
		t.Fatalf("create API key = %d %v", code, m)
	}
	// A session (one browser, started on demand) gives an audit trail.
	code, m = call(t, "POST", server+"/api/v1/sessions", key, `{"start_url":"`+page.URL+`/"}`)
	id, _ := m["id"].(string)
	if code != http.StatusCreated || id == "" {
		t.Fatalf("create session = %d %v", code, m)
	}
	if code, m := call(t, "DELETE", server+"/api/v1/sessions/"+id, key, ""); code != http.StatusOK || m["state"] != "ended" {
		t.Fatalf("end session = %d %v", code, m)
	}
	before := auditTypes(t, server, key, id)
	if len(before) < 3 {
		t.Fatalf("audit before the restart = %v, want session.created, pin.issued, session.ended", before)
	}
	if login(t, server, "kim@keep.test", "restart-password-1") != http.StatusOK {
		t.Fatal("the agent cannot log in before the restart")
	}
	stop()

	// The same data directory, a new process state.
	server, _ = runServe(t, data)
	if code, m := call(t, "GET", server+"/api/v1/companies/keep", "", ""); code != http.StatusOK || m["name"] != "Keep Co" {
		t.Errorf("company after the restart = %d %v", code, m)
	}
	if code, m := call(t, "GET", server+"/api/v1/admin/companies/keep", testAdminToken, ""); code != http.StatusOK {
		t.Errorf("admin company after the restart = %d %v", code, m)
	} else if o, _ := m["allowed_origins"].([]any); len(o) != 1 || o[0] != "https://keep.test" {
		t.Errorf("allowed origins after the restart = %v", m["allowed_origins"])
	}
	if got := login(t, server, "kim@keep.test", "restart-password-1"); got != http.StatusOK {
		t.Errorf("agent login after the restart = %d, want 200", got)
	}
	if got := login(t, server, "kim@keep.test", "wrong-password-1"); got != http.StatusUnauthorized {
		t.Errorf("wrong password after the restart = %d, want 401", got)
	}
	if got := getWithKey(t, server, key); got != http.StatusOK {
		t.Errorf("API key after the restart = %d, want 200", got)
	}
	if code, m := call(t, "GET", server+"/api/v1/sessions/"+id, key, ""); code != http.StatusOK || m["state"] != "ended" {
		t.Errorf("session after the restart = %d %v", code, m)
	}
	after := auditTypes(t, server, key, id)
	if len(after) != len(before) {
		t.Fatalf("audit after the restart = %v, before %v", after, before)
	}
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("audit event %d after the restart = %s, before %s", i, after[i], before[i])
		}
	}
}
