// Package botviewer is a viewer of a Tandem session written in Go: it
// negotiates a WebRTC peer connection through Tandem's signaling messages,
// decodes the VP8 video it receives, and sends input over the same
// DataChannels a browser viewer uses. Tests use it to look at the real
// stream (pixels) without a browser; benchmarks use it to measure.
//
// Dial starts a Viewer; its goroutines (RTP reading and decoding, signaling)
// run until Close, which waits for them. Methods are safe for concurrent use.
package botviewer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// Signaler carries signaling messages between the viewer and Tandem: a
// WebSocket to a gateway, or an in-memory pipe in tests.
type Signaler interface {
	Send(ctx context.Context, s protocol.Signal) error
	Recv(ctx context.Context) (protocol.Signal, error)
}

// Picture is one decoded video frame and when it was decoded.
type Picture struct {
	*media.Image
	At time.Time
	N  int // pictures decoded so far, this one included
}

// Viewer is one connected viewer.
type Viewer struct {
	pc        *webrtc.PeerConnection
	onPicture func(Picture) // Options.OnPicture
	sig       Signaler
	input     *webrtc.DataChannel
	pointer   *webrtc.DataChannel
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	open      chan struct{}
	// renegotiated gets the outcome of each restart offer's answer (nil
	// once applied), from the signaling goroutine; cap 1.
	renegotiated chan error
	restarting   sync.Mutex // one RestartICE at a time

	screenRecv *webrtc.RTPReceiver            // Options.SeeScreen: the screen m-line's receiver
	screenOut  *webrtc.TrackLocalStaticSample // Options.ShareScreen: the screen we send
	screenPLI  chan struct{}                  // cap 1: the worker asked for a key frame of screenOut

	// videoBytes counts the RTP payload bytes (VP8 payload descriptor and
	// data, no RTP, SRTP, UDP or IP headers) received on the tab's video.
	videoBytes atomic.Int64
	videoSSRC  atomic.Uint32 // the tab's video stream, once it came

	mu        sync.Mutex
	latest    Picture             // guarded by mu
	screen    Picture             // guarded by mu; the newest picture of the shared screen
	screens   int                 // guarded by mu; screen tracks that arrived
	tabs      int                 // guarded by mu; other video tracks that arrived
	changed   chan struct{}       // guarded by mu; closed and replaced on each picture
	ended     string              // guarded by mu; the reason of an "ended" message
	notices   []string            // guarded by mu; DataChannel messages from the worker
	files     *webrtc.DataChannel // guarded by mu; "files", once SendFiles opened it
	filesOpen chan struct{}       // guarded by mu; closed when files is open
	filesIn   []FileMessage       // guarded by mu; what the worker sent on "files"
	err       error               // guarded by mu
	closed    bool                // guarded by mu
}

// ErrEnded is returned by waits after the session ended.
var ErrEnded = errors.New("botviewer: session ended")

func newAPI(networks []webrtc.NetworkType) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	var s webrtc.SettingEngine
	s.SetIncludeLoopbackCandidate(true)
	s.SetICEMulticastDNSMode(0) // disabled: loopback tests need plain addresses
	if networks == nil {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	s.SetNetworkTypes(networks)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)), nil
}

// Options say what a viewer offers besides the tab's video, as the pages
// do (docs/screenshare.md). The zero value offers what an older page did:
// the tab only.
type Options struct {
	// ShareScreen offers a sendonly video m-line after the tab's, as a
	// customer's page does; SendScreen sends on it.
	ShareScreen bool
	// SeeScreen offers a recvonly video m-line after the tab's, as an
	// agent's page does (or a hostile customer's); WaitScreen waits for its
	// pictures.
	SeeScreen bool
	// NetworkTypes restricts the viewer's ICE to these networks, e.g.
	// TCP4 only for a viewer whose network drops UDP; nil means UDP4.
	NetworkTypes []webrtc.NetworkType
	// ICEServers and RelayOnly configure the viewer's RTCPeerConnection
	// as a page does from its hello's ice_servers (RelayOnly:
	// iceTransportPolicy "relay").
	ICEServers []webrtc.ICEServer
	RelayOnly  bool
	// OnPicture, when set, is called on the track's goroutine with every
	// picture of the tab decoded, for a test that must see each one
	// (WaitPicture may skip pictures that came in between).
	OnPicture func(Picture)
}

