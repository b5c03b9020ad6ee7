package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// gate sends g to the harness's worker as a gateway does and checks the
// reply's error.
func (h *harness) gate(t *testing.T, g Gate, wantErr string) {
	t.Helper()
	b, _ := json.Marshal(g)
	h.gateRaw(t, b, wantErr)
}

func (h *harness) gateRaw(t *testing.T, body []byte, wantErr string) {
	t.Helper()
	m, err := h.nc.Request(GateSubject(h.w.ID()), body, 5*time.Second)
	if err != nil {
		t.Fatalf("gate request: %v", err)
	}
	var rep GateReply
	if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Error != wantErr {
		t.Fatalf("gate %s answered %s (%v), want error %q", body, m.Data, err, wantErr)
	}
}

// noPicture checks that v decodes no picture at all for d.
func noPicture(t *testing.T, v *botviewer.Viewer, who string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if p, err := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s decoded a picture (%dx%d, #%d) while its gate was shut (%v)", who, p.Width, p.Height, p.N, err)
	}
}

// stillRed checks for d that v keeps decoding pictures and none is blue:
// the page was not clicked.
func stillRed(t *testing.T, v *botviewer.Viewer, who string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	first, err := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	if err != nil {
		t.Fatalf("%s has no picture: %v", who, err)
	}
	last, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return !botviewer.IsRed(centre(p)) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s saw the page change (%v): held-back input was dispatched", who, err)
	}
	if last.N <= first.N {
		t.Fatalf("%s decoded no new picture in %v (#%d → #%d): the check saw nothing", who, d, first.N, last.N)
	}
}

// refused waits for a refusal notice with reason on v's input channel.
func refused(ctx context.Context, t *testing.T, v *botviewer.Viewer, who, reason string) {
	t.Helper()
	for {
		for _, n := range v.Notices() {
			if strings.Contains(n, `"type":"refused"`) && strings.Contains(n, `"reason":"`+reason+`"`) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s was never told %q; notices %q", who, reason, v.Notices())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestAgentSeesNothingBeforeConsent: an agent connected before the
// customer agreed decodes no picture while the customer does, gets not a
// single encoded frame, and its clicks and typing never reach the page.
// After the Gate, the agent's stream starts with a key frame of the page as
// it is, and its input works.
func TestAgentSeesNothingBeforeConsent(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.lease(t, "acme", "s_consent"); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_consent", RoleCustomer)
	agent := h.join(ctx, t, "acme", "s_consent", RoleAgent)
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("the customer never saw the red page: %v", err)
	}

	// The agent clicks the page (it would turn blue) and types into the
	// field the customer focused.
	if err := customer.Click(ctx, 50, 20); err != nil {
		t.Fatal(err)
	}
	if err := agent.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	if err := agent.Send(ctx, input.Event{Kind: input.KindText, Text: "agent"}); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, agent, "agent", RefusedNoConsent)
	noPicture(t, agent, "the agent", 3*time.Second)
	stillRed(t, customer, "the customer", 2500*time.Millisecond)
	// The customer's own typing is dispatched, and is the first the field gets.
	if err := customer.Send(ctx, input.Event{Kind: input.KindText, Text: "c"}); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-h.typed:
		if v != "c" {
			t.Fatalf("the field first had %q, want the customer's %q alone", v, "c")
		}
	case <-ctx.Done():
		t.Fatal("the customer's typing never reached the page")
	}
	m := gather(t, h.w)
	for name, want := range map[string]float64{
		`tandem_frames_encoded_total{agent}`: 0,
		`tandem_video_bytes_total{agent}`:    0,
		`tandem_key_frames_total{agent}`:     0,
	} {
		if m[name] != want {
			t.Errorf("before consent %s = %v, want %v", name, m[name], want)
		}
	}
	if m["tandem_input_refused_total"] < 2 || m[`tandem_frames_encoded_total{customer}`] < 2 {
		t.Errorf("before consent: refused %v, customer frames %v; want at least 2 of each",
			m["tandem_input_refused_total"], m[`tandem_frames_encoded_total{customer}`])
	}

	// Consent: the still page reaches the agent at once, from a key frame.
	h.gate(t, Gate{Company: "acme", SessionID: "s_consent", Consented: true}, "")
	first, err := agent.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	if err != nil {
		t.Fatalf("no picture for the agent after consent: %v", err)
	}
	if !botviewer.IsRed(centre(first)) || first.Width != 1280 {
		t.Errorf("the agent's first picture is not the red page: %dx%d", first.Width, first.Height)
	}
	if m := gather(t, h.w); m[`tandem_key_frames_total{agent}`] < 1 {
		t.Errorf("the agent's stream has no key frame")
	}
	// Repeating the Gate changes nothing; with control, the agent's input
	// now works.
	h.gate(t, Gate{Company: "acme", SessionID: "s_consent", Consented: true}, "")
	grantControl(ctx, t, customer, agent)
	if err := agent.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
			t.Fatalf("%s never saw the agent's click after consent: %v", name, err)
		}
	}
}

// TestMustAdmitHoldsEveryone: with MustAdmit, nobody gets a picture and
// nobody's input is dispatched until a Gate says Admitted, consent or not.
func TestMustAdmitHoldsEveryone(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_admit", MustAdmit: true}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_admit", RoleCustomer)
	agent := h.join(ctx, t, "acme", "s_admit", RoleAgent)
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, customer, "the customer", RefusedNotAdmitted)
	noPicture(t, customer, "the customer", 2*time.Second)

	// Consent alone opens nothing.
	h.gate(t, Gate{Company: "acme", SessionID: "s_admit", Consented: true}, "")
	if err := agent.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, agent, "the agent", RefusedNotAdmitted)
	noPicture(t, agent, "the agent", 1500*time.Millisecond)
	noPicture(t, customer, "the customer", 500*time.Millisecond)
	if m := gather(t, h.w); m[`tandem_video_bytes_total{customer}`] != 0 || m[`tandem_video_bytes_total{agent}`] != 0 {
		t.Errorf("video bytes before the admission: %v customer, %v agent; want none",
			m[`tandem_video_bytes_total{customer}`], m[`tandem_video_bytes_total{agent}`])
	}

	// Admitted (the earlier Consented stays): both see the page, still red.
	h.gate(t, Gate{Company: "acme", SessionID: "s_admit", Admitted: true}, "")
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		p, err := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
		if err != nil {
			t.Fatalf("%s has no picture after the admission: %v", name, err)
		}
		if !botviewer.IsRed(centre(p)) {
			t.Errorf("%s's first picture is not red: a held-back click was dispatched", name)
		}
	}
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
		t.Fatalf("the customer's click after the admission never showed: %v", err)
	}
}

func TestGateRefusals(t *testing.T) {
	h := newHarness(t, Config{})
	h.gate(t, Gate{Company: "acme", SessionID: "s_nobody", Consented: true}, "unknown_session")
	h.gateRaw(t, []byte(`{"company":"a b","session_id":"s_x"}`), "invalid_request")
	h.gateRaw(t, []byte(`not json`), "invalid_request")
}
