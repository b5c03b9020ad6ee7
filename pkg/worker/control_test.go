package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// controlPage turns blue on a press on its body and reports every key and
// button going down or up.
const controlPage = `<!doctype html><html><head><style>
html,body{margin:0;height:100%;background:#f00}
body.clicked{background:#00f}
</style></head><body>
<script>
document.body.addEventListener('mousedown', () => document.body.classList.add('clicked'));
for (const type of ['keydown', 'keyup', 'mousedown', 'mouseup']) {
  addEventListener(type, (e) => fetch('/typed?v=' + type + ':' + (type.startsWith('key') ? e.code : e.button)));
}
</script></body></html>`

func controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/control", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, controlPage) })
}

// consented leases req's session, joins a customer and an agent, and
// gives the customer's consent.
func (h *harness) consented(ctx context.Context, t *testing.T, req LeaseRequest) (customer, agent *botviewer.Viewer) {
	t.Helper()
	return h.consentedWith(ctx, t, req, botviewer.Options{SeeScreen: true})
}

// consentedWith is consented with the agent's viewer dialled with opts.
func (h *harness) consentedWith(ctx context.Context, t *testing.T, req LeaseRequest, agentOpts botviewer.Options) (customer, agent *botviewer.Viewer) {
	t.Helper()
	req.Company = "acme"
	if rep := h.leaseWith(t, req); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer = h.join(ctx, t, "acme", req.SessionID, RoleCustomer)
	agent = h.joinWith(ctx, t, "acme", req.SessionID, RoleAgent, agentOpts)
	h.gate(t, Gate{Company: "acme", SessionID: req.SessionID, Consented: true}, "")
	return customer, agent
}

// grantControl has the agent ask for control and the customer grant it.
func grantControl(ctx context.Context, t *testing.T, customer, agent *botviewer.Viewer) {
	t.Helper()
	before := len(customer.Notices())
	if err := agent.Control(ctx, protocol.ControlRequest); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the customer asked", func() bool {
		return strings.Contains(strings.Join(customer.Notices()[before:], ""), `"state":"requested"`)
	})
	if err := customer.Control(ctx, protocol.ControlGrant); err != nil {
		t.Fatal(err)
	}
	waitNotice(ctx, t, agent, "agent", `"controller":"agent"`)
}

// waitTypedValue waits until the page reports want.
func waitTypedValue(ctx context.Context, t *testing.T, h *harness, want string) {
	t.Helper()
	for {
		select {
		case v := <-h.typed:
			if v == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the page never reported %q", want)
		}
	}
}

func lastNotice(v *botviewer.Viewer, typ string) string {
	n := v.Notices()
	for i := len(n) - 1; i >= 0; i-- {
		if strings.Contains(n[i], `"type":"`+typ+`"`) {
			return n[i]
		}
	}
	return ""
}

