package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// maskPage has a magenta password field, a plain field, and a masked block
// of text; both fields report what they hold.
const maskPage = `<!doctype html><html><head><style>
html,body{margin:0;height:100%;background:#f00}
body.blue{background:#00f}
input{position:absolute;left:100px;width:300px;height:60px;border:0;padding:0;box-sizing:border-box;font-size:30px}
#pw{top:100px;background:#f0f;color:#f0f}
#plain{top:300px;background:#fff}
#secret{position:absolute;left:100px;top:450px;font-size:30px;padding:20px;background:#f0f}
</style></head><body>
<input id="pw" type="password" aria-label="password">
<input id="plain" aria-label="plain">
<div id="secret" data-tandem-mask>4111 1111 1111 1111</div>
<script>
document.body.addEventListener('mousedown', e => { if (e.target === document.body) document.body.classList.toggle('blue') });
for (const id of ['pw', 'plain']) document.getElementById(id).addEventListener('input', e => fetch('/typed?v=' + id + ':' + encodeURIComponent(e.target.value)));
</script></body></html>`

// magenta says whether a YUV pixel is the field's magenta (U and V high).
func magenta(_, u, v byte) bool { return u > 170 && v > 170 }

// grey says whether a YUV pixel is the mask's fill.
func grey(y, u, v byte) bool {
	return y > 100 && y < 160 && u > 112 && u < 144 && v > 112 && v < 144
}

func at(p botviewer.Picture, x, y int) (byte, byte, byte) { return botviewer.Pixel(p.Image, x, y) }

func maskSession(t *testing.T, h *harness, id string) (ctx context.Context, customer, agent *botviewer.Viewer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	customer, agent = h.consented(ctx, t, LeaseRequest{SessionID: id, StartURL: "/mask"})
	grantControl(ctx, t, customer, agent)
	if p, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return magenta(at(p, 250, 130)) }); err != nil {
		r, g, b := at(p, 250, 130)
		t.Fatalf("the customer never saw the password field: %v (last %dx%d: %d,%d,%d)", err, p.Width, p.Height, r, g, b)
	}
	return ctx, customer, agent
}

// The agent's decoded video has the password field and the masked block
// painted over (with the margin); the customer's has them, and gets their
// outlines.
func TestAgentSeesMaskedAreasPaintedOver(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, customer, agent := maskSession(t, h, "s_mask")
	p, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) })
	if err != nil {
		t.Fatalf("the agent never saw the page: %v", err)
	}
	for y := 90; y < 170; y += 4 {
		for x := 90; x < 410; x += 4 {
			if r, g, b := at(p, x, y); magenta(r, g, b) {
				t.Fatalf("the agent's picture shows the password field at %d,%d: %d,%d,%d", x, y, r, g, b)
			}
		}
	}
	if y, u, v := at(p, 250, 130); !grey(y, u, v) {
		t.Fatalf("the masked field is YUV %d,%d,%d in the agent's picture, want grey", y, u, v)
	}
	if y, u, v := at(p, 108, 458); !grey(y, u, v) {
		t.Fatalf("the masked block is YUV %d,%d,%d in the agent's picture, want grey", y, u, v)
	}
	// The grown margin: 6 px above the field is painted too; 20 px is page.
	if r, g, b := at(p, 250, 95); botviewer.IsRed(r, g, b) {
		t.Fatal("no margin above the masked field")
	}
	if r, g, b := at(p, 250, 80); !botviewer.IsRed(r, g, b) {
		t.Fatalf("the mask spills 20 px above the field: %d,%d,%d", r, g, b)
	}
	// The customer still sees it, and is told where the agent cannot look.
	if r, g, b := at(customerPicture(ctx, t, customer), 108, 458); !magenta(r, g, b) {
		t.Fatalf("the customer's picture lacks the masked block: %d,%d,%d", r, g, b)
	}
	waitNotice(ctx, t, customer, "customer", `"type":"masks"`)
	waitNotice(ctx, t, agent, "agent", `"type":"masking","state":"active"`)
	for _, n := range agent.Notices() {
		if strings.Contains(n, `"type":"masks"`) {
			t.Fatal("the agent was sent the customers' outlines")
		}
	}
}

