package signaling_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// rtcPeers is a small worker: a Peers built on pkg/rtc, one peer per viewer
// sending its role's track.
type rtcPeers struct {
	api   *rtc.API
	track *webrtc.TrackLocalStaticRTP
	host  atomic.Pointer[signaling.Host]

	keyFrames atomic.Int32
	mu        sync.Mutex
	peers     map[string]*rtc.Peer // guarded by mu
	inputs    []string             // guarded by mu
	states    []string             // guarded by mu
	left      int                  // guarded by mu
}

func (w *rtcPeers) Join(_ context.Context, v signaling.Viewer) error {
	p, err := w.api.NewPeer(rtc.PeerConfig{
		ViewerID: v.ID, Role: v.Role, Track: w.track,
		OnInput: func(b []byte) {
			w.mu.Lock()
			w.inputs = append(w.inputs, string(b))
			w.mu.Unlock()
		},
		OnKeyFrame: func() { w.keyFrames.Add(1) },
		OnCandidate: func(c protocol.Candidate) {
			if err := w.host.Load().Send(v.ID, protocol.Signal{Type: protocol.TypeCandidate, Candidate: &c}); err != nil &&
				!errors.Is(err, signaling.ErrUnknownViewer) && !errors.Is(err, signaling.ErrClosed) {
				panic(err)
			}
		},
		OnState: func(s webrtc.PeerConnectionState) {
			w.mu.Lock()
			w.states = append(w.states, s.String())
			w.mu.Unlock()
		},
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.peers[v.ID] = p
	w.mu.Unlock()
	return nil
}

func (w *rtcPeers) peer(id string) *rtc.Peer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peers[id]
}

func (w *rtcPeers) Offer(ctx context.Context, v signaling.Viewer, o signaling.Offer) (string, error) {
	return w.peer(v.ID).Answer(ctx, o.SDP)
}

func (w *rtcPeers) Candidate(v signaling.Viewer, c protocol.Candidate) error {
	return w.peer(v.ID).AddCandidate(c)
}

func (w *rtcPeers) Leave(v signaling.Viewer) {
	w.mu.Lock()
	p := w.peers[v.ID]
	delete(w.peers, v.ID)
	w.left++
	w.mu.Unlock()
	_ = p.Close()
}

func (w *rtcPeers) snapshot() (inputs, states []string, left int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.inputs...), append([]string(nil), w.states...), w.left
}

// browser is a pion PeerConnection acting like the viewer's page: a
// recvonly video transceiver and the "input" and "pointer" DataChannels,
// signaling through a fakeConn.
type browser struct {
	pc      *webrtc.PeerConnection
	input   *webrtc.DataChannel
	pointer *webrtc.DataChannel
	conn    *fakeConn

	mu      sync.Mutex
	ssrc    webrtc.SSRC                // guarded by mu
	packets int                        // guarded by mu
	got     []protocol.Signal          // guarded by mu; every signal received
	errs    []error                    // guarded by mu
	state   webrtc.PeerConnectionState // guarded by mu
}

func newBrowser(t *testing.T, conn *fakeConn) *browser {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc, conn: conn}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	unordered, zero := false, uint16(0)
	if b.input, err = pc.CreateDataChannel("input", nil); err != nil {
		t.Fatal(err)
	}
	if b.pointer, err = pc.CreateDataChannel("pointer",
		&webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero}); err != nil {
		t.Fatal(err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		j := c.ToJSON()
		conn.in <- protocol.Encode(protocol.Signal{Type: protocol.TypeCandidate, Candidate: &protocol.Candidate{
			Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex,
		}})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		b.mu.Lock()
		b.state = s
		b.mu.Unlock()
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		b.mu.Lock()
		b.ssrc = tr.SSRC()
		b.mu.Unlock()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			b.mu.Lock()
			b.packets++
			b.mu.Unlock()
		}
	})
	return b
}

// offer sends the browser's offer through the connection.
func (b *browser) offer(t *testing.T) {
	t.Helper()
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	b.conn.in <- protocol.Encode(protocol.Signal{Type: protocol.TypeOffer, SDP: o.SDP})
}

// receive applies what the worker sends until the connection's out channel
// is drained and stop is closed. Candidates before the answer are errors:
// a browser would refuse them.
func (b *browser) receive(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		var data []byte
		select {
		case data = <-b.conn.out:
		case <-stop:
			return
		}
		s, err := protocol.DecodeServerSignal(data)
		if err == nil {
			switch s.Type {
			case protocol.TypeAnswer:
				err = b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP})
			case protocol.TypeCandidate:
				err = b.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: s.Candidate.Candidate,
					SDPMid: s.Candidate.SDPMid, SDPMLineIndex: s.Candidate.SDPMLineIndex})
			}
		}
		b.mu.Lock()
		b.got = append(b.got, s)
		if err != nil {
			b.errs = append(b.errs, err)
		}
		b.mu.Unlock()
	}
}

