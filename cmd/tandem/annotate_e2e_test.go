package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// Annotations and chat with real browsers on both sides and the real
// worker (issue 5): the agent highlights an element, and the box follows
// it in both viewers when the customer scrolls the page and when the page
// reflows; strokes and chat go both ways.

// annotPage is a tall page with a target at page (300, 300) and a button
// that inserts 120 px of content above it.
const annotPage = `<!doctype html><html><head><style>
body{margin:0;font:18px sans-serif;background:#fff;height:3000px}
#grow{position:absolute;left:40px;top:40px;width:160px;height:50px}
#spacer{height:250px}
#target{margin-left:300px;width:200px;height:80px;background:#9cf}
</style></head><body>
<button id="grow" onclick="document.getElementById('spacer').style.height='370px'">Insert above</button>
<div id="spacer"></div><div id="target">Target</div>
</body></html>`

// boxEdgeJS reads the annotation canvas where the top edge of a highlight
// of an element whose top left corner is at remote viewport (x, y) is
// drawn (4 CSS px above it, annotate.js HIGHLIGHT_PAD), 50 px to its right:
// [r, g, b, a].
const boxEdgeJS = `((x, y) => {
  const v = document.querySelector('video');
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const cx = r.left + (r.width - v.videoWidth * s) / 2 + (x + 50) * s;
  const cy = r.top + (r.height - v.videoHeight * s) / 2 + y * s - 4;
  const c = document.querySelector('.viewer-annotations');
  const b = c.getBoundingClientRect();
  const k = c.width / b.width;
  const d = c.getContext('2d').getImageData(Math.round((cx - b.left) * k), Math.round((cy - b.top) * k), 1, 1).data;
  return [d[0], d[1], d[2], d[3]];
})(%v, %v)`

// waitBox waits until the viewer draws (want) or does not draw a highlight
// edge for an element at remote viewport (x, y).
func waitBox(t *testing.T, ctx context.Context, who string, x, y float64, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		px := browsertest.Eval[[]int](t, ctx, fmt.Sprintf(boxEdgeJS, x, y))
		drawn := px[3] > 200 && px[0] > 200 && px[1] > 120 && px[1] < 200 && px[2] < 60 // #f59e0b
		if drawn == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the highlight edge for an element at %v,%v is %v, want drawn=%v", who, x, y, px, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAnnotationsInBrowsers(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, annotPage) }))
	t.Cleanup(page.Close)
	s := startCanaryServe(t, nil)
	ls := openLiveSession(t, s, page.URL+"/", shopCustW, shopCustH)
	both := map[string]context.Context{"agent": ls.agent, "customer": ls.cust}

	// The agent, viewing (no control needed), highlights the target.
	browsertest.Run(t, ls.agent, "highlight tool", chromedp.Click(`.viewer-tool[data-tool="highlight"]`))
	clickAt(t, ls.agent, fmt.Sprintf(remotePointJS, 400, 290))
	for who, ctx := range both {
		browsertest.WaitJS(t, ctx, who+" has the highlight", `document.querySelector('.viewer-annotations').dataset.highlights === '1'`)
		waitBox(t, ctx, who, 300, 250, true)
	}

	// The customer scrolls the page by 200 px: the box stays on the target.
	xy := browsertest.Eval[[]float64](t, ls.cust, fmt.Sprintf(remotePointJS, 600, 400))
	if _, err := chromedp.Call(ls.cust, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseWheel, X: xy[0], Y: xy[1], DeltaX: 0.01, DeltaY: 200}); err != nil {
		t.Fatal(err)
	}
	for who, ctx := range both {
		browsertest.WaitJS(t, ctx, who+" knows the scroll", `window.tandemViewer.annotations.scroll.y === 200`)
		waitBox(t, ctx, who+" after the scroll", 300, 50, true)
		waitBox(t, ctx, who+" where the box was", 300, 250, false)
	}
	browsertest.Shot(t, ls.agent, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-agent-highlight-scrolled")
	browsertest.Shot(t, ls.cust, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-customer-highlight-scrolled")

	// The page reflows (120 px inserted above the target): the worker
	// measures the element again and the box follows it.
	if _, err := chromedp.Call(ls.cust, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseWheel, X: xy[0], Y: xy[1], DeltaX: 0.01, DeltaY: -200}); err != nil {
		t.Fatal(err)
	}
	for who, ctx := range both {
		browsertest.WaitJS(t, ctx, who+" back at the top", `window.tandemViewer.annotations.scroll.y === 0`)
	}
	clickAt(t, ls.cust, fmt.Sprintf(remotePointJS, 120, 65))
	for who, ctx := range both {
		waitBox(t, ctx, who+" after the reflow", 300, 370, true)
		waitBox(t, ctx, who+" before the reflow", 300, 250, false)
	}

	// The customer draws: the agent sees the stroke.
	browsertest.Run(t, ls.cust, "pen", chromedp.Click(`.viewer-tool[data-tool="pen"]`))
	a := browsertest.Eval[[]float64](t, ls.cust, fmt.Sprintf(remotePointJS, 600, 100))
	b := browsertest.Eval[[]float64](t, ls.cust, fmt.Sprintf(remotePointJS, 800, 150))
	browsertest.Run(t, ls.cust, "draw",
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, a[0], a[1], chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (a[0]+b[0])/2, (a[1]+b[1])/2, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, b[0], b[1], chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, b[0], b[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	browsertest.WaitJS(t, ls.agent, "the customer's stroke", `window.tandemViewer.annotations.strokes.size === 1 && [...window.tandemViewer.annotations.strokes.values()][0].role === 'customer'`)

	// Chat: the agent writes, the customer reads it.
	browsertest.Run(t, ls.agent, "open chat", chromedp.Click(".viewer-chat-toggle"))
	browsertest.Fill(t, ls.agent, ".chat-input", "Please look at the highlighted box.")
	browsertest.PressKey(t, ls.agent, browsertest.KeyEnter)
	browsertest.WaitJS(t, ls.cust, "the agent's message", `document.querySelector('.viewer-chat-toggle').dataset.unread === '1'`)
	browsertest.Run(t, ls.cust, "open chat", chromedp.Click(".viewer-chat-toggle"))
	browsertest.WaitJS(t, ls.cust, "read", `document.querySelector('.chat-msg .chat-text')?.textContent === 'Please look at the highlighted box.' && document.querySelector('.chat-msg').dataset.role === 'agent'`)
	browsertest.WaitJS(t, ls.agent, "echoed", `document.querySelector('.chat-msg')?.dataset.mine === 'true'`)
}