func customerPicture(ctx context.Context, t *testing.T, v *botviewer.Viewer) botviewer.Picture {
	t.Helper()
	p, err := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitNotice(ctx context.Context, t *testing.T, v *botviewer.Viewer, who, want string) string {
	t.Helper()
	for {
		for _, n := range v.Notices() {
			if strings.Contains(n, want) {
				return n
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never got %s; notices %q", who, want, v.Notices())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitEvent(ctx context.Context, t *testing.T, h *harness, typ string) Event {
	t.Helper()
	for {
		select {
		case ev := <-h.events:
			if ev.Type == typ {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", typ)
		}
	}
}

func keys(text string) []input.Event {
	var evs []input.Event
	for _, r := range text {
		k := string(r)
		evs = append(evs, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: k, Text: k},
			input.Event{Kind: input.KindKey, Action: input.ActionUp, Key: k})
	}
	return evs
}

// The agent cannot type, paste or copy in a masked field; the customer can
// type there, and the agent can type elsewhere.
func TestAgentCannotTypeIntoMaskedField(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, customer, agent := maskSession(t, h, "s_type")
	send := func(v *botviewer.Viewer, evs ...input.Event) {
		t.Helper()
		for _, ev := range evs {
			if err := v.Send(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Into the password field, with keys, pasted text and Ctrl+V; right
	// after the click that focuses it (the guard asks the page at dispatch).
	if err := agent.Click(ctx, 250, 130); err != nil {
		t.Fatal(err)
	}
	send(agent, keys("ab")...)
	send(agent, input.Event{Kind: input.KindText, Text: "pasted"},
		input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "v", Code: "KeyV", Modifiers: input.ModCtrl})
	refused(ctx, t, agent, "agent", RefusedMaskedField)
	ev := waitEvent(ctx, t, h, EventInputRefused)
	if ev.Role != RoleAgent || ev.Reason != RefusedMaskedField || ev.ViewerID == "" {
		t.Fatalf("refusal event %+v", ev)
	}
	// The agent may still type in the plain field: the first value the page
	// reports is the agent's there, nothing ever reached the password field.
	if err := agent.Click(ctx, 250, 330); err != nil {
		t.Fatal(err)
	}
	send(agent, keys("ok")...)
	waitTypedSafe(ctx, t, h, "plain:ok")
	// The customer types into the password field.
	if err := customer.Click(ctx, 250, 130); err != nil {
		t.Fatal(err)
	}
	send(customer, keys("c")...)
	waitTypedSafe(ctx, t, h, "pw:c")

	// A selection of masked text cannot be copied by the agent.
	if err := agent.Click(ctx, 600, 600); err != nil { // away from any field
		t.Fatal(err)
	}
	send(agent, input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 120, Y: 470, Button: input.ButtonLeft, Buttons: 1, Clicks: 3},
		input.Event{Kind: input.KindMouse, Action: input.ActionUp, X: 120, Y: 470, Button: input.ButtonLeft, Clicks: 3})
	before := len(agent.Notices())
	time.Sleep(2100 * time.Millisecond) // past the refusal notices' spacing
	send(agent, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "c", Code: "KeyC", Modifiers: input.ModCtrl})
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := agent.Notices()
		if len(n) > before && strings.Contains(strings.Join(n[before:], ""), RefusedMaskedField) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ctrl+C over masked text was not refused; notices %q", n[before:])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTypedSafe waits for the page to report want; any report of the password
// field other than the customer's is a leak.
func waitTypedSafe(ctx context.Context, t *testing.T, h *harness, want string) {
	t.Helper()
	for {
		select {
		case v := <-h.typed:
			if v == want {
				return
			}
			if strings.HasPrefix(v, "pw:") && v != "pw:c" {
				t.Fatalf("the password field got %q from the agent", v)
			}
		case <-ctx.Done():
			t.Fatalf("the page never reported %q", want)
		}
	}
}

// Faults in the mask path hold the agent's picture (the customer's goes on),
// tell the agent, write one pause event; the picture resumes after.
func TestMaskFaultsHoldTheAgentsPicture(t *testing.T) {
	var faults mask.Faults
	h := newHarness(t, Config{MaskFaults: &faults})
	ctx, customer, agent := maskSession(t, h, "s_fault")
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the agent never saw the page: %v", err)
	}
	blue := false
	for _, c := range []struct {
		name string
		set  func(bool)
	}{{"fail", faults.SetFail}, {"panic", faults.SetPanic}, {"drop reports", faults.SetDropReports}} {
		c.set(true)
		before := len(agent.Notices())
		// The page changes colour: the customer sees it, the agent not.
		blue = !blue
		isNew := func(p botviewer.Picture) bool {
			return botviewer.IsBlue(centre(p)) == blue && botviewer.IsRed(centre(p)) != blue
		}
		if err := customer.Click(ctx, 600, 650); err != nil {
			t.Fatal(err)
		}
		if _, err := customer.WaitPicture(ctx, isNew); err != nil {
			t.Fatalf("%s: the customer never saw the page change: %v", c.name, err)
		}
		waitFor(ctx, t, c.name+": paused notice", func() bool {
			n := agent.Notices()
			return len(n) > before && strings.Contains(strings.Join(n[before:], ""), `"state":"paused"`)
		})
		if ev := waitEvent(ctx, t, h, EventMaskPaused); ev.Reason == "" {
			t.Fatalf("%s: pause event without reason: %+v", c.name, ev)
		}
		wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		p, err := agent.WaitPicture(wctx, isNew)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: the agent decoded the changed page (#%d, %v) while masking was failing", c.name, p.N, err)
		}
		c.set(false)
		if _, err := agent.WaitPicture(ctx, isNew); err != nil {
			t.Fatalf("%s: the agent's picture did not resume: %v", c.name, err)
		}
		waitFor(ctx, t, c.name+": active notice", func() bool {
			n := agent.Notices()
			return strings.Contains(n[len(n)-1], `"state":"active"`)
		})
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
