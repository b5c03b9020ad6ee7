package rtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// DataChannel labels, created by the viewer in its offer (docs/protocol.md).
const (
	LabelInput   = "input"   // ordered, reliable: clicks, keys, wheel, text, viewport
	LabelPointer = "pointer" // unordered, maxRetransmits 0: pointer moves
	LabelFiles   = "files"   // ordered, reliable: files a customer picked (PeerConfig.OnFile), and downloads (SendFile)
)

// MaxFileMessage bounds one message of the "files" DataChannel.
const MaxFileMessage = 64 << 10

// ErrNoVideo is returned by Peer.Answer when the offer has no video
// transceiver to carry the role's track.
var ErrNoVideo = errors.New("rtc: offer has no video transceiver")

// screenKeyFrameEvery spaces the PLIs sent to a viewer that shares its
// screen: every agent's decoder asks when it starts or loses a packet, and
// one key frame answers them all.
const screenKeyFrameEvery = 500 * time.Millisecond

// eventQueue is how many callbacks may wait for the dispatch goroutine before
// pion's goroutines wait too (pointer moves are dropped instead).
const eventQueue = 64

// PeerConfig describes one viewer's peer. Callbacks may be nil. They run on
// the peer's own dispatch goroutine, one at a time and in the order pion
// reported the events, never on pion's goroutines. A callback must not call
// Peer.Close (Close waits for that goroutine); hand the decision to another
// goroutine instead.
type PeerConfig struct {
	ViewerID, Role string
	// Track is the role's shared track, sent to the viewer (sendonly).
	Track webrtc.TrackLocal
	// OnInput receives a raw message from the "input" or "pointer"
	// DataChannel, at most protocol.MaxInputBytes long; the slice is the
	// callee's. Pointer messages are dropped when the queue is full.
	OnInput func(data []byte)
	// OnFile, when set, accepts a "files" DataChannel and receives its
	// messages (text: JSON; binary: file data), at most MaxFileMessage
	// long, in order; the slice is the callee's. Without it the channel
	// is refused.
	OnFile func(data []byte, binary bool)
	// OnKeyFrame asks for a key frame: after a PLI or FIR from this viewer,
	// and when the connection reaches "connected" (a key frame written
	// before DTLS is up is lost). Requests that arrive while one is pending
	// are merged.
	OnKeyFrame func()
	// OnLoss, when set, receives the fraction (0 to 1) of the role's
	// packets the viewer lost since its previous receiver report, about
	// once a second. It runs on the peer's RTCP reading goroutine, not
	// the dispatch goroutine, and must not block.
	OnLoss func(fraction float64)
	// OnCandidate receives our trickled ICE candidates (not the end of
	// gathering).
	OnCandidate func(protocol.Candidate)
	// OnState receives the peer connection's state changes.
	OnState func(webrtc.PeerConnectionState)

	// Screen sharing (docs/screenshare.md) uses each viewer's second video
	// m-line: an agent's is recvonly and carries ScreenTrack; a customer's
	// is sendonly and carries its screen, once shared, to OnScreenRTP. A
	// viewer whose offer lacks it (an older page) shares nothing and sees
	// no screen (HasScreen).

	// ScreenTrack is the session's shared screen track (API.NewScreenTrack),
	// sent to an agent on its second video m-line; nil for customers.
	ScreenTrack webrtc.TrackLocal
	// OnScreenKeyFrame asks for a key frame of the shared screen: after a
	// PLI or FIR on ScreenTrack, and when the connection reaches
	// "connected". Requests are merged like OnKeyFrame's.
	OnScreenKeyFrame func()
	// OnScreenRTP, for customers, receives each RTP packet of the video
	// the viewer sends on its second video m-line. It is the media path:
	// it runs on the peer's screen reading goroutine, not the dispatch
	// goroutine, in arrival order, and must not block; the packet is the
	// callee's.
	OnScreenRTP func(*rtp.Packet)
}

type eventKind int

