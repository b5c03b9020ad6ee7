package rtc

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
)

// TestMain fails the package if a test left goroutines running.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newObservedLogger returns a logger that keeps every entry, for checks of
// what was logged.
func newObservedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// logsContain reports whether any entry's message or field mentions s.
func logsContain(logs *observer.ObservedLogs, s string) bool {
	for _, e := range logs.All() {
		if strings.Contains(e.Message, s) || strings.Contains(fmt.Sprint(e.ContextMap()), s) {
			return true
		}
	}
	return false
}

// testViewer is a pion PeerConnection acting like the viewer's browser: a
// recvonly video transceiver and the "input" and "pointer" DataChannels.
type testViewer struct {
	pc      *webrtc.PeerConnection
	input   *webrtc.DataChannel
	pointer *webrtc.DataChannel

	mu        sync.Mutex
	remoteSet bool                       // guarded by mu
	pending   []webrtc.ICECandidateInit  // guarded by mu
	candErr   error                      // guarded by mu
	ssrc      webrtc.SSRC                // guarded by mu
	packets   int                        // guarded by mu
	messages  []string                   // guarded by mu; received on "input"
	state     webrtc.PeerConnectionState // guarded by mu
}

// viewerOptions change a testViewer's network: the zero value is UDP4 on
// loopback, no ICE servers.
type viewerOptions struct {
	networks   []webrtc.NetworkType // nil: UDP4
	iceServers []webrtc.ICEServer
	relayOnly  bool // ICETransportPolicyRelay
}

// newTestViewer builds the viewer; onCandidate receives its candidates.
func newTestViewer(t *testing.T, onCandidate func(webrtc.ICECandidateInit)) *testViewer {
	t.Helper()
	return newTestViewerWith(t, viewerOptions{}, onCandidate)
}

// newTestViewerWith is newTestViewer on the network of opts.
func newTestViewerWith(t *testing.T, opts viewerOptions, onCandidate func(webrtc.ICECandidateInit)) *testViewer {
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
	networks := opts.networks
	if networks == nil {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	se.SetNetworkTypes(networks)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pcCfg := webrtc.Configuration{ICEServers: opts.iceServers}
	if opts.relayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		t.Fatal(err)
	}
	v := &testViewer{pc: pc}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	ordered := false
	var zero uint16
	if v.input, err = pc.CreateDataChannel("input", nil); err != nil {
		t.Fatal(err)
	}
	if v.pointer, err = pc.CreateDataChannel("pointer",
		&webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &zero}); err != nil {
		t.Fatal(err)
	}
	v.input.OnMessage(func(m webrtc.DataChannelMessage) {
		v.mu.Lock()
		v.messages = append(v.messages, string(m.Data))
		v.mu.Unlock()
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil && onCandidate != nil {
			onCandidate(c.ToJSON())
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		v.mu.Lock()
		v.state = s
		v.mu.Unlock()
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		v.ssrc = tr.SSRC()
		v.mu.Unlock()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			v.mu.Lock()
			v.packets++
			v.mu.Unlock()
		}
	})
	return v
}

// offer creates and applies the viewer's offer.
func (v *testViewer) offer(t *testing.T) string {
	t.Helper()
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// setAnswer applies the worker's answer and then any candidates that came
// before it.
func (v *testViewer) setAnswer(t *testing.T, sdp string) {
	t.Helper()
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.remoteSet = true
	pending := v.pending
	v.pending = nil
	v.mu.Unlock()
	for _, c := range pending {
		v.addCandidate(c)
	}
}

// addCandidate applies a worker candidate, or keeps it until the answer.
func (v *testViewer) addCandidate(c webrtc.ICECandidateInit) {
	v.mu.Lock()
	if !v.remoteSet {
		v.pending = append(v.pending, c)
		v.mu.Unlock()
		return
	}
	v.mu.Unlock()
	if err := v.pc.AddICECandidate(c); err != nil {
		v.mu.Lock()
		v.candErr = err
		v.mu.Unlock()
	}
}

func (v *testViewer) snapshot() (state webrtc.PeerConnectionState, packets int, ssrc webrtc.SSRC, msgs []string, candErr error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state, v.packets, v.ssrc, append([]string(nil), v.messages...), v.candErr
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
			Header: rtp.Header{
				Version: 2, PayloadType: vp8PayloadType, SequenceNumber: seq,
				Timestamp: uint32(seq) * 3000, SSRC: 1, Marker: true,
			},
			// VP8 payload descriptor (S=1) and the start of a key frame header.
			Payload: []byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02},
		})
	}
}

// newPeer starts an API with cfg and a peer of viewer "v" sending a track
// of role (pc's ViewerID and Track are set here); both close when the test
// ends.
func newPeer(t *testing.T, cfg Config, role string, pc PeerConfig) *Peer {
	t.Helper()
	a, err := NewAPI(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	track, err := a.NewTrack(role)
	if err != nil {
		t.Fatal(err)
	}
	pc.ViewerID, pc.Track = "v", track
	p, err := a.NewPeer(pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
