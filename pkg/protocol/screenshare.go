package protocol

// Screen sharing (docs/screenshare.md), on the input DataChannel: an agent
// asks to see the customer's screen, the customer allows or refuses, either
// side stops. The picture itself travels as video on the viewers' second
// video transceiver, never on a DataChannel.
const TypeScreenshare = "screenshare"

// Screenshare actions a viewer sends. Agents request and stop; customers
// start (their browser shares a screen now), refuse and stop.
const (
	ScreenshareRequest = "request"
	ScreenshareStart   = "start"
	ScreenshareRefuse  = "refuse"
	ScreenshareStop    = "stop"
)

// ScreenshareUnsupported is the reason of a customer's refusal when its
// browser cannot share a screen (phones); no reason means the customer
// said no or closed the browser's picker.
const ScreenshareUnsupported = "unsupported"

// Screenshare is a viewer's screen sharing message. Reason goes only with
// ScreenshareRefuse.
type Screenshare struct {
	Type   string `json:"type"` // TypeScreenshare
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
}

func decodeScreenshare(data []byte) (*Screenshare, error) {
	var s Screenshare
	if err := decodeStrict(data, MaxInputBytes, &s); err != nil {
		return nil, err
	}
	switch s.Action {
	case ScreenshareRequest, ScreenshareStart, ScreenshareStop:
		if s.Reason != "" {
			return nil, bad("screenshare %s carries no reason", s.Action)
		}
	case ScreenshareRefuse:
		if s.Reason != "" && s.Reason != ScreenshareUnsupported {
			return nil, bad("screenshare refusal reason %q", s.Reason)
		}
	default:
		return nil, bad("screenshare action %q", s.Action)
	}
	return &s, nil
}
