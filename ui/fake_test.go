package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandem-cobrowse/tandem/pkg/demo"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// fakeSession is a session as docs/api.md answers it.
type fakeSession struct {
	ID        string `json:"id"`
	Company   string `json:"company"`
	State     string `json:"state"`
	StartURL  string `json:"start_url"`
	PIN       string `json:"pin,omitempty"`
	JoinURL   string `json:"join_url"`
	AgentURL  string `json:"agent_url"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
	EndReason string `json:"end_reason,omitempty"`
}

// request is one API call the pages made.
type request struct {
	Method, Path, ContentType, AcceptLanguage, Body string
}

// fakeServer serves the ui Handler, the demo shop, and a small fake of the
// API routes the pages call. Its WebSocket answers with a real pion peer
// (fakeWorker) that streams a VP8 frame and records the DataChannel input.
type fakeServer struct {
	*httptest.Server
	worker *fakeWorker

	mu       sync.Mutex
	loggedIn bool           // guarded by mu
	sessions []*fakeSession // guarded by mu
	requests []request      // guarded by mu
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{worker: newFakeWorker()}
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.Handle("/demo/", demo.Handler())
	mux.HandleFunc("/test/blank", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>blank</title>")
	})
	mux.HandleFunc("/api/v1/", f.api)
	mux.HandleFunc("GET /api/v1/sessions/{id}/ws", func(w http.ResponseWriter, r *http.Request) {
		f.record(r, "")
		f.worker.accept(w, r)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.worker.close()
		f.Close()
	})
	return f
}

func (f *fakeServer) record(r *http.Request, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, Body: body,
		ContentType: r.Header.Get("Content-Type"), AcceptLanguage: r.Header.Get("Accept-Language"),
	})
}

// calls returns the recorded calls of method and path.
func (f *fakeServer) calls(method, path string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) addSession(s fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append([]*fakeSession{&s}, f.sessions...)
}

func (f *fakeServer) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.ID == id {
			s.State = state
			if state != "waiting" {
				s.PIN = ""
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// api is the fake of docs/api.md: just enough for the pages.
func (f *fakeServer) api(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	f.record(r, string(b))
	f.mu.Lock()
	defer f.mu.Unlock()
	agent := map[string]any{"id": "a_1", "email": "agent@demo.test", "name": "Aiko Tanaka", "role": "agent", "company": "demo"}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	switch {
	case r.Method == "POST" && path == "/auth/login":
		var req struct{ Email, Password string }
		if json.Unmarshal(b, &req) != nil || req.Email != "agent@demo.test" || req.Password != "secret" {
			apiError(w, 401, "invalid_credentials", "wrong email or password")
			return
		}
		f.loggedIn = true
		writeJSON(w, 200, map[string]any{"agent": agent})
	case r.Method == "POST" && path == "/auth/logout":
		f.loggedIn = false
		w.WriteHeader(204)
	case r.Method == "GET" && path == "/auth/me":
		if !f.loggedIn {
			apiError(w, 401, "unauthenticated", "sign in first")
			return
		}
		writeJSON(w, 200, map[string]any{"agent": agent, "company": map[string]string{"slug": "demo", "name": "Demo Inc."}})
	case r.Method == "GET" && strings.HasPrefix(path, "/companies/"):
		if slug := strings.TrimPrefix(path, "/companies/"); slug == "demo" {
			writeJSON(w, 200, map[string]string{"slug": "demo", "name": "Demo Inc."})
		} else {
			apiError(w, 404, "not_found", "no such company")
		}
	case r.Method == "POST" && path == "/join":
		var req struct{ Company, PIN string }
		_ = json.Unmarshal(b, &req)
		switch {
		case req.PIN == "999999":
			w.Header().Set("Retry-After", "30")
			apiError(w, 429, "rate_limited", "slow down")
		case req.Company == "demo" && req.PIN == "123456":
			writeJSON(w, 200, map[string]string{"session_id": "s_joined", "customer_url": "/s/s_joined"})
		case strings.HasPrefix(r.Header.Get("Accept-Language"), "ja"):
			apiError(w, 404, "invalid_pin", "サーバー: PINが無効です")
		default:
			apiError(w, 404, "invalid_pin", "Server: that PIN is not valid")
		}
	default:
		if !f.loggedIn {
			apiError(w, 401, "unauthenticated", "sign in first")
			return
		}
		f.sessionsAPI(w, r, path, b)
	}
}

// sessionsAPI answers the session routes; f.mu is held.
func (f *fakeServer) sessionsAPI(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	switch {
	case r.Method == "POST" && path == "/sessions":
		var req struct {
			StartURL string `json:"start_url"`
		}
		if json.Unmarshal(body, &req) != nil || !strings.HasPrefix(req.StartURL, "http") {
			apiError(w, 400, "invalid_start_url", "bad start_url")
			return
		}
		id := fmt.Sprintf("s_%d", len(f.sessions)+1)
		now := time.Now().UTC()
		s := &fakeSession{
			ID: id, Company: "demo", State: "waiting", StartURL: req.StartURL, PIN: "48213907",
			JoinURL: f.URL + "/join/demo", AgentURL: f.URL + "/agent/s/" + id,
			CreatedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(10 * time.Minute).Format(time.RFC3339),
		}
		f.sessions = append([]*fakeSession{s}, f.sessions...)
		writeJSON(w, 201, s)
	case r.Method == "GET" && path == "/sessions":
		writeJSON(w, 200, map[string]any{"sessions": f.sessions})
	case r.Method == "GET" && strings.HasPrefix(path, "/sessions/") && strings.HasSuffix(path, "/audit"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/sessions/"), "/audit")
		for _, s := range f.sessions {
			if s.ID == id {
				writeJSON(w, 200, map[string]any{"events": fakeAudit(s)})
				return
			}
		}
		apiError(w, 404, "not_found", "no such session")
	case strings.HasPrefix(path, "/sessions/"):
		id := strings.TrimPrefix(path, "/sessions/")
		for _, s := range f.sessions {
			if s.ID != id {
				continue
			}
			if r.Method == "DELETE" {
				s.State, s.EndReason, s.PIN = "ended", "agent_ended", ""
			}
			writeJSON(w, 200, s)
			return
		}
		apiError(w, 404, "not_found", "no such session")
	default:
		apiError(w, 404, "not_found", "no such route")
	}
}

// fakeAudit is the audit trail of docs/api.md that a session in its state
// would have: made and ended by the signed-in agent (a_1), joined by the
// customer and by another agent, ended by the agent or by the system.
func fakeAudit(s *fakeSession) []map[string]any {
	t0, _ := time.Parse(time.RFC3339, s.CreatedAt)
	var out []map[string]any
	add := func(actor, typ string, details map[string]string) {
		out = append(out, map[string]any{
			"id": fmt.Sprintf("e_%d", len(out)+1), "time": t0.Add(time.Duration(len(out)) * time.Second).Format(time.RFC3339),
			"company": s.Company, "session": s.ID, "actor": actor, "type": typ, "details": details,
		})
	}
	add("agent:a_1", "session.created", map[string]string{"start_url": s.StartURL})
	add("agent:a_1", "pin.issued", map[string]string{"expires_at": s.ExpiresAt})
	if s.State == "waiting" {
		return out
	}
	add("customer", "pin.redeemed", map[string]string{"network": "127.0.0.0/24"})
	add("customer", "customer.joined", map[string]string{"viewer_id": "v_c"})
	add("agent:a_2", "agent.joined", map[string]string{"viewer_id": "a_2-v_x", "name": "Ken Sato"})
	if s.State == "ended" {
		ender := "system"
		if s.EndReason == "agent_ended" {
			ender = "agent:a_1"
		}
		add(ender, "session.ended", map[string]string{"reason": s.EndReason})
		add("agent:a_2", "agent.left", map[string]string{"viewer_id": "a_2-v_x", "name": "Ken Sato"})
	}
	return out
}

// received is one DataChannel message from a viewer.
type received struct {
	Role  string
	Label string
	Event input.Event
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
}

func newFakeWorker() *fakeWorker {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return &fakeWorker{
		api:   webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		conns: map[*websocket.Conn]int{},
	}
}

func (w *fakeWorker) setFrame(frame []byte, width, height int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frame, w.width, w.height = frame, width, height
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
		if label == "input" {
			w.mu.Lock()
			w.inputs = append(w.inputs, dc)
			w.mu.Unlock()
		}
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			ev, err := protocol.DecodeInput(msg.Data)
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				w.bad = append(w.bad, fmt.Sprintf("%s %s: %v", label, msg.Data, err))
				return
			}
			w.events = append(w.events, received{Role: role, Label: label, Event: ev})
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
			frame := w.frame
			w.mu.Unlock()
			if len(frame) > 0 {
				_ = track.WriteSample(media.Sample{Data: frame, Duration: 200 * time.Millisecond})
			}
		}
	}()
	return pc, nil
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
