package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const testAdminToken = "cli-test-operator-token-0123456789"

// startAdminServe runs `tandem serve --admin-token ...` in-process on a
// random port, with no warm browser (these tests start no session).
func startAdminServe(t *testing.T) string {
	t.Helper()
	return "http://" + startLightServe(t, serveConfig{AdminToken: testAdminToken})
}

// startLightServe runs `tandem serve` with cfg in-process on a random
// port, with no warm browser and a data directory of its own, and returns
// its address.
func startLightServe(t *testing.T, cfg serveConfig) string {
	t.Helper()
	data, err := os.MkdirTemp("", "tandem-serve-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	cfg.Addr, cfg.Data, cfg.LogLevel, cfg.ICELoopback, cfg.Warm = "127.0.0.1:0", data, "warn", "auto", -1
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { done <- serve(ctx, cfg, log, io.Discard, ready) }()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return url
}

// admin runs `tandem admin args...` and returns its exit code and output.
func admin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"admin"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// adminJSON runs a command with --json and decodes what it printed.
func adminJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := admin(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("tandem admin %q = %d, stderr %s", args, code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("tandem admin %q --json printed %q: %v", args, out, err)
	}
	return m
}

// login says whether an agent can log in on the server.
func login(t *testing.T, server, email, password string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(server+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getWithKey(t *testing.T, server, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", server+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminCLI runs the admin commands against a real `tandem serve`, the
// way an operator's script would: server and token from the environment.
func TestAdminCLI(t *testing.T) {
	server := startAdminServe(t)
	t.Setenv("TANDEM_SERVER", server)
	t.Setenv("TANDEM_ADMIN_TOKEN", testAdminToken)

	// Companies.
	code, out, errOut := admin(t, "company", "create", "acme", "--name", "Acme Corp", "--origins", "https://shop.acme.test, https://acme.test")
	if code != 0 || !strings.Contains(out, "SLUG") || !strings.Contains(out, "Acme Corp") || !strings.Contains(out, "https://shop.acme.test,https://acme.test") {
		t.Fatalf("company create = %d\n%s%s", code, out, errOut)
	}
	co := adminJSON(t, "company", "create", "--name", "Beta", "beta")
	if co["slug"] != "beta" || co["disabled"] != false {
		t.Errorf("company create --json = %v", co)
	}
	list := adminJSON(t, "company", "list")
	if cs, _ := list["companies"].([]any); len(cs) != 2 {
		t.Errorf("company list --json = %v", list)
	}

	// Agents: one with a password, one with a made-up one.
	code, out, errOut = admin(t, "agent", "create", "--company", "acme", "--email", "boss@acme.test", "--name", "Boss", "--role", "admin", "--password", "boss-password-1")
	if code != 0 || !strings.Contains(out, "boss@acme.test") || !strings.Contains(out, "admin") || strings.Contains(out, "password:") {
		t.Fatalf("agent create = %d\n%s%s", code, out, errOut)
	}
	if s := login(t, server, "boss@acme.test", "boss-password-1"); s != 200 {
		t.Errorf("login with the given password = %d", s)
	}
	ann := adminJSON(t, "agent", "create", "--company", "acme", "--email", "ann@acme.test")
	pw, _ := ann["password"].(string)
	if ann["role"] != "agent" || len(pw) < 16 || ann["id"] == "" {
		t.Fatalf("agent create --json = %v", ann)
	}
	if s := login(t, server, "ann@acme.test", pw); s != 200 {
		t.Errorf("login with the made-up password = %d", s)
	}
	code, out, _ = admin(t, "agent", "list", "--company", "acme")
	if code != 0 || !strings.Contains(out, "boss@acme.test") || !strings.Contains(out, "ann@acme.test") || strings.Contains(out, "argon") {
		t.Errorf("agent list = %d\n%s", code, out)
	}
	// Disable by e-mail; the other by id, with --json.
	code, out, _ = admin(t, "agent", "disable", "--company", "acme", "ANN@acme.test")
	if code != 0 || !strings.Contains(out, "yes") {
		t.Errorf("agent disable = %d\n%s", code, out)
	}
	if s := login(t, server, "ann@acme.test", pw); s != 401 {
		t.Errorf("login of a disabled agent = %d, want 401", s)
	}

	// API keys.
	key := adminJSON(t, "apikey", "create", "--company", "acme", "--name", "CRM")
	secret, _ := key["key"].(string)
	id, _ := key["id"].(string)
	if !strings.HasPrefix(secret, "tdm_") || id == "" {
		t.Fatalf("apikey create --json = %v", key)
	}
	if s := getWithKey(t, server, secret); s != 200 {
		t.Errorf("the new key = %d", s)
	}
	code, out, _ = admin(t, "apikey", "create", "--company", "acme", "--name", "Help desk")
	if code != 0 || !strings.Contains(out, "tdm_") || !strings.Contains(out, "shown only now") {
		t.Errorf("apikey create = %d\n%s", code, out)
	}
	code, out, _ = admin(t, "apikey", "list", "--company", "acme")
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, secret) || !strings.Contains(out, "Help desk") {
		t.Errorf("apikey list = %d\n%s", code, out)
	}
	revoked := adminJSON(t, "apikey", "revoke", id, "--company", "acme")
	if revoked["revoked"] != true {
		t.Errorf("apikey revoke --json = %v", revoked)
	}
	if s := getWithKey(t, server, secret); s != 401 {
		t.Errorf("a revoked key = %d, want 401", s)
	}

	// Disabling the company stops its agents; the records stay.
	code, out, _ = admin(t, "company", "disable", "acme")
	if code != 0 || !strings.Contains(out, "yes") {
		t.Errorf("company disable = %d\n%s", code, out)
	}
	if s := login(t, server, "boss@acme.test", "boss-password-1"); s != 401 {
		t.Errorf("login in a disabled company = %d, want 401", s)
	}
	if agents, _ := adminJSON(t, "agent", "list", "--company", "acme")["agents"].([]any); len(agents) != 2 {
		t.Errorf("agents of the disabled company = %v, want both kept", agents)
	}

	// Server errors: the server's message and code, exit 1.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"company", "create", "beta", "--name", "Again"}, "tandem: it exists already (exists)\n"},
		{[]string{"company", "create", "Bad_Slug", "--name", "X"}, "(invalid_request)\n"},
		{[]string{"agent", "list", "--company", "nope"}, "tandem: no such object (not_found)\n"},
		{[]string{"agent", "create", "--company", "beta", "--email", "x@beta.test", "--password", "short"}, "(invalid_request)\n"},
		{[]string{"agent", "disable", "--company", "beta", "nobody@beta.test"}, "has no agent nobody@beta.test"},
		{[]string{"apikey", "revoke", "--company", "beta", "k_nope"}, "(not_found)\n"},
		{[]string{"company", "list", "--token", "wrong-token-wrong-token"}, "(unauthenticated)\n"},
		{[]string{"company", "list", "--server", "http://127.0.0.1:1"}, "cannot reach http://127.0.0.1:1"},
	} {
		code, out, errOut := admin(t, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || !strings.HasPrefix(errOut, "tandem: ") {
			t.Errorf("tandem admin %q = %d, stdout %q, stderr %q; want exit 1 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if agents, _ := adminJSON(t, "agent", "list", "--company", "beta")["agents"].([]any); len(agents) != 0 {
		t.Errorf("failed commands created agents in beta: %v", agents)
	}
}

// Usage errors exit 2 without calling any server.
func TestAdminCLIUsage(t *testing.T) {
	t.Setenv("TANDEM_SERVER", "http://127.0.0.1:1") // nothing listens: a call would fail with exit 1
	t.Setenv("TANDEM_ADMIN_TOKEN", testAdminToken)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs an object and a verb"},
		{[]string{"company"}, "needs an object and a verb"},
		{[]string{"company", "delete", "acme"}, `unknown command "admin company delete"`},
		{[]string{"company", "create", "acme"}, "needs --name"},
		{[]string{"company", "create", "--name", "Acme"}, "takes 1 argument(s)"},
		{[]string{"company", "create", "a", "b", "--name", "Acme"}, "takes 1 argument(s)"},
		{[]string{"company", "list", "extra"}, "takes 0 argument(s)"},
		{[]string{"agent", "create", "--email", "x@acme.test"}, "needs --company"},
		{[]string{"agent", "create", "--company", "acme"}, "needs --email"},
		{[]string{"agent", "list", "--company", "acme", "--nope"}, "flag provided but not defined"},
		{[]string{"apikey", "create", "--company", "acme"}, "needs --name"},
		{[]string{"apikey", "revoke", "--company", "acme"}, "takes 1 argument(s)"},
		{[]string{"company", "list", "--server", "ftp://x"}, "not an http(s) URL"},
		{[]string{"company", "list", "--token", ""}, "no operator token"},
	} {
		code, _, errOut := admin(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("tandem admin %q = %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	t.Setenv("TANDEM_ADMIN_TOKEN", "")
	if code, _, errOut := admin(t, "company", "list"); code != 2 || !strings.Contains(errOut, "TANDEM_ADMIN_TOKEN") {
		t.Errorf("without a token = %d %q, want 2 naming TANDEM_ADMIN_TOKEN", code, errOut)
	}
	if code, out, _ := admin(t, "help"); code != 0 || !strings.Contains(out, "tandem admin apikey revoke") {
		t.Errorf("admin help = %d %q", code, out)
	}
}

func TestAdminTokenSetting(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--admin-token", "short"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--admin-token") {
		t.Errorf("serve --admin-token short = %d %q, want 2", code, stderr.String())
	}
	t.Setenv("TANDEM_ADMIN_TOKEN", testAdminToken)
	var cfg serveConfig
	if err := parseFlags(serveFlags(&cfg), nil, &stderr); err != nil || cfg.AdminToken != testAdminToken {
		t.Errorf("TANDEM_ADMIN_TOKEN → AdminToken %q, %v", cfg.AdminToken, err)
	}
}
