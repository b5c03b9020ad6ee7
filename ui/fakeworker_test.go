package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	pmedia "github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// received is one DataChannel message from a viewer.
type received struct {
	Role     string
	Label    string
	Event    input.Event
	Control  string             // the action of a control message; Event is empty then
	Annotate *protocol.Annotate // an annotate message
	Chat     *protocol.Chat     // a chat message
	Navigate *protocol.Navigate // an address bar's navigation
	// Screenshare is a screen sharing message (docs/screenshare.md).
	Screenshare *protocol.Screenshare
}

// fakeWorker stands in for the worker behind the gateway: for each viewer
// WebSocket it sends hello, answers the offer with a pion PeerConnection,
// streams the current VP8 frame, and records what arrives on the channels.
type fakeWorker struct {
	wg sync.WaitGroup

	mu      sync.Mutex
	frame   []byte                  // VP8 key frame to stream; guarded by mu
	width   int                     // of frame; guarded by mu
	height  int                     // of frame; guarded by mu
	events  []received              // guarded by mu
	signals []protocol.Signal       // client signals, decoded; guarded by mu
	bad     []string                // messages the strict decoders refused; guarded by mu
	conns   map[*websocket.Conn]int // open sockets; guarded by mu
	inputs  []*webrtc.DataChannel   // "input" channels, newest last; guarded by mu
	held    map[string]bool         // roles that get no frame, as the real worker's gate; guarded by mu
	files   []fileMsg               // messages of "files" channels; guarded by mu
	// filesDCs are the customers' "files" channels, newest last; guarded by mu
	filesDCs []*webrtc.DataChannel
	nets     []*cutNet   // each peer's sockets, newest last; guarded by mu
	restart  restartMode // how ICE-restart offers are answered; guarded by mu
	// The shared screen (docs/screenshare.md): what a customer's page
	// sends on its second video m-line is decoded into screenPic; agents
	// get screenFrame (a VP8 key frame) on theirs while it is set.
	screenFrame  []byte        // guarded by mu
	screenPic    *pmedia.Image // guarded by mu; the newest decoded picture of a customer's screen
	screenPics   int           // guarded by mu; how many were decoded
	screenCodecs []string      // guarded by mu; the codec of each customer screen track
}

// restartMode is how the fake worker answers an ICE-restart offer.
type restartMode int

const (
	restartAnswer restartMode = iota // renegotiate the viewer's peer, as the worker does
	restartRefuse                    // answer "restart_failed"
	restartIgnore                    // answer nothing
)

// setRestart sets how later ICE-restart offers are answered.
func (w *fakeWorker) setRestart(m restartMode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restart = m
}

// cutICE breaks the newest peer's network path for good, as a network
// change does: its sockets open now drop every packet from now on, while
// the signaling socket stays up. Only sockets the peer opens later (an ICE
// restart gathers anew) carry packets again.
func (w *fakeWorker) cutICE() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.nets) == 0 {
		return errors.New("no peer")
	}
	w.nets[len(w.nets)-1].cut()
	return nil
}

// restartOffers counts the ICE-restart offers the viewers sent.
func (w *fakeWorker) restartOffers() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.signals {
		if s.Type == protocol.TypeOffer && s.Restart {
			n++
		}
	}
	return n
}

// cutNet is one fake peer's network: the system's, with every UDP socket
// it opens wrapped so that cut can silence the ones open at that moment.
type cutNet struct {
	*stdnet.Net

	mu    sync.Mutex
	conns []*cutConn // guarded by mu
}

func (n *cutNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	cc := &cutConn{UDPConn: c}
	n.mu.Lock()
	n.conns = append(n.conns, cc)
	n.mu.Unlock()
	return cc, nil
}

func (n *cutNet) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.dead.Store(true)
	}
}

// cutConn is a UDP socket that, once dead, drops what it would send and
// what it receives.
type cutConn struct {
	transport.UDPConn
	dead atomic.Bool
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.dead.Load() {
			return n, addr, err
		}
	}
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.dead.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

