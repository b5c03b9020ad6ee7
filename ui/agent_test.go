package ui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

func login(t *testing.T, ctx context.Context, password string) {
	t.Helper()
	run(t, ctx, "clear the sign-in form",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('login-email').value = ''; document.getElementById('login-password').value = ''`))
	browsertest.Fill(t, ctx, "#login-email", "agent@demo.test")
	browsertest.Fill(t, ctx, "#login-password", password)
	run(t, ctx, "sign in", chromedp.KeyEvent(kb.Enter))
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

	// The customer joins: the console polls, sees them arrive and opens the
	// tab, which shows nothing until the customer agrees (the worker holds
	// the agents' frames until then).
	w.setFrame(encodeFrame(t, srv, demoShot(t, srv, "/demo/checkout?item=tea", 1280, 720), 1280, 720), 1280, 720)
	w.hold("agent", true)
	joined := time.Now().UTC()
	srv.update("s_1", func(s *fakeSession) {
		s.State, s.PIN = "active", ""
		s.Customer = map[string]string{"joined_at": joined.Format(time.RFC3339), "browser": "Chrome", "os": "Android", "device": "phone"}
	})
	waitJS(t, ctx, "arrival", `!document.getElementById('arrival').hidden && document.querySelector('.viewer')`)
	if got, want := eval[string](t, ctx, "document.getElementById('arrival-text').textContent"), "using Chrome on Android (phone)."; !strings.HasSuffix(got, want) || !strings.HasPrefix(got, "The customer joined at ") {
		t.Errorf("arrival = %q, want the time and %q", got, want)
	}
	if got := eval[string](t, ctx, "document.getElementById('arrival-status').textContent"); !strings.HasPrefix(got, "Waiting for the customer to agree") {
		t.Errorf("arrival status = %q", got)
	}
	waitJS(t, ctx, "the viewer waits for the consent", `document.querySelector('.viewer-status-title').textContent === 'Waiting for the customer to agree to share…'`)
	if !eval[bool](t, ctx, "document.getElementById('admit').hidden") {
		t.Errorf("an Admit button shows where the company does not ask for it")
	}
	waitJS(t, ctx, "the list says the consent is awaited", `document.querySelector('#session-list .session-item-meta').textContent.includes('awaiting consent')`)
	// The worker's refusal of an early click is told in the page's words.
	waitJS(t, ctx, "input channel", `window.tandemViewer?.input?.readyState === 'open'`)
	if err := w.notice(protocol.Notice{Type: "refused", Reason: "no_consent", Message: "worker text"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "refusal toast", `(() => { const e = document.querySelector('.viewer-toast'); return !e.hidden && e.textContent === 'The customer has not agreed to share yet.'; })()`)
	shot(t, ctx, "agent-awaiting-consent-desktop")
	time.Sleep(time.Second) // a second more without a picture
	if got := eval[string](t, ctx, "document.querySelector('.viewer').dataset.state"); got == "live" {
		t.Fatalf("the agent's view went live before the consent")
	}
	srv.update("s_1", func(s *fakeSession) { s.ConsentAt = time.Now().UTC().Format(time.RFC3339) })
	w.hold("agent", false)
	waitLive(t, ctx)
	waitJS(t, ctx, "sharing", `document.getElementById('arrival').dataset.gate === 'sharing' && document.getElementById('arrival-status').textContent.startsWith('The customer agreed to share at ')`)
	if got := eval[string](t, ctx, "document.querySelector('.viewer').dataset.role"); got != "agent" {
		t.Errorf("viewer role = %q", got)
	}
	if !eval[bool](t, ctx, "document.getElementById('pin-card').hidden") {
		t.Errorf("the PIN still shows after the customer joined")
	}
	waitJS(t, ctx, "activity of the joined session", `document.querySelectorAll('#activity-list li').length === 6`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#activity-list li')].slice(2).map(li => li.querySelector('.activity-actor').textContent + ' | ' + li.querySelector('.activity-what').textContent)`); len(got) != 4 || got[0] != "Customer | Entered the PIN" || got[2] != "Ken Sato | Joined" || got[3] != "Customer | Agreed to share the tab" {
		t.Errorf("activity after the join = %q", got)
	}
	// The customer let the agent control the tab (control_test.go has the
	// rest of control).
	if err := w.notice(protocol.Notice{Type: "control", Controller: "agent", ViewerID: "v_test", Name: "Aiko Tanaka"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "in control", `document.querySelector('.viewer').dataset.control === 'controlling'`)
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

// TestAgentAdmits: where the company makes agents admit customers, the
// console shows an Admit button until an agent lets the customer in.
func TestAgentAdmits(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
	w.hold("agent", true)
	now := time.Now().UTC()
	srv.addSession(fakeSession{ID: "s_adm", Company: "demo", State: "active", StartURL: srv.URL + "/demo/", MustAdmit: true,
		CreatedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(10 * time.Minute).Format(time.RFC3339),
		Customer: map[string]string{"joined_at": now.Format(time.RFC3339), "browser": "Safari", "os": "iOS", "device": "phone"}})
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open console", chromedp.Navigate(srv.URL+"/agent/s/s_adm"))
	waitJS(t, ctx, "login form", `!document.getElementById('login').hidden`)
	login(t, ctx, "secret")
	waitJS(t, ctx, "admit button", `!document.getElementById('admit').hidden && document.getElementById('arrival').dataset.gate === 'consent'`)
	if got := eval[string](t, ctx, "document.getElementById('arrival-status').textContent"); !strings.Contains(got, "You can let them in now") {
		t.Errorf("status before the consent = %q", got)
	}
	if got := eval[string](t, ctx, `document.getElementById('arrival-text').textContent`); !strings.HasSuffix(got, "using Safari on iOS (phone).") {
		t.Errorf("arrival = %q", got)
	}

	// The customer agrees: now they wait for the agent.
	srv.update("s_adm", func(s *fakeSession) { s.ConsentAt = time.Now().UTC().Format(time.RFC3339) })
	waitJS(t, ctx, "waiting for the agent", `document.getElementById('arrival').dataset.gate === 'admit'`)
	if got := eval[string](t, ctx, "document.getElementById('arrival-status').textContent"); got != "The customer agreed to share and is waiting for you to let them in." {
		t.Errorf("status after the consent = %q", got)
	}
	waitJS(t, ctx, "the viewer waits for the admission", `document.querySelector('.viewer-status-title').textContent === 'Waiting for you to let the customer in…'`)
	waitJS(t, ctx, "the list says the customer waits", `document.querySelector('#session-list .session-item-meta').textContent.includes('waiting to be let in')`)
	shot(t, ctx, "agent-admit-desktop")

	// In Japanese, then admit.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese", `document.getElementById('admit').textContent === 'お客様を入室させる'`)
	if got := eval[string](t, ctx, `document.getElementById('arrival-text').textContent`); !strings.Contains(got, "iOS の Safari（スマートフォン）") {
		t.Errorf("Japanese arrival = %q", got)
	}
	shot(t, ctx, "agent-admit-desktop-ja")
	run(t, ctx, "admit", chromedp.Click(chromedp.ID("admit")))
	waitJS(t, ctx, "admitted", `document.getElementById('admit').hidden && document.getElementById('arrival').dataset.gate === 'sharing'`)
	if n := len(srv.calls("POST", "/api/v1/sessions/s_adm/admit")); n != 1 {
		t.Errorf("%d admit calls, want 1", n)
	}
	waitJS(t, ctx, "activity shows the admission", `[...document.querySelectorAll('#activity-list li')].some(li => li.textContent.includes('あなた') && li.textContent.includes('お客様を入室させました'))`)
	w.hold("agent", false)
	waitLive(t, ctx)

	w.checkClean(t)
}