const (
	evInput eventKind = iota
	evFile
	evCandidate
	evState
)

// event is one pion callback handed to the dispatch goroutine.
type event struct {
	kind   eventKind
	data   []byte
	binary bool // evFile
	cand   protocol.Candidate
	state  webrtc.PeerConnectionState
}

// Peer is one viewer's PeerConnection on the worker. NewPeer starts its
// dispatch goroutine; Answer starts the RTCP read loop of the track's sender.
// Close stops both and waits for them. Methods are safe for concurrent use.
type Peer struct {
	cfg   PeerConfig
	pc    *webrtc.PeerConnection
	log   *zap.Logger
	peers peerPolicy // which of the viewer's candidate addresses are allowed

	droppedCandidates atomic.Int64 // viewer candidates refused by candidateAllowed

	events    chan event    // pion callbacks → dispatch goroutine
	keyFrame  chan struct{} // cap 1: a pending key-frame request
	closed    chan struct{} // closed by Close
	negotiate chan struct{} // cap 1: held by the negotiation in progress

	screenKey chan struct{} // cap 1: a pending screen key-frame request

	mu          sync.Mutex
	isClosed    bool                // guarded by mu; no goroutine starts once set
	input       *webrtc.DataChannel // guarded by mu; the open "input" channel
	sawInput    bool                // guarded by mu; an "input" channel arrived
	sawPointer  bool                // guarded by mu; a "pointer" channel arrived
	sawFiles    bool                // guarded by mu; a "files" channel arrived
	files       *webrtc.DataChannel // guarded by mu; the open "files" channel
	trackSender *webrtc.RTPSender   // guarded by mu; set by the first Answer
	hasScreen   bool                // guarded by mu; the offer has the screen m-line of the viewer's role
	screenRecv  *webrtc.RTPReceiver // guarded by mu; a customer's screen m-line
	screenSSRC  uint32              // guarded by mu; of the customer's screen video, once it arrived
	screenPLI   time.Time           // guarded by mu; when the last PLI went to the customer

	wg        sync.WaitGroup // dispatch, negotiations, RTCP loop
	closeOnce sync.Once
	closeErr  error
}

// NewPeer creates a viewer's PeerConnection and starts its dispatch
// goroutine. The caller must Close the Peer.
func (a *API) NewPeer(cfg PeerConfig) (*Peer, error) {
	if cfg.Track == nil {
		return nil, fmt.Errorf("%w: peer for viewer %s has no track", ErrInvalidConfig, cfg.ViewerID)
	}
	pc, err := a.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   a.iceServers,
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection for viewer %s: %w", cfg.ViewerID, err)
	}
	p := &Peer{
		cfg:       cfg,
		pc:        pc,
		peers:     a.peers,
		log:       a.log.With(zap.String("viewer_id", cfg.ViewerID), zap.String("role", cfg.Role)),
		events:    make(chan event, eventQueue),
		keyFrame:  make(chan struct{}, 1),
		closed:    make(chan struct{}),
		negotiate: make(chan struct{}, 1),
		screenKey: make(chan struct{}, 1),
	}
	pc.OnICECandidate(p.onICECandidate)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(p.onStateChange)
	pc.OnDataChannel(p.onDataChannel)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.dispatch()
	}()
	return p, nil
}

