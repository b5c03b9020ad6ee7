package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
)

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

// shopClick clicks at a point of the shop.
func shopClick(p testshop.Point, clicks int) []input.Event { return click(p.X, p.Y, clicks) }

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
	{"click at the centre", shopClick(testshop.BuyCentre, 1)},
	{"click at the edge", shopClick(testshop.BuyEdge, 1)},
	{"click on the child span", shopClick(testshop.BuySpan, 1)},
	{"double click", seq(shopClick(testshop.BuyCentre, 1), shopClick(testshop.BuyCentre, 2))},
	{"click its label", shopClick(testshop.BuyLabel, 1)},
	{"Tab + Enter", seq(keyTab, keyEnter)},
	{"Tab + Space", seq(keyTab, keySpace)},
	{"Enter in a field of its form", seq(shopClick(testshop.Field, 1), keyEnter)},
	{"its accesskey", key("b", "KeyB", 66, "", input.ModAlt)},
	{"a page script clicks it on a key", seq(shopClick(testshop.Evil, 1), key("a", "KeyA", 65, "a", 0))},
	{"in shadow DOM", shopClick(testshop.Shadow, 1)},
	{"in a same-origin frame", shopClick(testshop.Frame, 1)},
	{"in a cross-origin frame", shopClick(testshop.CrossFrame, 1)},
	// A press and a release with no move before (a desktop viewer's tap
	// on a touch screen).
	{"press without a move", shopClick(testshop.BuyCentre, 1)[1:]},
	// A phone viewer's tap: touch events, which Chromium turns into a
	// click.
	{"touch tap", tap(testshop.BuyCentre)},
	{"touch tap on its label", tap(testshop.BuyLabel)},
	// The pointer rests on "wishlist" and the page moves Buy under it; the
	// press comes a moment later, where the viewer's picture still showed
	// "wishlist".
	{"moved under the pointer", seq(shopClick(testshop.Wishlist, 1)[:1], []input.Event{pause}, shopClick(testshop.Wishlist, 1)[1:])},
}

// tap is a finger's tap at a point of the shop.
func tap(p testshop.Point) []input.Event {
	finger := []input.Touch{{ID: 0, X: p.X, Y: p.Y}}
	return []input.Event{
		{Kind: input.KindTouch, Action: input.ActionStart, Touches: finger},
		{Kind: input.KindTouch, Action: input.ActionEnd},
	}
}

// pause in a step waits a moment before the next event.
var pause = input.Event{Kind: "pause"}

func sendAll(ctx context.Context, t *testing.T, v *botviewer.Viewer, evs []input.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev.Kind == pause.Kind {
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
	reset := shopClick(testshop.Empty, 1)
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
	typeLater := seq(shopClick(testshop.Later, 1), key("x", "KeyX", 88, "x", 0))
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