// newAPI returns the pion API of one peer, on its own cutNet.
func newAPI() (*webrtc.API, *cutNet, error) {
	sys, err := stdnet.NewNet()
	if err != nil {
		return nil, nil, err
	}
	n := &cutNet{Net: sys}
	var se webrtc.SettingEngine
	se.SetNet(n)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// As the real worker's (pkg/rtc): VP8 only, and the mid extension.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:ietf:params:rtp-hdrext:sdes:mid"}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)), n, nil
}

// setScreenFrame has agents' screen m-lines stream frame (nil: nothing).
func (w *fakeWorker) setScreenFrame(frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.screenFrame = frame
}

// screen returns the newest decoded picture of a customer's screen and how
// many were decoded.
func (w *fakeWorker) screen() (*pmedia.Image, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.screenPic, w.screenPics
}

// sendDownload sends a download on the newest customer's "files" channel,
// as the worker does: header, bytes in pieces, end.
func (w *fakeWorker) sendDownload(name, mime string, data []byte) error {
	w.mu.Lock()
	var dc *webrtc.DataChannel
	if n := len(w.filesDCs); n > 0 {
		dc = w.filesDCs[n-1]
	}
	w.mu.Unlock()
	if dc == nil {
		return errors.New("no files channel")
	}
	head, _ := json.Marshal(map[string]any{"type": "download", "name": name, "size": len(data), "mime": mime})
	if err := dc.SendText(string(head)); err != nil {
		return err
	}
	for off := 0; off < len(data); off += 7 {
		if err := dc.Send(data[off:min(off+7, len(data))]); err != nil {
			return err
		}
	}
	return dc.SendText(`{"type":"download_done"}`)
}

// fileMsg is one message of a viewer's "files" channel.
type fileMsg struct {
	role string
	text bool
	data []byte
}

// fileMessages returns the "files" messages from index from on.
func (w *fakeWorker) fileMessages(from int) []fileMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	if from >= len(w.files) {
		return nil
	}
	return append([]fileMsg(nil), w.files[from:]...)
}

func newFakeWorker() *fakeWorker {
	return &fakeWorker{conns: map[*websocket.Conn]int{}}
}

func (w *fakeWorker) setFrame(frame []byte, width, height int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frame, w.width, w.height = frame, width, height
}

// hold stops (true) or resumes (false) the frames of role's viewers.
func (w *fakeWorker) hold(role string, held bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held == nil {
		w.held = map[string]bool{}
	}
	w.held[role] = held
}

func (w *fakeWorker) accept(rw http.ResponseWriter, r *http.Request) {
	role := r.URL.Query().Get("role")
	if role != "customer" && role != "agent" {
		http.Error(rw, "bad role", http.StatusBadRequest)
		return
	}
	conn, err := websocket.Accept(rw, r, nil)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.conns[conn] = 1
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.serve(conn, role)
		w.mu.Lock()
		delete(w.conns, conn)
		w.mu.Unlock()
	}()
}

// close ends every viewer and waits for their goroutines.
func (w *fakeWorker) close() {
	w.mu.Lock()
	for c := range w.conns {
		_ = c.CloseNow()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// end sends "ended" to every viewer, as the gateway does when a session ends.
func (w *fakeWorker) end(reason string) {
	w.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Write(ctx, websocket.MessageText, protocol.Encode(protocol.Signal{Type: protocol.TypeEnded, Reason: reason}))
		cancel()
		_ = c.Close(websocket.StatusNormalClosure, "ended")
	}
}

// notice sends a worker notice on the newest "input" channel.
func (w *fakeWorker) notice(n protocol.Notice) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inputs) == 0 {
		return errors.New("no input channel")
	}
	return w.inputs[len(w.inputs)-1].SendText(string(protocol.Encode(n)))
}

