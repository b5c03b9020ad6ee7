package ui

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
)

// The viewers' side of annotations and chat (docs/annotations.md, issue 5):
// what the tools send, and what the canvas and the chat panel show of the
// worker's notices (pkg/worker/annotate.go sends them for real).

// annotPixelJS reads the annotation canvas at a client point: [r, g, b, a].
const annotPixelJS = `((x, y) => {
  const c = document.querySelector('.viewer-annotations');
  const s = c.getBoundingClientRect();
  const k = c.width / s.width;
  const d = c.getContext('2d').getImageData(Math.round((x - s.left) * k), Math.round((y - s.top) * k), 1, 1).data;
  return [d[0], d[1], d[2], d[3]];
})(%f, %f)`

// waitPixel waits until the annotation canvas at remote viewport point
// (x, y) is, or (want false) is not, drawn in colour rgb.
func waitPixel(t *testing.T, ctx context.Context, g geometry, what string, x, y float64, rgb [3]int, want bool) {
	t.Helper()
	cx, cy := g.client(x, y)
	deadline := time.Now().Add(5 * time.Second)
	for {
		px := eval[[]int](t, ctx, fmt.Sprintf(annotPixelJS, cx, cy))
		is := px[3] > 200 && abs(px[0]-rgb[0]) < 40 && abs(px[1]-rgb[1]) < 40 && abs(px[2]-rgb[2]) < 40
		if is == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: canvas at %v,%v is %v, want drawn=%v in %v", what, x, y, px, want, rgb)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func isAnnotate(action string) func(received) bool {
	return func(r received) bool { return r.Annotate != nil && r.Annotate.Action == action }
}

var (
	highlightRGB = [3]int{245, 158, 11} // annotate.js HIGHLIGHT
	agentRGB     = [3]int{124, 58, 237}
	customerRGB  = [3]int{15, 118, 110}
)

// TestAnnotationTools: an agent in view mode draws, points and highlights;
// the strokes and boxes sit on the page and move with its scroll; the
// customer's strokes fade unless pinned; clear clears.
func TestAnnotationTools(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 1280, 720), 1280, 720)
	ctx := agentLive(t, srv, "s_ann")
	g := videoGeometry(t, ctx)
	send(t, w, 1, map[string]any{"type": "scroll", "x": 0, "y": 500})
	if got := eval[string](t, ctx, `document.querySelector('.viewer').dataset.control`); got != "viewing" {
		t.Fatalf("control = %q, want the agent viewing (annotations need no control)", got)
	}

	// The pen: a drag over the picture is a stroke in page coordinates;
	// nothing goes to the tab.
	run(t, ctx, "pen", chromedp.Click(`.viewer-tool[data-tool="pen"]`))
	waitJS(t, ctx, "pen chosen", `document.querySelector('.viewer-stage').dataset.tool === 'pen' && !document.querySelector('.viewer-draw').hidden`)
	from := w.count()
	x0, y0 := g.client(100, 100)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x0, y0, input.MouseButtonLeft, 1, 1)
	for i := 1; i <= 10; i++ {
		x, y := g.client(100+float64(i)*20, 100+float64(i)*10)
		mouse(t, ctx, input.DispatchMouseEventTypeMouseMoved, x, y, input.MouseButtonLeft, 1, 0)
		time.Sleep(15 * time.Millisecond)
	}
	x1, y1 := g.client(300, 200)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x1, y1, input.MouseButtonLeft, 0, 1)
	var points [][2]float64
	for {
		r := w.waitEvent(t, &from, "stroke", isAnnotate("stroke"))
		if a := r.Annotate; a.ID != "s1" || a.Pinned || r.Label != "input" {
			t.Fatalf("stroke message = %+v on %s, want id s1, not pinned, on input", a, r.Label)
		}
		points = append(points, r.Annotate.Points...)
		if r.Annotate.End {
			break
		}
	}
	if len(points) < 5 || math.Abs(points[0][0]-100) > 1 || math.Abs(points[0][1]-600) > 1 {
		t.Fatalf("stroke points = %v, want from 100,600 (the scroll added)", points)
	}
	for _, p := range points {
		if math.Abs((p[1]-500-100)-(p[0]-100)/2) > 2 {
			t.Errorf("point %v is off the drawn line", p)
		}
	}
	waitPixel(t, ctx, g, "the agent's stroke", 200, 150, agentRGB, true)
	for _, r := range w.eventsSince(0) {
		if r.Event.Kind == pinput.KindMouse && r.Event.Action != pinput.ActionMove {
			t.Errorf("the pen sent a mouse event to the tab: %+v", r.Event)
		}
	}

	// The page scrolls by 100: the stroke moves up with it.
	send(t, w, 1, map[string]any{"type": "scroll", "x": 0, "y": 600})
	waitPixel(t, ctx, g, "the stroke after the scroll", 200, 50, agentRGB, true)
	waitPixel(t, ctx, g, "where the stroke was", 200, 150, agentRGB, false)
	// Unpinned, it fades a few seconds after it ended.
	waitJS(t, ctx, "the stroke faded", `document.querySelector('.viewer-annotations').dataset.strokes === '0'`)

	// Highlight: a click sends the viewport point; the worker's box (page
	// coordinates) is drawn and follows the scroll.
	run(t, ctx, "highlight", chromedp.Click(`.viewer-tool[data-tool="highlight"]`))
	hx, hy := g.client(640, 360)
	run(t, ctx, "click an element", chromedp.MouseClickXY(hx, hy))
	if a := w.waitEvent(t, &from, "highlight", isAnnotate("highlight")).Annotate; math.Abs(a.X-640) > 1 || math.Abs(a.Y-360) > 1 {
		t.Errorf("highlight at %v,%v, want the viewport point 640,360", a.X, a.Y)
	}
	send(t, w, 1, map[string]any{"type": "annotation", "action": "highlight", "id": "h1", "viewer_id": "v_test", "role": "agent", "name": "Aiko Tanaka", "rect": []float64{600, 900, 100, 50}})
	// Page y 900 at scroll 600: viewport 300; the border is 4 CSS px of
	// the stage outside the element.
	edge := 4 / g.scale()
	waitPixel(t, ctx, g, "the box's top edge", 650, 300-edge, highlightRGB, true)
	shot(t, ctx, "agent-highlight-desktop")
	send(t, w, 1, map[string]any{"type": "scroll", "x": 0, "y": 700})
	waitPixel(t, ctx, g, "the box after the scroll", 650, 200-edge, highlightRGB, true)
	waitPixel(t, ctx, g, "where the box was", 650, 300-edge, highlightRGB, false)
	// The element moved on the page: the worker sends the box again.
	send(t, w, 1, map[string]any{"type": "annotation", "action": "highlight", "id": "h1", "viewer_id": "v_test", "role": "agent", "rect": []float64{200, 1000, 100, 50}})
	waitPixel(t, ctx, g, "the moved box", 250, 300-edge, highlightRGB, true)
	waitPixel(t, ctx, g, "the box's old place", 650, 200-edge, highlightRGB, false)

	// The laser: positions in page coordinates, a trail drawn here.
	run(t, ctx, "laser", chromedp.Click(`.viewer-tool[data-tool="laser"]`))
	lx, ly := g.client(400, 400)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseMoved, lx, ly, input.MouseButtonNone, 0, 0)
	if a := w.waitEvent(t, &from, "laser", isAnnotate("laser")).Annotate; math.Abs(a.X-400) > 1 || math.Abs(a.Y-1100) > 1 {
		t.Errorf("laser at %v,%v, want page 400,1100", a.X, a.Y)
	}

	// The customer's pinned stroke stays; its unpinned one fades.
	send(t, w, 1, map[string]any{"type": "annotation", "action": "stroke", "id": "v_c.s1", "viewer_id": "v_c", "role": "customer", "points": [][2]float64{{100, 1200}, {500, 1200}}, "pinned": true, "end": true})
	send(t, w, 1, map[string]any{"type": "annotation", "action": "stroke", "id": "v_c.s2", "viewer_id": "v_c", "role": "customer", "points": [][2]float64{{100, 1300}, {500, 1300}}, "end": true})
	waitPixel(t, ctx, g, "the customer's pinned stroke", 300, 500, customerRGB, true)
	waitPixel(t, ctx, g, "the customer's stroke", 300, 600, customerRGB, true)
	waitPixel(t, ctx, g, "the customer's stroke faded", 300, 600, customerRGB, false)
	waitPixel(t, ctx, g, "the customer's pinned stroke stays", 300, 500, customerRGB, true)

	// Clear all: sent, and everything goes here.
	run(t, ctx, "clear", chromedp.Click(`.viewer-tool-clear`))
	w.waitEvent(t, &from, "clear", isAnnotate("clear"))
	waitJS(t, ctx, "cleared", `(() => { const c = document.querySelector('.viewer-annotations').dataset; return c.strokes === '0' && c.highlights === '0'; })()`)
	// Someone else's clear clears too.
	send(t, w, 1, map[string]any{"type": "annotation", "action": "highlight", "id": "h2", "viewer_id": "v_c", "role": "customer", "rect": []float64{600, 900, 100, 50}})
	waitJS(t, ctx, "a highlight", `document.querySelector('.viewer-annotations').dataset.highlights === '1'`)
	send(t, w, 1, map[string]any{"type": "annotation", "action": "clear", "viewer_id": "v_c", "role": "customer"})
	waitJS(t, ctx, "cleared by the customer", `document.querySelector('.viewer-annotations').dataset.highlights === '0'`)

	// Pinned strokes from the pin button; Esc goes back to the tab.
	run(t, ctx, "pen again", chromedp.Click(`.viewer-tool[data-tool="pen"]`), chromedp.Click(`.viewer-tool-pin`))
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x0, y0, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseMoved, x1, y1, input.MouseButtonLeft, 1, 0)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x1, y1, input.MouseButtonLeft, 0, 1)
	if a := w.waitEvent(t, &from, "pinned stroke", isAnnotate("stroke")).Annotate; a.ID != "s2" || !a.Pinned {
		t.Errorf("second stroke = %+v, want s2 pinned", a)
	}
	run(t, ctx, "focus the stage", chromedp.Focus(".viewer-tool-pin"))
	run(t, ctx, "Esc", chromedp.Evaluate[chromedp.Void](`document.querySelector('.viewer-video').focus()`), chromedp.KeyEvent(kb.Escape))
	waitJS(t, ctx, "back to the tab", `document.querySelector('.viewer-stage').dataset.tool === 'operate' && document.querySelector('.viewer-draw').hidden`)

	// The tools speak Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese tools", `document.querySelector('.viewer-tool[data-tool="highlight"]').getAttribute('aria-label') === '要素をハイライト'`)
	w.checkClean(t)
}

