package ui

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// geometry is where the video element sits and what it shows.
type geometry struct {
	Left, Top, Width, Height float64 // the element, client CSS px
	VW, VH                   float64 // the video's intrinsic size
	StageW, StageH           float64
}

func videoGeometry(t *testing.T, ctx context.Context) geometry {
	t.Helper()
	return eval[geometry](t, ctx, `(() => {
		const v = document.querySelector('.viewer-video');
		const r = v.getBoundingClientRect();
		const s = document.querySelector('.viewer-stage').getBoundingClientRect();
		return {Left: r.left, Top: r.top, Width: r.width, Height: r.height, VW: v.videoWidth, VH: v.videoHeight, StageW: s.width, StageH: s.height};
	})()`)
}

// client maps a remote point to the client point where object-fit: contain
// draws it.
func (g geometry) client(x, y float64) (float64, float64) {
	scale := math.Min(g.Width/g.VW, g.Height/g.VH)
	left := g.Left + (g.Width-g.VW*scale)/2
	top := g.Top + (g.Height-g.VH*scale)/2
	return left + x*scale, top + y*scale
}

func (g geometry) scale() float64 { return math.Min(g.Width/g.VW, g.Height/g.VH) }

func mouse(t *testing.T, ctx context.Context, typ input.DispatchMouseEventType, x, y float64, button input.MouseButton, buttons, clicks int64) {
	t.Helper()
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{
		Type: typ, X: x, Y: y, Button: button, Buttons: buttons, ClickCount: clicks,
	}); err != nil {
		t.Fatalf("mouse %s at %.0f,%.0f: %v", typ, x, y, err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.6 }

func isMouse(action pinput.Action) func(received) bool {
	return func(r received) bool { return r.Event.Kind == pinput.KindMouse && r.Event.Action == action }
}

func isKind(kind pinput.Kind) func(received) bool {
	return func(r received) bool { return r.Event.Kind == kind }
}

// waitLive waits for the live video and, on the customer's page, for the
// consent screen to be gone.
func waitLive(t *testing.T, ctx context.Context) {
	t.Helper()
	waitJS(t, ctx, "live video", `document.querySelector('.viewer')?.dataset.state === 'live' &&
		[undefined, 'sharing'].includes(document.body.dataset.consent)`)
}

// TestCustomerViewer drives the customer's live view against a real pion
// peer: signaling, the video, and every kind of input, checked as the worker
// decodes it (pkg/protocol's strict decoders).
func TestCustomerViewer(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	// A 4:3 picture in a wide stage: the video is pillarboxed.
	w.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)
	if !eval[bool](t, ctx, `window.tandemViewer.pc instanceof RTCPeerConnection && window.tandemViewer.pc.connectionState === 'connected'`) {
		t.Errorf("window.tandemViewer.pc is not a connected RTCPeerConnection")
	}
	if got := eval[string](t, ctx, `window.tandemViewer.pc.getTransceivers().map(t => t.receiver.track.kind + ':' + t.currentDirection).join()`); got != "video:recvonly,video:sendonly" {
		// The tab's video, then the customer's screen (docs/screenshare.md),
		// negotiated without a track until the customer shares.
		t.Errorf("transceivers = %q, want the tab's recvonly video and the screen's sendonly one", got)
	}
	if got := eval[string](t, ctx, `[window.tandemViewer.input.label, window.tandemViewer.input.ordered, window.tandemViewer.pointer.label, window.tandemViewer.pointer.ordered, window.tandemViewer.pointer.maxRetransmits].join()`); got != "input,true,pointer,false,0" {
		t.Errorf("channels = %q", got)
	}
	g := videoGeometry(t, ctx)
	if g.VW != 640 || g.VH != 480 {
		t.Fatalf("video is %vx%v, want 640x480", g.VW, g.VH)
	}
	from := 0

	// The customer's stage size, on open.
	vp := w.waitEvent(t, &from, "viewport", isKind(pinput.KindViewport))
	if vp.Label != "input" || vp.Role != "customer" || vp.Event.Width != int(math.Round(g.StageW)) || vp.Event.Height != int(math.Round(g.StageH)) {
		t.Errorf("viewport = %+v, want %vx%v on input", vp, g.StageW, g.StageH)
	}

	// A click in the letterbox bar is dropped; the next one maps into the
	// remote viewport.
	if (g.Width - g.VW*g.scale()) < 20 {
		t.Fatalf("no letterbox bar: %+v", g)
	}
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, g.Left+4, g.Top+g.Height/2, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, g.Left+4, g.Top+g.Height/2, input.MouseButtonLeft, 0, 1)
	x, y := g.client(160, 120)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)
	down := w.waitEvent(t, &from, "mouse down", isMouse(pinput.ActionDown))
	if e := down.Event; down.Label != "input" || !near(e.X, 160) || !near(e.Y, 120) || e.Button != pinput.ButtonLeft || e.Buttons != 1 || e.Clicks != 1 {
		t.Errorf("first down = %+v, want left at 160,120 on input (the letterbox click must be dropped)", down)
	}
	up := w.waitEvent(t, &from, "mouse up", isMouse(pinput.ActionUp))
	if e := up.Event; !near(e.X, 160) || e.Buttons != 0 || e.Clicks != 1 {
		t.Errorf("up = %+v", up)
	}

	// A double click.
	x, y = g.client(320, 240)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 2)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 2)
	for i, want := range []int{1, 1, 2, 2} {
		action := pinput.ActionDown
		if i%2 == 1 {
			action = pinput.ActionUp
		}
		ev := w.waitEvent(t, &from, "double click", isMouse(action))
		if ev.Event.Clicks != want || !near(ev.Event.X, 320) || !near(ev.Event.Y, 240) {
			t.Errorf("double click event %d = %+v, want clicks %d at 320,240", i, ev.Event, want)
		}
	}

	// A right click.
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonRight, 2, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonRight, 0, 1)
	if ev := w.waitEvent(t, &from, "right down", isMouse(pinput.ActionDown)); ev.Event.Button != pinput.ButtonRight || ev.Event.Buttons != 2 {
		t.Errorf("right down = %+v", ev.Event)
	}

	// A move goes on the unordered channel.
	x, y = g.client(400, 300)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseMoved, x, y, input.MouseButtonNone, 0, 0)
	if ev := w.waitEvent(t, &from, "move", isMouse(pinput.ActionMove)); ev.Label != "pointer" || !near(ev.Event.X, 400) || !near(ev.Event.Y, 300) {
		t.Errorf("move = %+v, want 400,300 on pointer", ev)
	}

	// The wheel, in remote pixels. CDP wants deltaX present, and a zero
	// would be omitted.
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseWheel, X: x, Y: y, DeltaX: 1e-9, DeltaY: 100}); err != nil {
		t.Fatal(err)
	}
	// A wheel event's client point is whole CSS pixels (cut, not rounded):
	// up to a pixel off, over the picture's scale.
	if ev := w.waitEvent(t, &from, "wheel", isKind(pinput.KindWheel)); math.Abs(ev.Event.DeltaY-math.Round(100/g.scale())) > 1 || math.Abs(ev.Event.X-400) > 1/g.scale()+0.1 || math.Abs(ev.Event.Y-300) > 1/g.scale()+0.1 {
		t.Errorf("wheel = %+v, want dy %.0f at 400,300", ev.Event, 100/g.scale())
	}

	// Keys: the click gave the remote tab the keyboard.
	run(t, ctx, "type a", chromedp.KeyEvent("a"))
	key := w.waitEvent(t, &from, "key a", isKind(pinput.KindKey))
	if e := key.Event; e.Action != pinput.ActionDown || e.Key != "a" || e.Code != "KeyA" || e.KeyCode != 65 || e.Text != "a" {
		t.Errorf("key down = %+v", e)
	}
	if e := w.waitEvent(t, &from, "key a up", isKind(pinput.KindKey)).Event; e.Action != pinput.ActionUp || e.Key != "a" || e.Text != "" {
		t.Errorf("key up = %+v", e)
	}
	run(t, ctx, "press Enter", chromedp.KeyEvent(kb.Enter))
	if e := w.waitEvent(t, &from, "Enter", isKind(pinput.KindKey)).Event; e.Key != "Enter" || e.KeyCode != 13 || e.Text != "\r" {
		t.Errorf("Enter = %+v", e)
	}

	// IME composition sends the composed text once.
	if _, err := chromedp.Call(ctx, input.ImeSetComposition, input.ImeSetCompositionParams{Text: "にほんご", SelectionStart: 4, SelectionEnd: 4}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "composition shown", `document.querySelector('.viewer-stage').classList.contains('is-composing')`)
	if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: "日本語"}); err != nil {
		t.Fatal(err)
	}
	if e := w.waitEvent(t, &from, "composed text", isKind(pinput.KindText)).Event; e.Text != "日本語" {
		t.Errorf("composed text = %q", e.Text)
	}

	// Paste sends the clipboard's text.
	run(t, ctx, "paste", chromedp.Evaluate[chromedp.Void](`(() => {
		const dt = new DataTransfer();
		dt.setData('text/plain', 'pasted ✓');
		document.activeElement.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
	})()`))
	if e := w.waitEvent(t, &from, "pasted text", isKind(pinput.KindText)).Event; e.Text != "pasted ✓" || !e.Paste {
		t.Errorf("pasted text = %q (paste %v), want it marked as pasted", e.Text, e.Paste)
	}

	// The worker refuses something: the viewer says so.
	if err := w.notice(protocol.Notice{Type: "refused", Reason: "from_a_newer_worker", Message: "Blocked by policy"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "refusal toast", `(() => { const e = document.querySelector('.viewer-toast'); return !e.hidden && e.textContent === 'Blocked by policy'; })()`)

	// Esc then Tab moves the keyboard out of the remote tab; Tab is not sent.
	run(t, ctx, "Esc, Tab", chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent(kb.Tab))
	waitJS(t, ctx, "focus left the tab", `!document.querySelector('.viewer-stage').contains(document.activeElement)`)
	if e := w.waitEvent(t, &from, "Escape", isKind(pinput.KindKey)).Event; e.Key != "Escape" {
		t.Errorf("key after Enter = %+v, want Escape", e)
	}
	for _, r := range w.eventsSince(from) {
		if r.Event.Key == "Tab" {
			t.Errorf("Tab reached the remote tab after Esc: %+v", r.Event)
		}
	}

	// A resize reports the new size.
	run(t, ctx, "resize", chromedp.EmulateViewport(1000, 700))
	g = videoGeometry(t, ctx)
	vp = w.waitEvent(t, &from, "new viewport", func(r received) bool {
		return r.Event.Kind == pinput.KindViewport && r.Event.Width == int(math.Round(g.StageW))
	})
	if vp.Event.Height != int(math.Round(g.StageH)) {
		t.Errorf("viewport after resize = %+v, want %vx%v", vp.Event, g.StageW, g.StageH)
	}

	// The session ends.
	w.end("agent_ended")
	waitJS(t, ctx, "ended", `document.querySelector('.viewer').dataset.state === 'ended' && !document.getElementById('ended').hidden`)
	if got := eval[string](t, ctx, "document.getElementById('ended-reason').textContent"); got != "The agent ended the session." {
		t.Errorf("ended reason = %q", got)
	}
	w.checkClean(t)
}

