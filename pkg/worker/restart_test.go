package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// peersOf returns the session's viewers' peers by viewer id.
func (h *harness) peersOf(t *testing.T, company, id string) map[string]*rtc.Peer {
	t.Helper()
	h.w.mu.Lock()
	s := h.w.sessions[company+"/"+id]
	h.w.mu.Unlock()
	if s == nil {
		t.Fatalf("no session %s/%s", company, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*rtc.Peer{}
	for vid, vw := range s.viewers {
		if vw.peer != nil {
			out[vid] = vw.peer
		}
	}
	return out
}

// TestICERestartKeepsPeer restarts ICE from a connected viewer, as a
// browser does after a network change: the worker answers on the viewer's
// existing peer (same peer, new ICE credentials), sends a key frame once it
// is connected again, and video and the input channel work on.
func TestICERestartKeepsPeer(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.lease(t, "acme", "s_restart"); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_restart", RoleCustomer)
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("no red picture before the restart: %v", err)
	}
	waitFor(ctx, t, "the first connection", func() bool { return customer.ConnectionState() == webrtc.PeerConnectionStateConnected })
	before := h.peersOf(t, "acme", "s_restart")
	if len(before) != 1 {
		t.Fatalf("%d peers before the restart, want 1", len(before))
	}
	ufrag := customer.RemoteICEUfrag()
	keyFrames := gather(t, h.w)[`tandem_key_frames_total{customer}`]

	if err := customer.RestartICE(ctx); err != nil {
		t.Fatalf("RestartICE = %v", err)
	}
	if got := customer.RemoteICEUfrag(); got == ufrag || got == "" {
		t.Errorf("the worker's ICE ufrag after the restart = %q, before %q: ICE did not restart", got, ufrag)
	}
	waitFor(ctx, t, "connected again", func() bool { return customer.ConnectionState() == webrtc.PeerConnectionStateConnected })
	after := h.peersOf(t, "acme", "s_restart")
	if len(after) != 1 {
		t.Fatalf("%d peers after the restart, want 1", len(after))
	}
	for id, p := range after {
		if before[id] != p {
			t.Errorf("viewer %s has a new peer after the restart; want the same one", id)
		}
	}
	waitFor(ctx, t, "a key frame after the restart", func() bool {
		return gather(t, h.w)[`tandem_key_frames_total{customer}`] > keyFrames
	})

	// The same "input" channel still reaches the tab, and the new
	// picture comes over the restarted transport.
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatalf("click after the restart: %v", err)
	}
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
		t.Fatalf("the page never turned blue after the restart: %v", err)
	}
}

// TestICERestartWithoutPeer checks that a restart offer for a viewer the
// worker holds no peer for is refused with ErrNoPeer (the viewer then
// starts a new connection), and creates no peer.
func TestICERestartWithoutPeer(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rep := h.lease(t, "acme", "s_nopeer"); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	h.w.mu.Lock()
	s := h.w.sessions["acme/s_nopeer"]
	h.w.mu.Unlock()
	v := signaling.Viewer{Company: "acme", Session: "s_nopeer", ID: "v_lost", Role: RoleCustomer, Name: "c"}
	if err := s.Join(ctx, v); err != nil {
		t.Fatal(err)
	}
	defer s.Leave(v)
	_, err := s.Offer(ctx, v, signaling.Offer{SDP: "v=0\r\n", Restart: true})
	if !errors.Is(err, ErrNoPeer) {
		t.Fatalf("restart offer without a peer = %v, want ErrNoPeer", err)
	}
	if n := len(h.peersOf(t, "acme", "s_nopeer")); n != 0 {
		t.Errorf("%d peers after a refused restart, want 0", n)
	}
}
