package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
)

// Blocking and control with real browsers on both sides (issue 5): the
// agent in the real console and the customer in the real customer page
// operate the test shop through their videos.

// shopCustW×shopCustH is the customer's window: its stage, the remote
// viewport, holds the whole shop.
const shopCustW, shopCustH = 1000, 720

// shopStep is one way to press a Buy button, done through a viewer's video.
type shopStep struct {
	name string
	do   func(t *testing.T, ctx context.Context)
}

// clientOf maps a point of the remote page to the viewer's client point.
func clientOf(t *testing.T, ctx context.Context, p testshop.Point) (x, y float64) {
	t.Helper()
	xy := browsertest.Eval[[]float64](t, ctx, fmt.Sprintf(remotePointJS, p.X, p.Y))
	return xy[0], xy[1]
}

func clickShop(p testshop.Point, clicks int) func(*testing.T, context.Context) {
	return func(t *testing.T, ctx context.Context) {
		t.Helper()
		x, y := clientOf(t, ctx, p)
		browsertest.Run(t, ctx, "move", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y, chromedp.ButtonNone))
		for n := 1; n <= clicks; n++ {
			browsertest.Run(t, ctx, "click", chromedp.MouseClickXY(x, y, chromedp.ClickCount(n)))
		}
	}
}

func keys(ks ...[4]string) func(*testing.T, context.Context) {
	return func(t *testing.T, ctx context.Context) {
		t.Helper()
		for _, k := range ks {
			browsertest.PressKey(t, ctx, k)
		}
	}
}

func typeText(text string) func(*testing.T, context.Context) {
	return func(t *testing.T, ctx context.Context) { browsertest.Type(t, ctx, text) }
}

func then(fs ...func(*testing.T, context.Context)) func(*testing.T, context.Context) {
	return func(t *testing.T, ctx context.Context) {
		t.Helper()
		for _, f := range fs {
			f(t, ctx)
		}
	}
}

var shopSteps = []shopStep{
	{"click at the centre", clickShop(testshop.BuyCentre, 1)},
	{"click at the edge", clickShop(testshop.BuyEdge, 1)},
	{"click on the child span", clickShop(testshop.BuySpan, 1)},
	{"double click", clickShop(testshop.BuyCentre, 2)},
	{"click its label", clickShop(testshop.BuyLabel, 1)},
	{"Tab + Enter", keys(browsertest.KeyTab, browsertest.KeyEnter)},
	{"Tab + Space", keys(browsertest.KeyTab, browsertest.KeySpace)},
	{"Enter in a field of its form", then(clickShop(testshop.Field, 1), keys(browsertest.KeyEnter))},
	{"its accesskey", func(t *testing.T, ctx context.Context) {
		browsertest.Press(t, ctx, "b", "KeyB", 66, "b", int64(chromedp.ModifierAlt))
	}},
	{"a page script clicks it on a key", then(clickShop(testshop.Evil, 1), typeText("a"))},
	{"in shadow DOM", clickShop(testshop.Shadow, 1)},
	{"in a same-origin frame", clickShop(testshop.Frame, 1)},
	{"in a cross-origin frame", clickShop(testshop.CrossFrame, 1)},
	{"touch tap", func(t *testing.T, ctx context.Context) {
		x, y := clientOf(t, ctx, testshop.BuyCentre)
		browsertest.Run(t, ctx, "tap", chromedp.TapXY(x, y))
	}},
	// The pointer rests on "wishlist", the page moves Buy under it, and the
	// press comes where the viewer's picture still showed "wishlist".
	{"moved under the pointer", func(t *testing.T, ctx context.Context) {
		x, y := clientOf(t, ctx, testshop.Wishlist)
		browsertest.Run(t, ctx, "rest on wishlist", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y, chromedp.ButtonNone))
		time.Sleep(150 * time.Millisecond)
		browsertest.Run(t, ctx, "press", chromedp.MouseClickXY(x, y))
	}},
}

// blockedEvents counts the session's audit events for the agent's blocked
// input.
func blockedEvents(t *testing.T, s *server, id string) int {
	t.Helper()
	res := s.api(t, "GET", "/api/v1/sessions/"+id+"/audit", "")
	evs, _ := res["events"].([]any)
	n := 0
	for _, e := range evs {
		m, _ := e.(map[string]any)
		d, _ := m["details"].(map[string]any)
		if m["type"] == "input.refused" && d["reason"] == "blocked" {
			if d["selector"] == nil || d["method"] == nil {
				t.Errorf("blocked event without selector or method: %v", m)
			}
			n++
		}
	}
	return n
}

