package rtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"port and ips", Config{UDPPort: 50000, PublicIPs: []string{"203.0.113.7", "2001:db8::1"}}, true},
		{"negative port", Config{UDPPort: -1}, false},
		{"port too big", Config{UDPPort: 65536}, false},
		{"bad ip", Config{PublicIPs: []string{"example.com"}}, false},
		{"ipv6 with loopback", Config{Loopback: true, PublicIPs: []string{"2001:db8::1"}}, false},
		{"negative timeout", Config{ICEDisconnectedTimeout: -time.Second}, false},
		{"tcp port", Config{ICETCPPort: 3478}, true},
		{"tcp port too big", Config{ICETCPPort: 70000}, false},
		{"stun and turn", Config{STUN: []string{"stun:stun.example.com:3478"}, TURN: []string{"turn:turn.example.com?transport=tcp", "turns:turn.example.com:5349"},
			TURNSecret: "s3cret", TURNTTL: time.Hour}, true},
		{"stun url of another scheme", Config{STUN: []string{"http://stun.example.com"}}, false},
		{"turn url as stun", Config{STUN: []string{"turn:turn.example.com"}}, false},
		{"turn without secret", Config{TURN: []string{"turn:turn.example.com"}}, false},
		{"secret without turn", Config{TURNSecret: "s3cret"}, false},
		{"turn ttl under a minute", Config{TURN: []string{"turn:t.example"}, TURNSecret: "s", TURNTTL: time.Second}, false},
		{"turn ttl over a week", Config{TURN: []string{"turn:t.example"}, TURNSecret: "s", TURNTTL: 200 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", tt.cfg, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidConfig", tt.cfg, err)
			}
		})
	}
}

