package worker

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Blocking (SECURITY.md P3, docs/blocking.md): an agent's event that could
// activate something is checked by the page's block script just before it
// is dispatched (layer 1), and dispatched with the script's guard armed in
// every document (layer 2), which cancels click, submit and activation
// keys on blocked targets. A refused event tells the agent why and writes
// one audit event per attempt. The customer's events skip both.

// RefusedBlocked is the refusal reason of an agent's event on a blocked
// element.
const RefusedBlocked = "blocked"

const (
	blockTimeout = 2 * time.Second
	// blockAuditEvery is how close the second press of a double click is
	// to its first: one attempt, one audit event.
	blockAuditEvery = 2 * time.Second
	maxFrameHops    = 4 // cross-origin frames asked in turn for one check
)

// blockState is what the input loop remembers between an agent's events.
// It is owned by inputLoop.
type blockState struct {
	downs   map[string]bool      // presses refused: their release is dropped too ("mouse:left", "key:KeyA")
	audited map[string]time.Time // viewer+selector+method → when last audited
}

// blockKind returns what the page must be asked before ev is dispatched
// ("" nothing) and whether ev is dispatched with the guard armed.
func blockKind(ev input.Event) (kind string, armed bool) {
	switch ev.Kind {
	case input.KindMouse:
		if ev.Action == input.ActionDown {
			return block.KindPointer, true
		}
		return "", ev.Action == input.ActionUp
	case input.KindKey:
		if ev.Action == input.ActionDown {
			return block.KindKey, true
		}
		return "", true
	case input.KindText:
		return block.KindText, true
	}
	return "", false
}

func pressKey(ev input.Event) string {
	if ev.Kind == input.KindMouse {
		return "mouse:" + string(ev.Button)
	}
	return "key:" + ev.Code + ":" + ev.Key
}

// dispatchAgent dispatches an agent's event unless the block rules refuse
// it.
func (s *session) dispatchAgent(ctx context.Context, in queuedInput) bool {
	ev := in.ev
	kind, armed := blockKind(ev)
	if ev.Action == input.ActionUp && (ev.Kind == input.KindMouse || ev.Kind == input.KindKey) {
		if s.blocks.downs[pressKey(ev)] {
			delete(s.blocks.downs, pressKey(ev))
			return false // its press was refused
		}
	}
	if ev.Action == input.ActionDown && s.blocks.downs[pressKey(ev)] {
		return false // a held key's repeat, its first press refused
	}
	if kind != "" {
		if v := s.blockCheck(ctx, kind, ev); !v.OK {
			if ev.Action == input.ActionDown {
				s.blocks.downs[pressKey(ev)] = true
			}
			s.refuseBlocked(in, v.Selector, v.Method)
			return false
		}
	}
	if !armed {
		return s.dispatch(ctx, in)
	}
	frames, ok := s.armGuards(ctx)
	if !ok {
		if ev.Action == input.ActionDown {
			s.blocks.downs[pressKey(ev)] = true
		}
		s.refuseBlocked(in, "page not ready", "guard")
		return false
	}
	ok = s.dispatch(ctx, in)
	if c := s.disarmGuards(ctx, frames); len(c) > 0 {
		s.refuseBlocked(in, c[0].Selector, "guard: "+c[0].Type)
		return false
	}
	return ok
}

// dispatch sends an event to the page and keeps track of what is held; it
// reports whether the page got the event.
func (s *session) dispatch(ctx context.Context, in queuedInput) bool {
	if err := s.lease.Dispatch(ctx, in.ev.ForHost()); err != nil {
		if ctx.Err() == nil {
			s.log.Debug("dispatch input", zap.Error(err), zap.String("role", in.role))
		}
		return false
	}
	s.held.track(in.viewerID, in.ev)
	return true
}