// The agent watches until the customer grants control; a denied request
// changes nothing; the customer takes control back at any moment, which
// releases what the agent held and refuses its next input at once. Each
// sees the other's pointer.
func TestControlIsTheCustomers(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_ctl", StartURL: "/control"})
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the agent never saw the page: %v", err)
	}
	// The customer's stream began before the page loaded: stillRed below
	// needs the customer's latest picture to be the page too.
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the customer never saw the page: %v", err)
	}
	waitNotice(ctx, t, agent, "agent", `"type":"control","controller":"customer"`)

	// View mode: the agent's click is refused and the page stays red.
	if err := agent.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, agent, "the agent", RefusedNoControl)
	stillRed(t, customer, "the customer", 1500*time.Millisecond)

	// The pointers are shared both ways, while nobody clicks.
	if err := agent.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 100, Y: 200}); err != nil {
		t.Fatal(err)
	}
	if err := customer.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 300, Y: 400}); err != nil {
		t.Fatal(err)
	}
	waitNotice(ctx, t, customer, "customer", `"type":"pointer"`)
	waitNotice(ctx, t, agent, "agent", `"name":"customer","x":300,"y":400`)

	// A denied request leaves the agent watching.
	if err := agent.Control(ctx, protocol.ControlRequest); err != nil {
		t.Fatal(err)
	}
	ask := waitNotice(ctx, t, customer, "customer", `"state":"requested"`)
	if !strings.Contains(ask, `"viewer_id":"`) {
		t.Errorf("the request does not say who asks: %s", ask)
	}
	waitNotice(ctx, t, agent, "agent", `"state":"asking"`)
	if err := customer.Control(ctx, protocol.ControlDeny); err != nil {
		t.Fatal(err)
	}
	waitNotice(ctx, t, agent, "agent", `"state":"denied"`)
	if err := customer.Control(ctx, protocol.ControlGrant); err != nil { // nobody asks now
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := lastNotice(agent, "control"); strings.Contains(n, `"controller":"agent"`) {
		t.Fatalf("a grant without a request gave control: %s", n)
	}
	// An agent cannot grant itself control.
	if err := agent.Control(ctx, protocol.ControlGrant); err != nil {
		t.Fatal(err)
	}

	// Granted: both are told, and the agent's press reaches the page.
	grantControl(ctx, t, customer, agent)
	waitNotice(ctx, t, customer, "customer", `"controller":"agent"`)
	if err := agent.Send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "a", Code: "KeyA", KeyCode: 65}); err != nil {
		t.Fatal(err)
	}
	waitTypedValue(ctx, t, h, "keydown:KeyA")
	if err := agent.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 640, Y: 360, Button: input.ButtonLeft, Buttons: 1, Clicks: 1}); err != nil {
		t.Fatal(err)
	}
	waitTypedValue(ctx, t, h, "mousedown:0")
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
		t.Fatalf("the agent's press never reached the page: %v", err)
	}

	// The customer takes control back: the key and the button the agent
	// held are released, and the agent's input from 200 ms after the
	// revoke on is refused (the bound; the agent is not told yet
	// when it sends).
	if err := customer.Control(ctx, protocol.ControlRevoke); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	before := len(agent.Notices())
	if err := agent.Send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "b", Code: "KeyB", KeyCode: 66}); err != nil {
		t.Fatal(err)
	}
	released := map[string]bool{}
	quiet := time.After(1500 * time.Millisecond)
	for !released["keyup:KeyA"] || !released["mouseup:0"] || quiet != nil {
		select {
		case v := <-h.typed:
			if strings.Contains(v, "KeyB") {
				t.Fatalf("the agent's key 200 ms after the revoke reached the page")
			}
			released[v] = true
		case <-quiet:
			quiet = nil
		case <-ctx.Done():
			t.Fatalf("after the revoke the page saw %v, want the key and the button released", released)
		}
	}
	waitNotice(ctx, t, agent, "agent", `"controller":"customer"`)
	if n := agent.Notices()[before:]; !strings.Contains(strings.Join(n, ""), RefusedNoControl) {
		// The notice may have been sent for the earlier refusal within
		// refusalEvery; the page not getting the key is what counts.
		t.Logf("no new refusal notice (rate limited): %q", n)
	}
}

// A company may let its agents control without asking, or never.
func TestControlModes(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, mode := range []string{ControlAuto, ControlNever} {
		customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_ctl_" + mode, StartURL: "/control", Control: mode})
		if _, err := agent.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
			t.Fatal(err)
		}
		if err := agent.Control(ctx, protocol.ControlRequest); err != nil {
			t.Fatal(err)
		}
		switch mode {
		case ControlAuto:
			waitNotice(ctx, t, agent, "agent", `"controller":"agent"`)
			if err := agent.Send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "a", Code: "KeyA", KeyCode: 65}); err != nil {
				t.Fatal(err)
			}
			waitTypedValue(ctx, t, h, "keydown:KeyA")
			for _, n := range customer.Notices() {
				if strings.Contains(n, `"state":"requested"`) {
					t.Errorf("auto mode asked the customer: %s", n)
				}
			}
		case ControlNever:
			refused(ctx, t, agent, "the agent", RefusedControlNever)
			if n := lastNotice(agent, "control"); strings.Contains(n, `"controller":"agent"`) {
				t.Fatalf("never mode gave control: %s", n)
			}
		}
	}
}