func (b *browser) snapshot() (state webrtc.PeerConnectionState, packets int, ssrc webrtc.SSRC, got []protocol.Signal, errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.packets, b.ssrc, append([]protocol.Signal(nil), b.got...), append([]error(nil), b.errs...)
}

// TestWebRTCThroughSignaling negotiates a pion "browser" with a worker peer
// of pkg/rtc through Relay.Bridge, a real NATS server and Host, then checks
// media, input, key-frame requests, ending and cleanup.
func TestWebRTCThroughSignaling(t *testing.T) {
	base := len(leakcheck.Live())
	func() {
		gw, worker, stopNATS := launchNATS(t)
		defer stopNATS()

		api, err := rtc.NewAPI(rtc.Config{Loopback: true}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer api.Close()
		track, err := api.NewTrack("customer")
		if err != nil {
			t.Fatal(err)
		}
		w := &rtcPeers{api: api, track: track, peers: make(map[string]*rtc.Peer)}
		h, err := signaling.NewHost(worker, "acme", "s_1", w, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		w.host.Store(h)
		defer h.Close()

		conn := newFakeConn()
		br := newBrowser(t, conn)
		defer br.pc.Close()
		stopRecv, recvDone := make(chan struct{}), make(chan struct{})
		go br.receive(stopRecv, recvDone)
		defer func() { close(stopRecv); <-recvDone }()

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := bridge(ctx, signaling.NewRelay(gw, zap.NewNop()), conn, signaling.Viewer{
			Company: "acme", Session: "s_1", ID: "v_1", Role: "customer", Name: "Hanako"})
		br.offer(t)

		// Connected over loopback, through signaling.
		waitFor(t, 15*time.Second, "browser connected", func() bool {
			s, _, _, _, _ := br.snapshot()
			return s == webrtc.PeerConnectionStateConnected
		})
		// The worker asks for a key frame when the peer is connected.
		waitFor(t, 5*time.Second, "key frame request at connected", func() bool { return w.keyFrames.Load() == 1 })
		_, _, _, got, errs := br.snapshot()
		if len(errs) > 0 {
			t.Fatalf("browser could not apply the worker's signals: %v", errs)
		}
		if len(got) == 0 || got[0].Type != protocol.TypeAnswer {
			t.Fatalf("first signal to the browser = %+v, want the answer", got)
		}

		// RTP written to the role's track arrives.
		stopRTP, rtpDone := make(chan struct{}), make(chan struct{})
		go writeRTP(track, stopRTP, rtpDone)
		defer func() { close(stopRTP); <-rtpDone }()
		waitFor(t, 10*time.Second, "RTP at the browser", func() bool {
			_, n, _, _, _ := br.snapshot()
			return n >= 5
		})

		// A PLI from the browser asks for a key frame.
		_, _, ssrc, _, _ := br.snapshot()
		if err := br.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "key frame request after PLI", func() bool { return w.keyFrames.Load() == 2 })

		// Input on both DataChannels reaches OnInput.
		const click = `{"type":"mouse","action":"down","x":100,"y":200,"button":"left","buttons":1,"clicks":1,"mods":0}`
		const move = `{"type":"mouse","action":"move","x":101,"y":201,"buttons":0}`
		waitFor(t, 5*time.Second, "data channels open", func() bool {
			return br.input.ReadyState() == webrtc.DataChannelStateOpen && br.pointer.ReadyState() == webrtc.DataChannelStateOpen
		})
		if err := br.input.SendText(click); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "input at the worker", func() bool {
			in, _, _ := w.snapshot()
			return len(in) == 1 && in[0] == click
		})
		waitFor(t, 5*time.Second, "pointer at the worker", func() bool {
			_ = br.pointer.SendText(move) // lossy by design; one of a few arrives
			in, _, _ := w.snapshot()
			return len(in) > 1 && in[1] == move
		})
		if _, states, _ := w.snapshot(); len(states) == 0 || states[len(states)-1] != "connected" {
			t.Fatalf("worker peer states = %v, want ending in connected", states)
		}

		// End reaches the browser and ends the bridge; its bye leaves the peer.
		if err := h.End("agent_ended"); err != nil {
			t.Fatal(err)
		}
		if err := result(t, done); err != nil {
			t.Fatalf("Bridge after End = %v, want nil", err)
		}
		waitFor(t, 5*time.Second, "ended at the browser", func() bool {
			_, _, _, got, _ := br.snapshot()
			return len(got) > 0 && got[len(got)-1].Type == protocol.TypeEnded && got[len(got)-1].Reason == "agent_ended"
		})
		waitFor(t, 5*time.Second, "worker peer left", func() bool {
			_, _, left := w.snapshot()
			return left == 1
		})
	}()
	// Everything is closed: no goroutine of pion, NATS or ours is left.
	if err := leakcheck.Settle(base, 15*time.Second); err != nil {
		t.Fatal(err)
	}
}

// writeRTP writes a VP8 packet to track every 10 ms until stop is closed.
func writeRTP(track *webrtc.TrackLocalStaticRTP, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		seq++
		_ = track.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
			Payload: []byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02},
		})
	}
}
