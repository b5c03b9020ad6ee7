package rtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
)

// sdesMidURI is the RTP header extension that carries the m-line's mid
// (RFC 8843 section 15).
const sdesMidURI = "urn:ietf:params:rtp-hdrext:sdes:mid"

// vp8PayloadType is the payload type we register for VP8. The answer follows
// the payload type of the viewer's offer, so this only matters to pion.
const vp8PayloadType = 96

// Config sets up the WebRTC side of a worker.
type Config struct {
	// UDPPort is the single UDP port of the ICE UDP mux shared by all peers;
	// 0 means ephemeral ports per peer (tests).
	UDPPort int
	// PublicIPs are the NAT 1:1 addresses advertised instead of the local
	// host addresses; empty means the local addresses.
	PublicIPs []string
	// ICEServers are the STUN/TURN servers; may be empty.
	ICEServers []webrtc.ICEServer
	// Loopback includes loopback candidates, turns mDNS off and uses UDP4
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
	for _, s := range c.PublicIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("%w: public ip %q: %w", ErrInvalidConfig, s, err)
		}
		if c.Loopback && a.Is6() && !a.Is4In6() {
			return fmt.Errorf("%w: public ip %s is IPv6 but loopback mode is UDP4 only", ErrInvalidConfig, s)
		}
	}
	if c.ICEDisconnectedTimeout < 0 {
		return fmt.Errorf("%w: negative ice disconnected timeout", ErrInvalidConfig)
	}
	return nil
}

// API builds the worker's peers: one MediaEngine (VP8 only), the NACK
// responder and RTCP sender reports, and the ICE settings of a Config. It is
// safe for concurrent use. Close it after every Peer it made is closed.
type API struct {
	api        *webrtc.API
	mux        ice.UDPMux // nil without Config.UDPPort
	iceServers []webrtc.ICEServer
	log        *zap.Logger

	closeOnce sync.Once
	closeErr  error
}

// NewAPI validates cfg and builds an API. With cfg.UDPPort set it listens on
// that UDP port (on every local address) until Close.
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
	// SECURITY.md P8: DTLS-SRTP with AEAD AES-GCM only, AES-256 first.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM)
	disconnected := cfg.ICEDisconnectedTimeout
	if disconnected == 0 {
		disconnected = defaultDisconnectedTimeout
	}
	se.SetICETimeouts(disconnected, iceFailedTimeout, iceKeepaliveInterval)
	loopback := cfg.Loopback
	se.SetRemoteIPFilter(func(ip net.IP) bool { return remoteAllowed(ip, loopback) })
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.Loopback {
		networks = networks[:1]
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	se.SetNetworkTypes(networks)
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        append([]string(nil), cfg.PublicIPs...),
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("%w: public ips: %w", ErrInvalidConfig, err)
		}
	}

	a := &API{log: log, iceServers: append([]webrtc.ICEServer(nil), cfg.ICEServers...)}
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

	a.api = webrtc.NewAPI(
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se),
	)
	a.log.Info("webrtc ready",
		zap.Int("udp_port", cfg.UDPPort),
		zap.Strings("public_ips", cfg.PublicIPs),
		zap.Int("ice_servers", len(cfg.ICEServers)),
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

// Close releases the UDP port of the ICE mux, if any. Close the peers first.
// It is idempotent.
func (a *API) Close() error {
	a.closeOnce.Do(func() {
		if a.mux != nil {
			if err := a.mux.Close(); err != nil {
				a.closeErr = fmt.Errorf("close udp mux: %w", err)
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
