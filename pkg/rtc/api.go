package rtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Errors callers act on.
var (
	// ErrInvalidConfig is wrapped by Config.Validate's errors.
	ErrInvalidConfig = errors.New("rtc: invalid config")
	// ErrNotOpen is returned by Peer.Send while the viewer's "input"
	// DataChannel is not open.
	ErrNotOpen = errors.New("rtc: input channel not open")
	// ErrClosed is returned by calls on a closed Peer or API.
	ErrClosed = errors.New("rtc: closed")
)

// Defaults of Config's zero values, and pion's ICE timers we keep.
const (
	defaultDisconnectedTimeout = 5 * time.Second
	iceFailedTimeout           = 25 * time.Second // after disconnected (pion's default)
	iceKeepaliveInterval       = 2 * time.Second  // pion's default
	tcpMuxReadBuffer           = 8                // packets buffered per ICE-TCP connection
	tcpFirstBindTimeout        = 10 * time.Second
)

// sdesMidURI is the RTP header extension that carries the m-line's mid
// (RFC 8843 section 15).
const sdesMidURI = "urn:ietf:params:rtp-hdrext:sdes:mid"

// vp8PayloadType is the payload type we register for VP8. The answer follows
// the payload type of the viewer's offer, so this only matters to pion.
const vp8PayloadType = 96

// Config sets up the WebRTC side of a worker. docs/media-network.md has
// the operator's view of these settings.
type Config struct {
	// UDPPort is the single UDP port of the ICE UDP mux shared by all peers;
	// 0 means ephemeral ports per peer (tests).
	UDPPort int
	// ICETCPPort is the single TCP port of the ICE TCP mux (passive TCP
	// candidates, RFC 6544) shared by all peers, for viewers whose network
	// lets no UDP through; 0 means no ICE over TCP.
	ICETCPPort int
	// PublicIPs are the NAT 1:1 addresses advertised instead of the local
	// host addresses, for UDP and TCP candidates alike; empty means the
	// local addresses.
	PublicIPs []string
	// STUN are stun: or stuns: URLs, used by the worker's peers (a
	// server-reflexive address) and handed to viewers; may be empty.
	STUN []string
	// TURN are turn: or turns: URLs handed to viewers with credentials
	// minted for each (ViewerICEServers); they need TURNSecret.
	TURN []string
	// TURNSecret is the TURN server's shared secret (coturn
	// static-auth-secret, the TURN REST scheme). Never log it.
	TURNSecret string
	// TURNTTL is how long a viewer's TURN credentials live; 0 means
	// DefaultTURNTTL.
	TURNTTL time.Duration
	// DenyPrivatePeers refuses viewers' candidates on private (RFC 1918),
	// CGNAT and ULA addresses too, for workers that no viewer reaches
	// through a LAN. By default they are allowed.
	DenyPrivatePeers bool
	// Loopback includes loopback candidates, turns mDNS off and uses IPv4
	// only (tests and the single-machine demo). It also lets viewers offer
	// loopback candidates.
	Loopback bool
	// ICEDisconnectedTimeout is how long without traffic before a peer is
	// "disconnected"; 0 means 5s.
	ICEDisconnectedTimeout time.Duration
}

// Validate reports a bad Config.
func (c Config) Validate() error {
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("%w: udp port %d out of range", ErrInvalidConfig, c.UDPPort)
	}
	if c.ICETCPPort < 0 || c.ICETCPPort > 65535 {
		return fmt.Errorf("%w: ice tcp port %d out of range", ErrInvalidConfig, c.ICETCPPort)
	}
	for _, s := range c.PublicIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("%w: public ip %q: %w", ErrInvalidConfig, s, err)
		}
		if c.Loopback && a.Is6() && !a.Is4In6() {
			return fmt.Errorf("%w: public ip %s is IPv6 but loopback mode is IPv4 only", ErrInvalidConfig, s)
		}
	}
	if c.ICEDisconnectedTimeout < 0 {
		return fmt.Errorf("%w: negative ice disconnected timeout", ErrInvalidConfig)
	}
	return c.validateICEServers()
}

// API builds the worker's peers: one MediaEngine (VP8 only), the NACK
// responder and RTCP sender reports, and the ICE settings of a Config. It is
// safe for concurrent use. Close it after every Peer it made is closed.
type API struct {
	api        *webrtc.API
	mux        ice.UDPMux         // nil without Config.UDPPort
	tcpMux     *ice.TCPMuxDefault // nil without Config.ICETCPPort
	iceServers []webrtc.ICEServer
	peers      peerPolicy
	log        *zap.Logger

	closeOnce sync.Once
	closeErr  error
}

