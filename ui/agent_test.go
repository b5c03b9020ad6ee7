package ui

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
)

func login(t *testing.T, ctx context.Context, password string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('login-email').value = ''; document.getElementById('login-password').value = ''`),
		chromedp.SendKeys(chromedp.ID("login-email"), "agent@demo.test"),
		chromedp.SendKeys(chromedp.ID("login-password"), password+kb.Enter),
	)
}

func TestAgentConsole(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open console", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, ctx, "login form", `!document.getElementById('login').hidden && document.getElementById('loading').hidden`)
	shot(t, ctx, "agent-login-desktop")

	login(t, ctx, "wrong")
	waitJS(t, ctx, "login error", `document.getElementById('login-error').textContent === 'The email or password is not correct.'`)
	login(t, ctx, "secret")
	waitJS(t, ctx, "console", `!document.getElementById('console').hidden && document.getElementById('agent-name').textContent === 'Aiko Tanaka'`)
	if got := eval[string](t, ctx, "document.getElementById('company-name').textContent"); got != "Demo Inc." {
		t.Errorf("company = %q", got)
	}
	if got := eval[string](t, ctx, "document.getElementById('start-url').value"); got != srv.URL+"/demo/" {
		t.Errorf("start URL = %q, want %s/demo/", got, srv.URL)
	}

	// A new session: the PIN to read out, the join link, the list.
	run(t, ctx, "create session", chromedp.Click(chromedp.ID("new-submit")))
	waitJS(t, ctx, "session page", `location.pathname === '/agent/s/s_1' && !document.getElementById('pin-card').hidden`)
	calls := srv.calls("POST", "/api/v1/sessions")
	if len(calls) != 1 {
		t.Fatalf("%d create calls", len(calls))
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(calls[0].Body), &body); err != nil || len(body) != 1 || body["start_url"] != srv.URL+"/demo/" {
		t.Errorf("create body = %s, %v", calls[0].Body, err)
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#pin span')].map(s => s.textContent)`); len(got) != 2 || got[0] != "4821" || got[1] != "3907" {
		t.Errorf("PIN groups = %q, want 4821 3907", got)
	}
	if got := eval[string](t, ctx, "document.getElementById('join-url').value"); got != srv.URL+"/join/demo" {
		t.Errorf("join link = %q", got)
	}
	waitJS(t, ctx, "listed", `document.querySelectorAll('#session-list li').length === 1`)
	// The activity: who did what, from the session's audit trail.
	waitJS(t, ctx, "activity of the new session", `document.querySelectorAll('#activity-list li').length === 2 && document.getElementById('activity-empty').hidden`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#activity-list li')].map(li => li.querySelector('.activity-actor').textContent + ' | ' + li.querySelector('.activity-what').textContent)`); len(got) != 2 || got[0] != "You | Started the session" || got[1] != "You | PIN issued" {
		t.Errorf("activity = %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('#activity-list time').dateTime`); got == "" {
		t.Errorf("activity time has no dateTime")
	}
	if got := eval[string](t, ctx, "document.getElementById('session-state').textContent"); got != "Waiting" {
		t.Errorf("state badge = %q", got)
	}
	if eval[bool](t, ctx, "!document.getElementById('viewer-host').hidden") {
		t.Errorf("the live tab shows before the customer joined")
	}
	shot(t, ctx, "agent-waiting-desktop")

	// The customer joins: the console polls, sees "active" and opens the tab.
	w.setFrame(encodeFrame(t, srv, demoShot(t, srv, "/demo/checkout?item=tea", 1280, 720), 1280, 720), 1280, 720)
	srv.setState("s_1", "active")
	waitLive(t, ctx)
	if got := eval[string](t, ctx, "document.querySelector('.viewer').dataset.role"); got != "agent" {
		t.Errorf("viewer role = %q", got)
	}
	if !eval[bool](t, ctx, "document.getElementById('pin-card').hidden") {
		t.Errorf("the PIN still shows after the customer joined")
	}
	waitJS(t, ctx, "activity of the joined session", `document.querySelectorAll('#activity-list li').length === 5`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#activity-list .activity-actor')].slice(2).map(e => e.textContent)`); len(got) != 3 || got[0] != "Customer" || got[1] != "Customer" || got[2] != "Ken Sato" {
		t.Errorf("actors after the join = %q", got)
	}
	g := videoGeometry(t, ctx)
	x, y := g.client(640, 360)
	run(t, ctx, "click the tab", chromedp.MouseClickXY(x, y))
	from := 0
	if ev := w.waitEvent(t, &from, "agent click", isMouse(pinput.ActionDown)); ev.Role != "agent" || !near(ev.Event.X, 640) || !near(ev.Event.Y, 360) {
		t.Errorf("agent click = %+v, want 640,360", ev)
	}
	for _, r := range w.eventsSince(0) {
		if r.Event.Kind == pinput.KindViewport {
			t.Errorf("the agent sent a viewport: %+v", r.Event)
		}
	}
	shot(t, ctx, "agent-live-desktop")

	// Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese", `document.getElementById('session-state').textContent === '接続中'`)
	if got := eval[string](t, ctx, "document.querySelector('.viewer-hint').textContent"); got == "" || got[0] < 0x80 {
		t.Errorf("viewer hint not translated: %q", got)
	}
	shot(t, ctx, "agent-live-desktop-ja")

	// End it.
	run(t, ctx, "end session", chromedp.Click(chromedp.ID("end-session")))
	waitJS(t, ctx, "ended", `document.getElementById('session-state').textContent === '終了' && document.getElementById('viewer-host').hidden`)
	if n := len(srv.calls("DELETE", "/api/v1/sessions/s_1")); n != 1 {
		t.Errorf("%d DELETE calls, want 1", n)
	}
	waitJS(t, ctx, "list shows ended", `document.querySelector('#session-list .badge').textContent === '終了'`)
	waitJS(t, ctx, "activity shows the end", `[...document.querySelectorAll('#activity-list li')].some(li => li.textContent.includes('あなた') && li.textContent.includes('セッションを終了'))`)
	if n := len(srv.calls("GET", "/api/v1/sessions/s_1/audit")); n < 3 {
		t.Errorf("%d audit calls for the open session, want it refreshed with the session", n)
	}

	// A session the system ended shows why.
	srv.addSession(fakeSession{ID: "s_idle", Company: "demo", State: "ended", EndReason: "idle", StartURL: srv.URL + "/demo/",
		CreatedAt: time.Now().UTC().Format(time.RFC3339), ExpiresAt: time.Now().UTC().Format(time.RFC3339)})
	run(t, ctx, "open the idle session", chromedp.Navigate(srv.URL+"/agent/s/s_idle"))
	waitJS(t, ctx, "system end with its reason", `[...document.querySelectorAll('#activity-list li')].some(li => li.querySelector('.activity-actor').textContent === 'システム' && li.querySelector('.activity-detail')?.textContent.includes('しばらく'))`)

	// An unknown session, then log out.
	run(t, ctx, "open unknown session", chromedp.Navigate(srv.URL+"/agent/s/s_nope"))
	waitJS(t, ctx, "missing", `!document.getElementById('session-missing').hidden`)
	run(t, ctx, "log out", chromedp.Click(chromedp.ID("logout")))
	waitJS(t, ctx, "login again", `!document.getElementById('login').hidden`)
	if n := len(srv.calls("POST", "/api/v1/auth/logout")); n != 1 {
		t.Errorf("%d logout calls", n)
	}
	w.checkClean(t)
}

func TestAgentConsolePhone(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 390, 844, true)
	run(t, ctx, "open console", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, ctx, "login form", `!document.getElementById('login').hidden`)
	shot(t, ctx, "agent-login-phone")
	login(t, ctx, "secret")
	waitJS(t, ctx, "console", `!document.getElementById('console').hidden`)
	shot(t, ctx, "agent-empty-phone")
	run(t, ctx, "create session", chromedp.Click(chromedp.ID("new-submit")))
	waitJS(t, ctx, "PIN", `!document.getElementById('pin-card').hidden && document.querySelectorAll('#session-list li').length === 1`)
	if over := eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth"); over {
		t.Errorf("the console scrolls sideways on a phone")
	}
	// On a phone the open session comes first.
	if !eval[bool](t, ctx, `document.querySelector('.console-main').getBoundingClientRect().top < document.querySelector('.console-side').getBoundingClientRect().top`) {
		t.Errorf("the session panel is not above the list on a phone")
	}
	shot(t, ctx, "agent-waiting-phone")
}
