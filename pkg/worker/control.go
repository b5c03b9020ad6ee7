package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Control (SECURITY.md P2, docs/control.md): the customer always controls
// the tab; an agent drives it too only while it has control. The agent
// asks, the customer grants or denies, and takes it back at any moment;
// the company may let agents control without asking, or never. The worker
// checks control for every agent event when it is dispatched, so an event
// queued before a revoke is refused; on every handover the keys and
// buttons still held are released.

// Control modes of a company (LeaseRequest.Control).
const (
	ControlAsk   = ""      // an agent asks, the customer answers (the default)
	ControlAuto  = "auto"  // an agent's request is granted at once
	ControlNever = "never" // agents only watch and point
)

// Refusal reasons of control.
const (
	RefusedNoControl    = "no_control"    // an agent's input while it does not control the tab
	RefusedControlNever = "control_never" // the company does not let agents control
)

// Control events (Event.Type; Reason is ControlGranted, ControlTaken or
// ControlReleased, ViewerID the agent).
const (
	EventControl    = "control"
	ControlGranted  = "granted"
	ControlTaken    = "revoked"  // by the customer, or the agent left
	ControlReleased = "released" // by the agent
)

// controlState is who drives the tab besides the customer. Guarded by s.mu.
type controlState struct {
	controller string               // the agent viewer in control; "" the customer alone
	requests   map[string]time.Time // agents waiting for the customer's answer
	ver        int64                // bumped on every change
}

// inControl says whether an agent's event may reach the page now.
func (s *session) inControl(viewerID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.control.controller == viewerID
}

// onControl applies a viewer's control message (on pion's goroutine).
func (s *session) onControl(v signaling.Viewer, c *protocol.Control) {
	switch {
	case v.Role == RoleAgent && c.Action == protocol.ControlRequest:
		s.requestControl(v)
	case v.Role == RoleAgent && c.Action == protocol.ControlRelease:
		s.setController(v.ID, "", ControlReleased)
	case v.Role == RoleCustomer && c.Action == protocol.ControlGrant:
		s.mu.Lock()
		var agent string
		var at time.Time
		for id, t := range s.control.requests {
			if t.After(at) {
				agent, at = id, t
			}
		}
		s.mu.Unlock()
		if agent != "" {
			s.setController("", agent, ControlGranted)
		}
	case v.Role == RoleCustomer && c.Action == protocol.ControlDeny:
		s.mu.Lock()
		asked := s.control.requests
		s.control.requests = map[string]time.Time{}
		s.control.ver++
		s.mu.Unlock()
		for id := range asked {
			s.notify(id, protocol.Encode(protocol.Notice{Type: protocol.TypeControl, State: "denied"}))
		}
		s.mask.notify() // the other customers' prompts go
	case v.Role == RoleCustomer && c.Action == protocol.ControlRevoke:
		s.setController("", "", ControlTaken)
	default:
		s.droppedInput.Add(1) // a role's message the other role sends
	}
}

func (s *session) requestControl(v signaling.Viewer) {
	switch s.req.Control {
	case ControlNever:
		if msg := s.refusal(v, input.Event{Kind: input.KindKey}, RefusedControlNever); msg != nil {
			s.notify(v.ID, msg)
		}
		return
	case ControlAuto:
		s.setController("", v.ID, ControlGranted)
		return
	}
	s.mu.Lock()
	if s.control.controller == v.ID {
		s.mu.Unlock()
		return
	}
	s.control.requests[v.ID] = time.Now()
	s.control.ver++
	s.mu.Unlock()
	// The customers are asked with the control state (masker.notify), so
	// that a customer whose channel opens later, or who reconnects, is
	// asked too.
	s.mask.notify()
	s.notify(v.ID, protocol.Encode(protocol.Notice{Type: protocol.TypeControl, State: "asking"}))
}

// setController hands control to agent ("" the customer alone), if from
// is "" or still the controller. Every viewer is told (notify), the keys
// and buttons held are released in the input order, and the change is
// published.
func (s *session) setController(from, agent, why string) {
	s.mu.Lock()
	cur := s.control.controller
	if (from != "" && cur != from) || cur == agent {
		s.mu.Unlock()
		return
	}
	s.control.controller = agent
	delete(s.control.requests, agent)
	s.control.ver++
	s.mu.Unlock()
	s.lease().GuardRequests(agent != "")
	select {
	case s.inputs <- queuedInput{releaseHeld: true}:
	default:
		s.droppedInput.Add(1) // the queue is full: the release goes with the next handover
	}
	who := agent
	if who == "" {
		who = cur
	}
	s.log.Info("control changed", zap.String("controller", agent), zap.String("previous", cur), zap.String("why", why))
	s.w.publishEvent(Event{Type: EventControl, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: who, Role: RoleAgent, Reason: why})
	s.mask.notify()
}