// goTracked runs f on a goroutine that Close waits for, unless the peer is
// closed.
func (p *Peer) goTracked(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// Answer applies the viewer's offer, adds the role's track to the viewer's
// video transceiver, and returns our answer. Candidates are trickled to
// OnCandidate; Answer does not wait for gathering. If ctx ends first, Answer
// returns its error and the negotiation finishes (or fails) on its own.
// A later offer renegotiates the same connection.
func (p *Peer) Answer(ctx context.Context, offerSDP string) (string, error) {
	type result struct {
		sdp string
		err error
	}
	done := make(chan result, 1)
	if !p.goTracked(func() {
		sdp, err := p.answer(offerSDP)
		done <- result{sdp, err}
	}) {
		return "", ErrClosed
	}
	select {
	case r := <-done:
		return r.sdp, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("answer viewer %s: %w", p.cfg.ViewerID, ctx.Err())
	}
}

// answer runs one negotiation; negotiations are serialized by p.negotiate.
func (p *Peer) answer(offerSDP string) (string, error) {
	select {
	case p.negotiate <- struct{}{}:
		defer func() { <-p.negotiate }()
	case <-p.closed:
		return "", ErrClosed
	}
	// Candidates in the offer get the same check as trickled ones.
	offerSDP, dropped := filterSDP(offerSDP, p.peers)
	p.dropCandidates(dropped)
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{
		Type: webrtc.SDPTypeOffer, SDP: offerSDP,
	}); err != nil {
		return "", fmt.Errorf("apply offer of viewer %s: %w", p.cfg.ViewerID, err)
	}
	if err := p.addTrack(); err != nil {
		return "", err
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer for viewer %s: %w", p.cfg.ViewerID, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("apply answer for viewer %s: %w", p.cfg.ViewerID, err)
	}
	local := p.pc.LocalDescription()
	if local == nil {
		return "", fmt.Errorf("answer for viewer %s: %w", p.cfg.ViewerID, ErrClosed)
	}
	return local.SDP, nil
}

// addTrack attaches the role's track to the first video m-line of the
// first offer, and the screen to the second (an agent's: ScreenTrack; a
// customer's: its screen comes in there), and starts the senders' RTCP
// read loops.
func (p *Peer) addTrack() error {
	p.mu.Lock()
	added := p.trackSender != nil
	p.mu.Unlock()
	if added {
		return nil
	}
	var video []*webrtc.RTPTransceiver
	for _, t := range p.pc.GetTransceivers() {
		if t.Kind() == webrtc.RTPCodecTypeVideo && t.Mid() != "" && t.Sender() == nil {
			video = append(video, t)
		}
	}
	if len(video) == 0 {
		return fmt.Errorf("viewer %s: %w", p.cfg.ViewerID, ErrNoVideo)
	}
	// AddTrack takes the first video transceiver without a sender: the
	// viewer's first video m-line, then its second.
	sender, err := p.pc.AddTrack(p.cfg.Track)
	if err != nil {
		return fmt.Errorf("add track for viewer %s: %w", p.cfg.ViewerID, err)
	}
	var screenSender *webrtc.RTPSender
	var screenRecv *webrtc.RTPReceiver
	if len(video) > 1 {
		// Our direction is the reverse of the viewer's: sendonly where it
		// receives, recvonly where it sends.
		switch dir := video[1].Direction(); {
		case p.cfg.ScreenTrack != nil && dir == webrtc.RTPTransceiverDirectionSendonly:
			if screenSender, err = p.pc.AddTrack(p.cfg.ScreenTrack); err != nil {
				return fmt.Errorf("add screen track for viewer %s: %w", p.cfg.ViewerID, err)
			}
		case p.cfg.OnScreenRTP != nil && dir == webrtc.RTPTransceiverDirectionRecvonly:
			screenRecv = video[1].Receiver()
		}
	}
	p.mu.Lock()
	p.trackSender = sender
	p.hasScreen = screenSender != nil || screenRecv != nil
	p.screenRecv = screenRecv
	p.mu.Unlock()
	if !p.goTracked(func() { p.readRTCP(sender, p.requestKeyFrame, p.cfg.OnLoss) }) {
		return ErrClosed
	}
	if screenSender != nil && !p.goTracked(func() { p.readRTCP(screenSender, p.requestScreenKeyFrame, nil) }) {
		return ErrClosed
	}
	return nil
}

// HasScreen says whether the viewer's offer has the screen m-line of its
// role: an agent can be sent the shared screen, a customer can share one.
func (p *Peer) HasScreen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hasScreen
}

