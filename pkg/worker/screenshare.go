package worker

import (
	"github.com/pion/rtp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Screen sharing (docs/screenshare.md): when the trouble is outside the
// page, an agent asks to see the customer's screen; the customer allows in
// its own page, whose browser then sends its screen as video on the
// customer's second video m-line. The worker relays those RTP packets, as
// they are, to the session's screen track, which only agents' peers carry
// (rtc.PeerConfig.ScreenTrack): a customer never gets a screen, the
// sharer's own included. Packets are relayed only while the share the
// customer started is on and the agents' gate is open; anything else the
// customer's browser sends is dropped here, so an agent's stop takes
// effect at once whatever the customer's page does. Nothing is stored.
// Agents' key-frame requests go to the sharing browser as PLIs
// (rtc.Peer.RequestScreenKeyFrame, rate limited).

// Screen sharing modes of a company (LeaseRequest.Screenshare).
const (
	ScreenshareAsk   = ""      // an agent asks, the customer answers (the default)
	ScreenshareNever = "never" // agents cannot ask
)

// States of a screenshare notice.
const (
	screenIdle      = "idle"
	screenRequested = "requested" // an agent asked; the customers are asked
	screenSharing   = "sharing"
	screenNever     = "never"   // the company does not let agents ask
	screenRefused   = "refused" // to the agent that asked: the customer said no
)

// Screenshare events (Event.Type; Reason is ScreenshareStarted or why it
// ended, ViewerID the agent that asked, or that stopped it).
const (
	EventScreenshare        = "screenshare"
	ScreenshareStarted      = "started"
	ScreenshareStoppedCust  = "stopped_by_customer"
	ScreenshareStoppedAgent = "stopped_by_agent"
	ScreenshareCustomerLeft = "customer_left"
	ScreenshareAgentsLeft   = "agents_left"
	ScreenshareSessionEnded = "session_ended"
)

// screenState is the session's screen share. Guarded by s.mu.
type screenState struct {
	state    string // screenIdle (""), screenRequested or screenSharing
	agent    string // the agent viewer that asked
	customer string // while sharing: the customer viewer whose screen is relayed
	ver      int64  // bumped on every change
}

// onScreenshare applies a viewer's screenshare message (on pion's
// goroutine; gated like control by the caller).
func (s *session) onScreenshare(v signaling.Viewer, m *protocol.Screenshare) {
	switch {
	case v.Role == RoleAgent && m.Action == protocol.ScreenshareRequest:
		s.requestScreen(v)
	case v.Role == RoleAgent && m.Action == protocol.ScreenshareStop:
		s.mu.Lock()
		st := s.screen
		s.mu.Unlock()
		switch st.state {
		case screenRequested:
			if st.agent == v.ID { // an agent withdraws its own question only
				s.setScreen(screenRequested, screenState{})
			}
		case screenSharing:
			s.stopScreen(ScreenshareStoppedAgent, v.ID)
		}
	case v.Role == RoleCustomer && m.Action == protocol.ScreenshareStart:
		s.startScreen(v)
	case v.Role == RoleCustomer && (m.Action == protocol.ScreenshareRefuse || m.Action == protocol.ScreenshareStop):
		s.mu.Lock()
		st := s.screen
		s.mu.Unlock()
		switch {
		case st.state == screenRequested:
			if s.setScreen(screenRequested, screenState{}) {
				s.notify(st.agent, protocol.Encode(protocol.Notice{Type: protocol.TypeScreenshare, State: screenRefused, Reason: m.Reason}))
			}
		case st.state == screenSharing && st.customer == v.ID:
			s.stopScreen(ScreenshareStoppedCust, v.ID)
		}
	default:
		s.droppedInput.Add(1) // a role's message the other role sends
	}
}

// requestScreen asks the customers to share their screen with the agents,
// unless the company forbids it, a share is on already, or no customer's
// page can share (an older page, or none connected).
func (s *session) requestScreen(v signaling.Viewer) {
	if s.req.Screenshare == ScreenshareNever {
		s.notify(v.ID, protocol.Encode(protocol.Notice{Type: protocol.TypeScreenshare, State: screenNever}))
		return
	}
	var customers []*rtc.Peer
	s.mu.Lock()
	for _, vw := range s.viewers {
		if vw.v.Role == RoleCustomer && vw.peer != nil {
			customers = append(customers, vw.peer)
		}
	}
	sharing := s.screen.state == screenSharing
	s.mu.Unlock()
	able := false
	for _, p := range customers {
		able = able || p.HasScreen()
	}
	switch {
	case sharing:
		return
	case !able:
		s.notify(v.ID, protocol.Encode(protocol.Notice{Type: protocol.TypeScreenshare, State: screenRefused, Reason: protocol.ScreenshareUnsupported}))
		return
	}
	// The newest asker's question replaces an earlier one.
	s.mu.Lock()
	s.screen = screenState{state: screenRequested, agent: v.ID, ver: s.screen.ver + 1}
	s.mu.Unlock()
	s.log.Info("screen share requested", zap.String("viewer_id", v.ID))
	s.mask.notify()
}

// startScreen starts relaying customer v's screen: its page allowed the
// question that waits, and its browser shares a screen now.
func (s *session) startScreen(v signaling.Viewer) {
	var p *rtc.Peer
	s.mu.Lock()
	if vw := s.viewers[v.ID]; vw != nil {
		p = vw.peer
	}
	s.mu.Unlock()
	able := p != nil && p.HasScreen()
	s.mu.Lock()
	st := s.screen
	vw := s.viewers[v.ID]
	ok := able && st.state == screenRequested && vw != nil && vw.peer == p
	if ok {
		s.screen = screenState{state: screenSharing, agent: st.agent, customer: v.ID, ver: st.ver + 1}
	}
	s.mu.Unlock()
	if !ok {
		s.droppedInput.Add(1) // nobody asked: nothing is relayed
		return
	}
	s.log.Info("screen share started", zap.String("viewer_id", v.ID), zap.String("agent", st.agent))
	s.w.publishEvent(Event{Type: EventScreenshare, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: st.agent, Role: RoleAgent, Reason: ScreenshareStarted})
	s.screenKeyFrame()
	s.mask.notify()
}

// setScreen replaces the share's state with to if it is still in state
// from, and tells every viewer. It reports whether it changed it.
func (s *session) setScreen(from string, to screenState) bool {
	s.mu.Lock()
	if s.screen.state != from {
		s.mu.Unlock()
		return false
	}
	to.ver = s.screen.ver + 1
	s.screen = to
	s.mu.Unlock()
	s.mask.notify()
	return true
}

// stopScreen ends the share, if one is on: the relay stops at once, every
// viewer is told (the customer's page stops capturing), and the end is
// published with why and who (a viewer id, or "").
func (s *session) stopScreen(why, who string) {
	s.mu.Lock()
	st := s.screen
	if st.state != screenSharing {
		s.mu.Unlock()
		return
	}
	s.screen = screenState{ver: st.ver + 1}
	s.mu.Unlock()
	if who == "" {
		who = st.agent
	}
	s.log.Info("screen share stopped", zap.String("why", why))
	s.w.publishEvent(Event{Type: EventScreenshare, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: who, Reason: why})
	s.mask.notify()
}

// screenViewerGone ends the share when its customer left or the last
// agent did, and drops the question of an agent that left.
func (s *session) screenViewerGone(id string) {
	s.mu.Lock()
	st := s.screen
	agents := 0
	for _, vw := range s.viewers {
		if vw.v.Role == RoleAgent && vw.peer != nil && vw.v.ID != id {
			agents++
		}
	}
	s.mu.Unlock()
	switch {
	case st.state == screenSharing && st.customer == id:
		s.stopScreen(ScreenshareCustomerLeft, id)
	case st.state == screenSharing && agents == 0:
		s.stopScreen(ScreenshareAgentsLeft, "")
	case st.state == screenRequested && st.agent == id:
		s.setScreen(screenRequested, screenState{})
	}
}

// screenPeerReplaced ends the share of a customer whose peer a new offer
// replaced: the page that made it starts afresh.
func (s *session) screenPeerReplaced(id string) {
	s.mu.Lock()
	mine := s.screen.state == screenSharing && s.screen.customer == id
	s.mu.Unlock()
	if mine {
		s.stopScreen(ScreenshareCustomerLeft, id)
	}
}

// screenNoticeLocked is the share's state for every viewer. s.mu is held.
func (s *session) screenNoticeLocked() (ver int64, msg []byte) {
	n := protocol.Notice{Type: protocol.TypeScreenshare, State: screenIdle}
	switch {
	case s.req.Screenshare == ScreenshareNever:
		n.State = screenNever
	case s.screen.state != "":
		n.State, n.ViewerID = s.screen.state, s.screen.agent
		if vw := s.viewers[s.screen.agent]; vw != nil {
			n.Name = vw.v.Name
		}
	}
	return s.screen.ver, protocol.Encode(n)
}

// onScreenRTP relays one packet of customer viewerID's screen to the
// agents (on the customer peer's screen goroutine, per packet: no log).
// Header extensions are dropped: their ids are the customer's
// negotiation, not the agents'.
func (s *session) onScreenRTP(viewerID string, pkt *rtp.Packet) {
	s.mu.Lock()
	ok := s.screen.state == screenSharing && s.screen.customer == viewerID && s.openLocked(RoleAgent)
	s.mu.Unlock()
	if !ok {
		s.screenDrop.Add(1)
		return
	}
	pkt.Header.Extension = false
	pkt.Header.Extensions = nil
	if err := s.screenTrack.WriteRTP(pkt); err != nil {
		s.screenDrop.Add(1)
		return
	}
	s.screenRelay.Add(1)
}

// screenKeyFrame asks the sharing customer's browser for a key frame: an
// agent's decoder starts or lost a packet.
func (s *session) screenKeyFrame() {
	var p *rtc.Peer
	s.mu.Lock()
	if s.screen.state == screenSharing {
		if vw := s.viewers[s.screen.customer]; vw != nil {
			p = vw.peer
		}
	}
	s.mu.Unlock()
	if p != nil {
		p.RequestScreenKeyFrame()
	}
}
