package ui

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
)

// The viewers' side of control (docs/control.md, issue 5): the agent asks
// from its bar and operates only while it controls; the customer allows or
// refuses in a prompt and takes control back with a button or Alt+Shift+C;
// each side sees the other's pointer. The fake worker sends the notices the
// real one sends (pkg/worker/control.go) and records the control messages.

// agentLive opens session id, active and agreed to, in the console of a
// 1280×900 tab, tall enough for the view's bar: clicking its buttons does
// not scroll the page (and move the picture under the test's geometry).
// Signed in, the picture live and the worker's input channel open.
func agentLive(t *testing.T, srv *fakeServer, id string) context.Context {
	t.Helper()
	now := time.Now().UTC()
	srv.addSession(fakeSession{ID: id, Company: "demo", State: "active", StartURL: srv.URL + "/demo/",
		CreatedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(10 * time.Minute).Format(time.RFC3339),
		Customer: map[string]string{"joined_at": now.Format(time.RFC3339)}, ConsentAt: now.Format(time.RFC3339)})
	ctx, _ := newTab(t, 1280, 900, false)
	run(t, ctx, "open console", chromedp.Navigate(srv.URL+"/agent/s/"+id))
	waitJS(t, ctx, "login form", `!document.getElementById('login').hidden`)
	login(t, ctx, "secret")
	waitLive(t, ctx)
	srv.worker.waitInput(t, ctx, 1)
	return ctx
}

// customerLive opens the customer's view of s_joined in a 1280×800 tab, a
// 640×480 picture live and the worker's input channel open.
func customerLive(t *testing.T, srv *fakeServer) context.Context {
	t.Helper()
	srv.worker.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)
	srv.worker.waitInput(t, ctx, 1)
	return ctx
}

func isControl(action string) func(received) bool {
	return func(r received) bool { return r.Control == action }
}

// controlState reads the view's control: data-control | the bar's words |
// the bar's button (” when hidden) | whether the bar shows.
func controlState(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `(() => {
		const c = document.querySelector('.viewer-control');
		const b = c.querySelector('.viewer-control-button');
		return [document.querySelector('.viewer').dataset.control, c.querySelector('.viewer-control-text').textContent,
			b.hidden ? '' : b.textContent, c.checkVisibility()].join('|');
	})()`)
}

