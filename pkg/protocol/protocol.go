// Package protocol defines the messages that cross Tandem's untrusted edges:
// the WebSocket signaling messages between a viewer's page and the gateway
// (relayed over NATS to the worker), and the DataChannel messages between a
// viewer and the worker. Its decoders are strict: a closed set of types,
// unknown fields refused, size limits checked before parsing. Every decoder has
// a fuzz target.
//
// Messages are plain values; the package keeps no state.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Size limits of one message.
const (
	MaxSignalBytes = 64 << 10 // a WebSocket signaling message (an SDP offer is a few KiB)
	MaxInputBytes  = 8 << 10  // a DataChannel input message
	MaxSDPBytes    = 48 << 10
	MaxCandidate   = 1024
)

// ErrBadMessage is wrapped by every decoding failure.
var ErrBadMessage = errors.New("protocol: bad message")

// Signal message types. Client types go from the viewer to the worker, server
// types from the worker (or gateway) to the viewer.
const (
	TypeOffer     = "offer"     // client: SDP offer
	TypeAnswer    = "answer"    // server: SDP answer
	TypeCandidate = "candidate" // both: one trickled ICE candidate
	TypeBye       = "bye"       // client: the viewer leaves
	TypeHello     = "hello"     // server: first message after the WebSocket opens
	TypeEnded     = "ended"     // server: the session ended (Reason says why)
	TypeError     = "error"     // server: a request failed (Error, Message)
	TypeState     = "state"     // server: session state changed (viewers, state)
)

// Candidate is one ICE candidate as the browser's RTCIceCandidateInit names it.
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
	// UsernameFragment is what RTCIceCandidate.toJSON() adds in Chromium.
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Signal is one signaling message in either direction. Only the fields of its
// Type are set.
type Signal struct {
	Type      string     `json:"type"`
	SDP       string     `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Error     string     `json:"error,omitempty"`
	Message   string     `json:"message,omitempty"`
	Role      string     `json:"role,omitempty"`
	ViewerID  string     `json:"viewer_id,omitempty"`
	State     string     `json:"state,omitempty"`
	Viewers   *Viewers   `json:"viewers,omitempty"`
	Width     int        `json:"width,omitempty"`
	Height    int        `json:"height,omitempty"`
	// Restart marks an offer that restarts ICE on the viewer's existing
	// connection (RTCPeerConnection.restartIce): the worker renegotiates
	// the viewer's peer, keeping its channels and track, instead of
	// replacing it.
	Restart bool `json:"restart,omitempty"`
	// ICEServers, in the hello only, are the STUN and TURN servers the
	// viewer's RTCPeerConnection uses, TURN with credentials minted for
	// this viewer (docs/media-network.md).
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
}

// ICEServer is one entry of RTCConfiguration.iceServers, named as the
// browser's RTCIceServer dictionary names it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Viewers counts who watches a session.
type Viewers struct {
	Customers int `json:"customers"`
	Agents    int `json:"agents"`
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// decodeStrict parses exactly one JSON object of at most limit bytes into v,
// refusing unknown fields and trailing data.
func decodeStrict(data []byte, limit int, v any) error {
	if len(data) > limit {
		return bad("%d bytes, limit %d", len(data), limit)
	}
	if !utf8.Valid(data) {
		return bad("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("trailing data")
	}
	return nil
}

// DecodeClientSignal decodes a signaling message sent by a viewer. Only the
// client types are accepted, each with the fields it needs.
func DecodeClientSignal(data []byte) (Signal, error) {
	var s Signal
	if err := decodeStrict(data, MaxSignalBytes, &s); err != nil {
		return Signal{}, err
	}
	if err := s.validateClient(); err != nil {
		return Signal{}, err
	}
	return s, nil
}

func (s Signal) validateClient() error {
	if s.Reason != "" || s.Error != "" || s.Message != "" || s.Role != "" || s.ViewerID != "" ||
		s.State != "" || s.Viewers != nil || s.Width != 0 || s.Height != 0 || s.ICEServers != nil {
		return bad("server fields in a client message")
	}
	switch s.Type {
	case TypeOffer:
		if s.SDP == "" || len(s.SDP) > MaxSDPBytes || s.Candidate != nil {
			return bad("offer needs an sdp of at most %d bytes", MaxSDPBytes)
		}
	case TypeCandidate:
		if s.SDP != "" || s.Restart {
			return bad("candidate with sdp or restart")
		}
		return s.Candidate.validate()
	case TypeBye:
		if s.SDP != "" || s.Candidate != nil || s.Restart {
			return bad("bye carries nothing")
		}
	default:
		return bad("unknown client type %q", s.Type)
	}
	return nil
}

func (c *Candidate) validate() error {
	if c == nil {
		return bad("candidate missing")
	}
	if len(c.Candidate) > MaxCandidate {
		return bad("candidate longer than %d bytes", MaxCandidate)
	}
	if c.SDPMid != nil && len(*c.SDPMid) > 32 {
		return bad("sdpMid too long")
	}
	if c.UsernameFragment != nil && len(*c.UsernameFragment) > 256 {
		return bad("usernameFragment too long")
	}
	return nil
}

// DecodeServerSignal decodes a signaling message sent towards a viewer (used
// by the gateway's relay and by tests acting as a viewer).
func DecodeServerSignal(data []byte) (Signal, error) {
	var s Signal
	if err := decodeStrict(data, MaxSignalBytes, &s); err != nil {
		return Signal{}, err
	}
	switch s.Type {
	case TypeAnswer:
		if s.SDP == "" {
			return Signal{}, bad("answer without sdp")
		}
	case TypeCandidate:
		if err := s.Candidate.validate(); err != nil {
			return Signal{}, err
		}
	case TypeHello, TypeEnded, TypeError, TypeState:
	default:
		return Signal{}, bad("unknown server type %q", s.Type)
	}
	if s.Restart {
		return Signal{}, bad("restart in a server message")
	}
	if s.ICEServers != nil && s.Type != TypeHello {
		return Signal{}, bad("ice_servers outside the hello")
	}
	return s, nil
}

// Encode marshals a message. Messages built by Tandem always marshal.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unsupported types fail, and our message types have none.
		return []byte(`{"type":"error","error":"internal","message":"encoding failed"}`)
	}
	return b
}

// DecodeInput decodes one DataChannel input message from a viewer and
// validates it. Coordinates are clamped later, against the live viewport.
func DecodeInput(data []byte) (input.Event, error) {
	var e input.Event
	if err := decodeStrict(data, MaxInputBytes, &e); err != nil {
		return input.Event{}, err
	}
	if err := e.Validate(); err != nil {
		return input.Event{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return e, nil
}

// Notice is a message from the worker to one viewer on the "input"
// DataChannel: a refused event, a control change, the remote viewport.
type Notice struct {
	Type    string `json:"type"` // "viewport", "refused", "masking" (to agents), "masks" (to customers)
	Width   int    `json:"width,omitempty"`
	Height  int    `json:"height,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	State   string `json:"state,omitempty"` // masking: "paused" or "active"
	// Rects are a masks notice's areas the agents cannot see, as
	// [x, y, width, height] in pixels of a Width×Height picture.
	Rects [][4]int `json:"rects,omitempty"`
	// A control notice: who drives the tab besides the customer
	// (Controller: "customer" or "agent", ViewerID and Name of that
	// agent); State "requested" (to customers: ViewerID asks), "denied"
	// (to the agent who asked).
	Controller string `json:"controller,omitempty"`
	ViewerID   string `json:"viewer_id,omitempty"`
	Name       string `json:"name,omitempty"`
	// A file chooser notice: Multiple files may be picked, each at most
	// MaxBytes long.
	Multiple bool  `json:"multiple,omitempty"`
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Text is a clipboard notice's text: what the viewer copied in the tab,
	// for its own clipboard (State "truncated" when cut short).
	Text string `json:"text,omitempty"`
}

