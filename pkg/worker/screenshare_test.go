package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The customer's "screen" in these tests is a green picture that a Go
// viewer encodes with libvpx and sends on its screen m-line, as a
// customer's browser sends what getDisplayMedia captured (ui/ tests drive
// a real page's capture). The tab the worker hosts is red: a green picture
// can only be the screen.

// isGreen says whether a YUV pixel is saturated green (U and V both low).
func isGreen(_, u, v byte) bool { return u < 100 && v < 100 }

func greenScreen(p botviewer.Picture) bool { return isGreen(centre(p)) }

// shareScreen sends a green 320×240 screen from customer 10 times a second
// until ctx ends, with a key frame first and whenever the worker asks.
// It returns a wait for its goroutine.
func shareScreen(ctx context.Context, t *testing.T, customer *botviewer.Viewer) (wait func()) {
	t.Helper()
	enc, err := media.NewVP8Encoder(media.EncoderConfig{Width: 320, Height: 240, BitrateKbps: 300})
	if err != nil {
		t.Fatal(err)
	}
	img := &media.Image{Width: 320, Height: 240, StrideY: 320, StrideUV: 160,
		Y: make([]byte, 320*240), U: make([]byte, 160*120), V: make([]byte, 160*120)}
	for i := range img.Y {
		img.Y[i] = 145
	}
	for i := range img.U {
		img.U[i], img.V[i] = 54, 34
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer enc.Close() //nolint:errcheck
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		key := true
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-customer.ScreenKeyFrameWanted():
				key = true
				continue
			case <-tick.C:
			}
			frame, _, err := enc.Encode(img, time.Duration(i)*100*time.Millisecond, key)
			if err != nil {
				t.Errorf("encode the screen: %v", err)
				return
			}
			key = false
			_ = customer.SendScreen(frame, 100*time.Millisecond) // before the connection is up: dropped
		}
	}()
	return wg.Wait
}

// waitScreenState waits for a screenshare notice with state, from the from-th
// notice on, and returns the index after it.
func waitScreenState(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string, from int, state string) int {
	t.Helper()
	_, i, err := v.WaitNotice(ctx, from, func(n string) bool {
		return strings.Contains(n, `"type":"screenshare"`) && strings.Contains(n, `"state":"`+state+`"`)
	})
	if err != nil {
		t.Fatalf("%s was never told the screen share is %s: %v; notices %q", who, state, err, v.Notices()[from:])
	}
	return i + 1
}

