package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// shopPage is a test shop: a blocked "Buy now" submit button (with a child
// span, a label and an accesskey) as the default button of a form with a
// text field, a field whose page script clicks the button on any key, a
// blocked button in an open shadow root, and blocked buttons in a
// same-origin and a cross-origin frame. Every purchase calls /buy?via=…;
// moving the pointer over "wishlist" moves the Buy button under it (a
// layout shift between what a viewer saw and the press).
const shopPage = `<!doctype html><html><head><style>
body{margin:0;font:20px sans-serif;background:#fff}
.abs{position:absolute;margin:0;box-sizing:border-box}
#buy{left:100px;top:100px;width:200px;height:60px}
#buylabel{left:100px;top:180px;width:200px;height:40px;background:#eee}
#q{left:400px;top:100px;width:200px;height:40px}
#evil{left:650px;top:100px;width:200px;height:40px}
#host{left:100px;top:300px;width:200px;height:80px}
#fr{left:400px;top:300px;width:300px;height:150px;border:0}
#xfr{left:750px;top:300px;width:300px;height:150px;border:0}
#free{left:400px;top:500px;width:200px;height:60px}
#later{left:650px;top:180px;width:200px;height:40px}
</style></head><body>
<form id="f">
  <button id="buy" class="abs" data-tandem-block accesskey="b"><span id="buyspan">Buy now</span></button>
  <label id="buylabel" class="abs" for="buy">Buy (label)</label>
  <input id="q" class="abs" aria-label="quantity">
</form>
<input id="evil" class="abs" aria-label="search">
<input id="later" class="abs" aria-label="coupon">
<div id="host" class="abs"></div>
<iframe id="fr" class="abs" src="/shop-frame"></iframe>
<iframe id="xfr" class="abs" src="{{OTHER}}/shop-frame"></iframe>
<button id="free" class="abs">Add to wishlist</button>
<script>
const buy = (via) => fetch('/buy?via=' + via);
document.getElementById('f').addEventListener('submit', (e) => { e.preventDefault(); buy('form'); });
document.getElementById('evil').addEventListener('keydown', () => document.getElementById('buy').click());
document.getElementById('later').addEventListener('keydown', () => setTimeout(() => buy('later'), 100));
const shadow = document.getElementById('host').attachShadow({ mode: 'open' });
shadow.innerHTML = '<button data-tandem-block style="width:200px;height:80px">Buy (shadow)</button>';
shadow.querySelector('button').addEventListener('click', () => buy('shadow'));
const b = document.getElementById('buy');
let shifted = false;
document.addEventListener('pointermove', (e) => {
  if (e.clientX < 400 || e.clientX > 600 || e.clientY < 500 || e.clientY > 560 || shifted) return;
  shifted = true;
  b.style.left = '400px'; b.style.top = '500px'; b.style.zIndex = '1';
  setTimeout(() => { b.style.left = ''; b.style.top = ''; b.style.zIndex = ''; shifted = false; }, 1500);
});
</script></body></html>`

// shopFrame is what both frames show: a blocked button at 10,10.
const shopFrame = `<!doctype html><html><body style="margin:0;background:#eef">
<button data-tandem-block style="position:absolute;left:10px;top:10px;width:200px;height:60px">Buy (frame)</button>
<script>document.querySelector('button').addEventListener('click', () => fetch('/buy?via=frame-' + location.hostname));</script>
</body></html>`

func (h *harness) shopRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/shop", func(w http.ResponseWriter, r *http.Request) {
		// The same server under another name is another site: the frame
		// runs in its own process.
		other := "http://localhost:" + r.Host[strings.LastIndex(r.Host, ":")+1:]
		fmt.Fprint(w, strings.Replace(shopPage, "{{OTHER}}", other, 1))
	})
	mux.HandleFunc("/shop-frame", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, shopFrame) })
	mux.HandleFunc("/buy", func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.buys <- r.URL.Query().Get("via"):
		default:
		}
	})
}

func key(k, code string, keyCode int, text string, mods int) []input.Event {
	down := input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: k, Code: code, KeyCode: keyCode, Text: text, Modifiers: mods}
	up := down
	up.Action, up.Text = input.ActionUp, ""
	return []input.Event{down, up}
}

var (
	keyTab   = key("Tab", "Tab", 9, "", 0)
	keyEnter = key("Enter", "Enter", 13, "\r", 0)
	keySpace = key(" ", "Space", 32, " ", 0)
)

func click(x, y float64, clicks int) []input.Event {
	ev := input.Event{Kind: input.KindMouse, X: x, Y: y, Button: input.ButtonLeft, Clicks: clicks}
	move, down, up := ev, ev, ev
	move.Action, move.Button, move.Clicks = input.ActionMove, input.ButtonNone, 0
	down.Action, down.Buttons = input.ActionDown, 1
	up.Action = input.ActionUp
	return []input.Event{move, down, up}
}

