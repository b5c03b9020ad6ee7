package worker

import (
	"context"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// A customer's events are sent to the browser without waiting for each
// one's answer (browserpool's Lease.Send): Chromium handles them in the
// order they were written, and a press no longer waits the 3–4 ms it
// takes Chromium to answer the move before it (docs/architecture.md,
// "Customers' events do not wait"). Everything that depends on how the
// page handled the events before it waits for their answers first
// (settle): an agent's event, whose block check asks the page; a wheel
// step, merged while the one before it scrolls; a resize, a navigation, a
// handover's releases; the focus and selection questions asked after a
// customer's release or before a copy.

// maxInFlight bounds the events sent and not answered yet; one more waits
// for the oldest answer. Chromium's own queue of commands is 32.
const maxInFlight = 16

// inFlight is one event sent and not yet answered.
type inFlight struct {
	res  <-chan error
	role string
}

// pipelined says whether in may be sent without waiting for the answers to
// the events before it and to itself: a customer's mouse, key, text or
// touch event.
func pipelined(in queuedInput) bool {
	if in.role != RoleCustomer || in.notice != nil || in.releaseHeld || in.nav != nil {
		return false
	}
	switch in.ev.Kind {
	case input.KindMouse, input.KindKey, input.KindText, input.KindTouch:
		return true
	}
	return false
}

// send sends in, a pipelined event, and keeps track of what is held as if
// the page got it (a release of something the page never pressed does
// nothing). The answer is taken later, by settle.
func (s *session) send(ctx context.Context, in queuedInput) {
	s.observeInput(in)
	if len(s.sent) >= maxInFlight {
		s.answer(s.sent[0])
		s.sent = s.sent[1:]
	}
	s.sent = append(s.sent, inFlight{res: s.lease().Send(ctx, in.ev.ForHost()), role: in.role})
	s.held.track(in.viewerID, in.ev)
}

// settle waits until the page has answered every event sent.
func (s *session) settle() {
	for _, f := range s.sent {
		s.answer(f)
	}
	clear(s.sent)
	s.sent = s.sent[:0]
}

func (s *session) answer(f inFlight) {
	if err := <-f.res; err != nil {
		s.log.Debug("dispatch input", zap.Error(err), zap.String("role", f.role))
	}
}