func (w *fakeWorker) serve(conn *websocket.Conn, role string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer conn.CloseNow()
	var sendMu sync.Mutex
	send := func(s protocol.Signal) {
		sendMu.Lock()
		defer sendMu.Unlock()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		_ = conn.Write(wctx, websocket.MessageText, protocol.Encode(s))
	}
	// Our candidates wait while an offer is answered, as signaling.Host
	// holds them: the page takes them only after the answer.
	var (
		holdMu    sync.Mutex
		answering bool
		held      []protocol.Signal
	)
	sendCandidate := func(s protocol.Signal) {
		holdMu.Lock()
		if answering {
			held = append(held, s)
			holdMu.Unlock()
			return
		}
		holdMu.Unlock()
		send(s)
	}
	hold := func() {
		holdMu.Lock()
		answering = true
		holdMu.Unlock()
	}
	release := func() {
		holdMu.Lock()
		out := held
		answering, held = false, nil
		holdMu.Unlock()
		for _, s := range out {
			send(s)
		}
	}
	w.mu.Lock()
	width, height := w.width, w.height
	w.mu.Unlock()
	send(protocol.Signal{Type: protocol.TypeHello, Role: role, ViewerID: "v_test", Width: width, Height: height})

	var pc *webrtc.PeerConnection
	var frames sync.WaitGroup
	defer func() {
		cancel()
		if pc != nil {
			_ = pc.Close()
		}
		frames.Wait()
	}()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		sig, err := protocol.DecodeClientSignal(data)
		w.mu.Lock()
		if err != nil {
			w.bad = append(w.bad, fmt.Sprintf("signal %s: %v", data, err))
		} else {
			w.signals = append(w.signals, sig)
		}
		w.mu.Unlock()
		if err != nil {
			continue
		}
		switch sig.Type {
		case protocol.TypeOffer:
			if sig.Restart {
				w.mu.Lock()
				mode := w.restart
				w.mu.Unlock()
				switch {
				case mode == restartIgnore:
				case mode == restartRefuse || pc == nil:
					send(protocol.Signal{Type: protocol.TypeError, Error: "restart_failed", Message: "The connection could not be restarted."})
				default:
					hold()
					answer, err := renegotiate(pc, sig.SDP)
					if err != nil {
						w.mu.Lock()
						w.bad = append(w.bad, "restart: "+err.Error())
						w.mu.Unlock()
						return
					}
					send(protocol.Signal{Type: protocol.TypeAnswer, SDP: answer})
					release()
				}
				continue
			}
			if pc != nil {
				continue
			}
			hold()
			pc, err = w.answer(ctx, role, sig.SDP, send, sendCandidate, &frames)
			release()
			if err != nil {
				w.mu.Lock()
				w.bad = append(w.bad, "answer: "+err.Error())
				w.mu.Unlock()
				return
			}
		case protocol.TypeCandidate:
			if pc != nil {
				_ = pc.AddICECandidate(webrtc.ICECandidateInit{
					Candidate: sig.Candidate.Candidate, SDPMid: sig.Candidate.SDPMid, SDPMLineIndex: sig.Candidate.SDPMLineIndex,
				})
			}
		case protocol.TypeBye:
			return
		}
	}
}

// renegotiate applies an ICE-restart offer to the viewer's peer and returns
// the answer: pion restarts ICE when the offer's credentials change.
func renegotiate(pc *webrtc.PeerConnection, sdp string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", err
	}
	return pc.LocalDescription().SDP, nil
}

