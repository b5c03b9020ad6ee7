package ui

import (
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
)

// TestCustomerConsent: after the PIN, the customer's page first says who
// will see the tab and asks to start sharing, in English and Japanese; the
// tab behind takes no input until then.
func TestCustomerConsent(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
	srv.setConsent(func(c *fakeConsent) { c.Consented = false })
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitJS(t, ctx, "consent screen", `document.body.dataset.consent === 'asking' && !document.getElementById('consent').hidden`)
	texts := eval[map[string]any](t, ctx, `({
		title: document.getElementById('consent-title').textContent,
		company: document.getElementById('consent-company').textContent,
		people: [...document.querySelectorAll('#consent-people li')].map(li => li.textContent),
		button: document.getElementById('consent-start').textContent,
		focused: document.activeElement.id,
		inert: document.getElementById('viewer-host').inert,
	})`)
	if texts["title"] != "Share this tab with Demo Inc.?" || texts["company"] != "Demo Inc." || texts["button"] != "Start sharing" ||
		texts["focused"] != "consent-title" || texts["inert"] != true {
		t.Errorf("consent screen = %v", texts)
	}
	if p, _ := texts["people"].([]any); len(p) != 1 || p[0] != "Aiko Tanaka (Demo Inc.)" {
		t.Errorf("people = %v, want the agent with the company", texts["people"])
	}
	if !eval[bool](t, ctx, "document.getElementById('live-badge').hidden") {
		t.Errorf("the page says it is live with the agent before the customer agreed")
	}
	shot(t, ctx, "customer-consent-desktop-en")

	// The customer's own tab is live behind the screen, but a click there
	// reaches nothing.
	waitJS(t, ctx, "own video", `document.querySelector('.viewer').dataset.state === 'live'`)
	g := videoGeometry(t, ctx)
	x, y := g.client(600, 440) // below the card
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)

	// Another agent joins: the list follows.
	srv.setConsent(func(c *fakeConsent) { c.Agents = append(c.Agents, "Ken Sato") })
	waitJS(t, ctx, "two people", `document.querySelectorAll('#consent-people li').length === 2`)

	// Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese", `document.getElementById('consent-start').textContent === '共有を開始'`)
	if got := eval[string](t, ctx, "document.getElementById('consent-title').textContent"); got != "Demo Inc. とこのタブを共有しますか？" {
		t.Errorf("Japanese title = %q", got)
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#consent-people li')].map(li => li.textContent)`); len(got) != 2 || got[0] != "Aiko Tanaka（Demo Inc.）" {
		t.Errorf("Japanese people = %q", got)
	}
	shot(t, ctx, "customer-consent-desktop-ja")

	// A failure says so and keeps the button.
	srv.setConsent(func(*fakeConsent) {})
	srv.mu.Lock()
	srv.failing = 503
	srv.mu.Unlock()
	run(t, ctx, "start sharing", chromedp.Click(chromedp.ID("consent-start")))
	waitJS(t, ctx, "error", `!document.getElementById('consent-error').hidden`)
	if got := eval[string](t, ctx, "document.getElementById('consent-error').textContent"); got != "共有を開始できませんでした。もう一度お試しください。" {
		t.Errorf("error = %q", got)
	}
	if n := w.count(); n > 0 {
		for _, r := range w.eventsSince(0) {
			if r.Event.Kind != pinput.KindViewport {
				t.Errorf("input reached the tab before the consent: %+v", r.Event)
			}
		}
	}

	// Start sharing.
	srv.mu.Lock()
	srv.failing = 0
	srv.mu.Unlock()
	run(t, ctx, "start sharing", chromedp.Click(chromedp.ID("consent-start")))
	waitLive(t, ctx)
	if n := len(srv.calls("POST", "/api/v1/sessions/s_joined/consent")); n != 2 {
		t.Errorf("%d consent calls, want 2", n)
	}
	if !eval[bool](t, ctx, `document.getElementById('consent').hidden && !document.getElementById('viewer-host').inert && !document.getElementById('live-badge').hidden`) {
		t.Errorf("after the consent: the screen is up, the tab inert, or the live badge hidden")
	}
	g = videoGeometry(t, ctx)
	x, y = g.client(320, 240)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)
	from := 0
	if ev := w.waitEvent(t, &from, "click after the consent", isMouse(pinput.ActionDown)); !near(ev.Event.X, 320) || !near(ev.Event.Y, 240) {
		t.Errorf("first click = %+v, want the one at 320,240 (the one before the consent must not arrive)", ev.Event)
	}
	shot(t, ctx, "customer-sharing-desktop-ja")
	w.checkClean(t)
}

// TestCustomerWaitsToBeAdmitted: where agents admit customers, the consent
// is followed by a wait that ends when an agent lets them in.
func TestCustomerWaitsToBeAdmitted(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 320, 240), 320, 240)
	srv.setConsent(func(c *fakeConsent) { c.Consented, c.MustAdmit, c.Admitted, c.Agents = false, true, false, nil })
	ctx, _ := newTab(t, 390, 844, true)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitJS(t, ctx, "consent screen", `document.body.dataset.consent === 'asking'`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#consent-people li')].map(li => li.textContent)`); len(got) != 1 || got[0] != "Support staff of Demo Inc." {
		t.Errorf("people without names = %q", got)
	}
	if over := eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth"); over {
		t.Errorf("the consent screen scrolls sideways on a phone")
	}
	shot(t, ctx, "customer-consent-phone")
	run(t, ctx, "start sharing", chromedp.Click(chromedp.ID("consent-start")))
	waitJS(t, ctx, "waiting", `document.body.dataset.consent === 'waiting' && !document.getElementById('consent-wait').hidden && document.getElementById('consent-ask').hidden`)
	if got := eval[string](t, ctx, "document.getElementById('consent-wait-title').textContent"); got != "Waiting for the agent to let you in" {
		t.Errorf("wait title = %q", got)
	}
	if got := eval[string](t, ctx, "document.activeElement.id"); got != "consent-wait-title" {
		t.Errorf("focus on %q while waiting, want the wait title", got)
	}
	shot(t, ctx, "customer-waiting-phone")
	srv.setConsent(func(c *fakeConsent) { c.Admitted = true })
	waitLive(t, ctx)
	if !eval[bool](t, ctx, `document.getElementById('consent').hidden && !document.getElementById('viewer-host').inert`) {
		t.Errorf("admitted, but the screen stays")
	}
	w.checkClean(t)
}