// onTrack runs on a pion goroutine when the viewer's video arrives. Only a
// customer's screen m-line is read (to OnScreenRTP); anything else a
// viewer sends is left unread, and pion drops it when its buffer is full.
func (p *Peer) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	p.mu.Lock()
	mine := p.screenRecv != nil && p.screenRecv == recv && p.screenSSRC == 0
	if mine {
		p.screenSSRC = uint32(tr.SSRC())
	}
	p.mu.Unlock()
	if !mine {
		return
	}
	p.goTracked(func() {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return // the peer closed
			}
			p.cfg.OnScreenRTP(pkt)
		}
	})
	p.RequestScreenKeyFrame() // agents may be waiting for a picture
}

// RequestScreenKeyFrame asks a customer's browser for a key frame of the
// screen it shares (an RTCP PLI, RFC 4585 6.3.1), at most once every
// screenKeyFrameEvery; requests in between are dropped, since the key
// frame that answers the last one serves them too. It does nothing before
// the screen's video arrived.
func (p *Peer) RequestScreenKeyFrame() {
	now := time.Now()
	p.mu.Lock()
	ssrc := p.screenSSRC
	if p.isClosed || ssrc == 0 || now.Sub(p.screenPLI) < screenKeyFrameEvery {
		p.mu.Unlock()
		return
	}
	p.screenPLI = now
	p.mu.Unlock()
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		p.log.Debug("send pli for the shared screen", zap.Error(err))
	}
}

// readRTCP reads the sender's RTCP until the sender stops. Reading is what
// lets the NACK responder see NACKs; PLI and FIR become key-frame requests
// (keyFrame), and receiver reports on the sender's stream go to loss when
// set.
func (p *Peer) readRTCP(sender *webrtc.RTPSender, keyFrame func(), loss func(float64)) {
	var ssrc uint32
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue // a malformed compound packet; the next one may be fine
		}
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				keyFrame()
			case *rtcp.ReceiverReport:
				reportLoss(pkt.Reports, ssrc, loss)
			case *rtcp.SenderReport: // a viewer that also sends (a shared screen) reports in its SR
				reportLoss(pkt.Reports, ssrc, loss)
			}
		}
	}
}

// AddCandidate applies one of the viewer's trickled ICE candidates. An empty
// candidate string marks the end of the viewer's candidates. A candidate
// to a reserved address, an mDNS name or one that does not parse is
// dropped without an error (docs/media-network.md); the ICE agent checks
// the address again, and checks peer-reflexive ones too.
func (p *Peer) AddCandidate(c protocol.Candidate) error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	if !candidateAllowed(c.Candidate, p.peers) {
		p.dropCandidates(1)
		return nil
	}
	if err := p.pc.AddICECandidate(webrtc.ICECandidateInit{
		Candidate:        c.Candidate,
		SDPMid:           c.SDPMid,
		SDPMLineIndex:    c.SDPMLineIndex,
		UsernameFragment: c.UsernameFragment,
	}); err != nil {
		return fmt.Errorf("add candidate of viewer %s: %w", p.cfg.ViewerID, err)
	}
	return nil
}

// dropCandidates counts n refused viewer candidates.
func (p *Peer) dropCandidates(n int) {
	if n == 0 {
		return
	}
	p.droppedCandidates.Add(int64(n))
	if ce := p.log.Check(zap.DebugLevel, "dropped viewer ice candidates"); ce != nil {
		ce.Write(zap.Int("candidates", n))
	}
}

// DroppedCandidates returns how many of the viewer's candidates (trickled
// or in its offers) were refused.
func (p *Peer) DroppedCandidates() int64 { return p.droppedCandidates.Load() }

// Send sends msg as a text message to the viewer on the "input"
// DataChannel. It returns ErrNotOpen while that channel is not open.
func (p *Peer) Send(msg []byte) error {
	p.mu.Lock()
	dc, closed := p.input, p.isClosed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrNotOpen
	}
	if err := dc.SendText(string(msg)); err != nil {
		return fmt.Errorf("send to viewer %s: %w", p.cfg.ViewerID, err)
	}
	return nil
}