func TestCustomerReconnectsAndLeaves(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 320, 240), 320, 240)
	ctx, _ := newTab(t, 1024, 700, false)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)

	// The socket drops: the viewer reconnects with a new offer.
	w.close()
	waitJS(t, ctx, "reconnecting", `document.querySelector('.viewer').dataset.state !== 'live'`)
	waitLive(t, ctx)
	if n := w.signalCount(protocol.TypeOffer); n != 2 {
		t.Errorf("%d offers, want 2 (one per connection)", n)
	}

	// Leave, confirmed in the dialog.
	run(t, ctx, "leave", chromedp.Click(chromedp.ID("leave")))
	waitJS(t, ctx, "dialog", `document.getElementById('leave-dialog').open`)
	run(t, ctx, "confirm", chromedp.Click(chromedp.CSS(`#leave-dialog button[value="leave"]`)))
	waitJS(t, ctx, "ended", `!document.getElementById('ended').hidden`)
	if got := eval[string](t, ctx, "document.getElementById('ended-reason').textContent"); got != "You left the session." {
		t.Errorf("reason = %q", got)
	}
	if n := w.signalCount(protocol.TypeBye); n != 1 {
		t.Errorf("%d bye messages, want 1", n)
	}
	w.checkClean(t)
}

// TestCustomerLive shows the demo shop as the remote tab would be: sized to
// the customer's viewport. On the phone the customer's fingers go to the
// tab as touches (phoneTouches).
func TestCustomerLive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		w, h   int64
		mobile bool
	}{
		{"desktop", 1280, 800, false},
		{"phone", 390, 844, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			w := srv.worker
			ctx, _ := newTab(t, tc.w, tc.h, tc.mobile)
			run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
			from := 0
			vp := w.waitEvent(t, &from, "viewport", isKind(pinput.KindViewport)).Event
			if vp.Mobile != tc.mobile || (tc.mobile && vp.DPR != 2) {
				t.Errorf("viewport %+v: want mobile %v (a phone's pixel ratio 2)", vp, tc.mobile)
			}
			vw, vh := pinput.ClampViewport(vp.Width, vp.Height)
			w.setFrame(encodeFrame(t, srv, demoShot(t, srv, "/demo/", vw, vh), vw, vh), vw, vh)
			waitLive(t, ctx)
			g := videoGeometry(t, ctx)
			// The page did not move after going live: the stage still has
			// the size it reported, so the remote tab fills it.
			if math.Abs(g.StageW-float64(vw)) > 1 || math.Abs(g.StageH-float64(vh)) > 1 {
				t.Errorf("stage is %vx%v once live, but reported %dx%d", g.StageW, g.StageH, vw, vh)
			}
			x, y := g.client(float64(vw)/2, float64(vh)/2)
			if tc.mobile {
				phoneTouches(t, ctx, w, &from, g, vw, vh)
			} else {
				run(t, ctx, "click", chromedp.MouseClickXY(x, y))
				if ev := w.waitEvent(t, &from, "down", isMouse(pinput.ActionDown)); !near(ev.Event.X, float64(vw)/2) || ev.Event.Clicks != 1 {
					t.Errorf("click = %+v, want the middle of %dx%d", ev.Event, vw, vh)
				}
				w.waitEvent(t, &from, "up", isMouse(pinput.ActionUp))
			}
			if over := eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth"); over {
				t.Errorf("the customer view scrolls sideways")
			}
			shot(t, ctx, "customer-"+tc.name)
			w.checkClean(t)
		})
	}
}