// answer makes the worker's peer for one viewer's offer.
func (w *fakeWorker) answer(ctx context.Context, role, sdp string, send, sendCandidate func(protocol.Signal), frames *sync.WaitGroup) (*webrtc.PeerConnection, error) {
	api, cn, err := newAPI()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.nets = append(w.nets, cn)
	w.mu.Unlock()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		sendCandidate(protocol.Signal{Type: protocol.TypeCandidate, Candidate: &protocol.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex,
		}})
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		label := dc.Label()
		if label == "files" {
			w.mu.Lock()
			w.filesDCs = append(w.filesDCs, dc)
			w.mu.Unlock()
			dc.OnMessage(func(msg webrtc.DataChannelMessage) {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.files = append(w.files, fileMsg{role: role, text: msg.IsString, data: msg.Data})
			})
			return
		}
		if label == "input" {
			w.mu.Lock()
			w.inputs = append(w.inputs, dc)
			w.mu.Unlock()
		}
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			m, err := protocol.DecodeViewerMessage(msg.Data)
			w.mu.Lock()
			defer w.mu.Unlock()
			if err == nil && (m.Control != nil || m.Annotate != nil || m.Chat != nil || m.Navigate != nil || m.Screenshare != nil) && label != "input" {
				err = errors.New("a control, annotate, chat, navigate or screenshare message on the pointer channel")
			}
			if err != nil {
				w.bad = append(w.bad, fmt.Sprintf("%s %s: %v", label, msg.Data, err))
				return
			}
			r := received{Role: role, Label: label, Event: m.Event, Annotate: m.Annotate, Chat: m.Chat, Navigate: m.Navigate, Screenshare: m.Screenshare}
			if m.Control != nil {
				r.Control = m.Control.Action
			}
			w.events = append(w.events, r)
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return pc, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "tandem")
	if err != nil {
		return pc, err
	}
	if _, err := pc.AddTrack(track); err != nil {
		return pc, err
	}
	// The second video m-line: an agent's gets the screen, a customer's
	// screen is decoded (as the real worker relays it).
	var screen *webrtc.TrackLocalStaticSample
	if role == "agent" && w.secondVideo(pc) {
		if screen, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "tandem-screen"); err != nil {
			return pc, err
		}
		if _, err := pc.AddTrack(screen); err != nil {
			return pc, err
		}
	}
	if role == "customer" {
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			w.mu.Lock()
			w.screenCodecs = append(w.screenCodecs, tr.Codec().MimeType)
			w.mu.Unlock()
			frames.Add(1)
			go func() {
				defer frames.Done()
				w.decodeScreen(pc, tr)
			}()
		})
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return pc, err
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return pc, err
	}
	send(protocol.Signal{Type: protocol.TypeAnswer, SDP: pc.LocalDescription().SDP})
	frames.Add(1)
	go func() {
		defer frames.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			w.mu.Lock()
			frame, screenFrame := w.frame, w.screenFrame
			if w.held[role] {
				frame = nil
			}
			w.mu.Unlock()
			if len(frame) > 0 {
				_ = track.WriteSample(media.Sample{Data: frame, Duration: 200 * time.Millisecond})
			}
			if screen != nil && len(screenFrame) > 0 {
				_ = screen.WriteSample(media.Sample{Data: screenFrame, Duration: 200 * time.Millisecond})
			}
		}
	}()
	return pc, nil
}

// secondVideo says whether the offer applied to pc has a second video
// m-line without a sender yet (a page that offers the screen's).
func (w *fakeWorker) secondVideo(pc *webrtc.PeerConnection) bool {
	n := 0
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo && tr.Sender() == nil {
			n++
		}
	}
	return n >= 1 // the tab's has its sender already
}

// decodeScreen decodes a customer's screen as its VP8 frames complete,
// asking for a key frame first (PLI) as the real worker does for agents.
func (w *fakeWorker) decodeScreen(pc *webrtc.PeerConnection, tr *webrtc.TrackRemote) {
	dec, err := pmedia.NewVP8Decoder()
	if err != nil {
		return
	}
	defer dec.Close() //nolint:errcheck
	_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
	var (
		frame  []byte
		intact bool
		next   uint16
		vp8    codecs.VP8Packet
	)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		payload, err := vp8.Unmarshal(pkt.Payload)
		if err != nil {
			intact = false
			continue
		}
		if vp8.S == 1 && vp8.PID == 0 {
			frame, intact = frame[:0], true
		} else if pkt.SequenceNumber != next {
			intact = false
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
			_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
			continue
		}
		w.mu.Lock()
		w.screenPic = img
		w.screenPics++
		w.mu.Unlock()
	}
}

// waitEvent polls for the first event after *from that matches, and moves
// *from past it.
func (w *fakeWorker) waitEvent(t *testing.T, from *int, what string, match func(received) bool) received {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.mu.Lock()
		for i := *from; i < len(w.events); i++ {
			if match(w.events[i]) {
				*from = i + 1
				ev := w.events[i]
				w.mu.Unlock()
				return ev
			}
		}
		n := len(w.events)
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s among %d events after %d: %+v", what, n, *from, w.eventsSince(*from))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *fakeWorker) eventsSince(from int) []received {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]received(nil), w.events[min(from, len(w.events)):]...)
}

func (w *fakeWorker) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// checkClean fails the test if a viewer sent a message the strict decoders
// of pkg/protocol refused.
func (w *fakeWorker) checkClean(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.bad {
		t.Errorf("viewer sent a bad message: %s", b)
	}
}

func (w *fakeWorker) signalCount(typ string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.signals {
		if s.Type == typ {
			n++
		}
	}
	return n
}