// File sizes of SendFile: its chunks, and how much may wait in the
// channel's buffer before it waits for the viewer.
const (
	fileChunk    = 16 << 10
	fileBuffered = 1 << 20
)

// SendFile sends a file on the viewer's "files" DataChannel: header (a
// text message), then r's bytes in binary messages of 16 KB, waiting while
// more than 1 MB is queued, then trailer (text). ErrNotOpen: the viewer
// has no open "files" channel.
func (p *Peer) SendFile(ctx context.Context, header []byte, r io.Reader, trailer []byte) error {
	p.mu.Lock()
	dc, closed := p.files, p.isClosed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrNotOpen
	}
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(fileBuffered / 2)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	defer dc.OnBufferedAmountLow(nil)
	if err := dc.SendText(string(header)); err != nil {
		return fmt.Errorf("send file to viewer %s: %w", p.cfg.ViewerID, err)
	}
	buf := make([]byte, fileChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			for dc.BufferedAmount() > fileBuffered {
				select {
				case <-low:
				case <-time.After(100 * time.Millisecond): // the event can come before we wait
				case <-ctx.Done():
					return fmt.Errorf("send file to viewer %s: %w", p.cfg.ViewerID, ctx.Err())
				case <-p.closed:
					return ErrClosed
				}
			}
			if err := dc.Send(buf[:n]); err != nil {
				return fmt.Errorf("send file to viewer %s: %w", p.cfg.ViewerID, err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read file for viewer %s: %w", p.cfg.ViewerID, rerr)
		}
	}
	if err := dc.SendText(string(trailer)); err != nil {
		return fmt.Errorf("send file to viewer %s: %w", p.cfg.ViewerID, err)
	}
	return nil
}

// InputOpen says whether the "input" DataChannel is open: Send delivers
// now.
func (p *Peer) InputOpen() bool {
	p.mu.Lock()
	dc, closed := p.input, p.isClosed
	p.mu.Unlock()
	return !closed && dc != nil && dc.ReadyState() == webrtc.DataChannelStateOpen
}

// Close closes the PeerConnection and waits for the peer's goroutines: the
// dispatch goroutine (so no callback runs after Close returns), pending
// negotiations and the RTCP read loop. It is idempotent and must not be
// called from a PeerConfig callback.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.isClosed = true
		p.input = nil
		p.mu.Unlock()
		close(p.closed)
		if err := p.pc.Close(); err != nil {
			p.closeErr = fmt.Errorf("close peer of viewer %s: %w", p.cfg.ViewerID, err)
		}
		p.wg.Wait()
	})
	return p.closeErr
}

// dispatch runs the callbacks until Close.
func (p *Peer) dispatch() {
	for {
		select {
		case <-p.closed:
			return
		case <-p.keyFrame:
			if p.cfg.OnKeyFrame != nil {
				p.cfg.OnKeyFrame()
			}
		case <-p.screenKey:
			if p.cfg.OnScreenKeyFrame != nil {
				p.cfg.OnScreenKeyFrame()
			}
		case ev := <-p.events:
			p.deliver(ev)
		}
	}
}

func (p *Peer) deliver(ev event) {
	switch ev.kind {
	case evInput:
		if p.cfg.OnInput != nil {
			p.cfg.OnInput(ev.data)
		}
	case evFile:
		p.cfg.OnFile(ev.data, ev.binary)
	case evCandidate:
		if p.cfg.OnCandidate != nil {
			p.cfg.OnCandidate(ev.cand)
		}
	case evState:
		if p.cfg.OnState != nil {
			p.cfg.OnState(ev.state)
		}
	}
}

// post hands an event to the dispatch goroutine, waiting while the queue is
// full unless the peer closes.
func (p *Peer) post(ev event) {
	select {
	case p.events <- ev:
	case <-p.closed:
	}
}

func (p *Peer) requestKeyFrame() {
	select {
	case p.keyFrame <- struct{}{}:
	default: // one is pending already
	}
}