// isTouch matches a touch event with action and n fingers left.
func isTouch(action pinput.Action, n int) func(received) bool {
	return func(r received) bool {
		return r.Event.Kind == pinput.KindTouch && r.Event.Action == action && len(r.Event.Touches) == n
	}
}

// touchAt dispatches one touch event of the tab's own (touch-emulated)
// screen at these viewport points.
func touchAt(t *testing.T, ctx context.Context, typ input.DispatchTouchEventType, pts ...[2]float64) {
	t.Helper()
	p := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{}}
	for i, pt := range pts {
		id := float64(i)
		p.TouchPoints = append(p.TouchPoints, &input.TouchPoint{X: pt[0], Y: pt[1], ID: &id})
	}
	if _, err := chromedp.Call(ctx, input.DispatchTouchEvent, p); err != nil {
		t.Fatalf("%s %v: %v", typ, pts, err)
	}
}

// phoneTouches: the phone customer's fingers go to the remote tab as touch
// events in remote pixels (docs/protocol.md), never as mouse or wheel: a
// tap is a start and an end at its point, a drag start, moves and end, two
// fingers a two-finger sequence whose fingers move apart (a pinch).
func phoneTouches(t *testing.T, ctx context.Context, w *fakeWorker, from *int, g geometry, vw, vh int) {
	t.Helper()
	first := *from
	x, y := g.client(float64(vw)/2, float64(vh)/2)
	run(t, ctx, "tap", chromedp.TapXY(x, y))
	start := w.waitEvent(t, from, "touch start", isTouch(pinput.ActionStart, 1)).Event
	if p := start.Touches[0]; !near(p.X, float64(vw)/2) || !near(p.Y, float64(vh)/2) {
		t.Errorf("tap = %+v, want the middle of %dx%d", start, vw, vh)
	}
	w.waitEvent(t, from, "touch end", isTouch(pinput.ActionEnd, 0))

	// A drag up, 60 px a step.
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchStart, [2]float64{x, y})
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchMove, [2]float64{x, y - 60})
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchMove, [2]float64{x, y - 120})
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchEnd)
	w.waitEvent(t, from, "drag start", isTouch(pinput.ActionStart, 1))
	var last pinput.Event
	for last.Touches == nil || last.Touches[0].Y > float64(vh)/2-100 {
		last = w.waitEvent(t, from, "drag move", isTouch(pinput.ActionMove, 1)).Event
		if last.Touches[0].ID != start.Touches[0].ID || !near(last.Touches[0].X, float64(vw)/2) {
			t.Fatalf("drag move %+v, want finger %d straight up", last, start.Touches[0].ID)
		}
	}
	w.waitEvent(t, from, "drag end", isTouch(pinput.ActionEnd, 0))

	// A pinch: a second finger comes down, both move apart, both lift.
	a, b := [2]float64{x - 20, y}, [2]float64{x + 20, y}
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchStart, a)
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchStart, a, b)
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchMove, [2]float64{x - 60, y}, [2]float64{x + 60, y})
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchMove, [2]float64{x - 100, y}, [2]float64{x + 100, y})
	touchAt(t, ctx, input.DispatchTouchEventTypeTouchEnd)
	w.waitEvent(t, from, "first finger", isTouch(pinput.ActionStart, 1))
	two := w.waitEvent(t, from, "second finger", isTouch(pinput.ActionStart, 2)).Event
	if two.Touches[0].ID == two.Touches[1].ID {
		t.Errorf("two fingers with one id: %+v", two)
	}
	spread := func(e pinput.Event) float64 { return math.Abs(e.Touches[0].X - e.Touches[1].X) }
	var apart pinput.Event
	for apart.Touches == nil || spread(apart) < spread(two)+100 {
		apart = w.waitEvent(t, from, "fingers apart", isTouch(pinput.ActionMove, 2)).Event
	}
	w.waitEvent(t, from, "one finger up", isTouch(pinput.ActionEnd, 1))
	w.waitEvent(t, from, "both up", isTouch(pinput.ActionEnd, 0))
	for _, r := range w.eventsSince(first) {
		if r.Event.Kind == pinput.KindWheel || (r.Event.Kind == pinput.KindMouse && r.Event.Action != pinput.ActionMove) {
			t.Errorf("the phone sent %+v besides its touches", r.Event)
		}
	}
}

// TestPhoneKeyboardFollowsTheRemoteFocus: on a phone, when the worker says
// a tap put the tab's focus in a text field, the view's hidden field takes
// the focus (the phone's keyboard opens) and what is typed there goes to
// the tab; when the focus left the field, the keyboard closes.
func TestPhoneKeyboardFollowsTheRemoteFocus(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 390, 600), 390, 600)
	ctx, _ := newTab(t, 390, 844, true)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)
	w.waitInput(t, ctx, 1)
	from := w.count()
	send(t, w, 1, map[string]any{"type": "focus", "state": "editable"})
	waitJS(t, ctx, "the keyboard field focused", `document.activeElement === document.querySelector('.viewer-ime')`)
	browsertest.Fill(t, ctx, ".viewer-ime", "ok")
	if e := w.waitEvent(t, &from, "typed text", isKind(pinput.KindText)).Event; !strings.Contains(e.Text, "o") {
		t.Errorf("typed %+v", e)
	}
	send(t, w, 1, map[string]any{"type": "focus", "state": "none"})
	waitJS(t, ctx, "the keyboard field left", `document.activeElement !== document.querySelector('.viewer-ime')`)
	w.checkClean(t)
}
