package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
)

// deviceJS describes what the page sees of its device.
const deviceJS = `[screen.width + 'x' + screen.height, devicePixelRatio, /Android.*Mobile/.test(navigator.userAgent),
  'ontouchstart' in window, matchMedia('(pointer: coarse)').matches, navigator.maxTouchPoints].join('|')`

// A customer on a phone gets a remote tab that is one: its size, a mobile
// viewport and user agent, touch, and its pixel ratio capped at 2; back on
// a desktop window, a desktop tab again, each time reloaded so that the
// site picks its layout for it. Rotating is a new size.
func TestPhoneCustomerGetsAPhoneTab(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, _, s := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_phone", StartURL: "/keys"})
	for _, c := range []struct {
		ev   input.Event
		want string
	}{
		{input.Event{Kind: input.KindViewport, Width: 390, Height: 844, Mobile: true, DPR: 3}, "390x844|2|true|true|true|5"},
		{input.Event{Kind: input.KindViewport, Width: 844, Height: 390, Mobile: true, DPR: 3}, "844x390|2|true|true|true|5"},
		{input.Event{Kind: input.KindViewport, Width: 1280, Height: 720, DPR: 1.25}, "1280x720|1.25|false|false|false|0"},
	} {
		if err := customer.Send(ctx, c.ev); err != nil {
			t.Fatal(err)
		}
		var got string
		deadline := time.Now().Add(15 * time.Second)
		for got = evalPage(ctx, t, s, deviceJS); got != c.want; got = evalPage(ctx, t, s, deviceJS) {
			if time.Now().After(deadline) {
				t.Fatalf("after %+v the page sees %q, want %q", c.ev, got, c.want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The page sees the device before the lease has restarted its
		// capture at the new size: wait for that too.
		for w, hh, d := s.lease().View(); w != c.ev.Width || hh != c.ev.Height || d.Mobile != c.ev.Mobile; w, hh, d = s.lease().View() {
			if time.Now().After(deadline) {
				t.Fatalf("lease view %dx%d %+v after %+v", w, hh, d, c.ev)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The viewers are told each size.
	var sizes []string
	for _, n := range customer.Notices() {
		if strings.Contains(n, `"type":"viewport"`) {
			sizes = append(sizes, n)
		}
	}
	if !strings.Contains(strings.Join(sizes, " "), `"width":844,"height":390`) {
		t.Errorf("viewport notices %q lack the rotated size", sizes)
	}
}

// After the customer's tap the customer is told whether the tab's focus
// is in a text field (a phone then opens its keyboard), and the text it
// types arrives there.
func TestCustomerIsToldWhenAFieldHasTheFocus(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent, _ := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_focus", StartURL: "/keys"})
	if err := customer.Send(ctx, input.Event{Kind: input.KindViewport, Width: 390, Height: 700, Mobile: true, DPR: 3}); err != nil {
		t.Fatal(err)
	}
	focusNotice := func(from int, state string) int {
		t.Helper()
		_, i, err := customer.WaitNotice(ctx, from, func(n string) bool {
			return strings.Contains(n, `"type":"focus"`) && strings.Contains(n, `"state":"`+state+`"`)
		})
		if err != nil {
			t.Fatalf("no focus %q notice: %v; got %q", state, err, customer.Notices())
		}
		return i + 1
	}
	time.Sleep(500 * time.Millisecond) // the new size applied
	// A phone's viewer taps: touch events.
	sendAll(ctx, t, customer, tap(testshop.Point{X: 100, Y: 25}))
	i := focusNotice(0, "editable")
	if err := customer.Send(ctx, input.Event{Kind: input.KindText, Text: "スマホから"}); err != nil {
		t.Fatal(err)
	}
	waitTyped(ctx, t, h.typed, "スマホから")
	sendAll(ctx, t, customer, tap(testshop.Point{X: 200, Y: 400}))
	focusNotice(i, "none")
	for _, n := range agent.Notices() {
		if strings.Contains(n, `"type":"focus"`) {
			t.Errorf("the agent was told the focus: %s", n)
		}
	}
}