// blockCheck asks the page (and in turn the cross-origin frame the event
// lands in) whether ev may be dispatched. Anything but a clear yes refuses.
func (s *session) blockCheck(ctx context.Context, kind string, ev input.Event) block.Verdict {
	cctx, cancel := context.WithTimeout(ctx, blockTimeout)
	defer cancel()
	frame, x, y := mask.Top, ev.X, ev.Y
	for range maxFrameHops {
		_, ans, err := s.lease.EvalWorld(cctx, frame, block.CheckExpression(kind, x, y, ev.Key, ev.Modifiers))
		if err != nil {
			return block.Verdict{Selector: "page not ready", Method: kind}
		}
		v, err := block.ParseVerdict(ans)
		if err != nil || v.Frame == "" {
			return v
		}
		frame, x, y = v.Frame, v.X, v.Y
	}
	return block.Verdict{Selector: "frames nested too deep", Method: kind}
}

// armGuards arms the guard in the top document and every cross-origin frame
// that has the world; false when the top document's could not be armed.
func (s *session) armGuards(ctx context.Context) ([]string, bool) {
	frames := append([]string{mask.Top}, s.lease.WorldFrames()...)
	ok := make([]bool, len(frames))
	s.evalFrames(ctx, frames, block.ArmExpression, func(i int, ans string, err error) {
		ok[i] = err == nil && ans == "armed"
	})
	armed := frames[:0]
	for i, f := range frames {
		if ok[i] {
			armed = append(armed, f)
		}
	}
	return armed, ok[0]
}

// disarmGuards disarms the guards armed and returns what they cancelled.
func (s *session) disarmGuards(ctx context.Context, frames []string) []block.Caught {
	var mu sync.Mutex
	var out []block.Caught
	s.evalFrames(ctx, frames, block.DisarmExpression, func(_ int, ans string, err error) {
		if err != nil {
			return
		}
		c, err := block.ParseCaught(ans)
		if err != nil {
			return
		}
		mu.Lock()
		out = append(out, c...)
		mu.Unlock()
	})
	return out
}

// evalFrames evaluates expr in the world of each frame at once.
func (s *session) evalFrames(ctx context.Context, frames []string, expr string, done func(i int, ans string, err error)) {
	cctx, cancel := context.WithTimeout(ctx, blockTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, f := range frames {
		wg.Go(func() {
			_, ans, err := s.lease.EvalWorld(cctx, f, expr)
			done(i, ans, err)
		})
	}
	wg.Wait()
}

// refuseBlocked tells the agent and writes the audit event, once per
// attempt.
func (s *session) refuseBlocked(in queuedInput, selector, method string) {
	s.refusedInput.Add(1)
	v := signaling.Viewer{ID: in.viewerID, Role: RoleAgent}
	if msg := s.refusal(v, in.ev, RefusedBlocked); msg != nil {
		s.notify(in.viewerID, msg)
	}
	// The second press of a double click is the same attempt.
	key := in.viewerID + "\x00" + selector + "\x00" + method
	now := time.Now()
	if in.ev.Clicks >= 2 && now.Sub(s.blocks.audited[key]) < blockAuditEvery {
		return
	}
	s.blocks.audited[key] = now
	s.log.Info("agent input blocked", zap.String("selector", selector), zap.String("method", method))
	s.w.publishEvent(Event{Type: EventInputRefused, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: in.viewerID, Role: RoleAgent, Reason: RefusedBlocked, Selector: selector, Method: method})
}

// requestBlocked records a request the guard failed while an agent
// controlled the tab (layer 3). It runs on the lease's goroutine.
func (s *session) requestBlocked(url string) {
	s.mu.Lock()
	agent := s.control.controller
	s.mu.Unlock()
	s.refusedInput.Add(1)
	s.log.Info("request blocked while an agent controls", zap.String("url", url))
	s.w.publishEvent(Event{Type: EventInputRefused, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: agent, Role: RoleAgent, Reason: RefusedBlocked, Selector: url, Method: "request"})
}
