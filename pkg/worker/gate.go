package worker

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// The gate of a session (SECURITY.md P3) is enforced here, on the worker,
// whatever a page or a gateway does: a role whose gate is shut gets no frame
// at all (its encoder is never offered one, so it has nothing to encode, not
// even a key frame), and its input is refused before it reaches the queue.
// The customer's gate opens when an agent admits them (at once when the
// lease did not ask for MustAdmit); the agents' gate opens when, in
// addition, the customer agreed. When a gate opens, the newest captured
// frame is offered to the role at once, so a still page shows without
// waiting for damage, and the first frame a new encoder makes is a key
// frame.

// refusalEvery spaces the refusal notices one viewer gets: a held-back drag
// would otherwise send one per event.
const refusalEvery = 2 * time.Second

// openLocked reports whether role may see the tab and send input. s.mu is held.
func (s *session) openLocked(role string) bool {
	switch role {
	case RoleCustomer:
		return s.admitted
	case RoleAgent:
		return s.admitted && s.consented
	}
	return false
}

// gates returns which roles may see the tab now.
func (s *session) gates() (customer, agent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openLocked(RoleCustomer), s.openLocked(RoleAgent)
}

// setGate applies a gateway's Gate. A gate only opens; a role whose gate
// opened now is asked for a key frame and captureLoop offers it the newest
// frame.
func (s *session) setGate(g Gate) {
	s.mu.Lock()
	cust, agent := s.openLocked(RoleCustomer), s.openLocked(RoleAgent)
	s.consented = s.consented || g.Consented
	s.admitted = s.admitted || g.Admitted
	opened := map[string]bool{
		RoleCustomer: !cust && s.openLocked(RoleCustomer),
		RoleAgent:    !agent && s.openLocked(RoleAgent),
	}
	consented, admitted := s.consented, s.admitted
	s.mu.Unlock()
	if !opened[RoleCustomer] && !opened[RoleAgent] {
		return
	}
	s.log.Info("gate opened", zap.Bool("consented", consented), zap.Bool("admitted", admitted),
		zap.Bool("customer_opened", opened[RoleCustomer]), zap.Bool("agent_opened", opened[RoleAgent]))
	for _, role := range roles {
		if opened[role] {
			s.enc[role].RequestKeyFrame()
		}
	}
	select {
	case s.gateWake <- struct{}{}:
	default: // a wake-up is pending; it offers the newest frame to every open role
	}
}

// offer hands f to the customers' encoder if their gate is open, and to the
// masker, which offers the agents a masked copy if theirs is (masking.go)
// and keeps the customers' outlines of the masked areas up to date.
func (s *session) offer(f *media.Frame) {
	if cust, _ := s.gates(); cust {
		s.cust.Offer(f)
	}
	s.mask.offer(f)
}

// mayInput says whether v's event may go to the browser, and if not, why.
// The customer's viewport is sizing, not input to the page: it is taken
// always, so the tab has the customer's size when the gate opens.
func (s *session) mayInput(v signaling.Viewer, ev input.Event) (ok bool, reason string) {
	if v.Role == RoleCustomer && ev.Kind == input.KindViewport {
		return true, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.openLocked(v.Role):
		return true, ""
	case !s.admitted:
		return false, RefusedNotAdmitted
	default:
		return false, RefusedNoConsent
	}
}

// refusalMessages are the notices' texts; viewers show their own
// translation of the reason when they have one.
var refusalMessages = map[string]string{
	RefusedNoConsent:        "The customer has not agreed to share the tab yet.",
	RefusedNotAdmitted:      "The customer has not been let in yet.",
	RefusedBlocked:          "This element is blocked for agents.",
	RefusedNoControl:        "Ask the customer for control first.",
	RefusedControlNever:     "Agents of this company only watch and point.",
	RefusedRateLimited:      "Too many messages at once; wait a moment.",
	RefusedBadURL:           "That is not a web address (http or https).",
	RefusedFileTooLarge:     "That file is too large for the page (at most 20 MB).",
	RefusedFileBad:          "The file could not be handed to the page; try choosing it again.",
	RefusedClipboard:        "The clipboard is not shared with agents in this session.",
	RefusedShortcut:         "Browser shortcuts (save, print, developer tools…) do not work in the shared tab.",
	RefusedTabLimit:         "The page opened more tabs than a session may have; the new tab was closed.",
	RefusedDownloadDenied:   "The page started a download; this company does not allow downloads in shared sessions.",
	RefusedDownloadTooLarge: "The page's download was larger than 20 MB and was stopped.",
	RefusedDownloadFailed:   "The page's download could not be completed.",
}

// refusal returns the notice to send v for a held-back event, or nil when v
// was told recently or the event is a pointer move (sent many times a
// second, and never clicked anything). It runs on pion's goroutine.
func (s *session) refusal(v signaling.Viewer, ev input.Event, reason string) []byte {
	if ev.Kind == input.KindMouse && ev.Action == input.ActionMove {
		return nil
	}
	now := time.Now()
	s.mu.Lock()
	vw := s.viewers[v.ID]
	if vw == nil || now.Sub(vw.lastRefusal) < refusalEvery {
		s.mu.Unlock()
		return nil
	}
	vw.lastRefusal = now
	s.mu.Unlock()
	return protocol.Encode(protocol.Notice{Type: "refused", Reason: reason, Message: refusalMessages[reason]})
}

// notify sends msg to one viewer's input channel, if it has a peer.
func (s *session) notify(viewerID string, msg []byte) {
	var p *rtc.Peer
	s.mu.Lock()
	if vw := s.viewers[viewerID]; vw != nil {
		p = vw.peer
	}
	s.mu.Unlock()
	if p != nil {
		_ = p.Send(msg) // a channel not open yet: the viewer is told again on its next try
	}
}

// handleGate applies a gateway's Gate to the session it names.
func (w *Worker) handleGate(m *nats.Msg) {
	var g Gate
	var rep GateReply
	if err := json.Unmarshal(m.Data, &g); err != nil || !bus.ValidToken(g.Company) || !bus.ValidToken(g.SessionID) {
		w.log.Warn("bad gate message")
		rep.Error = "invalid_request"
	} else {
		w.mu.Lock()
		s := w.sessions[g.Company+"/"+g.SessionID]
		w.mu.Unlock()
		if s == nil {
			rep.Error = "unknown_session"
		} else {
			s.setGate(g)
		}
	}
	if m.Reply != "" {
		b, _ := json.Marshal(rep)
		_ = m.Respond(b) // the gateway may have given up; it sends the gate again later
	}
}