// controlNoticeLocked is the control state for every viewer, and for the
// customers the newest agent's request waiting for their answer (nil when
// none waits): a customer who is told the state without it has no
// question to answer. s.mu is held.
func (s *session) controlNoticeLocked() (ver int64, msg, ask []byte) {
	n := protocol.Notice{Type: protocol.TypeControl, Controller: RoleCustomer}
	if id := s.control.controller; id != "" {
		n.Controller, n.ViewerID = RoleAgent, id
		if vw := s.viewers[id]; vw != nil {
			n.Name = vw.v.Name
		}
	}
	var agent string
	var at time.Time
	for id, t := range s.control.requests {
		if t.After(at) && s.viewers[id] != nil {
			agent, at = id, t
		}
	}
	if agent != "" {
		ask = protocol.Encode(protocol.Notice{Type: protocol.TypeControl, State: "requested", ViewerID: agent, Name: s.viewers[agent].v.Name})
	}
	return s.control.ver, protocol.Encode(n), ask
}

// viewerGone takes control back from an agent that left, and its question
// from the customers.
func (s *session) viewerGone(id string) {
	s.mu.Lock()
	_, asked := s.control.requests[id]
	delete(s.control.requests, id)
	if asked {
		s.control.ver++
	}
	s.mu.Unlock()
	if asked {
		s.mask.notify()
	}
	s.setController(id, "", ControlTaken)
	s.screenViewerGone(id)
}

// held tracks the keys and buttons each viewer holds down in the page, and
// its fingers (the last touch event of a sequence not over), so that a
// handover releases them. It is owned by inputLoop.
type held map[string]map[string]input.Event // viewer → pressKey → the press

func (h held) track(viewerID string, ev input.Event) {
	if ev.Kind == input.KindTouch {
		// The last touch event is the fingers down now.
		if touchOver(ev) {
			delete(h[viewerID], touchKey)
			return
		}
		if h[viewerID] == nil {
			h[viewerID] = map[string]input.Event{}
		}
		h[viewerID][touchKey] = ev
		return
	}
	if ev.Kind != input.KindMouse && ev.Kind != input.KindKey {
		return
	}
	switch ev.Action {
	case input.ActionDown:
		if h[viewerID] == nil {
			h[viewerID] = map[string]input.Event{}
		}
		h[viewerID][pressKey(ev)] = ev
	case input.ActionUp:
		delete(h[viewerID], pressKey(ev))
	}
}

// releaseAll dispatches the release of every held key and button, and
// cancels every touch sequence (a cancel neither taps nor scrolls).
func (s *session) releaseAll(ctx context.Context) {
	// A touch sequence refused for blocking is over for the page too.
	delete(s.blocks.downs, touchKey)
	for viewerID, presses := range s.held {
		for _, ev := range presses {
			up := ev
			up.Action, up.Text, up.Clicks = input.ActionUp, "", max(ev.Clicks, 1)
			switch up.Kind {
			case input.KindKey:
				up.Clicks = 0
			case input.KindTouch:
				up = input.Event{Kind: input.KindTouch, Action: input.ActionCancel}
			}
			s.dispatch(ctx, queuedInput{ev: up, viewerID: viewerID})
		}
		delete(s.held, viewerID)
	}
}

// sharePointer shows a viewer's pointer to the other role's viewers, at
// most every laserEvery and always its last position, once both sides'
// gates are open (on pion's goroutine). The annotator sends it, throttled
// like a laser.
func (s *session) sharePointer(v signaling.Viewer, ev input.Event) {
	switch {
	case ev.Kind == input.KindMouse:
	case ev.Kind == input.KindTouch && len(ev.Touches) > 0 && ev.Action != input.ActionEnd:
		// A finger shows where the first one touches; it has no CSS
		// cursor to follow.
		ev.X, ev.Y = ev.Touches[0].X, ev.Touches[0].Y
	default:
		return
	}
	if ok, _ := s.mayInput(v, input.Event{Kind: input.KindMouse, Action: input.ActionMove}); !ok {
		return
	}
	if ev.Kind == input.KindMouse {
		s.cursor.move(v.ID, ev.X, ev.Y)
	}
	select {
	case s.annot.jobs <- annotJob{who: protocol.Author{ViewerID: v.ID, Role: v.Role, Name: v.Name}, pointer: &[2]float64{ev.X, ev.Y}}:
	default:
		s.droppedInput.Add(1)
	}
}

// refuseNoControl tells an agent that its input needs control; pointer
// moves are only shown to the customer (sharePointer), never refused.
func (s *session) refuseNoControl(in queuedInput) {
	if in.ev.Kind == input.KindMouse && in.ev.Action == input.ActionMove {
		return
	}
	s.refusedInput.Add(1)
	v := signaling.Viewer{ID: in.viewerID, Role: RoleAgent}
	reason := RefusedNoControl
	if s.req.Control == ControlNever {
		reason = RefusedControlNever
	}
	if msg := s.refusal(v, in.ev, reason); msg != nil {
		s.notify(in.viewerID, msg)
	}
}
