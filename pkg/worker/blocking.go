package worker

import (
	"context"
	"slices"
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
	case input.KindTouch:
		// A finger coming down is a press at its point. Chromium's tap
		// clicks while the last touchend is dispatched (docs/mobile.md), so
		// ends are dispatched with the guard armed; moves and cancels
		// activate nothing.
		switch ev.Action {
		case input.ActionStart:
			return block.KindPointer, true
		case input.ActionEnd:
			return "", true
		}
	}
	return "", false
}

// touchKey is the pressKey of every touch event: a viewer's fingers make
// one touch sequence, refused or held as a whole.
const touchKey = "touch"

func pressKey(ev input.Event) string {
	switch ev.Kind {
	case input.KindMouse:
		return "mouse:" + string(ev.Button)
	case input.KindTouch:
		return touchKey
	}
	return "key:" + ev.Code + ":" + ev.Key
}

// touchOver says whether ev ends its touch sequence: no finger left.
func touchOver(ev input.Event) bool {
	return ev.Kind == input.KindTouch && (ev.Action == input.ActionCancel || (ev.Action == input.ActionEnd && len(ev.Touches) == 0))
}

// newTouches returns the fingers of a touch start that were not down
// before it (the viewer's touch sequence, as last dispatched).
func (s *session) newTouches(viewerID string, ev input.Event) []input.Touch {
	prev, ok := s.held[viewerID][touchKey]
	if !ok {
		return ev.Touches
	}
	var out []input.Touch
	for _, t := range ev.Touches {
		if !slices.ContainsFunc(prev.Touches, func(p input.Touch) bool { return p.ID == t.ID }) {
			out = append(out, t)
		}
	}
	return out
}

// refusePress remembers that ev, a press, was refused, so that its release
// (a key's repeats; the rest of a touch sequence) is dropped too. A touch
// sequence the page already has (the fingers before this one) is
// cancelled, so that nothing of it can still tap or drag.
func (s *session) refusePress(ctx context.Context, in queuedInput) {
	ev := in.ev
	switch {
	case ev.Kind == input.KindTouch:
		s.blocks.downs[touchKey] = true
		if _, ok := s.held[in.viewerID][touchKey]; ok {
			s.dispatch(ctx, queuedInput{ev: input.Event{Kind: input.KindTouch, Action: input.ActionCancel}, viewerID: in.viewerID, role: in.role})
		}
	case ev.Action == input.ActionDown:
		s.blocks.downs[pressKey(ev)] = true
	}
}

// dispatchAgent dispatches an agent's event unless the block rules refuse
// it.
func (s *session) dispatchAgent(ctx context.Context, in queuedInput) bool {
	ev := in.ev
	kind, armed := blockKind(ev)
	if ev.Kind == input.KindTouch && s.blocks.downs[touchKey] {
		if touchOver(ev) {
			delete(s.blocks.downs, touchKey)
		}
		return false // its sequence was refused
	}
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
		if v := s.blockCheckAll(ctx, kind, in); !v.OK {
			s.refusePress(ctx, in)
			s.refuseBlocked(in, v.Selector, v.Method)
			return false
		}
	}
	if !armed {
		return s.dispatch(ctx, in)
	}
	frames, ok := s.armGuards(ctx)
	if !ok {
		s.refusePress(ctx, in)
		s.refuseBlocked(in, "page not ready", "guard")
		return false
	}
	ok = s.dispatch(ctx, in)
	if c := s.disarmGuards(ctx, frames); len(c) > 0 {
		if ev.Kind == input.KindTouch && !touchOver(ev) {
			s.refusePress(ctx, in) // the rest of the sequence must not tap or drag
		}
		s.refuseBlocked(in, c[0].Selector, "guard: "+c[0].Type)
		return false
	}
	return ok
}

// blockCheckAll checks ev as blockCheck does; a touch start at each finger
// that came down with it, refused if any one is.
func (s *session) blockCheckAll(ctx context.Context, kind string, in queuedInput) block.Verdict {
	if in.ev.Kind != input.KindTouch {
		return s.blockCheck(ctx, kind, in.ev)
	}
	v := block.Verdict{OK: true}
	for _, t := range s.newTouches(in.viewerID, in.ev) {
		if v = s.blockCheck(ctx, kind, input.Event{Kind: input.KindTouch, X: t.X, Y: t.Y}); !v.OK {
			return v
		}
	}
	return v
}

// dispatch sends an event to the page and keeps track of what is held; it
// reports whether the page got the event.
func (s *session) dispatch(ctx context.Context, in queuedInput) bool {
	s.settle()
	s.observeInput(in)
	if err := s.lease().Dispatch(ctx, in.ev.ForHost()); err != nil {
		if ctx.Err() == nil {
			s.log.Debug("dispatch input", zap.Error(err), zap.String("role", in.role))
		}
		return false
	}
	s.held.track(in.viewerID, in.ev)
	return true
}

// observeInput records in's wait in the worker (tandem_server_seconds).
func (s *session) observeInput(in queuedInput) {
	if o := s.inputTime[in.role]; o != nil && !in.received.IsZero() {
		o.Observe(time.Since(in.received).Seconds())
	}
}

// blockCheck asks the page (and in turn the cross-origin frame the event
// lands in) whether ev may be dispatched. Anything but a clear yes refuses.
func (s *session) blockCheck(ctx context.Context, kind string, ev input.Event) block.Verdict {
	cctx, cancel := context.WithTimeout(ctx, blockTimeout)
	defer cancel()
	frame, x, y := mask.Top, ev.X, ev.Y
	for range maxFrameHops {
		_, ans, err := s.lease().EvalWorld(cctx, frame, block.CheckExpression(kind, x, y, ev.Key, ev.Modifiers))
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
	frames := append([]string{mask.Top}, s.lease().WorldFrames()...)
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
			_, ans, err := s.lease().EvalWorld(cctx, f, expr)
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
