package rtc

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc/rtctest"
)

// freePort finds a free port of network ("tcp4" or "udp4") on loopback;
// another process could take it before the test binds it, which then fails
// loudly rather than passing wrongly.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if strings.HasPrefix(network, "tcp") {
		l, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	l, err := net.ListenPacket(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.LocalAddr().(*net.UDPAddr).Port
}

// streamTo writes RTP to track until the test ends and waits for n packets
// at the viewer.
func streamTo(t *testing.T, track *webrtc.TrackLocalStaticRTP, v *testViewer, n int) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan struct{})
	go writeRTP(track, stop, done)
	t.Cleanup(func() { close(stop); <-done })
	waitFor(t, 10*time.Second, "RTP at the viewer", func() bool {
		_, got, _, _, _ := v.snapshot()
		return got >= n
	})
}

// selectedLocalType is the type of the local candidate of the viewer's
// nominated pair ("" before there is one).
func selectedLocalType(v *testViewer) (typ, proto string) {
	stats := v.pc.GetStats()
	for _, s := range stats {
		p, ok := s.(webrtc.ICECandidatePairStats)
		if !ok || !p.Nominated || p.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		if c, ok := stats[p.LocalCandidateID].(webrtc.ICECandidateStats); ok {
			return c.CandidateType.String(), c.Protocol
		}
	}
	return "", ""
}

// TestICETCP: a viewer that can use TCP only reaches the worker through the
// ICE TCP mux port, with the worker's passive TCP candidate on that port,
// and receives video; without the port it cannot connect at all.
func TestICETCP(t *testing.T) {
	tcpOnly := viewerOptions{networks: []webrtc.NetworkType{webrtc.NetworkTypeTCP4}}

	t.Run("mux on", func(t *testing.T) {
		port := freePort(t, "tcp4")
		a, err := NewAPI(Config{Loopback: true, ICETCPPort: port}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		track, _ := a.NewTrack("customer")
		w, v := connectWith(t, a, track, tcpOnly, 15*time.Second)
		defer w.Close()
		streamTo(t, track, v, 5)
		if typ, proto := selectedLocalType(v); proto != "tcp" {
			t.Fatalf("viewer's selected candidate is %s over %q, want tcp", typ, proto)
		}
		_, cands, _ := w.recorded()
		var passive bool
		for _, c := range cands {
			if strings.Contains(c, " tcp ") {
				f := strings.Fields(c)
				if f[5] != strconv.Itoa(port) || !strings.Contains(c, "tcptype passive") {
					t.Fatalf("TCP candidate %q is not passive on the mux port %d", c, port)
				}
				passive = true
			}
		}
		if !passive {
			t.Fatalf("worker offered no TCP candidate: %q", cands)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("API.Close = %v", err)
		}
		// The port is free again.
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("ICE TCP port still bound after Close: %v", err)
		}
		l.Close()
	})

	t.Run("mux off", func(t *testing.T) {
		a, err := NewAPI(Config{Loopback: true}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		track, _ := a.NewTrack("customer")
		w, v := negotiate(t, a, track, tcpOnly)
		defer w.Close()
		// Over UDP on loopback a connection takes well under a second.
		time.Sleep(5 * time.Second)
		if s, n, _, _, _ := v.snapshot(); s == webrtc.PeerConnectionStateConnected || n > 0 {
			t.Fatalf("a TCP-only viewer connected (%v, %d packets) although ICE TCP is off", s, n)
		}
		_, cands, _ := w.recorded()
		for _, c := range cands {
			if strings.Contains(c, " tcp ") {
				t.Fatalf("worker offered TCP candidate %q with ICE TCP off", c)
			}
		}
	})
}

// turnServer runs a pion TURN server on loopback UDP that authenticates
// with the TURN REST scheme (coturn's use-auth-secret) and relays from

// allocate asks the TURN server at addr for a relay with username and
// password, as a viewer's browser does.
func allocate(t *testing.T, addr, username, password string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: username, Password: password, Realm: rtctest.Realm, RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		return err
	}
	return relay.Close()
}