func (p *Peer) requestScreenKeyFrame() {
	select {
	case p.screenKey <- struct{}{}:
	default: // one is pending already
	}
}

// onICECandidate runs on a pion goroutine.
func (p *Peer) onICECandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering: not sent
	}
	init := c.ToJSON()
	p.post(event{kind: evCandidate, cand: protocol.Candidate{
		Candidate:     init.Candidate,
		SDPMid:        init.SDPMid,
		SDPMLineIndex: init.SDPMLineIndex,
	}})
}

// onStateChange runs on a pion goroutine.
func (p *Peer) onStateChange(s webrtc.PeerConnectionState) {
	p.log.Info("peer connection state", zap.Stringer("state", s))
	p.post(event{kind: evState, state: s})
	if s == webrtc.PeerConnectionStateConnected {
		p.requestKeyFrame()
		p.requestScreenKeyFrame()
	}
}

// onDataChannel runs on pion's SCTP goroutine. It accepts one "input",
// one "pointer" and, with OnFile, one "files" channel and closes anything
// else.
func (p *Peer) onDataChannel(dc *webrtc.DataChannel) {
	label := dc.Label()
	p.mu.Lock()
	var dup bool
	known := true
	switch label {
	case LabelInput:
		dup, p.sawInput = p.sawInput, true
	case LabelPointer:
		dup, p.sawPointer = p.sawPointer, true
	case LabelFiles:
		dup, p.sawFiles = p.sawFiles, true
		known = p.cfg.OnFile != nil
	default:
		known = false
	}
	p.mu.Unlock()
	if dup || !known {
		p.log.Warn("refused data channel", zap.String("label", label), zap.Bool("duplicate", dup))
		if err := dc.Close(); err != nil {
			p.log.Debug("close refused data channel", zap.Error(err))
		}
		return
	}
	if label == LabelFiles {
		dc.OnOpen(func() {
			p.mu.Lock()
			if !p.isClosed {
				p.files = dc
			}
			p.mu.Unlock()
		})
		dc.OnClose(func() {
			p.mu.Lock()
			if p.files == dc {
				p.files = nil
			}
			p.mu.Unlock()
		})
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if len(m.Data) > MaxFileMessage {
				p.log.Debug("dropped oversized file message", zap.Int("bytes", len(m.Data)))
				return
			}
			p.post(event{kind: evFile, data: bytes.Clone(m.Data), binary: !m.IsString})
		})
		return
	}
	reliable := label == LabelInput
	if reliable {
		dc.OnOpen(func() {
			p.mu.Lock()
			if !p.isClosed {
				p.input = dc
			}
			p.mu.Unlock()
		})
		dc.OnClose(func() {
			p.mu.Lock()
			if p.input == dc {
				p.input = nil
			}
			p.mu.Unlock()
		})
	}
	dc.OnMessage(func(m webrtc.DataChannelMessage) { p.onMessage(m.Data, reliable) })
}

// onMessage runs on pion's channel read goroutine. Messages of the reliable
// channel wait for room in the queue (SCTP flow control then slows the
// viewer down); pointer moves are dropped when it is full.
func (p *Peer) onMessage(data []byte, reliable bool) {
	if len(data) > protocol.MaxInputBytes {
		if ce := p.log.Check(zap.DebugLevel, "dropped oversized data channel message"); ce != nil {
			ce.Write(zap.Int("bytes", len(data)))
		}
		return
	}
	ev := event{kind: evInput, data: bytes.Clone(data)}
	if reliable {
		p.post(ev)
		return
	}
	select {
	case p.events <- ev:
	default:
	}
}

// reportLoss hands loss the fraction lost of each report on ssrc.
func reportLoss(reports []rtcp.ReceptionReport, ssrc uint32, loss func(float64)) {
	if loss == nil {
		return
	}
	for _, r := range reports {
		if r.SSRC == ssrc {
			loss(float64(r.FractionLost) / 256)
		}
	}
}
