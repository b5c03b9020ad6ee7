package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
)

// touchLogJS has the page's touch events written down (in the isolated
// world, where page scripts cannot touch the list) as type and fingers
// left, e.g. "touchstart1 touchend0".
const touchLogJS = `(() => {
  window.touchLog = [];
  for (const type of ['touchstart', 'touchend', 'touchcancel']) {
    addEventListener(type, (e) => touchLog.push(type + e.touches.length), true);
  }
  return 'ok';
})()`

func touchEv(action input.Action, pts ...input.Touch) input.Event {
	return input.Event{Kind: input.KindTouch, Action: action, Touches: pts}
}

// An agent's touch sequence is checked like its mouse presses: a second
// finger coming down on a blocked "Buy now" refuses the whole sequence
// (the page's touch is cancelled, the rest of the agent's fingers dropped
// until they are all up, one audit event) and nothing is bought; the next
// sequence works again. When the customer takes control back, a finger the
// agent holds down is cancelled, and its next touches are refused.
func TestAgentTouchSequences(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, agent, s := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_touch", StartURL: "/shop"})
	grantControl(ctx, t, customer, agent)
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 }); err != nil {
		t.Fatalf("the agent never saw the shop: %v", err)
	}
	if got := evalPage(ctx, t, s, touchLogJS); got != "ok" {
		t.Fatalf("touch log: %q", got)
	}
	waitLog := func(want string) {
		t.Helper()
		var got string
		waitFor(ctx, t, "touch log "+want, func() bool {
			got = evalPage(ctx, t, s, `touchLog.join(' ')`)
			return got == want
		})
	}

	empty := input.Touch{ID: 0, X: testshop.Empty.X, Y: testshop.Empty.Y}
	buy := input.Touch{ID: 1, X: testshop.BuyCentre.X, Y: testshop.BuyCentre.Y}
	sendAll(ctx, t, agent, []input.Event{
		touchEv(input.ActionStart, empty),
		touchEv(input.ActionStart, empty, buy), // refused: the page's touch is cancelled
		touchEv(input.ActionMove, empty, buy),  // dropped, as is the rest
		touchEv(input.ActionEnd, empty),
		touchEv(input.ActionEnd),
	})
	buys, blocked := h.collect(1500 * time.Millisecond)
	if len(buys) > 0 {
		t.Errorf("the shop got purchases %v", buys)
	}
	if len(blocked) != 1 || blocked[0].Method != "pointer" || blocked[0].Role != RoleAgent {
		t.Errorf("blocked-input events %+v, want one for the second finger's pointer", blocked)
	}
	waitLog("touchstart1 touchcancel0")
	// The customer sees where the agent's finger is, as a pointer.
	if _, _, err := customer.WaitNotice(ctx, 0, func(n string) bool {
		return strings.Contains(n, `"type":"pointer"`) && strings.Contains(n, `"role":"agent"`) && strings.Contains(n, `"x":860,"y":480`)
	}); err != nil {
		t.Errorf("the customer was not shown the agent's finger: %v; %q", err, customer.Notices())
	}

	// The refusal ended with the sequence: a new tap reaches the page.
	sendAll(ctx, t, agent, tap(testshop.Empty))
	waitLog("touchstart1 touchcancel0 touchstart1 touchend0")

	// A finger held down when the customer takes control back is
	// cancelled; the agent's next touches are refused.
	sendAll(ctx, t, agent, []input.Event{touchEv(input.ActionStart, empty)})
	waitLog("touchstart1 touchcancel0 touchstart1 touchend0 touchstart1")
	if err := customer.Control(ctx, protocol.ControlRevoke); err != nil {
		t.Fatal(err)
	}
	waitNotice(ctx, t, agent, "agent", `"controller":"customer"`)
	waitLog("touchstart1 touchcancel0 touchstart1 touchend0 touchstart1 touchcancel0")
	refused := s.refusedInput.Load()
	sendAll(ctx, t, agent, tap(testshop.BuyCentre))
	// Refused for want of control (the notice may wait for the
	// refusal's two seconds after "blocked").
	waitFor(ctx, t, "the agent's tap refused", func() bool { return s.refusedInput.Load() >= refused+2 })
	if got := evalPage(ctx, t, s, `touchLog.join(' ')`); got != "touchstart1 touchcancel0 touchstart1 touchend0 touchstart1 touchcancel0" {
		t.Errorf("after the agent's tap without control the page saw %q", got)
	}
	if buys, _ := h.collect(500 * time.Millisecond); len(buys) > 0 {
		t.Errorf("the shop got purchases %v", buys)
	}
}