func TestNewTrack(t *testing.T) {
	a, err := NewAPI(Config{Loopback: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tr, err := a.NewTrack("agent")
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID() != "video" || tr.StreamID() != "tandem-agent" || tr.Codec().MimeType != webrtc.MimeTypeVP8 {
		t.Fatalf("NewTrack(agent) = id %q stream %q codec %q, want video, tandem-agent, VP8",
			tr.ID(), tr.StreamID(), tr.Codec().MimeType)
	}
}

func TestRemoteAllowed(t *testing.T) {
	lan := peerPolicy{private: true}
	all := peerPolicy{private: true, loopback: true}
	tests := []struct {
		ip   string
		p    peerPolicy
		want bool
	}{
		{"198.51.99.10", peerPolicy{}, true}, // public
		{"2a00:1450::5", peerPolicy{}, true},
		{"10.1.2.3", lan, true},
		{"10.1.2.3", peerPolicy{}, false},
		{"192.168.1.20", lan, true},
		{"172.16.5.5", lan, true},
		{"100.64.1.1", lan, true},
		{"fd12::1", lan, true},
		{"fd12::1", peerPolicy{}, false},
		{"::ffff:10.0.0.1", lan, true},
		{"127.0.0.1", lan, false},
		{"127.0.0.1", all, true},
		{"::1", lan, false},
		{"::ffff:127.0.0.1", lan, false},
		{"64:ff9b::7f00:1", lan, false},
		{"64:ff9b::a9fe:a9fe", all, false},
		{"169.254.169.254", all, false},
		{"169.254.1.1", all, false},
		{"fe80::1", all, false},
		{"fd00:ec2::254", all, false},
		{"100.100.100.200", all, false},
		{"0.0.0.0", all, false},
		{"0.1.2.3", all, false},
		{"::", all, false},
		{"224.0.0.251", all, false},
		{"239.255.255.250", all, false},
		{"ff02::fb", all, false},
		{"240.0.0.1", all, false},
		{"255.255.255.255", all, false},
		{"192.0.2.10", all, false},  // documentation
		{"198.18.0.1", all, false},  // benchmarking
		{"2001:db8::5", all, false}, // documentation
		{"2002:a9fe:a9fe::1", all, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%+v", tt.ip, tt.p), func(t *testing.T) {
			if got := remoteAllowed(net.ParseIP(tt.ip), tt.p); got != tt.want {
				t.Fatalf("remoteAllowed(%s, %+v) = %v, want %v", tt.ip, tt.p, got, tt.want)
			}
		})
	}
	if remoteAllowed(net.IP{1, 2, 3}, all) {
		t.Fatal("remoteAllowed(3-byte ip) = true, want false")
	}
}

func TestCandidateAllowed(t *testing.T) {
	p := peerPolicy{private: true}
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"candidate:1 1 udp 2130706431 198.51.99.7 40000 typ host", true},
		{"a=candidate:1 1 udp 2130706431 10.0.0.7 40000 typ host", true},
		{"candidate:1 1 tcp 1518280447 198.51.99.7 9 typ host tcptype active", true},
		{"candidate:2 1 udp 1686052607 198.51.99.7 40001 typ srflx raddr 10.0.0.7 rport 40000", true},
		{"candidate:1 1 udp 2130706431 169.254.169.254 80 typ host", false},
		{"candidate:1 1 udp 2130706431 0.0.0.0 40000 typ host", false},
		{"candidate:1 1 udp 2130706431 224.0.0.1 40000 typ host", false},
		{"candidate:1 1 udp 2130706431 240.0.0.1 40000 typ host", false},
		{"candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host", false},
		{"candidate:1 1 udp 2130706431 3f0c2a3e-1b9e-4b7c-9c7e-2f0c2a3e1b9e.local 40000 typ host", false},
		{"candidate:1 1 udp 2130706431 metadata.google.internal 80 typ host", false},
		{"candidate:garbage", false},
	}
	for _, tt := range tests {
		if got := candidateAllowed(tt.in, p); got != tt.want {
			t.Errorf("candidateAllowed(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFilterSDP(t *testing.T) {
	const in = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.99.7 40000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 169.254.169.254 40000 typ host\r\n" +
		"a=candidate:3 1 udp 2130706431 abc.local 40000 typ host\r\n" +
		"a=end-of-candidates\r\n"
	got, dropped := filterSDP(in, peerPolicy{})
	want := "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.99.7 40000 typ host\r\n" +
		"a=end-of-candidates\r\n"
	if got != want || dropped != 2 {
		t.Fatalf("filterSDP = %q, %d; want %q, 2", got, dropped, want)
	}
}

// workerPeer is a Peer with its callbacks recorded.
type workerPeer struct {
	*Peer
	keyFrames atomic.Int32
	lost      atomic.Int32 // the highest loss reported, in 1/256 (the viewer also sends its own reports, without loss)
	mu        sync.Mutex
	inputs    []string                     // guarded by mu
	cands     []string                     // guarded by mu
	states    []webrtc.PeerConnectionState // guarded by mu
}

func (w *workerPeer) recorded() (inputs, cands []string, states []webrtc.PeerConnectionState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.inputs...), append([]string(nil), w.cands...),
		append([]webrtc.PeerConnectionState(nil), w.states...)
}

// connect negotiates a test viewer with a new peer of a directly, without
// signaling, and waits until both are connected.
func connect(t *testing.T, a *API, track webrtc.TrackLocal) (*workerPeer, *testViewer) {
	t.Helper()
	return connectWith(t, a, track, viewerOptions{}, 15*time.Second)
}

// connectWith is connect with a viewer on the network of opts, waiting
// up to d for the connection.
func connectWith(t *testing.T, a *API, track webrtc.TrackLocal, opts viewerOptions, d time.Duration) (*workerPeer, *testViewer) {
	t.Helper()
	w, v := negotiate(t, a, track, opts)
	waitFor(t, d, "both peers connected", func() bool {
		s, _, _, _, _ := v.snapshot()
		_, _, states := w.recorded()
		return s == webrtc.PeerConnectionStateConnected && len(states) > 0 &&
			states[len(states)-1] == webrtc.PeerConnectionStateConnected
	})
	return w, v
}

// negotiate is connect without waiting for the connection.
func negotiate(t *testing.T, a *API, track webrtc.TrackLocal, opts viewerOptions) (*workerPeer, *testViewer) {
	t.Helper()
	w := &workerPeer{}
	var v *testViewer
	var peerReady atomic.Bool
	var early []webrtc.ICECandidateInit
	var earlyMu sync.Mutex
	v = newTestViewerWith(t, opts, func(c webrtc.ICECandidateInit) {
		earlyMu.Lock()
		if !peerReady.Load() {
			early = append(early, c)
			earlyMu.Unlock()
			return
		}
		earlyMu.Unlock()
		if err := w.AddCandidate(protocol.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}); err != nil {
			t.Errorf("AddCandidate: %v", err)
		}
	})
	p, err := a.NewPeer(PeerConfig{
		ViewerID: "v1", Role: "customer", Track: track,
		OnInput: func(b []byte) {
			w.mu.Lock()
			w.inputs = append(w.inputs, string(b))
			w.mu.Unlock()
		},
		OnKeyFrame: func() { w.keyFrames.Add(1) },
		OnLoss: func(f float64) {
			for v := int32(f * 256); ; {
				old := w.lost.Load()
				if v <= old || w.lost.CompareAndSwap(old, v) {
					return
				}
			}
		},
		OnCandidate: func(c protocol.Candidate) {
			w.mu.Lock()
			w.cands = append(w.cands, c.Candidate)
			w.mu.Unlock()
			v.addCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex})
		},
		OnState: func(s webrtc.PeerConnectionState) {
			w.mu.Lock()
			w.states = append(w.states, s)
			w.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Peer = p
	t.Cleanup(func() { _ = p.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answer, err := p.Answer(ctx, v.offer(t))
	if err != nil {
		t.Fatal(err)
	}
	earlyMu.Lock()
	peerReady.Store(true)
	pending := early
	early = nil
	earlyMu.Unlock()
	for _, c := range pending {
		if err := p.AddCandidate(protocol.Candidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}); err != nil {
			t.Fatalf("AddCandidate: %v", err)
		}
	}
	if !strings.Contains(answer, "a=sendonly") || !strings.Contains(answer, "VP8/90000") {
		t.Fatalf("answer lacks a sendonly VP8 video section:\n%s", answer)
	}
	if strings.Contains(answer, "H264") || strings.Contains(answer, "opus") {
		t.Fatalf("answer carries codecs other than VP8:\n%s", answer)
	}
	v.setAnswer(t, answer)
	return w, v
}

func TestPeer(t *testing.T) {
	log, logs := newObservedLogger()
	a, err := NewAPI(Config{Loopback: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	track, err := a.NewTrack("customer")
	if err != nil {
		t.Fatal(err)
	}
	w, v := connect(t, a, track)

	// A key frame is asked for once the connection is up, before any PLI.
	waitFor(t, 5*time.Second, "key frame request at connected", func() bool { return w.keyFrames.Load() == 1 })

	stop, done := make(chan struct{}), make(chan struct{})
	go writeRTP(track, stop, done)
	defer func() { close(stop); <-done }()
	waitFor(t, 10*time.Second, "RTP at the viewer", func() bool {
		_, n, _, _, _ := v.snapshot()
		return n >= 5
	})

	_, _, ssrc, _, _ := v.snapshot()
	if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "key frame request after PLI", func() bool { return w.keyFrames.Load() == 2 })
	if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{MediaSSRC: uint32(ssrc),
		FIR: []rtcp.FIREntry{{SSRC: uint32(ssrc), SequenceNumber: 1}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "key frame request after FIR", func() bool { return w.keyFrames.Load() == 3 })

	// A receiver report on the role's stream tells its loss; one on
	// another stream does not.
	if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{
		{SSRC: uint32(ssrc) + 1, FractionLost: 200}, {SSRC: uint32(ssrc), FractionLost: 64}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a quarter lost, reported", func() bool { return w.lost.Load() == 64 })

	// Input on both channels reaches OnInput; the payload is never logged.
	const click = `{"type":"key","action":"down","key":"4","text":"4111111111111111"}`
	const move = `{"type":"mouse","action":"move","x":1,"y":2,"buttons":0}`
	waitFor(t, 5*time.Second, "data channels open", func() bool {
		return v.input.ReadyState() == webrtc.DataChannelStateOpen && v.pointer.ReadyState() == webrtc.DataChannelStateOpen
	})
	if err := v.input.SendText(click); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "input message", func() bool {
		in, _, _ := w.recorded()
		return len(in) == 1 && in[0] == click
	})
	// The pointer channel is lossy by design; on loopback one of a few
	// sends arrives.
	waitFor(t, 5*time.Second, "pointer message", func() bool {
		_ = v.pointer.SendText(move)
		in, _, _ := w.recorded()
		return len(in) > 1 && in[1] == move
	})

	// The worker's notices reach the viewer on "input".
	notice := []byte(`{"type":"viewport","width":1280,"height":720}`)
	waitFor(t, 5*time.Second, "worker input channel open", func() bool {
		err := w.Send(notice)
		if err != nil && !errors.Is(err, ErrNotOpen) {
			t.Fatalf("Send = %v", err)
		}
		return err == nil
	})
	waitFor(t, 5*time.Second, "notice at the viewer", func() bool {
		_, _, _, msgs, _ := v.snapshot()
		return len(msgs) > 0 && msgs[0] == string(notice)
	})

	// An unknown channel is refused.
	extra, err := v.pc.CreateDataChannel("files", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "unknown channel closed", func() bool {
		return extra.ReadyState() == webrtc.DataChannelStateClosed
	})

	_, cands, _ := w.recorded()
	if len(cands) == 0 {
		t.Fatal("no candidates trickled to OnCandidate")
	}
	for _, c := range cands {
		if c == "" || c == "candidate:" {
			t.Fatalf("end-of-gathering candidate %q passed to OnCandidate", c)
		}
	}
	if _, _, _, _, err := v.snapshot(); err != nil {
		t.Fatalf("viewer rejected a worker candidate: %v", err)
	}

	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := w.Send(notice); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if _, err := w.Answer(context.Background(), "v=0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Answer after Close = %v, want ErrClosed", err)
	}
	if logsContain(logs, "4111111111111111") {
		t.Fatal("an input payload was logged")
	}
}

func TestPeerUDPMux(t *testing.T) {
	// Find a free UDP port; another process could take it before NewAPI,
	// which then fails loudly rather than passing wrongly.
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()

	a, err := NewAPI(Config{Loopback: true, UDPPort: port}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	track, err := a.NewTrack("agent")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := connect(t, a, track)
	_, cands, _ := w.recorded()
	for _, c := range cands {
		f := strings.Fields(c)
		if len(f) < 6 || f[5] != strconv.Itoa(port) {
			t.Fatalf("candidate %q is not on the mux port %d", c, port)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("API.Close = %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second API.Close = %v", err)
	}
	// The port is free again.
	l, err = net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("mux port still bound after Close: %v", err)
	}
	l.Close()
}

func TestPeerBeforeNegotiation(t *testing.T) {
	a, err := NewAPI(Config{Loopback: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.NewPeer(PeerConfig{ViewerID: "v"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewPeer without track = %v, want ErrInvalidConfig", err)
	}
	track, _ := a.NewTrack("customer")
	p, err := a.NewPeer(PeerConfig{ViewerID: "v", Track: track})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Send([]byte(`{}`)); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Send before negotiation = %v, want ErrNotOpen", err)
	}

	// An offer without video cannot carry the track.
	dataOnly, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer dataOnly.Close()
	if _, err := dataOnly.CreateDataChannel("input", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := dataOnly.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Answer(ctx, offer.SDP); !errors.Is(err, ErrNoVideo) {
		t.Fatalf("Answer(data-only offer) = %v, want ErrNoVideo", err)
	}
	p2, err := a.NewPeer(PeerConfig{ViewerID: "v2", Track: track})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.Answer(ctx, "not sdp"); err == nil {
		t.Fatal("Answer(garbage) = nil error")
	}
}

// TestRemoteFilterWired checks that the ICE agent applies remoteAllowed to
// the viewer's candidates.
func TestRemoteFilterWired(t *testing.T) {
	p := newPeer(t, Config{}, "customer", PeerConfig{})
	v := newTestViewer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Answer(ctx, v.offer(t)); err != nil {
		t.Fatal(err)
	}
	mid, idx := "0", uint16(0)
	for _, addr := range []string{"127.0.0.1", "169.254.169.254", "198.51.99.44"} {
		c := protocol.Candidate{Candidate: "candidate:1 1 udp 2130706431 " + addr + " 40000 typ host", SDPMid: &mid, SDPMLineIndex: &idx}
		if err := p.AddCandidate(c); err != nil {
			t.Fatalf("AddCandidate(%s) = %v", addr, err)
		}
	}
	remote := func() []string {
		var out []string
		for _, s := range p.pc.GetStats() {
			if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
				out = append(out, c.IP)
			}
		}
		return out
	}
	waitFor(t, 5*time.Second, "the allowed remote candidate", func() bool {
		for _, ip := range remote() {
			if ip == "198.51.99.44" {
				return true
			}
		}
		return false
	})
	for _, ip := range remote() {
		if ip == "127.0.0.1" || ip == "169.254.169.254" {
			t.Fatalf("remote candidate %s was not filtered (remote candidates %v)", ip, remote())
		}
	}
}

// TestAnswerChromiumOffer answers an offer captured from Chromium 156
// (testdata/chromium-offer.sdp): every codec but VP8 is refused, the track
// goes out sendonly, the DataChannels are accepted.
func TestAnswerChromiumOffer(t *testing.T) {
	offer, err := os.ReadFile("testdata/chromium-offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, Config{Loopback: true}, "customer", PeerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answer, err := p.Answer(ctx, string(offer))
	if err != nil {
		t.Fatal(err)
	}
	var video, rtpmaps []string
	for _, line := range strings.Split(answer, "\r\n") {
		switch {
		case strings.HasPrefix(line, "m=video"):
			video = strings.Fields(line)
		case strings.HasPrefix(line, "a=rtpmap:"):
			rtpmaps = append(rtpmaps, line)
		}
	}
	if len(video) != 4 || video[3] != "96" {
		t.Fatalf("answer's video line = %q, want VP8's payload type 96 alone", video)
	}
	if len(rtpmaps) != 1 || rtpmaps[0] != "a=rtpmap:96 VP8/90000" {
		t.Fatalf("answer's codecs = %q, want VP8 only", rtpmaps)
	}
	for _, want := range []string{"a=sendonly", "a=msid:tandem-customer video", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
		"a=rtcp-fb:96 nack pli", "a=rtcp-fb:96 ccm fir"} {
		if !strings.Contains(answer, want) {
			t.Fatalf("answer lacks %q:\n%s", want, answer)
		}
	}
}

// TestPublicIPs checks that only the configured address is advertised, with
// and without the UDP mux, and on the ICE-TCP port's candidates too.
func TestPublicIPs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		udpMux bool
		tcp    bool
	}{{"ephemeral", false, false}, {"udp mux", true, false}, {"tcp", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Loopback: true, PublicIPs: []string{"203.0.113.9"}}
			if tc.udpMux {
				cfg.UDPPort = freePort(t, "udp4")
			}
			if tc.tcp {
				cfg.ICETCPPort = freePort(t, "tcp4")
			}
			a, err := NewAPI(cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			track, _ := a.NewTrack("agent")
			var mu sync.Mutex
			var cands []string
			p, err := a.NewPeer(PeerConfig{ViewerID: "v", Track: track, OnCandidate: func(c protocol.Candidate) {
				mu.Lock()
				cands = append(cands, c.Candidate)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			v := newTestViewer(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := p.Answer(ctx, v.offer(t)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-webrtc.GatheringCompletePromise(p.pc):
			case <-ctx.Done():
				t.Fatal("gathering did not complete")
			}
			waitFor(t, 5*time.Second, "candidates", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range cands {
					if !tc.tcp || strings.Contains(c, " tcp ") {
						return true
					}
				}
				return false
			})
			mu.Lock()
			defer mu.Unlock()
			for _, c := range cands {
				if f := strings.Fields(c); len(f) < 5 || f[4] != "203.0.113.9" {
					t.Fatalf("candidate %q does not advertise the public ip only (all: %q)", c, cands)
				}
			}
		})
	}
}