// screenEvent waits for the worker's screenshare event with reason.
func (h *harness) screenEvent(ctx context.Context, t *testing.T, session, reason string) Event {
	t.Helper()
	for {
		select {
		case ev := <-h.events:
			if ev.Type == EventScreenshare && ev.SessionID == session && ev.Reason == reason {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s event %q for %s", EventScreenshare, reason, session)
		}
	}
}

// noNewScreen checks for d that v decodes no screen picture after the
// n-th; one already on its way when the share stopped may still come.
func noNewScreen(t *testing.T, v *botviewer.Viewer, who string, n int, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if p, err := v.WaitScreen(ctx, func(p botviewer.Picture) bool { return p.N > n+1 }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s still decodes the screen after it stopped: picture #%d after #%d (%v)", who, p.N, n, err)
	}
}

// noScreen checks that v never got a screen track nor picture.
func noScreen(t *testing.T, v *botviewer.Viewer, who string) {
	t.Helper()
	if p, screens, _ := v.LastScreen(); p.Image != nil || screens != 0 {
		t.Fatalf("%s got the customer's screen: %d tracks, picture %v", who, screens, p.Image != nil)
	}
}

// TestScreenshare: the agent sees the customer's screen only after the
// customer's consent to the session and its allowing the share; no
// customer ever gets it; an agent that joins later sees the ongoing share;
// the agent's stop, the customer's stop and the customer's leaving each
// end it at once, whatever the customer's browser keeps sending.
func TestScreenshare(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const id = "s_screen"
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: id}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", id, RoleCustomer)
	agent := h.join(ctx, t, "acme", id, RoleAgent)
	// A hostile customer's page that offers to receive a screen, as agents do.
	other := h.joinWith(ctx, t, "acme", id, RoleCustomer, botviewer.Options{SeeScreen: true})
	sctx, stopSharing := context.WithCancel(ctx)
	defer stopSharing()
	wait := shareScreen(sctx, t, customer)
	defer wait()

	// Before the customer's consent the agent may not ask, and a share
	// the customer's page starts unasked is not relayed.
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the customer never saw the tab: %v", err)
	}
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, agent, "the agent before consent", RefusedNoConsent)
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStart}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the customer's screen reaching the worker", func() bool {
		m := gather(t, h.w)
		return m["tandem_screenshare_packets_total{dropped}"]+m["tandem_screenshare_packets_total{relayed}"] > 20
	})
	noScreen(t, agent, "the agent before consent")

	// Consent; the agent asks; the customers are asked.
	h.gate(t, Gate{Company: "acme", SessionID: id, Consented: true}, "")
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the agent never saw the tab: %v", err)
	}
	noScreen(t, agent, "the agent before the customer allowed")
	cn := waitScreenState(ctx, t, customer, "the customer", 0, screenIdle)
	an := waitScreenState(ctx, t, agent, "the agent", 0, screenIdle)
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenRequested)
	waitScreenState(ctx, t, other, "the other customer", 0, screenRequested)
	an = waitScreenState(ctx, t, agent, "the agent", an, screenRequested)
	noScreen(t, agent, "the agent before the customer allowed")

	// The customer allows: the agent decodes the green screen; the tab
	// stays the tab for everyone.
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStart}); err != nil {
		t.Fatal(err)
	}
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenSharing)
	an = waitScreenState(ctx, t, agent, "the agent", an, screenSharing)
	if ev := h.screenEvent(ctx, t, id, ScreenshareStarted); ev.ViewerID == "" || ev.Role != RoleAgent {
		t.Errorf("started event = %+v, want the agent that asked", ev)
	}
	first, err := agent.WaitScreen(ctx, greenScreen)
	if err != nil {
		t.Fatalf("the agent never decoded the customer's screen: %v", err)
	}
	if first.Width != 320 || first.Height != 240 {
		t.Errorf("the agent's screen is %dx%d, want the customer's 320x240", first.Width, first.Height)
	}
	if _, err := agent.WaitScreen(ctx, func(p botviewer.Picture) bool { return p.N >= first.N+10 && greenScreen(p) }); err != nil {
		t.Fatalf("the agent's screen did not go on: %v", err)
	}
	if p, err := agent.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil || !botviewer.IsRed(centre(p)) {
		t.Errorf("the agent's tab is no longer the tab (%v)", err)
	}
	noScreen(t, other, "another customer")
	noScreen(t, customer, "the sharing customer")
	if _, _, tabs := customer.LastScreen(); tabs != 1 {
		t.Errorf("the sharing customer got %d video tracks, want the tab's only", tabs)
	}

	// An agent that joins later is told and sees it (its key frame was
	// asked of the customer's browser).
	late := h.join(ctx, t, "acme", id, RoleAgent)
	waitScreenState(ctx, t, late, "the late agent", 0, screenSharing)
	if _, err := late.WaitScreen(ctx, greenScreen); err != nil {
		t.Fatalf("the late agent never decoded the screen: %v", err)
	}

	// The agent stops: the relay stops at once although the customer's
	// browser goes on sending, and everyone is told.
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStop}); err != nil {
		t.Fatal(err)
	}
	an = waitScreenState(ctx, t, agent, "the agent", an, screenIdle)
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenIdle)
	h.screenEvent(ctx, t, id, ScreenshareStoppedAgent)
	p, _, _ := late.LastScreen()
	noNewScreen(t, late, "the late agent", p.N, 1500*time.Millisecond)

	// Asked again, the customer refuses: nothing is shared.
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenRequested)
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRefuse}); err != nil {
		t.Fatal(err)
	}
	an = waitScreenState(ctx, t, agent, "the agent", an, screenRefused)
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenIdle)
	p, _, _ = late.LastScreen()
	noNewScreen(t, late, "the late agent after a refusal", p.N, 500*time.Millisecond)

	// Allowed again, the customer stops it.
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	cn = waitScreenState(ctx, t, customer, "the customer", cn, screenRequested)
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStart}); err != nil {
		t.Fatal(err)
	}
	an = waitScreenState(ctx, t, agent, "the agent", an, screenSharing)
	p, _, _ = agent.LastScreen()
	if _, err := agent.WaitScreen(ctx, func(q botviewer.Picture) bool { return q.N > p.N+3 && greenScreen(q) }); err != nil {
		t.Fatalf("the agent does not see the second share: %v", err)
	}
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStop}); err != nil {
		t.Fatal(err)
	}
	an = waitScreenState(ctx, t, agent, "the agent", an, screenIdle)
	h.screenEvent(ctx, t, id, ScreenshareStoppedCust)
	p, _, _ = agent.LastScreen()
	noNewScreen(t, agent, "the agent after the customer stopped", p.N, 1500*time.Millisecond)

	// Shared once more, the customer leaves: the share ends.
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	waitScreenState(ctx, t, customer, "the customer", cn, screenRequested)
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStart}); err != nil {
		t.Fatal(err)
	}
	an = waitScreenState(ctx, t, agent, "the agent", an, screenSharing)
	stopSharing()
	wait()
	_ = customer.Close()
	waitScreenState(ctx, t, agent, "the agent", an, screenIdle)
	h.screenEvent(ctx, t, id, ScreenshareCustomerLeft)
	noScreen(t, other, "another customer")
}

// A company may keep its agents from asking; a customer whose page cannot
// share (an older page) is not asked.
func TestScreenshareRefusals(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_screen_never", Screenshare: ScreenshareNever})
	waitScreenState(ctx, t, agent, "the agent", 0, screenNever)
	n := len(customer.Notices())
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	waitScreenState(ctx, t, agent, "the agent", 1, screenNever)
	if err := customer.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareStart}); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for _, m := range customer.Notices()[n:] {
		if strings.Contains(m, `"state":"requested"`) || strings.Contains(m, `"state":"sharing"`) {
			t.Errorf("the customer was asked although the company forbids it: %s", m)
		}
	}

	// An older customer's page: no screen m-line.
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_screen_old"}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	old := h.joinWith(ctx, t, "acme", "s_screen_old", RoleCustomer, botviewer.Options{})
	agent = h.join(ctx, t, "acme", "s_screen_old", RoleAgent)
	h.gate(t, Gate{Company: "acme", SessionID: "s_screen_old", Consented: true}, "")
	if _, err := old.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
		t.Fatalf("an older customer's page no longer works: %v", err)
	}
	an := waitScreenState(ctx, t, agent, "the agent", 0, screenIdle)
	if err := agent.SendMessage(ctx, protocol.Screenshare{Type: protocol.TypeScreenshare, Action: protocol.ScreenshareRequest}); err != nil {
		t.Fatal(err)
	}
	if m, _, err := agent.WaitNotice(ctx, an, func(m string) bool { return strings.Contains(m, `"state":"refused"`) }); err != nil || !strings.Contains(m, `"reason":"unsupported"`) {
		t.Fatalf("the agent's request to an older page = %q (%v), want refused as unsupported", m, err)
	}
}
