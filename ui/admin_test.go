package ui

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// TestAdminGates: signed out, the page links to the console's sign-in; an
// agent who is not an admin is refused; the console links admins here.
func TestAdminGates(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open admin", chromedp.Navigate(srv.URL+"/admin/"))
	waitJS(t, ctx, "sign-in link", `!document.getElementById('signed-out').hidden && document.getElementById('admin').hidden && document.querySelector('#signed-out a').getAttribute('href') === '/agent/'`)

	srv.setAdmin("agent", nil)
	run(t, ctx, "reload as agent", chromedp.Navigate(srv.URL+"/admin/"))
	waitJS(t, ctx, "refusal", `!document.getElementById('forbidden').hidden && document.getElementById('admin').hidden`)
	if got := eval[string](t, ctx, "document.getElementById('forbidden-title').textContent"); got != "Only company admins" {
		t.Errorf("refusal title = %q", got)
	}
	if n := len(srv.calls("GET", "/api/v1/agents")); n != 0 {
		t.Errorf("a non-admin's page called GET /agents %d times", n)
	}
	run(t, ctx, "console as agent", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, ctx, "console", `!document.getElementById('console').hidden`)
	if !eval[bool](t, ctx, "document.getElementById('admin-link').hidden") {
		t.Errorf("the console links a non-admin to /admin/")
	}
	srv.setAdmin("admin", nil)
	run(t, ctx, "console as admin", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, ctx, "admin link", `!document.getElementById('console').hidden && !document.getElementById('admin-link').hidden`)
}