func seq(parts ...[]input.Event) []input.Event {
	var out []input.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// blockSteps are the ways to press the shop's Buy buttons; each starts by
// clicking the page's empty corner (focus on the body).
var blockSteps = []struct {
	name string
	evs  []input.Event
}{
	{"click at the centre", click(200, 130, 1)},
	{"click at the edge", click(102, 102, 1)},
	{"click on the child span", click(200, 130, 1)},
	{"double click", seq(click(200, 130, 1), click(200, 130, 2))},
	{"click its label", click(200, 200, 1)},
	{"Tab + Enter", seq(keyTab, keyEnter)},
	{"Tab + Space", seq(keyTab, keySpace)},
	{"Enter in a field of its form", seq(click(500, 120, 1), keyEnter)},
	{"its accesskey", key("b", "KeyB", 66, "", input.ModAlt)},
	{"a page script clicks it on a key", seq(click(750, 120, 1), key("a", "KeyA", 65, "a", 0))},
	{"in shadow DOM", click(200, 340, 1)},
	{"in a same-origin frame", click(500, 340, 1)},
	{"in a cross-origin frame", click(850, 340, 1)},
	// The pointer rests on "wishlist" and the page moves Buy under it; the
	// press comes a moment later, where the viewer's picture still showed
	// "wishlist".
	{"moved under the pointer", seq(click(500, 530, 1)[:1], []input.Event{pause}, click(500, 530, 1)[1:])},
}

// pause in a step waits a moment before the next event.
var pause = input.Event{Kind: "pause"}

func sendAll(ctx context.Context, t *testing.T, v *botviewer.Viewer, evs []input.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev == pause {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if err := v.Send(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// collect gathers what reaches the shop's buy endpoint and the blocked
// refusals for d.
func (h *harness) collect(d time.Duration) (buys []string, blocked []Event) {
	deadline := time.After(d)
	for {
		select {
		case b := <-h.buys:
			buys = append(buys, b)
		case ev := <-h.events:
			if ev.Type == EventInputRefused && ev.Reason == RefusedBlocked {
				blocked = append(blocked, ev)
			}
		case <-deadline:
			return buys, blocked
		}
	}
}

// Every way an agent could press a blocked "Buy now" is refused, with one
// audit event each, and nothing reaches the shop; the customer's same steps
// buy.
func TestAgentCannotActivateBlockedElements(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_shop", StartURL: "/shop"})
	grantControl(ctx, t, customer, agent)
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 }); err != nil {
		t.Fatalf("the agent never saw the shop: %v", err)
	}
	time.Sleep(time.Second) // the frames load and get their worlds
	reset := click(1200, 680, 1)
	for _, step := range blockSteps {
		sendAll(ctx, t, agent, reset)
		h.collect(300 * time.Millisecond)
		sendAll(ctx, t, agent, step.evs)
		buys, blocked := h.collect(1500 * time.Millisecond)
		if len(buys) > 0 {
			t.Errorf("agent, %s: the shop got purchases %v", step.name, buys)
		}
		if len(blocked) != 1 {
			t.Errorf("agent, %s: %d blocked-input events, want 1: %+v", step.name, len(blocked), blocked)
		} else if ev := blocked[0]; ev.Selector == "" || ev.Method == "" || ev.ViewerID == "" || ev.Role != RoleAgent {
			t.Errorf("agent, %s: event %+v lacks the selector, method or agent", step.name, ev)
		} else {
			t.Logf("agent, %s: refused (%s, %s)", step.name, ev.Method, ev.Selector)
		}
	}
	if !strings.Contains(strings.Join(agent.Notices(), ""), `"reason":"blocked"`) {
		t.Errorf("the agent was never told why: %q", agent.Notices())
	}
	for _, step := range blockSteps {
		sendAll(ctx, t, customer, reset)
		h.collect(300 * time.Millisecond)
		sendAll(ctx, t, customer, step.evs)
		buys, blocked := h.collect(1500 * time.Millisecond)
		if len(buys) == 0 {
			t.Errorf("customer, %s: no purchase", step.name)
		}
		if len(blocked) > 0 {
			t.Errorf("customer, %s: blocked %+v", step.name, blocked)
		}
	}
}

// The request guard (layer 3): a page that buys a moment after the agent's
// key, past the dispatch guard, gets no request out while the agent
// controls; once the customer took control back, the same key buys.
func TestRequestGuardWhileTheAgentControls(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_guard", StartURL: "/shop",
		Block: block.Policy{Requests: []string{h.page.URL + "/buy*"}}})
	grantControl(ctx, t, customer, agent)
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 }); err != nil {
		t.Fatal(err)
	}
	typeLater := seq(click(750, 200, 1), key("x", "KeyX", 88, "x", 0))
	sendAll(ctx, t, agent, typeLater)
	buys, blocked := h.collect(2 * time.Second)
	if len(buys) > 0 {
		t.Fatalf("the shop got %v while the agent controlled", buys)
	}
	if len(blocked) != 1 || blocked[0].Method != "request" || !strings.HasPrefix(blocked[0].Selector, h.page.URL+"/buy") ||
		strings.Contains(blocked[0].Selector, "?") {
		t.Fatalf("blocked events %+v, want one for the request, without its query", blocked)
	}
	if err := customer.Control(ctx, protocol.ControlRevoke); err != nil {
		t.Fatal(err)
	}
	waitNotice(ctx, t, customer, "customer", `"controller":"customer"`)
	sendAll(ctx, t, customer, typeLater)
	if buys, _ := h.collect(2 * time.Second); len(buys) != 1 || buys[0] != "later" {
		t.Fatalf("the customer's purchase: %v, want one", buys)
	}
}