// TestTURNRelay: a viewer restricted to relayed candidates connects through
// a real TURN server with the credentials ViewerICEServers minted for it
// and receives video; the TURN server refuses expired, forged and wrong
// credentials; neither the secret nor a credential is logged.
func TestTURNRelay(t *testing.T) {
	const secret = "turn-secret-0123456789"
	addr := rtctest.TURNServer(t, secret)
	log, logs := newObservedLogger()
	cfg := Config{Loopback: true, TURN: []string{"turn:" + addr}, TURNSecret: secret, TURNTTL: time.Hour}
	a, err := NewAPI(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	now := time.Now()
	servers := cfg.ViewerICEServers("v_relay", now)
	if len(servers) != 1 || servers[0].URLs[0] != "turn:"+addr {
		t.Fatalf("ViewerICEServers = %+v, want the TURN server", servers)
	}
	user, cred := servers[0].Username, servers[0].Credential
	if want := strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + ":v_relay"; user != want {
		t.Fatalf("TURN username = %q, want %q", user, want)
	}

	t.Run("relay only", func(t *testing.T) {
		track, _ := a.NewTrack("customer")
		opts := viewerOptions{relayOnly: true, iceServers: []webrtc.ICEServer{{
			URLs: servers[0].URLs, Username: user, Credential: cred, CredentialType: webrtc.ICECredentialTypePassword}}}
		w, v := connectWith(t, a, track, opts, 20*time.Second)
		defer w.Close()
		streamTo(t, track, v, 5)
		if typ, _ := selectedLocalType(v); typ != "relay" {
			t.Fatalf("viewer's selected local candidate is %q, want relay", typ)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		if err := allocate(t, addr, user, cred); err != nil {
			t.Fatalf("allocation with the minted credentials = %v", err)
		}
		expiredUser, expiredCred := TURNCredentials(secret, "v_relay", now.Add(-time.Minute))
		otherUser, _ := TURNCredentials(secret, "v_other", now.Add(time.Hour))
		_, wrongCred := TURNCredentials("another-secret-0123", "v_relay", now.Add(time.Hour))
		for name, c := range map[string][2]string{
			"expired":              {expiredUser, expiredCred},
			"wrong secret":         {user, wrongCred},
			"another's username":   {otherUser, cred},
			"later expiry, forged": {strconv.FormatInt(now.Add(48*time.Hour).Unix(), 10) + ":v_relay", cred},
		} {
			if err := allocate(t, addr, c[0], c[1]); err == nil {
				t.Errorf("%s credentials: the TURN server allocated a relay", name)
			}
		}
	})

	if logsContain(logs, secret) || logsContain(logs, cred) {
		t.Fatal("the TURN secret or a credential was logged")
	}
}

// TestTURNCredentials pins the TURN REST scheme against a known value:
// base64(HMAC-SHA1("secret", "1700000000:v_1")).
func TestTURNCredentials(t *testing.T) {
	user, cred := TURNCredentials("secret", "v_1", time.Unix(1700000000, 0))
	if user != "1700000000:v_1" || cred != "mb+EQy6CLq9jFsLUq8mZecquuC0=" {
		t.Fatalf("TURNCredentials = %q, %q", user, cred)
	}
}

// TestReservedCandidatesDropped: a viewer's candidates at reserved
// addresses, trickled and inside its offer, never reach the ICE agent and
// are never sent a packet, while its real candidates still connect. A UDP
// listener on the wildcard address stands in for a service of the worker's
// own host: on Linux a datagram to 0.0.0.0 is delivered to it, so the
// listener would see a check aimed at 0.0.0.0; the control sub-test shows
// that it sees one aimed at an allowed address.
func TestReservedCandidatesDropped(t *testing.T) {
	reserved := []string{"0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "255.255.255.255",
		"240.0.0.1", "169.254.169.254", "169.254.10.10", "192.0.2.1", "100.100.100.200"}

	// listen returns a wildcard UDP listener and a counter of the
	// datagrams it got.
	listen := func(t *testing.T) (int, func() int) {
		t.Helper()
		l, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		got := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1500)
			for {
				if _, _, err := l.ReadFrom(buf); err != nil {
					return
				}
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
		t.Cleanup(func() { l.Close(); <-done })
		return l.LocalAddr().(*net.UDPAddr).Port, func() int {
			mu.Lock()
			defer mu.Unlock()
			return got
		}
	}
	cand := func(addr string, port int) string {
		return "candidate:9 1 udp 2130706431 " + addr + " " + strconv.Itoa(port) + " typ host"
	}
	remoteIPs := func(p *Peer) map[string]bool {
		out := map[string]bool{}
		for _, s := range p.pc.GetStats() {
			if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
				out[c.IP] = true
			}
		}
		return out
	}

	t.Run("dropped", func(t *testing.T) {
		port, received := listen(t)
		p := newPeer(t, Config{Loopback: true}, "customer", PeerConfig{})
		v := newTestViewer(t, nil)
		v.offer(t)
		<-webrtc.GatheringCompletePromise(v.pc)
		// The offer carries the viewer's real candidates and, after them,
		// the reserved ones.
		offer := v.pc.LocalDescription().SDP
		_, own := filterSDP(offer, p.peers) // this machine's own addresses may be refused too
		var extra strings.Builder
		for _, r := range reserved {
			extra.WriteString("a=" + cand(r, port) + "\r\n")
		}
		i := strings.Index(offer, "a=candidate:")
		if i < 0 {
			t.Fatalf("the viewer's offer has no candidates:\n%s", offer)
		}
		offer = offer[:i] + extra.String() + offer[i:]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		answer, err := p.Answer(ctx, offer)
		if err != nil {
			t.Fatal(err)
		}
		mid, idx := "0", uint16(0)
		for _, r := range reserved {
			if err := p.AddCandidate(protocol.Candidate{Candidate: cand(r, port+1), SDPMid: &mid, SDPMLineIndex: &idx}); err != nil {
				t.Fatalf("AddCandidate(%s) = %v", r, err)
			}
		}
		v.setAnswer(t, answer)
		waitFor(t, 15*time.Second, "the viewer connected", func() bool {
			s, _, _, _, _ := v.snapshot()
			return s == webrtc.PeerConnectionStateConnected
		})
		time.Sleep(2 * time.Second) // checks to every pair would have gone out by now
		if n := received(); n > 0 {
			t.Fatalf("the listener behind a reserved candidate got %d datagrams", n)
		}
		ips := remoteIPs(p)
		for _, r := range reserved {
			if ips[r] {
				t.Errorf("reserved remote candidate %s reached the ICE agent (remote candidates %v)", r, ips)
			}
		}
		if !ips["127.0.0.1"] {
			t.Errorf("the viewer's own candidate is missing: remote candidates %v", ips)
		}
		if got, want := p.DroppedCandidates(), int64(2*len(reserved)+own); got != want {
			t.Errorf("DroppedCandidates = %d, want %d", got, want)
		}
	})

	t.Run("control", func(t *testing.T) {
		port, received := listen(t)
		p := newPeer(t, Config{Loopback: true}, "customer", PeerConfig{})
		v := newTestViewer(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.Answer(ctx, v.offer(t)); err != nil {
			t.Fatal(err)
		}
		mid, idx := "0", uint16(0)
		if err := p.AddCandidate(protocol.Candidate{Candidate: cand("127.0.0.1", port), SDPMid: &mid, SDPMLineIndex: &idx}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a connectivity check at the listener", func() bool { return received() > 0 })
	})
}