func TestAdminPage(t *testing.T) {
	srv := newFakeServer(t)
	srv.setAdmin("admin", nil)
	ctx, _ := newTab(t, 1280, 900, false)
	run(t, ctx, "open admin", chromedp.Navigate(srv.URL+"/admin/"))
	waitJS(t, ctx, "loaded", `!document.getElementById('admin').hidden && document.querySelectorAll('#agent-list li').length === 2 && document.querySelectorAll('#key-list li').length === 1 && document.getElementById('set-name').value === 'Demo Inc.'`)
	if got := eval[string](t, ctx, "document.getElementById('set-pin-lifetime').value"); got != "10" {
		t.Errorf("PIN lifetime shows %q minutes, want 10", got)
	}

	// Add an agent: a short password is refused here, then the right JSON.
	browsertest.Fill(t, ctx, "#agent-email", "mika@demo.test")
	browsertest.Fill(t, ctx, "#agent-new-name", "Mika Ito")
	run(t, ctx, "role", chromedp.SetValue(chromedp.ID("agent-role"), "supervisor"))
	browsertest.Fill(t, ctx, "#agent-password", "short")
	run(t, ctx, "short password", chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "password error", `document.getElementById('agent-form-error').textContent === 'The password needs at least 8 characters.'`)
	if n := len(srv.calls("POST", "/api/v1/agents")); n != 0 {
		t.Errorf("a short password was posted")
	}
	browsertest.Fill(t, ctx, "#agent-password", "longenough")
	run(t, ctx, "add agent", chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "agent listed", `document.querySelectorAll('#agent-list li').length === 3 && document.querySelector('#agent-list li:last-child').textContent.includes('Mika Ito')`)
	var body map[string]string
	if calls := srv.calls("POST", "/api/v1/agents"); len(calls) != 1 || json.Unmarshal([]byte(calls[0].Body), &body) != nil {
		t.Fatalf("add calls = %+v", calls)
	}
	if diff := cmp.Diff(map[string]string{"email": "mika@demo.test", "name": "Mika Ito", "role": "supervisor", "password": "shortlongenough"}, body); diff != "" {
		t.Errorf("add body (-want +got):\n%s", diff)
	}
	if got := eval[string](t, ctx, `document.querySelector('#agent-list li:last-child select').value`); got != "supervisor" {
		t.Errorf("new agent's role shows %q", got)
	}

	// Disabling oneself: the server's 409 message, and the row unchanged.
	run(t, ctx, "disable self", chromedp.Click(chromedp.CSS(`#agent-list li[data-id="a_1"] button`)))
	waitJS(t, ctx, "409 shown", `document.getElementById('agents-error').textContent === 'Server: you cannot disable or demote yourself'`)
	// Disabling another agent works.
	run(t, ctx, "disable Ken", chromedp.Click(chromedp.CSS(`#agent-list li[data-id="a_2"] button`)))
	waitJS(t, ctx, "Ken disabled", `document.querySelector('#agent-list li[data-id="a_2"] .badge')?.textContent === 'Disabled' && document.getElementById('agents-error').hidden`)
	if calls := srv.calls("PATCH", "/api/v1/agents/a_2"); len(calls) != 1 || calls[0].Body != `{"disabled":true}` {
		t.Errorf("disable calls = %+v", calls)
	}

	// A new API key shows once; the list never holds it.
	const secret = "tdm_SECRETfake0123456789"
	browsertest.Fill(t, ctx, "#key-name", "Helpdesk")
	run(t, ctx, "create key", chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "key shown", `!document.getElementById('key-reveal').hidden && document.getElementById('key-secret').value === '`+secret+`' && document.querySelectorAll('#key-list li').length === 2`)
	if calls := srv.calls("POST", "/api/v1/apikeys"); len(calls) != 1 || calls[0].Body != `{"name":"Helpdesk"}` {
		t.Errorf("key calls = %+v", calls)
	}
	if got := eval[string](t, ctx, "document.getElementById('key-list').textContent"); strings.Contains(got, secret) || !strings.Contains(got, "Helpdesk") {
		t.Errorf("key list = %q", got)
	}
	shot(t, ctx, "admin-desktop")
	run(t, ctx, "key saved", chromedp.Click(chromedp.ID("key-done")))
	waitJS(t, ctx, "key gone", `document.getElementById('key-reveal').hidden && !document.body.innerHTML.includes('`+secret+`')`)

	// Revoke after confirming.
	run(t, ctx, "revoke", chromedp.Click(chromedp.CSS(`#key-list li[data-id="k_1"] button`)))
	waitJS(t, ctx, "confirm dialog", `document.getElementById('revoke-dialog').open`)
	run(t, ctx, "confirm", chromedp.Click(chromedp.ID("revoke-confirm")))
	waitJS(t, ctx, "revoked", `document.querySelector('#key-list li[data-id="k_1"] .badge')?.textContent === 'Revoked'`)
	if n := len(srv.calls("DELETE", "/api/v1/apikeys/k_1")); n != 1 {
		t.Errorf("%d DELETE calls", n)
	}

	// Settings: minutes become seconds, origins split by lines, only what changed.
	run(t, ctx, "edit settings",
		chromedp.SetValue(chromedp.ID("set-pin-lifetime"), "15"),
		chromedp.SetValue(chromedp.ID("set-idle"), "5"),
		chromedp.SetValue(chromedp.ID("set-pin-length"), "8"),
		chromedp.SetValue(chromedp.ID("set-retention"), "30"),
		chromedp.SetValue(chromedp.ID("set-max-sessions"), "12"),
		chromedp.SetValue(chromedp.ID("set-origins"), "https://a.demo.test\n\n  https://b.demo.test  \n"),
		chromedp.Click(chromedp.ID("set-must-admit")),
		chromedp.Click(chromedp.ID("set-colour-on")),
		chromedp.Click(chromedp.ID("settings-save")))
	waitJS(t, ctx, "saved", `document.getElementById('settings-status').textContent === 'Settings saved.'`)
	calls := srv.calls("PATCH", "/api/v1/company")
	if len(calls) != 1 {
		t.Fatalf("%d PATCH calls", len(calls))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(calls[0].Body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"pin_lifetime": 900.0, "idle_timeout": 300.0, "pin_length": 8.0, "audit_retention": 30 * 86400.0, "max_sessions": 12.0,
		"agent_must_admit": true, "allowed_origins": []any{"https://a.demo.test", "https://b.demo.test"},
		"branding": map[string]any{"colour": "#4338ca"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings PATCH (-want +got):\n%s", diff)
	}

	// A 400 shows the server's message next to the form.
	srv.setAdmin("admin", func(a *fakeAdmin) { a.badSetting = "Server: PIN length 11 (want 6 to 10)" })
	run(t, ctx, "bad setting", chromedp.SetValue(chromedp.ID("set-pin-length"), "11"), chromedp.Click(chromedp.ID("settings-save")))
	waitJS(t, ctx, "400 shown", `document.getElementById('settings-error').textContent === 'Server: PIN length 11 (want 6 to 10)' && document.getElementById('settings-status').textContent === ''`)
	if calls := srv.calls("PATCH", "/api/v1/company"); len(calls) != 2 || calls[1].Body != `{"pin_length":11}` {
		t.Errorf("second PATCH = %+v", calls)
	}

	// Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese", `document.getElementById('settings-title').textContent === '会社の設定' && document.querySelector('#key-list li[data-id="k_1"] .badge').textContent === '失効'`)
	shot(t, ctx, "admin-desktop-ja")
}

func TestAdminPagePhone(t *testing.T) {
	srv := newFakeServer(t)
	srv.setAdmin("admin", nil)
	ctx, _ := newTab(t, 390, 844, true)
	run(t, ctx, "open admin", chromedp.Navigate(srv.URL+"/admin/"))
	waitJS(t, ctx, "loaded", `!document.getElementById('admin').hidden && document.querySelectorAll('#agent-list li').length === 2`)
	if eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth") {
		t.Errorf("the admin page scrolls sideways on a phone")
	}
	shot(t, ctx, "admin-phone")
}