// waitBlockedEvents waits up to 5 s for want blocked events and fails on
// more.
func waitBlockedEvents(t *testing.T, s *server, id string, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := blockedEvents(t, s, id)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBlockingInBrowsers(t *testing.T) {
	shop := testshop.Start(t)
	s := startCanaryServe(t, nil)
	ls := openLiveSession(t, s, shop.URL, shopCustW, shopCustH)
	shots := os.Getenv("TANDEM_E2E_SHOTS")
	w := browsertest.Eval[int](t, ls.cust, `document.querySelector('video').videoWidth`)
	if h := browsertest.Eval[int](t, ls.cust, `document.querySelector('video').videoHeight`); w < testshop.Width || h < testshop.Height {
		t.Fatalf("the remote viewport is %dx%d, smaller than the shop", w, h)
	}

	// Before the grant the agent's clicks stay in the console: nothing
	// reaches the shop, and nothing is blocked (nothing was tried there).
	clickShop(testshop.BuyCentre, 1)(t, ls.agent)
	browsertest.WaitJS(t, ls.agent, "the viewing note", `!document.querySelector('.viewer-note').hidden`)
	if buys := shop.Collect(time.Second); len(buys) > 0 {
		t.Fatalf("the agent bought before the customer let it control: %v", buys)
	}

	// The customer lets the agent control.
	browsertest.Run(t, ls.agent, "request control", chromedp.Click(".viewer-control-button"))
	browsertest.WaitJS(t, ls.cust, "the customer is asked", `document.querySelector('.viewer-ask')?.checkVisibility()`)
	browsertest.Run(t, ls.cust, "allow", chromedp.Click(".viewer-ask-allow"))
	browsertest.WaitJS(t, ls.agent, "the agent controls", `document.querySelector('.viewer').dataset.control === 'controlling'`)

	reset := clickShop(testshop.Empty, 1)
	seen := blockedEvents(t, s, ls.id)
	for _, step := range shopSteps {
		reset(t, ls.agent)
		shop.Collect(300 * time.Millisecond)
		step.do(t, ls.agent)
		if buys := shop.Collect(1500 * time.Millisecond); len(buys) > 0 {
			t.Errorf("agent, %s: the shop got purchases %v", step.name, buys)
		}
		n := waitBlockedEvents(t, s, ls.id, seen+1)
		if n-seen != 1 {
			t.Errorf("agent, %s: %d blocked events in the audit trail, want 1", step.name, n-seen)
		}
		seen = n
	}
	// The page's own purchase counter stayed 0 too (it reports every 200 ms).
	time.Sleep(500 * time.Millisecond)
	if n := shop.Count(); n != 0 {
		t.Errorf("the shop page counted %d purchases by the agent", n)
	}
	browsertest.Shot(t, ls.agent, shots, "e2e-agent-blocked")
	browsertest.Shot(t, ls.cust, shots, "e2e-customer-after-agent")
	if got := browsertest.Eval[string](t, ls.agent, `document.querySelector('.viewer-note').textContent`); got != "Blocked: your company does not let agents use this." {
		t.Errorf("the agent's note = %q", got)
	}

	// The customer takes control back and does the same: every step buys.
	browsertest.Run(t, ls.cust, "take back", chromedp.Click(".viewer-control-button"))
	browsertest.WaitJS(t, ls.agent, "the agent views", `document.querySelector('.viewer').dataset.control === 'viewing'`)
	topBuys := 0 // the page counts its own; the frames buy by themselves
	for _, step := range shopSteps {
		reset(t, ls.cust)
		for _, b := range shop.Collect(300 * time.Millisecond) {
			if !strings.HasPrefix(b, "frame-") {
				topBuys++
			}
		}
		step.do(t, ls.cust)
		buys := shop.Collect(1500 * time.Millisecond)
		if len(buys) == 0 {
			t.Errorf("customer, %s: no purchase", step.name)
		}
		for _, b := range buys {
			if !strings.HasPrefix(b, "frame-") {
				topBuys++
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := shop.Count(); n != int64(topBuys) || n == 0 {
		t.Errorf("the shop page counted %d purchases by the customer, its buy endpoint %d", n, topBuys)
	}
	if n := blockedEvents(t, s, ls.id); n != seen {
		t.Errorf("the customer's steps wrote %d blocked events", n-seen)
	}
}
