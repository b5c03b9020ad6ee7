package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
)

// One encode for both roles, with real Chromium, the real mask and real
// pion viewers (docs/encoder.md): on a page with nothing to mask the
// agents' stream is the customers' encoding; a password field that
// appears is painted over in every picture the agent decodes, and the
// stream stops following; once the field is gone the agents follow again,
// from a new key frame.
func TestAgentsFollowTheCustomersStream(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const id = "s_follow"
	var watching atomic.Bool
	var leaked, seen atomic.Int32
	customer, agent := h.consentedWith(ctx, t, LeaseRequest{SessionID: id, StartURL: "/"}, botviewer.Options{SeeScreen: true, OnPicture: func(p botviewer.Picture) {
		if !watching.Load() {
			return
		}
		seen.Add(1)
		for y := 104; y < 160; y += 8 {
			for x := 104; x < 400; x += 8 {
				if magenta(at(p, x, y)) {
					leaked.Add(1)
					return
				}
			}
		}
	}})
	s := h.sessionOf(t, "acme", id)
	stats := func() (followed, runs, breaks uint64) {
		st := s.enc[RoleAgent].Stats()
		return st.Followed, st.FollowRuns, st.FollowBreaks
	}
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
			t.Fatalf("no red page: %v", err)
		}
	}
	waitFor(ctx, t, "the agents to follow the customers' stream", func() bool { f, _, _ := stats(); return f > 0 })
	if _, _, breaks := stats(); breaks != 0 {
		t.Fatalf("%d runs ended on a page with nothing to mask", breaks)
	}

	watching.Store(true)
	evalPage(ctx, t, s, `document.body.insertAdjacentHTML('beforeend', '<input id="pw" type="password" aria-label="pw" `+
		`style="position:absolute;left:100px;top:100px;width:300px;height:60px;border:0;background:#f0f">'), 'ok'`)
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return magenta(at(p, 250, 130)) }); err != nil {
		t.Fatalf("the customer never saw the password field: %v", err)
	}
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return grey(at(p, 250, 130)) }); err != nil {
		t.Fatalf("the agent never saw the field painted over: %v", err)
	}
	if _, _, breaks := stats(); breaks == 0 {
		t.Fatal("the agents still follow the customers' stream with a masked field on the page")
	}

	_, runs, _ := stats()
	evalPage(ctx, t, s, `document.getElementById('pw').remove(), document.body.classList.add('clicked'), 'ok'`)
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(at(p, 250, 130)) }); err != nil {
		t.Fatalf("the agent never saw the field go: %v", err)
	}
	followed, _, _ := stats()
	waitFor(ctx, t, "the agents to follow again", func() bool { f, r, _ := stats(); return r > runs && f > followed })
	// What the agent decodes while following is still the page.
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
		t.Fatalf("the agent's picture: %v", err)
	}
	if n := leaked.Load(); n > 0 {
		t.Fatalf("%d of the agent's %d pictures showed the password field", n, seen.Load())
	}
	if seen.Load() == 0 {
		t.Fatal("the agent decoded no picture while the field was there")
	}
}