// Dial negotiates with Tandem through sig and returns once the offer is
// answered; pictures arrive afterwards (see WaitPicture). It offers the
// tab's video only; DialWith offers a screen m-line too.
func Dial(ctx context.Context, sig Signaler) (*Viewer, error) {
	return DialWith(ctx, sig, Options{})
}

// DialWith is Dial with the m-lines of opts.
func DialWith(ctx context.Context, sig Signaler, opts Options) (*Viewer, error) {
	api, err := newAPI(opts.NetworkTypes)
	if err != nil {
		return nil, err
	}
	pcCfg := webrtc.Configuration{ICEServers: opts.ICEServers}
	if opts.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	v := &Viewer{pc: pc, sig: sig, cancel: cancel, changed: make(chan struct{}), open: make(chan struct{}), onPicture: opts.OnPicture,
		renegotiated: make(chan error, 1), screenPLI: make(chan struct{}, 1)}
	fail := func(err error) (*Viewer, error) {
		_ = v.Close()
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(err)
	}
	switch {
	case opts.SeeScreen:
		tr, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			return fail(err)
		}
		v.screenRecv = tr.Receiver()
	case opts.ShareScreen:
		if v.screenOut, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "botviewer-screen"); err != nil {
			return fail(err)
		}
		tr, err := pc.AddTransceiverFromTrack(v.screenOut, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.readScreenRTCP(tr.Sender())
		}()
	}
	if v.input, err = pc.CreateDataChannel("input", nil); err != nil {
		return fail(err)
	}
	var zero uint16
	ordered := false
	if v.pointer, err = pc.CreateDataChannel("pointer", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &zero}); err != nil {
		return fail(err)
	}
	v.input.OnOpen(func() { close(v.open) })
	v.input.OnMessage(func(m webrtc.DataChannelMessage) {
		v.mu.Lock()
		v.notices = append(v.notices, string(m.Data))
		v.mu.Unlock()
		v.wake()
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		screen := v.screenRecv != nil && recv == v.screenRecv
		v.mu.Lock()
		if screen {
			v.screens++
		} else {
			v.tabs++
		}
		v.mu.Unlock()
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			v.readTrack(tr, screen)
		}()
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		_ = sig.Send(rctx, protocol.Signal{Type: protocol.TypeCandidate, Candidate: &protocol.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}})
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	if err := sig.Send(ctx, protocol.Signal{Type: protocol.TypeOffer, SDP: offer.SDP}); err != nil {
		return fail(fmt.Errorf("send offer: %w", err))
	}
	// Read until the answer; candidates before it wait for it.
	var early []protocol.Candidate
	for {
		s, err := sig.Recv(ctx)
		if err != nil {
			return fail(fmt.Errorf("wait for answer: %w", err))
		}
		switch s.Type {
		case protocol.TypeAnswer:
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP}); err != nil {
				return fail(err)
			}
			for _, c := range early {
				_ = v.addCandidate(c)
			}
			v.wg.Add(1)
			go func() {
				defer v.wg.Done()
				v.readSignals(rctx)
			}()
			return v, nil
		case protocol.TypeCandidate:
			early = append(early, *s.Candidate)
		case protocol.TypeError:
			return fail(fmt.Errorf("botviewer: %s: %s", s.Error, s.Message))
		case protocol.TypeEnded:
			return fail(ErrEnded)
		}
	}
}

func (v *Viewer) addCandidate(c protocol.Candidate) error {
	if c.Candidate == "" {
		return nil
	}
	return v.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex})
}

func (v *Viewer) readSignals(ctx context.Context) {
	for {
		s, err := v.sig.Recv(ctx)
		if err != nil {
			v.mu.Lock()
			if v.err == nil && ctx.Err() == nil {
				v.err = err
			}
			v.mu.Unlock()
			v.wake()
			return
		}
		switch s.Type {
		case protocol.TypeCandidate:
			_ = v.addCandidate(*s.Candidate)
		case protocol.TypeAnswer:
			// Applied here, in order: the worker's candidates of the new
			// ICE generation follow the answer.
			err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP})
			v.renegotiatedDone(err)
		case protocol.TypeError:
			if v.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
				v.renegotiatedDone(fmt.Errorf("botviewer: %s: %s", s.Error, s.Message))
			}
		case protocol.TypeEnded:
			v.mu.Lock()
			v.ended = s.Reason
			v.mu.Unlock()
			v.wake()
		}
	}
}

func (v *Viewer) wake() {
	v.mu.Lock()
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}