// TestChat: the customer writes and reads; messages show in the worker's
// order once echoed; keys typed in the chat never reach the tab.
func TestChat(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	from := w.count()

	// A message from the agent while the panel is closed: the button counts it.
	send(t, w, 1, map[string]any{"type": "chat", "id": "c1", "viewer_id": "v_agent", "role": "agent", "name": "Aiko Tanaka", "text": "Hello! Can you see the form?", "at": time.Now().UTC().Format(time.RFC3339)})
	waitJS(t, ctx, "unread", `document.querySelector('.viewer-chat-toggle').dataset.unread === '1' && document.querySelector('.chat-unread').checkVisibility()`)
	run(t, ctx, "open chat", chromedp.Click(".viewer-chat-toggle"))
	waitJS(t, ctx, "chat open", `document.querySelector('.viewer-chat').checkVisibility() && document.activeElement === document.querySelector('.chat-input') && document.querySelector('.viewer-chat-toggle').dataset.unread === '0'`)
	if got := eval[string](t, ctx, `[...document.querySelectorAll('.chat-msg')].map(m => m.dataset.role + ':' + m.querySelector('.chat-who').textContent + ':' + m.querySelector('.chat-text').textContent).join('|')`); got != "agent:Aiko Tanaka:Hello! Can you see the form?" {
		t.Errorf("messages = %q", got)
	}

	// Write: Shift+Enter is a new line, Enter sends; nothing reaches the tab.
	browsertest.Fill(t, ctx, ".chat-input", "Yes")
	browsertest.Press(t, ctx, "Enter", "Enter", 13, "\r", int64(chromedp.ModifierShift))
	browsertest.Fill(t, ctx, ".chat-input", "はい、見えます")
	// Enter that ends an IME composition does not send.
	run(t, ctx, "composing Enter", chromedp.Evaluate[chromedp.Void](`document.querySelector('.chat-input').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true, cancelable: true}))`))
	time.Sleep(200 * time.Millisecond)
	if n := len(w.eventsSince(from)); n != 0 {
		t.Fatalf("%d messages went out while writing: %+v", n, w.eventsSince(from))
	}
	browsertest.PressKey(t, ctx, browsertest.KeyEnter)
	c := w.waitEvent(t, &from, "chat", func(r received) bool { return r.Chat != nil })
	if c.Chat.Text != "Yes\nはい、見えます" || c.Label != "input" {
		t.Errorf("chat = %q on %s", c.Chat.Text, c.Label)
	}
	for _, r := range w.eventsSince(0) {
		if r.Event.Kind == pinput.KindKey || r.Event.Kind == pinput.KindText {
			t.Errorf("a key typed in the chat reached the tab: %+v", r.Event)
		}
	}
	if got := eval[string](t, ctx, `document.querySelector('.chat-input').value + '|' + document.querySelectorAll('.chat-msg').length`); got != "|1" {
		t.Errorf("after sending: box|messages = %q, want an empty box and the message not shown before its echo", got)
	}
	// The worker's echo shows it as ours.
	send(t, w, 1, map[string]any{"type": "chat", "id": "c2", "viewer_id": "v_test", "role": "customer", "text": "Yes\nはい、見えます", "at": time.Now().UTC().Format(time.RFC3339)})
	waitJS(t, ctx, "own message", `document.querySelectorAll('.chat-msg').length === 2 && document.querySelector('.chat-msg:last-child').dataset.mine === 'true' && document.querySelector('.chat-msg:last-child .chat-who').textContent === 'You'`)
	// The same message again (a reconnect's history) is shown once.
	send(t, w, 1, map[string]any{"type": "chat", "id": "c2", "viewer_id": "v_test", "role": "customer", "text": "Yes\nはい、見えます"})
	time.Sleep(200 * time.Millisecond)
	if n := eval[int](t, ctx, `document.querySelectorAll('.chat-msg').length`); n != 2 {
		t.Errorf("%d messages after a repeated id, want 2", n)
	}
	shot(t, ctx, "customer-chat-desktop")

	// Not echoed within 5 s: an error, and the text comes back.
	browsertest.Fill(t, ctx, ".chat-input", "lost")
	run(t, ctx, "send", chromedp.Click(".chat-send"))
	w.waitEvent(t, &from, "chat lost", func(r received) bool { return r.Chat != nil && r.Chat.Text == "lost" })
	waitJS(t, ctx, "not sent", `document.querySelector('.chat-error').textContent.startsWith('The message could not be sent') && document.querySelector('.chat-input').value === 'lost'`)

	// Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese chat", `document.querySelector('.chat-title').textContent === 'チャット' && document.querySelector('.chat-msg:last-child .chat-who').textContent === 'あなた'`)
	shot(t, ctx, "customer-chat-desktop-ja")
	run(t, ctx, "Esc closes", chromedp.Focus(".chat-input"), chromedp.KeyEvent(kb.Escape))
	waitJS(t, ctx, "closed", `!document.querySelector('.viewer-chat').checkVisibility() && document.activeElement === document.querySelector('.viewer-chat-toggle')`)
	// Text is text, never markup.
	send(t, w, 1, map[string]any{"type": "chat", "id": "c3", "viewer_id": "v_agent", "role": "agent", "name": "<b>x</b>", "text": `<img src=x onerror="document.title='pwned'">`})
	run(t, ctx, "open chat again", chromedp.Click(".viewer-chat-toggle"))
	waitJS(t, ctx, "markup as text", `document.querySelector('.chat-msg:last-child .chat-text').textContent.startsWith('<img')`)
	if got := eval[string](t, ctx, `document.querySelectorAll('.viewer-chat img, .viewer-chat b').length + '|' + document.title`); strings.Contains(got, "pwned") || !strings.HasPrefix(got, "0|") {
		t.Errorf("chat markup was interpreted: %q", got)
	}
	w.checkClean(t)
}