// NewAPI validates cfg and builds an API. With cfg.UDPPort set it listens on
// that UDP port, with cfg.ICETCPPort on that TCP port (on every local
// address) until Close.
func NewAPI(cfg Config, log *zap.Logger) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.Named("rtc")
	lf := &loggerFactory{log: log.Named("pion")}

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: vp8Capability(),
		PayloadType:        vp8PayloadType,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register vp8: %w", err)
	}
	// The mid extension lets pion route a customer's screen video to its
	// m-line even when the browser's offer declared no SSRC for it (a
	// sendonly transceiver without a track yet).
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdesMidURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register mid extension: %w", err)
	}

	// We send: the NACK responder resends lost packets from its buffer,
	// the sender reports give the viewer's jitter buffer the RTP/NTP mapping.
	// PLI and FIR are read by each peer's RTCP loop. We receive a customer's
	// shared screen: NACKs ask its browser for lost packets, receiver
	// reports tell it how the stream arrives.
	ir := &interceptor.Registry{}
	responder, err := nack.NewResponderInterceptor(nack.WithResponderLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("nack responder: %w", err)
	}
	ir.Add(responder)
	sender, err := report.NewSenderInterceptor(report.WithSenderLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("sender reports: %w", err)
	}
	ir.Add(sender)
	generator, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("nack generator: %w", err)
	}
	ir.Add(generator)
	receiver, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("receiver reports: %w", err)
	}
	ir.Add(receiver)

	se := webrtc.SettingEngine{LoggerFactory: lf}
	// SECURITY.md P8: DTLS-SRTP with AEAD AES-GCM only, AES-256 first, and
	// a DTLS handshake with AEAD suites only (pion's default list has CBC
	// ones). Our certificate is ECDSA, so the ECDHE-ECDSA suites.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM)
	se.SetDTLSCipherSuites(dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	disconnected := cfg.ICEDisconnectedTimeout
	if disconnected == 0 {
		disconnected = defaultDisconnectedTimeout
	}
	se.SetICETimeouts(disconnected, iceFailedTimeout, iceKeepaliveInterval)
	peers := peerPolicy{loopback: cfg.Loopback, private: !cfg.DenyPrivatePeers}
	se.SetRemoteIPFilter(func(ip net.IP) bool { return remoteAllowed(ip, peers) })
	// The worker never resolves a viewer's mDNS names nor announces its
	// own (docs/media-network.md), and never dials out over TCP: a
	// viewer's passive TCP candidate would make it connect wherever the
	// viewer says. Viewers reach the TCP mux instead.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableActiveTCP(true)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.ICETCPPort != 0 {
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	if cfg.Loopback {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
		if cfg.ICETCPPort != 0 {
			networks = append(networks, webrtc.NetworkTypeTCP4)
		}
		se.SetIncludeLoopbackCandidate(true)
	}
	se.SetNetworkTypes(networks)
	if len(cfg.PublicIPs) > 0 {
		// Host candidates of every network type, UDP mux and TCP mux
		// alike, are rewritten.
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        append([]string(nil), cfg.PublicIPs...),
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("%w: public ips: %w", ErrInvalidConfig, err)
		}
	}

	a := &API{log: log, iceServers: cfg.workerICEServers(), peers: peers}
	if cfg.UDPPort != 0 {
		iceNets := []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(lf.NewLogger("ice_mux"))}
		if cfg.Loopback {
			iceNets = iceNets[:1]
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		opts = append(opts, ice.UDPMuxFromPortWithNetworks(iceNets...))
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("listen on udp port %d: %w", cfg.UDPPort, err)
		}
		se.SetICEUDPMux(mux)
		a.mux = mux
	}
	if cfg.ICETCPPort != 0 {
		network := "tcp"
		if cfg.Loopback {
			network = "tcp4"
		}
		ln, err := net.Listen(network, ":"+strconv.Itoa(cfg.ICETCPPort))
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("listen on ice tcp port %d: %w", cfg.ICETCPPort, err)
		}
		a.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:       ln,
			Logger:         lf.NewLogger("ice_tcp_mux"),
			ReadBufferSize: tcpMuxReadBuffer,
			// A connection that sends no STUN binding soon is dropped, so
			// idle sockets cannot pile up on the public port.
			FirstStunBindTimeout: tcpFirstBindTimeout,
		})
		se.SetICETCPMux(a.tcpMux)
	}

	a.api = webrtc.NewAPI(
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se),
	)
	a.log.Info("webrtc ready",
		zap.Int("udp_port", cfg.UDPPort),
		zap.Int("ice_tcp_port", cfg.ICETCPPort),
		zap.Strings("public_ips", cfg.PublicIPs),
		zap.Strings("stun", cfg.STUN),
		zap.Strings("turn", cfg.TURN), // URLs only: the secret is never logged
		zap.Bool("deny_private_peers", cfg.DenyPrivatePeers),
		zap.Bool("loopback", cfg.Loopback))
	return a, nil
}

// NewTrack returns the shared VP8 track of one role: id "video", stream id
// "tandem-"+role. The role's encoder writes RTP to it; every peer of that
// role sends it.
func (a *API) NewTrack(role string) (*webrtc.TrackLocalStaticRTP, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(vp8Capability(), "video", "tandem-"+role)
	if err != nil {
		return nil, fmt.Errorf("new %s track: %w", role, err)
	}
	return t, nil
}

// NewScreenTrack returns a session's shared screen track: id "screen",
// stream id "tandem-screen". The worker writes the customer's screen RTP to
// it as it arrives (no transcoding); every agent's peer sends it
// (PeerConfig.ScreenTrack).
func (a *API) NewScreenTrack() (*webrtc.TrackLocalStaticRTP, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(vp8Capability(), "screen", "tandem-screen")
	if err != nil {
		return nil, fmt.Errorf("new screen track: %w", err)
	}
	return t, nil
}

// Close releases the ports of the ICE muxes, if any. Close the peers
// first. It is idempotent.
func (a *API) Close() error {
	a.closeOnce.Do(func() {
		if a.mux != nil {
			if err := a.mux.Close(); err != nil {
				a.closeErr = fmt.Errorf("close udp mux: %w", err)
			}
		}
		if a.tcpMux != nil {
			if err := a.tcpMux.Close(); err != nil && a.closeErr == nil {
				a.closeErr = fmt.Errorf("close tcp mux: %w", err)
			}
		}
	})
	return a.closeErr
}

func vp8Capability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:  webrtc.MimeTypeVP8,
		ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: "nack"},
			{Type: "nack", Parameter: "pli"},
			{Type: "ccm", Parameter: "fir"},
		},
	}
}
