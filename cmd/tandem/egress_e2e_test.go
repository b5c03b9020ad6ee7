package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestServeEgress: with serve's defaults the hosted browser stays off
// loopback (SECURITY.md P6). A start page on a loopback server that
// --egress-allow does not list, in any spelling, is refused with 403
// url_not_allowed and never reached; the demo shop, on serve's own
// loopback origin, is allowed by --demo.
func TestServeEgress(t *testing.T) {
	var hits atomic.Int64
	canary := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "canary")
	}))
	canary.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			hits.Add(1)
		}
	}
	canary.Start()
	t.Cleanup(canary.Close)
	port := canary.URL[strings.LastIndexByte(canary.URL, ':')+1:]

	s := &server{done: make(chan error, 1)}
	serveWith(t, s, func(*serveConfig) {}) // no --egress-allow

	for _, u := range []string{canary.URL + "/", "http://2130706433:" + port + "/", "http://127.1:" + port + "/",
		"http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/", "http://169.254.169.254/latest/meta-data/"} {
		body, _ := json.Marshal(map[string]string{"start_url": u})
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/sessions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+e2eKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != http.StatusForbidden || e.Error != "url_not_allowed" {
			t.Errorf("create session at %s = %d %s, want 403 url_not_allowed", u, resp.StatusCode, b)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("canary got %d connections, want 0", n)
	}

	// The demo shop is this server's own origin: allowed with --demo, under
	// both names the agent console may have been opened with.
	_, srvPort, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	for _, u := range []string{s.URL + "/demo/", "http://localhost:" + srvPort + "/demo/"} {
		sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+u+`"}`)
		if id, _ := sess["id"].(string); id == "" {
			t.Errorf("create session at the demo shop %s: %v", u, sess)
		}
	}
}

func TestDemoOrigins(t *testing.T) {
	got := demoOrigins("127.0.0.1:8080", "https://tandem.example.com/base")
	for _, want := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://tandem.example.com"} {
		if !slices.Contains(got, want) {
			t.Errorf("demoOrigins(127.0.0.1:8080) = %q, want it to hold %s", got, want)
		}
	}
	all := demoOrigins("0.0.0.0:8080", "")
	if slices.Contains(all, "http://0.0.0.0:8080") || !slices.Contains(all, "http://127.0.0.1:8080") {
		t.Errorf("demoOrigins(0.0.0.0:8080) = %q, want loopback and interface addresses, not 0.0.0.0", all)
	}
	if got := demoOrigins("192.0.2.7:80", ""); len(got) != 1 || got[0] != "http://192.0.2.7:80" {
		t.Errorf("demoOrigins(192.0.2.7:80) = %q, want only its own origin", got)
	}
}
