package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
)

// touchShop is a phone page: a blocked "Buy now" and an "OK" button, each
// reporting its click with whether a touch came before it, and the
// page's scroll offset.
const touchShop = `<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1">
<body style="margin:0;height:4000px;background:linear-gradient(#fff,#9cf)">
<button id="buy" data-tandem-block style="position:absolute;left:20px;top:20px;width:300px;height:140px">Buy now</button>
<button id="ok" style="position:absolute;left:20px;top:200px;width:300px;height:140px">OK</button>
<script>
let touchedAt = -1e9; // a click within a second of a touchstart is a tap's
addEventListener('touchstart', () => { touchedAt = performance.now(); }, { capture: true, passive: true });
for (const id of ['buy', 'ok']) {
  document.getElementById(id).addEventListener('click', () => {
    const how = performance.now() - touchedAt < 1000 ? 'touch' : 'mouse';
    fetch('/hit?v=' + id + ',' + how + ',' + ('ontouchstart' in window ? 'phone' : 'desktop'));
  });
}
addEventListener('scrollend', () => fetch('/hit?v=scroll,' + Math.round(scrollY)));
</script>`

// Buttons of touchShop, in CSS px of its (unscrolled) page.
var (
	touchBuy = testshop.Point{X: 170, Y: 90}
	touchOK  = testshop.Point{X: 170, Y: 270}
)

// sentTouchJS records, before the customer's page loads, every message
// its DataChannels send, so that the test sees what the viewer sent.
const sentTouchJS = `(() => {
  window.__sent = [];
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (d) {
    if (typeof d === 'string') window.__sent.push(d);
    return send.call(this, d);
  };
})()`