// readTrack reassembles VP8 frames from RTP and decodes each as soon as its
// last packet (the marker bit) arrives: waiting for the next frame, as a
// jitter buffer does, would add a whole frame interval on a still page.
// The pictures of the screen m-line go to WaitScreen, the others to
// WaitPicture.
func (v *Viewer) readTrack(tr *webrtc.TrackRemote, screen bool) {
	dec, err := media.NewVP8Decoder()
	if err != nil {
		return
	}
	defer dec.Close() //nolint:errcheck
	var (
		frame  []byte
		ts     uint32
		next   uint16
		intact bool
		n      int
		vp8    codecs.VP8Packet
	)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !screen {
			v.videoBytes.Add(int64(len(pkt.Payload)))
			v.videoSSRC.Store(pkt.SSRC)
		}
		payload, err := vp8.Unmarshal(pkt.Payload)
		if err != nil {
			intact = false
			continue
		}
		switch {
		case vp8.S == 1 && vp8.PID == 0: // first packet of a frame
			frame, ts, intact = frame[:0], pkt.Timestamp, true
		case pkt.Timestamp != ts || pkt.SequenceNumber != next:
			intact = false // a packet of this frame was lost: skip to the next frame
		}
		next = pkt.SequenceNumber + 1
		if !intact {
			continue
		}
		frame = append(frame, payload...)
		if !pkt.Marker {
			continue
		}
		intact = false
		img, err := dec.Decode(frame)
		if err != nil || img == nil {
			continue
		}
		n++
		p := Picture{Image: img, At: time.Now(), N: n}
		if !screen && v.onPicture != nil {
			v.onPicture(p)
		}
		v.mu.Lock()
		if screen {
			v.screen = p
		} else {
			v.latest = p
		}
		close(v.changed)
		v.changed = make(chan struct{})
		v.mu.Unlock()
	}
}

// SendLoss sends a receiver report saying that fraction (0 to 1) of the
// tab's video packets were lost, as a viewer on a poor link would; an
// error before the video came.
func (v *Viewer) SendLoss(fraction float64) error {
	ssrc := v.videoSSRC.Load()
	if ssrc == 0 {
		return errors.New("botviewer: no video yet")
	}
	lost := uint8(min(max(fraction, 0), 1) * 255)
	return v.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: ssrc, FractionLost: lost}}}})
}

// WaitPicture waits until a decoded picture of the tab satisfies ok, and
// returns it.
func (v *Viewer) WaitPicture(ctx context.Context, ok func(Picture) bool) (Picture, error) {
	return v.wait(ctx, false, ok)
}

// VideoBytes returns how many bytes of RTP payload the tab's video has
// brought so far (lost or undecodable packets included; headers not):
// what benchmarks divide by time to get a viewer's bandwidth.
func (v *Viewer) VideoBytes() int64 { return v.videoBytes.Load() }

// WaitScreen waits until a decoded picture of the shared screen (the
// m-line of Options.SeeScreen) satisfies ok, and returns it.
func (v *Viewer) WaitScreen(ctx context.Context, ok func(Picture) bool) (Picture, error) {
	return v.wait(ctx, true, ok)
}

// LastScreen returns the newest picture of the shared screen (Image nil
// before the first), and how many video tracks arrived on the screen
// m-line and on the others.
func (v *Viewer) LastScreen() (p Picture, screenTracks, otherTracks int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.screen, v.screens, v.tabs
}

func (v *Viewer) wait(ctx context.Context, screen bool, ok func(Picture) bool) (Picture, error) {
	for {
		v.mu.Lock()
		p, ch, ended, err := v.latest, v.changed, v.ended, v.err
		if screen {
			p = v.screen
		}
		v.mu.Unlock()
		if p.Image != nil && ok(p) {
			return p, nil
		}
		if ended != "" {
			return p, fmt.Errorf("%w: %s", ErrEnded, ended)
		}
		if err != nil {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("wait for picture: %w", ctx.Err())
		case <-ch:
		}
	}
}

// WaitEnded waits for the session's "ended" message and returns its reason.
func (v *Viewer) WaitEnded(ctx context.Context) (string, error) {
	for {
		v.mu.Lock()
		ended, ch := v.ended, v.changed
		v.mu.Unlock()
		if ended != "" {
			return ended, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-ch:
		}
	}
}

// Notices returns the DataChannel messages the worker sent so far.
func (v *Viewer) Notices() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.notices...)
}