func waitControl(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := controlState(t, ctx)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("control = %q, want %q", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// waitNote waits for the note at the pointer to say want.
func waitNote(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitJS(t, ctx, "note "+want, fmt.Sprintf(`(() => { const n = document.querySelector('.viewer-note'); return !n.hidden && n.textContent === %q; })()`, want))
}

func hideNote(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[bool](t, ctx, `(() => { document.querySelector('.viewer-note').hidden = true; return true; })()`)
}

func noDown(t *testing.T, w *fakeWorker, from int, what string) {
	t.Helper()
	for _, r := range w.eventsSince(from) {
		if r.Label == "input" && r.Control == "" {
			t.Errorf("%s: the agent sent %+v while it did not control the tab", what, r.Event)
		}
	}
}

func TestAgentControl(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 1280, 720), 1280, 720)
	ctx := agentLive(t, srv, "s_ctl")
	waitControl(t, ctx, "viewing|You are viewing|Request control|true")
	if got := eval[string](t, ctx, `document.querySelector('.viewer-video').getAttribute('aria-label')`); got != "The customer's shared tab. You are viewing: request control to click or type in it." {
		t.Errorf("video label in view mode = %q", got)
	}

	// Viewing: the pointer goes out, a click, a key and the wheel stay here
	// with a note at the pointer.
	g := videoGeometry(t, ctx)
	x, y := g.client(640, 360)
	from := w.count()
	mouse(t, ctx, input.DispatchMouseEventTypeMouseMoved, x, y, input.MouseButtonNone, 0, 0)
	if mv := w.waitEvent(t, &from, "pointer move", isMouse(pinput.ActionMove)); mv.Label != "pointer" || !near(mv.Event.X, 640) || !near(mv.Event.Y, 360) {
		t.Errorf("move = %+v, want 640,360 on the pointer channel", mv)
	}
	start := w.count()
	run(t, ctx, "click while viewing", chromedp.MouseClickXY(x, y))
	waitNote(t, ctx, "You are viewing. Request control to click or type.")
	if got := eval[string](t, ctx, `(() => {
		const n = document.querySelector('.viewer-note').getBoundingClientRect();
		return Math.round(n.left - `+fmt.Sprint(x)+`) + ',' + Math.round(n.top - `+fmt.Sprint(y)+`);
	})()`); got != "14,18" {
		t.Errorf("note offset from the click = %s, want 14,18 (beside the pointer)", got)
	}
	hideNote(t, ctx)
	run(t, ctx, "type while viewing", chromedp.KeyEvent("a"))
	waitNote(t, ctx, "You are viewing. Request control to click or type.")
	hideNote(t, ctx)
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseWheel, X: x, Y: y, DeltaX: 1, DeltaY: 120}); err != nil {
		t.Fatal(err)
	}
	waitNote(t, ctx, "You are viewing. Request control to click or type.")
	time.Sleep(300 * time.Millisecond) // what would have gone out is out by now
	noDown(t, w, start, "viewing")

	// Ask; the customer refuses.
	run(t, ctx, "request control", chromedp.Click(".viewer-control-button"))
	w.waitEvent(t, &from, "request", isControl("request"))
	waitControl(t, ctx, "asking|Asking the customer…|Request control|true")
	if !eval[bool](t, ctx, `document.querySelector('.viewer-control-button').disabled`) {
		t.Errorf("the request button is enabled while asking")
	}
	send(t, w, 1, map[string]any{"type": "control", "state": "asking"})
	send(t, w, 1, map[string]any{"type": "control", "state": "denied"})
	waitJS(t, ctx, "denied toast", `document.querySelector('.viewer-toast').textContent === 'The customer did not allow control.'`)
	waitControl(t, ctx, "viewing|You are viewing|Request control|true")

	// Ask again; the customer allows: clicks go to the tab.
	run(t, ctx, "request control again", chromedp.Click(".viewer-control-button"))
	w.waitEvent(t, &from, "second request", isControl("request"))
	send(t, w, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_test", "name": "Aiko Tanaka"})
	waitControl(t, ctx, "controlling|You have control|Give back control|true")
	waitJS(t, ctx, "granted toast", `document.querySelector('.viewer-toast').textContent === 'The customer let you control the tab.'`)
	run(t, ctx, "click in control", chromedp.MouseClickXY(x, y))
	if ev := w.waitEvent(t, &from, "agent click", isMouse(pinput.ActionDown)); ev.Label != "input" || !near(ev.Event.X, 640) || !near(ev.Event.Y, 360) {
		t.Errorf("click in control = %+v", ev)
	}
	shot(t, ctx, "agent-control-desktop")

	// A blocked element: the worker's refusal, as a note where the agent clicked.
	send(t, w, 1, map[string]any{"type": "refused", "reason": "blocked", "message": "worker text"})
	waitNote(t, ctx, "Blocked: your company does not let agents use this.")
	shot(t, ctx, "agent-blocked-note-desktop")
	hideNote(t, ctx)

	// The customer takes control back while the agent holds the button:
	// nothing is released from here (the worker did), the view goes back.
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	w.waitEvent(t, &from, "held press", isMouse(pinput.ActionDown))
	send(t, w, 1, map[string]any{"type": "control", "controller": "customer"})
	waitControl(t, ctx, "viewing|You are viewing|Request control|true")
	waitJS(t, ctx, "taken back toast", `document.querySelector('.viewer-toast').textContent === 'The customer took back control.'`)
	start = w.count()
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)
	run(t, ctx, "click after the revoke", chromedp.MouseClickXY(x, y))
	waitNote(t, ctx, "You are viewing. Request control to click or type.")
	time.Sleep(300 * time.Millisecond)
	noDown(t, w, start, "after the revoke")

	// Another agent has control; then this one gets it and gives it back.
	send(t, w, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_other", "name": "Ken Sato"})
	waitControl(t, ctx, "viewing|Ken Sato has control|Request control|true")
	send(t, w, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_test", "name": "Aiko Tanaka"})
	waitControl(t, ctx, "controlling|You have control|Give back control|true")
	run(t, ctx, "give back", chromedp.Click(".viewer-control-button"))
	w.waitEvent(t, &from, "release", isControl("release"))

	// The customer's pointer, with its name, where the notice puts it.
	send(t, w, 1, map[string]any{"type": "pointer", "viewer_id": "v_cust", "role": "customer", "name": "customer", "x": 320, "y": 180})
	waitJS(t, ctx, "customer pointer", `document.querySelector('.viewer-pointer[data-viewer-id="v_cust"]')?.dataset.role === 'customer'`)
	checkPointer(t, ctx, g, "v_cust", 320, 180, "Customer")

	// In Japanese.
	send(t, w, 1, map[string]any{"type": "control", "controller": "customer"})
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitControl(t, ctx, "viewing|閲覧中|操作をリクエスト|true")
	checkPointer(t, ctx, g, "v_cust", 320, 180, "お客様")
	shot(t, ctx, "agent-viewing-desktop-ja")

	// A company that lets agents only watch: the request is refused, the
	// button goes.
	run(t, ctx, "request where it is never allowed", chromedp.Click(".viewer-control-button"))
	w.waitEvent(t, &from, "third request", isControl("request"))
	send(t, w, 1, map[string]any{"type": "refused", "reason": "control_never", "message": "worker text"})
	waitControl(t, ctx, "never|会社の設定により、担当者は閲覧と指し示しのみできます。||true")
	w.checkClean(t)
}

// checkPointer checks that the pointer of viewer id is drawn at remote
// (x, y), named name.
func checkPointer(t *testing.T, ctx context.Context, g geometry, id string, x, y float64, name string) {
	t.Helper()
	cx, cy := g.client(x, y)
	var got string
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = eval[string](t, ctx, fmt.Sprintf(`(() => {
			const p = document.querySelector('.viewer-pointer[data-viewer-id=%q]');
			const s = document.querySelector('.viewer-stage').getBoundingClientRect();
			if (!p || p.hidden) return 'none';
			const r = p.querySelector('svg').getBoundingClientRect();
			return Math.round(r.left - %f) + ',' + Math.round(r.top - %f) + '|' + p.textContent + '|' + (s.left <= r.left && r.left <= s.right);
		})()`, id, cx, cy))
		if got == "0,0|"+name+"|true" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pointer %s = %q, want its tip at the remote point: 0,0|%s|true", id, got, name)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func TestCustomerControl(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	g := videoGeometry(t, ctx)
	barHeight := `document.querySelector('.viewer-bar').getBoundingClientRect().height`
	bar := eval[float64](t, ctx, barHeight)
	if got := controlState(t, ctx); got != "customer|||false" {
		t.Errorf("control before any agent asked = %q, want the customer's and no bar", got)
	}
	from := w.count()

	// An agent asks: the prompt shows and leaves the focus on the tab.
	run(t, ctx, "focus the tab", chromedp.Focus(".viewer-video"))
	send(t, w, 1, map[string]any{"type": "control", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitJS(t, ctx, "prompt", `document.querySelector('.viewer-ask').checkVisibility() && document.querySelector('.viewer').dataset.control === 'requested'`)
	if got := eval[string](t, ctx, `document.querySelector('.viewer-ask-text').textContent + '|' + document.querySelector('.viewer-ask-allow').textContent + '|' + document.querySelector('.viewer-ask-deny').textContent`); got != "Aiko Tanaka asks to control this tab. If you allow it, they can click and type here too. You can take control back at any time.|Allow|Don't allow" {
		t.Errorf("prompt = %q", got)
	}
	if got := eval[string](t, ctx, `document.activeElement.className`); got != "viewer-ime" {
		t.Errorf("the prompt took the focus to %q, want it left on the tab's keyboard field", got)
	}
	shot(t, ctx, "customer-control-asked-desktop")
	// Typing goes on to the tab while the prompt shows; Enter does not answer it.
	run(t, ctx, "type Enter", chromedp.KeyEvent("\r"))
	if ev := w.waitEvent(t, &from, "Enter to the tab", isKind(pinput.KindKey)); ev.Event.Key != "Enter" {
		t.Errorf("key = %+v, want Enter", ev.Event)
	}

	// Refuse.
	run(t, ctx, "deny", chromedp.Click(".viewer-ask-deny"))
	w.waitEvent(t, &from, "deny", isControl("deny"))
	waitJS(t, ctx, "prompt gone", `!document.querySelector('.viewer-ask').checkVisibility()`)

	// Asked again; allow. The agent controls: the bar says who, with the
	// take-back button.
	send(t, w, 1, map[string]any{"type": "control", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitJS(t, ctx, "prompt again", `document.querySelector('.viewer-ask').checkVisibility()`)
	run(t, ctx, "allow", chromedp.Click(".viewer-ask-allow"))
	w.waitEvent(t, &from, "grant", isControl("grant"))
	send(t, w, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitControl(t, ctx, "agent|Aiko Tanaka can control this tab. You can still use it.|Take back control|true")
	if got := eval[string](t, ctx, `(() => { const b = document.querySelector('.viewer-control-button'); return b.title + '|' + b.getAttribute('aria-keyshortcuts'); })()`); got != "Take back control (Alt+Shift+C)|Alt+Shift+C" {
		t.Errorf("take-back button = %q", got)
	}
	shot(t, ctx, "customer-agent-controls-desktop")
	if h := eval[float64](t, ctx, barHeight); h != bar {
		t.Errorf("the bar is %vpx high with the agent in control, %vpx before: the remote tab would resize", h, bar)
	}

	// The agent's pointer, named, where the worker says.
	send(t, w, 1, map[string]any{"type": "pointer", "viewer_id": "v_agent", "role": "agent", "name": "Aiko Tanaka", "x": 100, "y": 400})
	checkPointer(t, ctx, g, "v_agent", 100, 400, "Aiko Tanaka")
	send(t, w, 1, map[string]any{"type": "pointer", "viewer_id": "v_agent", "role": "agent", "name": "Aiko Tanaka", "x": 600, "y": 20})
	checkPointer(t, ctx, g, "v_agent", 600, 20, "Aiko Tanaka")
	if n := eval[int](t, ctx, `document.querySelectorAll('.viewer-pointer').length`); n != 1 {
		t.Errorf("%d pointers for one agent", n)
	}

	// Alt+Shift+C takes control back; the key never reaches the tab.
	keys := w.count()
	run(t, ctx, "Alt+Shift+C", chromedp.KeyEvent("C", chromedp.KeyModifiers(chromedp.ModifierAlt, chromedp.ModifierShift)))
	w.waitEvent(t, &from, "revoke by key", isControl("revoke"))
	waitJS(t, ctx, "took back toast", `document.querySelector('.viewer-toast').textContent === 'You took back control.'`)
	time.Sleep(200 * time.Millisecond)
	for _, r := range w.eventsSince(keys) {
		if r.Event.Kind == pinput.KindKey && r.Event.Code == "KeyC" {
			t.Errorf("the take-back key reached the tab: %+v", r.Event)
		}
	}
	// The worker confirms: the bar goes; Alt+Shift+C is the page's again.
	send(t, w, 1, map[string]any{"type": "control", "controller": "customer"})
	waitControl(t, ctx, "customer|||false")
	run(t, ctx, "Alt+Shift+C to the page", chromedp.KeyEvent("C", chromedp.KeyModifiers(chromedp.ModifierAlt, chromedp.ModifierShift)))
	if ev := w.waitEvent(t, &from, "KeyC to the tab", func(r received) bool { return r.Event.Kind == pinput.KindKey && r.Event.Code == "KeyC" }); ev.Event.Modifiers != 9 {
		t.Errorf("KeyC mods = %d, want Alt+Shift (9)", ev.Event.Modifiers)
	}

	// The button takes it back too; in Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	send(t, w, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitControl(t, ctx, "agent|Aiko Tanakaさんがこのタブを操作できます。あなたも引き続き操作できます。|操作を取り戻す|true")
	checkPointer(t, ctx, g, "v_agent", 600, 20, "Aiko Tanaka")
	shot(t, ctx, "customer-agent-controls-desktop-ja")
	run(t, ctx, "take back", chromedp.Click(".viewer-control-button"))
	w.waitEvent(t, &from, "revoke by button", isControl("revoke"))
	w.checkClean(t)
}