// A customer on a phone operates the remote tab with its fingers, end to
// end: the viewer sends touch events, the tab (a phone now) gets touches,
// a tap clicks and a drag scrolls. The agent's console keeps the mouse:
// its click works on the phone tab, and its tap on the blocked "Buy now"
// is refused and audited.
func TestPhoneCustomerTouchesInBrowsers(t *testing.T) {
	hits := make(chan string, 64)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hit" {
			select {
			case hits <- r.URL.Query().Get("v"):
			default:
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, touchShop)
	}))
	t.Cleanup(site.Close)
	waitHit := func(what string, ok func(string) bool) string {
		t.Helper()
		timer := time.NewTimer(15 * time.Second)
		defer timer.Stop()
		var got []string
		for {
			select {
			case h := <-hits:
				if ok(h) {
					return h
				}
				got = append(got, h)
			case <-timer.C:
				t.Fatalf("no %s; the page reported %q", what, got)
			}
		}
	}
	noHit := func(d time.Duration) []string {
		var got []string
		deadline := time.After(d)
		for {
			select {
			case h := <-hits:
				got = append(got, h)
			case <-deadline:
				return got
			}
		}
	}

	s := startCanaryServe(t, nil)
	cust, _ := browsertest.NewLongPhoneTab(t, 390, 760, 10*time.Minute)
	if _, err := chromedp.Call(cust, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: sentTouchJS}); err != nil {
		t.Fatal(err)
	}
	ls := openLiveSessionIn(t, s, site.URL, cust)

	// The customer taps OK. The tab is reloaded as a phone when the
	// customer's size arrives: tap until the phone's click comes.
	deadline := time.Now().Add(30 * time.Second)
	for tapped := false; !tapped; {
		if time.Now().After(deadline) {
			t.Fatal("the customer's tap never clicked OK with a touch on a phone tab")
		}
		x, y := clientOf(t, cust, touchOK)
		browsertest.Run(t, cust, "tap OK", chromedp.TapXY(x, y))
		select {
		case h := <-hits:
			if tapped = h == "ok,touch,phone"; !tapped {
				t.Logf("the page reported %q", h)
			}
		case <-time.After(2 * time.Second):
		}
	}
	sent := browsertest.Eval[string](t, cust, `__sent.join('\n')`)
	if !strings.Contains(sent, `"type":"touch","action":"start"`) || !strings.Contains(sent, `"type":"touch","action":"end"`) {
		t.Errorf("the customer's viewer sent no touch start and end:\n%s", sent)
	}
	if strings.Contains(sent, `"type":"mouse","action":"down"`) || strings.Contains(sent, `"type":"wheel"`) {
		t.Errorf("the phone's viewer sent mouse presses or wheels:\n%s", sent)
	}

	// A drag up scrolls the page.
	drag := func(from testshop.Point, dy float64, moves int) {
		t.Helper()
		x, y := clientOf(t, cust, from)
		for i := 0; i <= moves+1; i++ {
			typ, pts := input.DispatchTouchEventTypeTouchMove, []*input.TouchPoint{{X: x, Y: y + float64(i)*dy}}
			switch i {
			case 0:
				typ = input.DispatchTouchEventTypeTouchStart
			case moves + 1:
				typ, pts = input.DispatchTouchEventTypeTouchEnd, []*input.TouchPoint{}
			}
			if _, err := chromedp.Call(cust, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: pts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	scrolled := func(h string) (int, bool) {
		v, ok := strings.CutPrefix(h, "scroll,")
		n, err := strconv.Atoi(v)
		return n, ok && err == nil
	}
	// settled is where the page's scrolling came to rest: the last offset
	// reported until the page is quiet for a moment.
	settled := func(first string) int {
		t.Helper()
		at, _ := scrolled(first)
		for more := noHit(700 * time.Millisecond); len(more) > 0; more = noHit(700 * time.Millisecond) {
			for _, h := range more {
				n, ok := scrolled(h)
				if !ok {
					t.Fatalf("the page reported %q while scrolling", h)
				}
				at = n
			}
		}
		return at
	}
	drag(testshop.Point{X: 200, Y: 600}, -80, 3)
	at := settled(waitHit("a scroll down", func(h string) bool { n, ok := scrolled(h); return ok && n > 0 }))
	// Back to the top, for the agent's points. A drag's fling goes as far
	// as the finger's speed takes it, and that speed comes from when the
	// events arrived, so the way back may take more than one drag: each
	// must scroll up.
	for drags := 0; at > 0; drags++ {
		if drags == 5 {
			t.Fatalf("five drags down left the page scrolled to %d", at)
		}
		drag(testshop.Point{X: 200, Y: 100}, 100, 5)
		n := settled(waitHit("the scroll back", func(h string) bool { _, ok := scrolled(h); return ok }))
		t.Logf("a drag down scrolled from %d to %d", at, n)
		if n >= at {
			t.Fatalf("a drag down scrolled from %d to %d", at, n)
		}
		at = n
	}

	// The agent gets control; its console sends the mouse.
	browsertest.Run(t, ls.agent, "request control", chromedp.Click(".viewer-control-button"))
	browsertest.WaitJS(t, cust, "the customer is asked", `document.querySelector('.viewer-ask')?.checkVisibility()`)
	browsertest.Run(t, cust, "allow", chromedp.Click(".viewer-ask-allow"))
	browsertest.WaitJS(t, ls.agent, "the agent controls", `document.querySelector('.viewer').dataset.control === 'controlling'`)

	seen := blockedEvents(t, s, ls.id)
	// The phone's picture is tall in the console: bring it into view.
	browsertest.Eval[bool](t, ls.agent, `(document.querySelector('video').scrollIntoView({ block: 'center' }), true)`)
	x, y := clientOf(t, ls.agent, touchBuy)
	browsertest.Run(t, ls.agent, "the agent taps Buy now", chromedp.TapXY(x, y))
	if n := waitBlockedEvents(t, s, ls.id, seen+1); n-seen != 1 {
		t.Errorf("%d blocked events for the agent's tap, want 1", n-seen)
	}
	if got := noHit(1500 * time.Millisecond); len(got) > 0 {
		t.Errorf("after the agent's tap on Buy now the page reported %q", got)
	}
	clickShop(touchOK, 1)(t, ls.agent)
	waitHit("the agent's click", func(h string) bool { return h == "ok,mouse,phone" })
}
