package browserpool

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// touchPage is a phone page: a button near the top that logs the touch
// events and the click it gets, and room to scroll and zoom.
const touchPage = `<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1">
<body style="margin:0;height:5000px;background:linear-gradient(#fff,#39f)">
<button id="b" style="position:absolute;left:40px;top:100px;width:200px;height:120px">tap</button>
<script>
window.events = [];
const pt = e => e.changedTouches && e.changedTouches[0] ?
  '(' + Math.round(e.changedTouches[0].clientX) + ',' + Math.round(e.changedTouches[0].clientY) + ')' : '';
for (const type of ['touchstart', 'touchend', 'touchcancel', 'click']) {
  addEventListener(type, e => {
    const where = type === 'click' ? '(' + e.clientX + ',' + e.clientY + ')' : pt(e);
    events.push(type + where + (e.target.id ? '@' + e.target.id : ''));
  }, {passive: true});
}
</script>`

// phoneLease leases a tab that emulates a phone (390×844, touch, pixel
// ratio 2) showing page, loaded after the emulation so that it sees touch.
func phoneLease(t *testing.T, page string) *Lease {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	l := lease(t, LeaseOptions{StartURL: srv.URL})
	ctx := context.Background()
	if err := l.SetView(ctx, 390, 844, Device{Mobile: true, Scale: 2}); err != nil {
		t.Fatalf("SetView: %v", err)
	}
	if err := l.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	waitEval(t, l, `'ontouchstart' in window && typeof events === 'object' && innerWidth === 390 ? 'yes' : 'no'`,
		func(s string) bool { return s == "yes" })
	return l
}

// waitEval evaluates expr in the page's main world until ok accepts its
// result, and returns that result.
func waitEval(t *testing.T, l *Lease, expr string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var got string
	var err error
	for {
		got, err = chromedp.Run(l.bctx, chromedp.Evaluate[string](expr))
		if err == nil && ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q (%v) after %v", expr, got, err, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func evalNow(t *testing.T, l *Lease, expr string) string {
	t.Helper()
	s, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func touch(action input.Action, pts ...input.Touch) input.Event {
	return input.Event{Kind: input.KindTouch, Action: action, Touches: pts}
}

// drag moves the fingers from their from points to their to points in
// steps, one touchMove a step, as a viewer sends them.
func drag(from, to []input.Touch, steps int) []input.Event {
	var out []input.Event
	for i := 1; i <= steps; i++ {
		f := float64(i) / float64(steps)
		pts := make([]input.Touch, len(from))
		for j := range from {
			pts[j] = input.Touch{ID: from[j].ID, X: from[j].X + (to[j].X-from[j].X)*f, Y: from[j].Y + (to[j].Y-from[j].Y)*f}
		}
		out = append(out, touch(input.ActionMove, pts...))
	}
	return out
}

// A finger's tap on a phone tab is a touch for the page (touchstart and
// touchend where the finger was) and then a click, as on a real phone; and
// the click has happened by the time the touchend's dispatch returns, so
// the blocking guard armed around it sees it.
func TestTouchTapFiresTouchEventsAndAClick(t *testing.T) {
	l := phoneLease(t, touchPage)
	finger := input.Touch{ID: 0, X: 140, Y: 160}
	dispatch(t, l, touch(input.ActionStart, finger), touch(input.ActionEnd))
	got := evalNow(t, l, `events.join(' ')`)
	want := "touchstart(140,160)@b touchend(140,160)@b click(140,160)@b"
	if got != want {
		// Not yet there when the dispatch returned: say how late.
		late := waitEval(t, l, `events.join(' ')`, func(s string) bool { return s == want })
		t.Fatalf("right after the touchend's dispatch the page had %q; later %q", got, late)
	}
}

// A one-finger drag scrolls the page, as a finger does on a phone.
func TestTouchDragScrollsThePage(t *testing.T) {
	l := phoneLease(t, touchPage)
	from := []input.Touch{{ID: 0, X: 300, Y: 700}}
	to := []input.Touch{{ID: 0, X: 300, Y: 300}}
	dispatch(t, l, touch(input.ActionStart, from...))
	dispatch(t, l, drag(from, to, 10)...)
	dispatch(t, l, touch(input.ActionEnd))
	y := waitEval(t, l, `String(Math.round(scrollY))`, func(s string) bool {
		n, _ := strconv.Atoi(s)
		return n >= 300
	})
	t.Logf("a 400 px drag scrolled to scrollY %s", y)
	if got := evalNow(t, l, `events.filter(e => e.startsWith('click')).join(' ')`); got != "" {
		t.Errorf("the drag clicked: %q", got)
	}
}

// Two fingers moving apart zoom the page in (the visual viewport's scale
// grows, as a pinch does on a phone); lifting one finger and then the other
// ends the gesture with a touchend each.
func TestTouchPinchZooms(t *testing.T) {
	l := phoneLease(t, touchPage)
	from := []input.Touch{{ID: 0, X: 170, Y: 500}, {ID: 1, X: 220, Y: 500}}
	to := []input.Touch{{ID: 0, X: 40, Y: 500}, {ID: 1, X: 350, Y: 500}}
	dispatch(t, l, touch(input.ActionStart, from[0]), touch(input.ActionStart, from...))
	dispatch(t, l, drag(from, to, 12)...)
	dispatch(t, l, touch(input.ActionEnd, to[0]), touch(input.ActionEnd))
	scale := waitEval(t, l, `String(visualViewport.scale)`, func(s string) bool {
		f, _ := strconv.ParseFloat(s, 64)
		return f >= 1.5
	})
	t.Logf("a pinch from 50 to 310 px apart zoomed to scale %s", scale)
	waitEval(t, l, `events.filter(e => e.startsWith('touchend')).length + ' ' + events.filter(e => e.startsWith('touchstart')).length`,
		func(s string) bool { return s == "2 2" })
}

// A touch event the page cannot take is refused before it reaches
// Chromium.
func TestTouchDispatchValidates(t *testing.T) {
	l := phoneLease(t, touchPage)
	bad := input.Event{Kind: input.KindTouch, Action: input.ActionStart}
	if err := l.Dispatch(context.Background(), bad); err == nil {
		t.Errorf("Dispatch(%+v) = nil, want an error", bad)
	}
	// Far outside the viewport is clamped to its edge, like a mouse.
	dispatch(t, l, touch(input.ActionStart, input.Touch{X: 5000, Y: -20}), touch(input.ActionCancel))
	waitEval(t, l, `events.join(' ')`, func(s string) bool { return s == "touchstart(389,0) touchcancel(389,0)" })
}
