package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

func viewer(id string) signaling.Viewer {
	return signaling.Viewer{Company: "acme", Session: "s_1", ID: id, Role: "customer"}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"acme", true},
		{"s_01HZ-x", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a.b", false},
		{"*", false},
		{">", false},
		{"a b", false},
		{"ａ", false},
		{"tab\t", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := signaling.ValidToken(tt.in); got != tt.want {
				t.Fatalf("ValidToken(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestViewerValidate(t *testing.T) {
	ok := signaling.Viewer{Company: "acme", Session: "s1", ID: "v1", Role: "agent", Name: "山田 花子"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for _, tt := range []struct {
		name string
		edit func(*signaling.Viewer)
		want error
	}{
		{"company", func(v *signaling.Viewer) { v.Company = "a.b" }, signaling.ErrBadToken},
		{"session", func(v *signaling.Viewer) { v.Session = "" }, signaling.ErrBadToken},
		{"id", func(v *signaling.Viewer) { v.ID = "v*" }, signaling.ErrBadToken},
		{"role", func(v *signaling.Viewer) { v.Role = "" }, signaling.ErrBadToken},
		{"name control", func(v *signaling.Viewer) { v.Name = "a\r\nTandem-Role: agent" }, signaling.ErrBadName},
		{"name long", func(v *signaling.Viewer) { v.Name = strings.Repeat("x", 129) }, signaling.ErrBadName},
		{"name utf8", func(v *signaling.Viewer) { v.Name = "\xff" }, signaling.ErrBadName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := ok
			tt.edit(&v)
			if err := v.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate(%+v) = %v, want %v", v, err, tt.want)
			}
		})
	}
}

func TestNewHostBadTokens(t *testing.T) {
	_, worker := startNATS(t)
	for _, cs := range [][2]string{{"a.b", "s"}, {"acme", "*"}, {"", "s"}, {"acme", ">"}} {
		if _, err := signaling.NewHost(worker, cs[0], cs[1], &fakePeers{}, zap.NewNop()); !errors.Is(err, signaling.ErrBadToken) {
			t.Fatalf("NewHost(%q, %q) = %v, want ErrBadToken", cs[0], cs[1], err)
		}
	}
}

// TestRelayAndHost runs one viewer through a whole exchange with a fake
// worker.
func TestRelayAndHost(t *testing.T) {
	gw, worker := startNATS(t)
	var h *signaling.Host
	peers := &fakePeers{}
	// The worker trickles a candidate while it answers: it must reach the
	// viewer after the answer.
	peers.offer = func(_ context.Context, v signaling.Viewer, sdp string) (string, error) {
		mid := "0"
		if err := h.Send(v.ID, protocol.Signal{Type: protocol.TypeCandidate,
			Candidate: &protocol.Candidate{Candidate: "candidate:w1", SDPMid: &mid}}); err != nil {
			return "", err
		}
		return "answer-sdp", nil
	}
	h = newHost(t, worker, peers)

	r := signaling.NewRelay(gw, zap.NewNop())
	c := newFakeConn()
	v := viewer("v_1")
	v.Name = "山田 花子"
	done := bridge(context.Background(), r, c, v)

	c.send(`{"type":"offer","sdp":"offer-sdp"}`)
	if got := c.next(t); got.Type != protocol.TypeAnswer || got.SDP != "answer-sdp" {
		t.Fatalf("first message to the viewer = %+v, want the answer", got)
	}
	if got := c.next(t); got.Type != protocol.TypeCandidate || got.Candidate.Candidate != "candidate:w1" {
		t.Fatalf("second message to the viewer = %+v, want the worker's candidate", got)
	}
	c.send(`{"type":"candidate","candidate":{"candidate":"candidate:v1","sdpMid":"0","sdpMLineIndex":0}}`)
	if err := h.Send("v_1", protocol.Signal{Type: protocol.TypeState, State: "active",
		Viewers: &protocol.Viewers{Customers: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := c.next(t); got.Type != protocol.TypeState || got.Viewers.Customers != 1 {
		t.Fatalf("message to the viewer = %+v, want the state", got)
	}
	c.send(`{"type":"bye"}`)
	if err := result(t, done); err != nil {
		t.Fatalf("Bridge after bye = %v, want nil", err)
	}
	waitFor(t, 5*time.Second, "Leave", func() bool { return len(peers.of("leave")) == 1 })

	want := []string{
		"join acme s_1 v_1 customer 山田 花子",
		"offer v_1 offer-sdp",
		"candidate v_1 candidate:v1",
		"leave v_1",
	}
	peers.mu.Lock()
	got := append([]string(nil), peers.calls...)
	peers.mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Peers calls (-want +got):\n%s", diff)
	}
	waitFor(t, 5*time.Second, "Send to a viewer that left to fail with ErrUnknownViewer", func() bool {
		return errors.Is(h.Send("v_1", protocol.Signal{Type: protocol.TypeState}), signaling.ErrUnknownViewer)
	})
	if err := h.Send("v.1", protocol.Signal{Type: protocol.TypeState}); !errors.Is(err, signaling.ErrBadToken) {
		t.Fatalf("Send to a bad viewer id = %v, want ErrBadToken", err)
	}
}

func TestBadMessages(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{}
	newHost(t, worker, peers)
	c := newFakeConn()
	done := bridge(context.Background(), signaling.NewRelay(gw, zap.NewNop()), c, viewer("v_1"))

	bad := []string{
		`not json`,
		`{"type":"join"}`, // only the gateway joins
		`{"type":"answer","sdp":"x"}`,
		`{"type":"offer","sdp":"x","extra":1}`,
		`{"type":"offer"}`,
		`{"type":"candidate"}`,
		`{"type":"bye","reason":"x"}`,
		`{"type":"offer","sdp":"x"} {}`,
	}
	for i, m := range bad {
		c.send(m)
		if got := c.next(t); got.Type != protocol.TypeError || got.Error != "bad_message" {
			t.Fatalf("answer to %q = %+v, want a bad_message error", m, got)
		}
		if i == 3 { // a good message in between still goes through
			c.send(`{"type":"offer","sdp":"good"}`)
			if got := c.next(t); got.Type != protocol.TypeAnswer {
				t.Fatalf("answer to a good offer = %+v", got)
			}
		}
	}
	c.send(`{}`)
	if got := c.next(t); got.Error != "too_many_bad_messages" {
		t.Fatalf("last message = %+v, want too_many_bad_messages", got)
	}
	if err := result(t, done); !errors.Is(err, signaling.ErrTooManyBadMessages) {
		t.Fatalf("Bridge = %v, want ErrTooManyBadMessages", err)
	}
	waitFor(t, 5*time.Second, "Leave", func() bool { return len(peers.of("leave")) == 1 })
	if got := peers.of("offer"); len(got) != 1 || got[0] != "offer v_1 good" {
		t.Fatalf("offers reaching the worker = %q, want only the good one", got)
	}
}

func TestRateLimit(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{}
	newHost(t, worker, peers)
	c := newFakeConn()
	done := bridge(context.Background(), signaling.NewRelay(gw, zap.NewNop()), c, viewer("v_1"))
	for i := range 200 {
		c.send(fmt.Sprintf(`{"type":"candidate","candidate":{"candidate":"candidate:%d"}}`, i))
	}
	if err := result(t, done); !errors.Is(err, signaling.ErrTooManyBadMessages) {
		t.Fatalf("Bridge under a flood = %v, want ErrTooManyBadMessages", err)
	}
	sawLimit := false
	for len(c.out) > 0 {
		if s := c.next(t); s.Error == "rate_limited" {
			sawLimit = true
		}
	}
	if !sawLimit {
		t.Fatal("no rate_limited error reached the viewer")
	}
	waitFor(t, 5*time.Second, "Leave", func() bool { return len(peers.of("leave")) == 1 })
	if n := len(peers.of("candidate")); n > 70 {
		t.Fatalf("%d candidates reached the worker, want at most about the burst of 60", n)
	}
}

func TestNoWorker(t *testing.T) {
	gw, _ := startNATS(t)
	c := newFakeConn()
	err := signaling.NewRelay(gw, zap.NewNop()).Bridge(context.Background(), c, viewer("v_1"))
	if !errors.Is(err, signaling.ErrSessionUnavailable) {
		t.Fatalf("Bridge without a worker = %v, want ErrSessionUnavailable", err)
	}
	if got := c.next(t); got.Error != "session_unavailable" {
		t.Fatalf("viewer got %+v, want session_unavailable", got)
	}
}

func TestBridgeBadViewer(t *testing.T) {
	gw, _ := startNATS(t)
	v := viewer("v.1")
	if err := signaling.NewRelay(gw, zap.NewNop()).Bridge(context.Background(), newFakeConn(), v); !errors.Is(err, signaling.ErrBadToken) {
		t.Fatalf("Bridge(%+v) = %v, want ErrBadToken", v, err)
	}
}

func TestJoinRefused(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{joinErr: errors.New("no agents allowed yet")}
	h := newHost(t, worker, peers)
	c := newFakeConn()
	err := signaling.NewRelay(gw, zap.NewNop()).Bridge(context.Background(), c, viewer("v_1"))
	if !errors.Is(err, signaling.ErrJoinRefused) {
		t.Fatalf("Bridge = %v, want ErrJoinRefused", err)
	}
	if got := c.next(t); got.Error != "join_refused" || strings.Contains(got.Message, "agents") {
		t.Fatalf("viewer got %+v, want join_refused without internal detail", got)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := peers.of("leave"); len(got) != 0 {
		t.Fatalf("Leave called for a refused viewer: %q", got)
	}
}

func TestDuplicateJoin(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{}
	newHost(t, worker, peers)
	r := signaling.NewRelay(gw, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	first := newFakeConn()
	done := bridge(ctx, r, first, viewer("v_1"))
	waitFor(t, 5*time.Second, "first join", func() bool { return len(peers.of("join")) == 1 })
	second := newFakeConn()
	if err := r.Bridge(context.Background(), second, viewer("v_1")); !errors.Is(err, signaling.ErrJoinRefused) {
		t.Fatalf("second Bridge of the same viewer = %v, want ErrJoinRefused", err)
	}
	if got := second.next(t); got.Error != "already_joined" {
		t.Fatalf("second viewer got %+v, want already_joined", got)
	}
	cancel()
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Bridge after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "Leave after cancel", func() bool { return len(peers.of("leave")) == 1 })
}

func TestNegotiationFailed(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{offer: func(context.Context, signaling.Viewer, string) (string, error) {
		return "", errors.New("pion: bad sdp")
	}}
	newHost(t, worker, peers)
	c := newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	done := bridge(ctx, signaling.NewRelay(gw, zap.NewNop()), c, viewer("v_1"))
	c.send(`{"type":"offer","sdp":"x"}`)
	if got := c.next(t); got.Type != protocol.TypeError || got.Error != "negotiation_failed" || strings.Contains(got.Message, "pion") {
		t.Fatalf("viewer got %+v, want negotiation_failed without internal detail", got)
	}
	cancel()
	result(t, done)
}

// TestRestartOffer checks that an ICE-restart offer reaches Peers marked
// as one, that the worker's candidates gathered meanwhile follow its answer,
// and that a restart Peers refuses is answered "restart_failed", which
// tells the viewer to reconnect from scratch.
func TestRestartOffer(t *testing.T) {
	gw, worker := startNATS(t)
	var h *signaling.Host
	var refuse atomic.Bool
	peers := &fakePeers{}
	peers.offer = func(_ context.Context, v signaling.Viewer, sdp string) (string, error) {
		if refuse.Load() {
			return "", errors.New("worker: no peer to restart")
		}
		mid := "0"
		if err := h.Send(v.ID, protocol.Signal{Type: protocol.TypeCandidate,
			Candidate: &protocol.Candidate{Candidate: "candidate:" + sdp, SDPMid: &mid}}); err != nil {
			return "", err
		}
		return "answer:" + sdp, nil
	}
	h = newHost(t, worker, peers)
	c := newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := bridge(ctx, signaling.NewRelay(gw, zap.NewNop()), c, viewer("v_1"))

	for _, sdp := range []string{"first", "again"} {
		msg := `{"type":"offer","sdp":"` + sdp + `"}`
		if sdp == "again" {
			msg = `{"type":"offer","sdp":"again","restart":true}`
		}
		c.send(msg)
		if got := c.next(t); got.Type != protocol.TypeAnswer || got.SDP != "answer:"+sdp {
			t.Fatalf("after offer %q the viewer got %+v, want its answer", sdp, got)
		}
		if got := c.next(t); got.Type != protocol.TypeCandidate || got.Candidate.Candidate != "candidate:"+sdp {
			t.Fatalf("after the answer to %q the viewer got %+v, want the worker's candidate", sdp, got)
		}
	}
	refuse.Store(true)
	c.send(`{"type":"offer","sdp":"late","restart":true}`)
	if got := c.next(t); got.Type != protocol.TypeError || got.Error != "restart_failed" || strings.Contains(got.Message, "worker") {
		t.Fatalf("viewer got %+v, want restart_failed without internal detail", got)
	}
	if got, want := peers.of("restart"), []string{"restart v_1 again", "restart v_1 late"}; !cmp.Equal(got, want) {
		t.Errorf("restarts reaching the worker = %q, want %q", got, want)
	}
	if got := peers.of("offer"); len(got) != 1 {
		t.Errorf("plain offers reaching the worker = %q, want only the first", got)
	}
	cancel()
	result(t, done)
}

// TestViewersIndependent checks that one viewer's slow offer delays neither
// another viewer nor its own order (offer before candidates).
func TestViewersIndependent(t *testing.T) {
	gw, worker := startNATS(t)
	release := make(chan struct{})
	peers := &fakePeers{}
	peers.offer = func(ctx context.Context, v signaling.Viewer, sdp string) (string, error) {
		if v.ID == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return "answer-" + v.ID, nil
	}
	newHost(t, worker, peers)
	r := signaling.NewRelay(gw, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	slow, fast := newFakeConn(), newFakeConn()
	slowDone := bridge(ctx, r, slow, viewer("slow"))
	fastDone := bridge(ctx, r, fast, viewer("fast"))
	slow.send(`{"type":"offer","sdp":"s"}`)
	slow.send(`{"type":"candidate","candidate":{"candidate":"candidate:s1"}}`)
	waitFor(t, 5*time.Second, "slow offer started", func() bool { return len(peers.of("offer slow")) == 1 })
	fast.send(`{"type":"offer","sdp":"f"}`)
	if got := fast.next(t); got.SDP != "answer-fast" {
		t.Fatalf("fast viewer got %+v, want its answer while the slow one waits", got)
	}
	if got := peers.of("candidate slow"); len(got) != 0 {
		t.Fatalf("slow viewer's candidate applied before its offer finished: %q", got)
	}
	close(release)
	if got := slow.next(t); got.SDP != "answer-slow" {
		t.Fatalf("slow viewer got %+v, want its answer", got)
	}
	waitFor(t, 5*time.Second, "slow candidate", func() bool { return len(peers.of("candidate slow")) == 1 })
	cancel()
	result(t, slowDone)
	result(t, fastDone)
}

func TestEnd(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{}
	h := newHost(t, worker, peers)
	r := signaling.NewRelay(gw, zap.NewNop())
	a, b := newFakeConn(), newFakeConn()
	aDone := bridge(context.Background(), r, a, viewer("a"))
	bDone := bridge(context.Background(), r, b, signaling.Viewer{Company: "acme", Session: "s_1", ID: "b", Role: "agent"})
	waitFor(t, 5*time.Second, "both joined", func() bool { return len(peers.of("join")) == 2 })

	if err := h.End("agent_ended"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakeConn{a, b} {
		if got := c.next(t); got.Type != protocol.TypeEnded || got.Reason != "agent_ended" {
			t.Fatalf("viewer got %+v, want ended", got)
		}
	}
	for _, d := range []<-chan error{aDone, bDone} {
		if err := result(t, d); err != nil {
			t.Fatalf("Bridge after End = %v, want nil", err)
		}
	}
	waitFor(t, 5*time.Second, "both left", func() bool { return len(peers.of("leave")) == 2 })

	// A late viewer is told at once.
	late := newFakeConn()
	if err := r.Bridge(context.Background(), late, viewer("late")); err != nil {
		t.Fatalf("Bridge after End = %v, want nil", err)
	}
	if got := late.next(t); got.Type != protocol.TypeEnded || got.Reason != "agent_ended" {
		t.Fatalf("late viewer got %+v, want ended", got)
	}
	if got := peers.of("join"); len(got) != 2 {
		t.Fatalf("Join called after End: %q", got)
	}
}

func TestCloseAndDisconnect(t *testing.T) {
	gw, worker := startNATS(t)
	peers := &fakePeers{}
	h := newHost(t, worker, peers)
	r := signaling.NewRelay(gw, zap.NewNop())

	// A viewer that disconnects is left.
	gone := newFakeConn()
	goneDone := bridge(context.Background(), r, gone, viewer("gone"))
	waitFor(t, 5*time.Second, "join", func() bool { return len(peers.of("join")) == 1 })
	gone.disconnect()
	if err := result(t, goneDone); err == nil {
		t.Fatal("Bridge after the connection failed = nil, want its error")
	}
	waitFor(t, 5*time.Second, "Leave after disconnect", func() bool { return len(peers.of("leave gone")) == 1 })

	// Close leaves the viewers still joined.
	c := newFakeConn()
	ctx, cancel := context.WithCancel(context.Background())
	done := bridge(ctx, r, c, viewer("stays"))
	waitFor(t, 5*time.Second, "join", func() bool { return len(peers.of("join")) == 2 })
	if err := h.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := peers.of("leave stays"); len(got) != 1 {
		t.Fatalf("Leave calls after Close = %q, want one", got)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := h.Send("stays", protocol.Signal{Type: protocol.TypeState}); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := h.End("x"); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("End after Close = %v, want ErrClosed", err)
	}
	cancel()
	if err := result(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Bridge after cancel = %v, want context.Canceled", err)
	}
	if got := peers.of("leave stays"); len(got) != 1 {
		t.Fatalf("Leave calls = %q, want exactly one", got)
	}
}