// TypeBrowser is the notice that the session's browser died and restarts
// (State "restarting", Reason "crashed" or "lost"; the picture stops), and
// that the fresh one's picture came ("restored").
const TypeBrowser = "browser"

// TypeFileChooser is the notice that the page asks for files (State
// "open", to customers; "customer", to agents) or no longer does
// ("closed").
const TypeFileChooser = "file_chooser"

// TypeClipboard is the notice that carries text a viewer copied in the tab.
const TypeClipboard = "clipboard"

// TypeControl is a viewer's message about who drives the tab, on the input
// DataChannel, and the worker's notice of the control state.
const TypeControl = "control"

// Control actions a viewer sends. Agents request and release; the customer
// grants, denies and revokes.
const (
	ControlRequest = "request"
	ControlRelease = "release"
	ControlGrant   = "grant"
	ControlDeny    = "deny"
	ControlRevoke  = "revoke"
)

// Control is a viewer's control message.
type Control struct {
	Type   string `json:"type"` // TypeControl
	Action string `json:"action"`
}

// ViewerMessage is one message of the input DataChannel from a viewer:
// an input event (Event, when the others are nil), or a control, annotate,
// chat, navigate or screenshare message (exactly one of them non-nil).
type ViewerMessage struct {
	Event       input.Event
	Control     *Control
	Annotate    *Annotate
	Chat        *Chat
	Navigate    *Navigate
	Screenshare *Screenshare
}

// DecodeViewerMessage decodes and validates one input DataChannel message
// from a viewer.
func DecodeViewerMessage(data []byte) (ViewerMessage, error) {
	if len(data) > MaxInputBytes {
		return ViewerMessage{}, bad("%d bytes, limit %d", len(data), MaxInputBytes)
	}
	var peek struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &peek) != nil {
		peek.Type = "" // DecodeInput says what is wrong
	}
	switch peek.Type {
	case TypeControl:
		var c Control
		if err := decodeStrict(data, MaxInputBytes, &c); err != nil {
			return ViewerMessage{}, err
		}
		switch c.Action {
		case ControlRequest, ControlRelease, ControlGrant, ControlDeny, ControlRevoke:
			return ViewerMessage{Control: &c}, nil
		}
		return ViewerMessage{}, bad("control action %q", c.Action)
	case TypeAnnotate:
		a, err := decodeAnnotate(data)
		if err != nil {
			return ViewerMessage{}, err
		}
		return ViewerMessage{Annotate: a}, nil
	case TypeChat:
		c, err := decodeChat(data)
		if err != nil {
			return ViewerMessage{}, err
		}
		return ViewerMessage{Chat: c}, nil
	case TypeNavigate:
		n, err := decodeNavigate(data)
		if err != nil {
			return ViewerMessage{}, err
		}
		return ViewerMessage{Navigate: n}, nil
	case TypeScreenshare:
		sc, err := decodeScreenshare(data)
		if err != nil {
			return ViewerMessage{}, err
		}
		return ViewerMessage{Screenshare: sc}, nil
	}
	ev, err := DecodeInput(data)
	if err != nil {
		return ViewerMessage{}, err
	}
	return ViewerMessage{Event: ev}, nil
}

// TypePointer is the worker's notice of another viewer's pointer.
const TypePointer = "pointer"

// Pointer shows where another viewer's pointer is, in remote viewport CSS
// pixels.
type Pointer struct {
	Type     string  `json:"type"` // TypePointer
	ViewerID string  `json:"viewer_id"`
	Role     string  `json:"role"`
	Name     string  `json:"name,omitempty"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
}
