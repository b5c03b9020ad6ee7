package ui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
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
	api *webrtc.API
	wg  sync.WaitGroup

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
	// The shared screen (docs/screenshare.md): what a customer's page
	// sends on its second video m-line is decoded into screenPic; agents
	// get screenFrame (a VP8 key frame) on theirs while it is set.
	screenFrame  []byte        // guarded by mu
	screenPic    *pmedia.Image // guarded by mu; the newest decoded picture of a customer's screen
	screenPics   int           // guarded by mu; how many were decoded
	screenCodecs []string      // guarded by mu; the codec of each customer screen track
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
	var se webrtc.SettingEngine
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
		panic(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:ietf:params:rtp-hdrext:sdes:mid"}, webrtc.RTPCodecTypeVideo); err != nil {
		panic(err)
	}
	return &fakeWorker{
		api:   webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)),
		conns: map[*websocket.Conn]int{},
	}
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
	send := func(s protocol.Signal) {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		_ = conn.Write(wctx, websocket.MessageText, protocol.Encode(s))
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
			if pc != nil {
				continue
			}
			pc, err = w.answer(ctx, role, sig.SDP, send, &frames)
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

// answer makes the worker's peer for one viewer's offer.
func (w *fakeWorker) answer(ctx context.Context, role, sdp string, send func(protocol.Signal), frames *sync.WaitGroup) (*webrtc.PeerConnection, error) {
	pc, err := w.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		send(protocol.Signal{Type: protocol.TypeCandidate, Candidate: &protocol.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex,
		}})
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		label := dc.Label()
		if label == "files" {
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