// Send sends one input event: pointer moves on the unordered channel,
// everything else on the reliable one. It waits for the channel to open.
func (v *Viewer) Send(ctx context.Context, ev input.Event) error {
	select {
	case <-v.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	dc := v.input
	if ev.Kind == input.KindMouse && ev.Action == input.ActionMove {
		dc = v.pointer
	}
	return dc.Send(protocol.Encode(ev))
}

// Control sends a control message (protocol.ControlRequest, ...) on the
// reliable channel.
func (v *Viewer) Control(ctx context.Context, action string) error {
	select {
	case <-v.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return v.input.Send(protocol.Encode(protocol.Control{Type: protocol.TypeControl, Action: action}))
}

// SendMessage sends one message on the reliable channel: a protocol value
// (protocol.Annotate, protocol.Chat, ...) marshalled as JSON, or raw bytes
// as they are. It waits for the channel to open.
func (v *Viewer) SendMessage(ctx context.Context, msg any) error {
	select {
	case <-v.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	b, ok := msg.([]byte)
	if !ok {
		b = protocol.Encode(msg)
	}
	return v.input.Send(b)
}

// WaitNotice waits for a DataChannel message from the worker, from the
// from-th on (0 is the first), that ok accepts, and returns it with its
// index.
func (v *Viewer) WaitNotice(ctx context.Context, from int, ok func(string) bool) (string, int, error) {
	for {
		v.mu.Lock()
		notices, ch, ended := v.notices, v.changed, v.ended
		v.mu.Unlock()
		for i := max(from, 0); i < len(notices); i++ {
			if ok(notices[i]) {
				return notices[i], i, nil
			}
		}
		from = max(from, len(notices))
		if ended != "" {
			return "", 0, fmt.Errorf("%w: %s", ErrEnded, ended)
		}
		select {
		case <-ctx.Done():
			return "", 0, fmt.Errorf("wait for notice: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Click presses and releases the left button at (x, y) in remote viewport pixels.
func (v *Viewer) Click(ctx context.Context, x, y float64) error {
	for _, ev := range []input.Event{
		{Kind: input.KindMouse, Action: input.ActionMove, X: x, Y: y},
		{Kind: input.KindMouse, Action: input.ActionDown, X: x, Y: y, Button: input.ButtonLeft, Buttons: 1, Clicks: 1},
		{Kind: input.KindMouse, Action: input.ActionUp, X: x, Y: y, Button: input.ButtonLeft, Clicks: 1},
	} {
		if err := v.Send(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// renegotiatedDone hands the outcome of a restart to RestartICE, dropping
// it if nobody waits.
func (v *Viewer) renegotiatedDone(err error) {
	select {
	case v.renegotiated <- err:
	default:
	}
}

// RestartICE restarts ICE on the viewer's connection as a browser's
// restartIce() does: a new offer with fresh ICE credentials, sent marked
// "restart" so that the worker renegotiates this viewer's peer. It returns
// once the worker's answer is applied (or the worker refused the restart);
// the connection then reconnects on its own (see ConnectionState).
func (v *Viewer) RestartICE(ctx context.Context) error {
	v.restarting.Lock()
	defer v.restarting.Unlock()
	select { // a stale outcome of an earlier, abandoned restart
	case <-v.renegotiated:
	default:
	}
	offer, err := v.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return fmt.Errorf("restart offer: %w", err)
	}
	if err := v.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("apply restart offer: %w", err)
	}
	if err := v.sig.Send(ctx, protocol.Signal{Type: protocol.TypeOffer, SDP: offer.SDP, Restart: true}); err != nil {
		return fmt.Errorf("send restart offer: %w", err)
	}
	select {
	case err := <-v.renegotiated:
		return err
	case <-ctx.Done():
		return fmt.Errorf("wait for the restart answer: %w", ctx.Err())
	}
}

// RemoteICEUfrag is the ICE username fragment of the worker's current
// answer: a restart changes it.
func (v *Viewer) RemoteICEUfrag() string {
	d := v.pc.CurrentRemoteDescription()
	if d == nil {
		return ""
	}
	for _, line := range strings.Split(d.SDP, "\r\n") {
		if u, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// SendScreen sends one VP8 frame of duration d on the screen m-line
// (Options.ShareScreen), as a customer's browser sends its shared screen.
func (v *Viewer) SendScreen(frame []byte, d time.Duration) error {
	if v.screenOut == nil {
		return errors.New("botviewer: no screen m-line (Options.ShareScreen)")
	}
	return v.screenOut.WriteSample(pmedia.Sample{Data: frame, Duration: d})
}

// ScreenKeyFrameWanted returns a channel that receives when the worker
// asked (PLI or FIR) for a key frame of the screen SendScreen sends.
func (v *Viewer) ScreenKeyFrameWanted() <-chan struct{} { return v.screenPLI }

// readScreenRTCP reads the screen sender's RTCP until the connection closes.
func (v *Viewer) readScreenRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				select {
				case v.screenPLI <- struct{}{}:
				default:
				}
			}
		}
	}
}

// ConnectionState is the peer connection's state.
func (v *Viewer) ConnectionState() webrtc.PeerConnectionState { return v.pc.ConnectionState() }

// Close says bye, closes the peer connection and waits for the viewer's goroutines.
func (v *Viewer) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = v.sig.Send(ctx, protocol.Signal{Type: protocol.TypeBye})
	cancel()
	err := v.pc.Close()
	v.cancel()
	v.wg.Wait()
	return err
}

// Pixel returns the Y, U and V values at (x, y) of a picture.
func Pixel(img *media.Image, x, y int) (yy, u, vv byte) {
	return img.Y[y*img.StrideY+x], img.U[(y/2)*img.StrideUV+x/2], img.V[(y/2)*img.StrideUV+x/2]
}

// IsRed says whether a YUV pixel is saturated red (BT.601: V high, U low).
func IsRed(_, u, v byte) bool { return v > 190 && u < 130 }

// IsBlue says whether a YUV pixel is saturated blue (U high, V low).
func IsBlue(_, u, v byte) bool { return u > 190 && v < 140 }

// File is one file a viewer sends for the page's file chooser.
type File struct {
	Name string
	Data []byte
}

// fileChunk is the size of the binary messages of SendFiles.
const fileChunk = 16 << 10

// SendFiles sends files on the "files" DataChannel, as a customer's viewer
// does after picking them for the page's file chooser (docs/files.md); no
// files cancels the chooser. The channel is opened on first use.
func (v *Viewer) SendFiles(ctx context.Context, files []File) error {
	dc, err := v.filesChannel(ctx)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return dc.SendText(`{"type":"files_cancel"}`)
	}
	for _, f := range files {
		if err := dc.SendText(string(protocol.Encode(map[string]any{"type": "file", "name": f.Name, "size": len(f.Data)}))); err != nil {
			return err
		}
		for off := 0; off < len(f.Data); off += fileChunk {
			if err := dc.Send(f.Data[off:min(off+fileChunk, len(f.Data))]); err != nil {
				return err
			}
		}
	}
	return dc.SendText(`{"type":"files_done"}`)
}

func (v *Viewer) filesChannel(ctx context.Context) (*webrtc.DataChannel, error) {
	v.mu.Lock()
	dc, open := v.files, v.filesOpen
	if dc == nil {
		var err error
		if dc, err = v.pc.CreateDataChannel("files", nil); err != nil {
			v.mu.Unlock()
			return nil, err
		}
		open = make(chan struct{})
		v.files, v.filesOpen = dc, open
		dc.OnOpen(func() { close(open) })
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			v.mu.Lock()
			v.filesIn = append(v.filesIn, FileMessage{Text: m.IsString, Data: bytes.Clone(m.Data)})
			v.mu.Unlock()
		})
	}
	v.mu.Unlock()
	select {
	case <-open:
		return dc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// FileMessage is one message the worker sent on the "files" channel (a
// download's header, bytes or end).
type FileMessage struct {
	Text bool
	Data []byte
}

// OpenFiles opens the "files" channel, as a customer's page does when it
// connects, so that the worker can send it downloads.
func (v *Viewer) OpenFiles(ctx context.Context) error {
	_, err := v.filesChannel(ctx)
	return err
}

// FilesReceived returns what the worker sent on the "files" channel.
func (v *Viewer) FilesReceived() []FileMessage {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.filesIn)
}

// SendFileHeader announces one file of size bytes on the "files" channel
// and sends nothing more: tests of the worker's limits use it.
func (v *Viewer) SendFileHeader(ctx context.Context, name string, size int64) error {
	dc, err := v.filesChannel(ctx)
	if err != nil {
		return err
	}
	return dc.SendText(string(protocol.Encode(map[string]any{"type": "file", "name": name, "size": size})))
}
