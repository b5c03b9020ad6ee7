package worker

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// The agents' side of a session's pictures (SECURITY.md P1). Every captured
// frame goes through the masker: the Tracker plans which pixels to paint
// over from the page script's reports; when it cannot be sure, the frame
// waits for a fresh report (a flush pulled from the page) and is dropped
// when a newer frame comes. The agents' encoder, which takes only
// mask.Frame, then repeats the last safe picture. A wait longer than
// pauseAfter tells the agents "masking paused" and writes one audit event
// per episode. The customers get the masked areas as outlines.
const (
	pauseAfter   = 250 * time.Millisecond // a frame waited this long: masking is paused
	maskTick     = 100 * time.Millisecond // retries, pause checks and notices
	flushTimeout = 2 * time.Second
	// recaptureEvery spaces the fresh frames asked for while paused.
	recaptureEvery = time.Second
)

// maskStats counts what the masker did.
type maskStats struct {
	Frames    uint64        // frames that came to the masker
	Masked    uint64        // frames masked and offered to the agents
	Held      uint64        // frames that could not be masked (replaced while waiting, or failed)
	Flushes   uint64        // reports pulled from the page
	Pauses    uint64        // pause episodes
	Refused   uint64        // agent events refused by the mask guard
	MaskTime  time.Duration // time spent planning and painting
	LastPause string        // reason of the last pause
}

type masker struct {
	s    *session
	tr   *mask.Tracker
	enc  *mask.Encoder
	pool *media.FramePool
	log  *zap.Logger

	frames  chan *media.Frame  // cap 1, latest wins; each holds a reference for the masker
	flushed chan []flushResult // cap 1
	flying  atomic.Bool        // a flush is under way

	capturing  atomic.Bool // a recapture is under way
	recaptured time.Time   // owned by run: when the last recapture was asked
	// keyNext asks the agents' encoder for a key frame with the next
	// masked frame: the first of a restored browser (reset).
	keyNext atomic.Bool
	helpers sync.WaitGroup // flushes and recaptures; run waits for them

	mu        sync.Mutex
	stats     maskStats         // guarded by mu
	paused    bool              // guarded by mu
	reason    string            // guarded by mu: why paused
	stateVer  int64             // guarded by mu: bumped on every pause/resume
	rects     []image.Rectangle // guarded by mu: the areas masked in the last masked frame
	rectW     int               // guarded by mu: the picture size of rects
	rectH     int               // guarded by mu
	rectsVer  int64             // guarded by mu: bumped when rects change
	sentState map[string]int64  // guarded by mu: per agent viewer, the stateVer it was told (+1)
	sentRects map[string]int64  // guarded by mu: per customer viewer, the rectsVer it was told (+1)
	sentView  map[string][2]int // guarded by mu: per viewer, the viewport size it was told
	sentCtl   map[string]int64  // guarded by mu: per viewer, the control version it was told (+1)
	sentLoc   map[string]int64  // guarded by mu: per viewer, the location version it was told (+1)
	sentScr   map[string]int64  // guarded by mu: per viewer, the screenshare version it was told (+1)
	sentFile  map[string]int64  // guarded by mu: per viewer, the file chooser version it was told (+1)
}

type flushResult struct {
	frame   string
	payload string
	err     error
}

func newMasker(s *session, enc *mask.Encoder) *masker {
	return &masker{
		s:         s,
		tr:        newTracker(s),
		enc:       enc,
		pool:      s.pool,
		log:       s.log.Named("mask"),
		frames:    make(chan *media.Frame, 1),
		flushed:   make(chan []flushResult, 1),
		sentState: make(map[string]int64),
		sentRects: make(map[string]int64),
		sentView:  make(map[string][2]int),
		sentCtl:   make(map[string]int64),
		sentLoc:   make(map[string]int64),
		sentScr:   make(map[string]int64),
		sentFile:  make(map[string]int64),
	}
}

func newTracker(s *session) *mask.Tracker {
	return mask.NewTracker(mask.Config{Faults: s.w.cfg.MaskFaults, FrameOrigins: s.req.Mask.FrameOrigins})
}

// reset starts the masker over for a fresh browser (recovery.go), while
// run is stopped: a new tracker, which holds every frame until the new
// browser's world reported (its contexts may reuse the dead one's ids, and
// its layouts are not the dead one's); frames and flush answers of the
// dead browser are dropped. The agents' encoder keeps repeating the last
// safe picture meanwhile.
func (m *masker) reset() {
	m.tr = newTracker(m.s)
	for drained := false; !drained; {
		select {
		case f := <-m.frames:
			f.Release()
		case <-m.flushed:
		default:
			drained = true
		}
	}
	m.flying.Store(false)
	m.recaptured = time.Time{}
	m.keyNext.Store(true)
}

// offer hands a decoded frame to the masker, which takes its own reference.
// A frame not taken yet is replaced (and counted as held).
func (m *masker) offer(f *media.Frame) {
	f.Retain()
	for {
		select {
		case m.frames <- f:
			return
		default:
		}
		select {
		case old := <-m.frames:
			old.Release()
			m.count(func(st *maskStats) { st.Held++ })
		default:
		}
	}
}

func (m *masker) count(fn func(*maskStats)) {
	m.mu.Lock()
	fn(&m.stats)
	m.mu.Unlock()
}

// run owns the pending frame and the tracker's inputs until ctx ends.
func (m *masker) run(ctx context.Context) error {
	var pending *media.Frame
	var since time.Time
	defer func() {
		m.helpers.Wait() // their contexts end with ctx
		if pending != nil {
			pending.Release()
		}
		for {
			select {
			case f := <-m.frames:
				f.Release()
			default:
				return
			}
		}
	}()
	tick := time.NewTicker(maskTick)
	defer tick.Stop()
	events := m.s.lease().WorldEvents()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			m.onWorld(ev)
		case r := <-m.flushed:
			m.onFlush(r)
		case f := <-m.frames:
			m.count(func(st *maskStats) { st.Frames++ })
			if pending != nil {
				// Still unresolved: the wait goes on from the first frame
				// that could not be masked, so a failing mask path pauses
				// however fast frames come.
				pending.Release()
				m.count(func(st *maskStats) { st.Held++ })
			} else {
				since = time.Now()
			}
			pending = f
		case now := <-tick.C:
			m.notify()
			if pending == nil {
				continue
			}
			if now.Sub(since) >= pauseAfter {
				m.pause(m.lastReason())
				m.recapture(ctx, now)
			}
			m.flush(ctx) // keep asking: the page may be back, or settled
		}
		if at := m.s.lease().WorldLoss(); !at.IsZero() {
			m.tr.Lost(at)
		}
		if pending == nil {
			continue
		}
		if m.try(ctx, pending) {
			pending.Release()
			pending = nil
		}
	}
}

// recapture asks Chromium for a fresh frame, at most once per
// recaptureEvery: the frame that waits may never be masked (reports of its
// time were lost), and a still page sends no other.
func (m *masker) recapture(ctx context.Context, now time.Time) {
	if now.Sub(m.recaptured) < recaptureEvery || !m.capturing.CompareAndSwap(false, true) {
		return
	}
	m.recaptured = now
	m.helpers.Go(func() {
		defer m.capturing.Store(false)
		rctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		if err := m.s.lease().Recapture(rctx); err != nil {
			m.log.Debug("recapture", zap.Error(err))
		}
	})
}

func (m *masker) lastReason() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reason != "" {
		return m.reason
	}
	return mask.ReasonUnmeasured
}

// try masks f and offers it to the agents; false means f must wait (a flush
// was asked for).
func (m *masker) try(ctx context.Context, f *media.Frame) bool {
	start := time.Now()
	rects, err := m.plan(f)
	if err != nil {
		m.setReason(mask.Reason(err))
		if mask.Stale(err) {
			m.flush(ctx) // a pulled report settles it; other holds are retried each tick
		}
		return false
	}
	if _, open := m.s.gates(); open {
		safe, err := m.apply(f, rects)
		if err != nil {
			m.setReason(mask.ReasonError)
			return false
		}
		m.enc.Offer(safe)
		safe.Release()
		if m.keyNext.Swap(false) {
			m.enc.RequestKeyFrame()
		}
	}
	took := time.Since(start)
	m.mu.Lock()
	m.stats.Masked++
	m.stats.MaskTime += took
	if !slices.Equal(rects, m.rects) || m.rectW != f.Width || m.rectH != f.Height {
		m.rects, m.rectW, m.rectH = rects, f.Width, f.Height
		m.rectsVer++
	}
	m.reason = ""
	wasPaused := m.paused
	if wasPaused {
		m.paused = false
		m.stateVer++
	}
	m.mu.Unlock()
	if wasPaused {
		m.log.Info("masking resumed")
		m.notify()
	}
	return true
}

// plan asks the tracker, turning a panic into a hold: nothing in the mask
// path may let a frame through by failing.
func (m *masker) plan(f *media.Frame) (rects []image.Rectangle, err error) {
	defer func() {
		if p := recover(); p != nil {
			rects, err = nil, &mask.HoldError{Reason: mask.ReasonError, Detail: fmt.Sprint("panic: ", p)}
		}
	}()
	return m.tr.Plan(f.Meta, f.Width, f.Height, f.Received)
}

func (m *masker) apply(f *media.Frame, rects []image.Rectangle) (safe mask.Frame, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mask: paint: panic: %v", p)
		}
	}()
	return mask.Apply(f, rects, m.pool), nil
}

// onWorld applies one event of the page's isolated world.
func (m *masker) onWorld(ev browserpool.WorldEvent) {
	switch ev.Kind {
	case browserpool.WorldContext:
		m.tr.SetContext(ev.Frame, ev.Context)
	case browserpool.WorldCall:
		m.addReport(ev.Frame, ev.Context, ev.Payload, ev.Received)
	}
}

func (m *masker) addReport(frame string, ctx int64, payload string, received time.Time) {
	r, err := mask.ParseReport([]byte(payload), received)
	if err != nil {
		m.log.Warn("bad mask report", zap.Error(err))
		m.tr.Broken(frame, received, "bad report")
		return
	}
	if r.Err != "" {
		m.log.Warn("the page could not measure its masked areas", zap.String("error", r.Err))
	}
	m.tr.Add(frame, ctx, r)
}

// flush pulls fresh reports from the page (the top document and every
// cross-origin frame that reports for itself) unless a flush is under way.
func (m *masker) flush(ctx context.Context) {
	if !m.flying.CompareAndSwap(false, true) {
		return
	}
	m.count(func(st *maskStats) { st.Flushes++ })
	frames := append([]string{mask.Top}, m.s.lease().WorldFrames()...)
	m.helpers.Go(func() {
		fctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		results := make([]flushResult, len(frames))
		var wg sync.WaitGroup
		for i, frame := range frames {
			wg.Go(func() {
				_, payload, err := m.s.lease().EvalWorld(fctx, frame, mask.FlushExpression)
				results[i] = flushResult{frame: frame, payload: payload, err: err}
			})
		}
		wg.Wait()
		select {
		case m.flushed <- results:
		case <-ctx.Done():
			m.flying.Store(false)
		}
	})
}

func (m *masker) onFlush(results []flushResult) {
	m.flying.Store(false)
	for _, r := range results {
		switch {
		case r.frame != mask.Top && r.err != nil:
			// A child frame that cannot answer keeps its old reports: the
			// picture waits, or the frame is masked whole once they age.
		case errors.Is(r.err, browserpool.ErrNoWorld):
			m.setReason(mask.ReasonNavigating)
		case r.err != nil:
			m.setReason(mask.ReasonScriptGone)
			m.log.Debug("flush mask report", zap.Error(r.err))
		case r.payload == "":
			m.setReason(mask.ReasonScriptGone)
		default:
			// The report itself comes through the world's events, in the
			// page's order: taking the answer here could let it overtake
			// reports still on their way, and Add would refuse them as old.
		}
	}
}

func (m *masker) setReason(reason string) {
	m.mu.Lock()
	m.reason = reason
	m.mu.Unlock()
}

// pause marks masking paused (once per episode): the agents are told and
// the audit trail gets one event.
func (m *masker) pause(reason string) {
	m.mu.Lock()
	if m.paused {
		m.mu.Unlock()
		return
	}
	m.paused = true
	m.stateVer++
	m.stats.Pauses++
	m.stats.LastPause = reason
	m.mu.Unlock()
	m.log.Warn("masking paused: holding the agents' picture", zap.String("reason", reason))
	m.s.w.publishEvent(Event{Type: EventMaskPaused, Company: m.s.req.Company, SessionID: m.s.req.SessionID, Reason: reason})
	m.notify()
}

// notify sends each viewer what it has not been told yet: the viewport's
// size, who controls the tab, where it is, the screenshare and file
// chooser states, agents the masking state, customers the masked areas. A
// viewer whose channel is not open yet is told on a later tick.
func (m *masker) notify() {
	// A versioned state: told is the viewers' record of it, holding the
	// version each was told plus one (zero: never told).
	type out struct {
		id    string
		ver   int64
		msg   []byte
		extra []byte // sent right after msg, or nil
		told  map[string]int64
	}
	var sized []string
	var outs []out
	rw, rh := m.s.lease().Viewport()
	view := protocol.Encode(protocol.Notice{Type: "viewport", Width: rw, Height: rh})
	m.s.mu.Lock()
	ctlVer, ctlMsg, ctlAsk := m.s.controlNoticeLocked()
	locVer, locCust, locAgent := m.s.locationNoticeLocked()
	scrVer, scrMsg := m.s.screenNoticeLocked()
	file := m.s.chooser
	m.mu.Lock()
	state := protocol.Notice{Type: "masking", State: "active"}
	if m.paused {
		state = protocol.Notice{Type: "masking", State: "paused", Reason: m.stats.LastPause}
	}
	var masks, stateMsg []byte
	peers := map[string]func([]byte) error{}
	// tell adds msg of version ver for viewer id unless it was told.
	tell := func(id string, ver int64, msg, extra []byte, told map[string]int64) {
		if msg != nil && told[id] != ver+1 {
			outs = append(outs, out{id: id, ver: ver, msg: msg, extra: extra, told: told})
		}
	}
	for id, vw := range m.s.viewers {
		if vw.peer == nil {
			continue
		}
		peers[id] = vw.peer.Send
		if m.sentView[id] != [2]int{rw, rh} {
			sized = append(sized, id)
		}
		customer := vw.v.Role == RoleCustomer
		var ask []byte
		if customer {
			ask = ctlAsk
		}
		tell(id, ctlVer, ctlMsg, ask, m.sentCtl)
		tell(id, locVer, pick(customer, locCust, locAgent), nil, m.sentLoc)
		tell(id, scrVer, scrMsg, nil, m.sentScr)
		tell(id, file.ver, pick(customer, file.customers, file.agents), nil, m.sentFile)
		switch {
		case vw.v.Role == RoleAgent && m.sentState[id] != m.stateVer+1:
			if stateMsg == nil {
				stateMsg = protocol.Encode(state)
			}
			tell(id, m.stateVer, stateMsg, nil, m.sentState)
		case customer && m.rectsVer > 0 && m.sentRects[id] <= m.rectsVer:
			if masks == nil {
				masks = protocol.Encode(masksNotice(m.rects, m.rectW, m.rectH))
			}
			tell(id, m.rectsVer, masks, nil, m.sentRects)
		}
	}
	m.mu.Unlock()
	m.s.mu.Unlock()
	for _, id := range sized {
		if send := peers[id]; send(view) == nil {
			m.mu.Lock()
			m.sentView[id] = [2]int{rw, rh}
			m.mu.Unlock()
		}
	}
	for _, o := range outs {
		if send := peers[o.id]; send(o.msg) == nil && (o.extra == nil || send(o.extra) == nil) {
			m.mu.Lock()
			o.told[o.id] = o.ver + 1
			m.mu.Unlock()
		}
	}
}

// pick is customers' for a customer viewer, else agents'.
func pick(customer bool, customers, agents []byte) []byte {
	if customer {
		return customers
	}
	return agents
}

// forget drops what a viewer was told, for a new peer of the same viewer.
func (m *masker) forget(viewerID string) {
	m.mu.Lock()
	delete(m.sentState, viewerID)
	delete(m.sentRects, viewerID)
	delete(m.sentView, viewerID)
	delete(m.sentCtl, viewerID)
	delete(m.sentLoc, viewerID)
	delete(m.sentScr, viewerID)
	delete(m.sentFile, viewerID)
	m.mu.Unlock()
}

func masksNotice(rects []image.Rectangle, w, h int) protocol.Notice {
	n := protocol.Notice{Type: "masks", Width: w, Height: h, Rects: make([][4]int, 0, len(rects))}
	for _, r := range rects {
		n.Rects = append(n.Rects, [4]int{r.Min.X, r.Min.Y, r.Dx(), r.Dy()})
	}
	return n
}

// guard asks the page, just before an agent's event is dispatched, whether
// the mask rules refuse it: keys while the focus or the selection is in
// masked content. A mouse press clears a masked selection first. When the
// page cannot answer, keys are refused.
func (m *masker) guard(ctx context.Context, kind string) (refuse bool) {
	gctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	_, ans, err := m.s.lease().EvalWorld(gctx, mask.Top, mask.GuardExpression(kind))
	if err != nil {
		return kind != "down"
	}
	return ans != "ok"
}

func (m *masker) snapshot() maskStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// maskRefuses runs the mask guard for an agent's event about to be
// dispatched and reports whether it was refused (the agent is told, the
// audit trail gets an event, at most one per refusalEvery per viewer).
func (s *session) maskRefuses(ctx context.Context, in queuedInput) bool {
	var kind string
	switch {
	case in.ev.Kind == input.KindText:
		kind = "key"
	case in.ev.Kind == input.KindKey && in.ev.Action != input.ActionUp && !navigationKey(in.ev):
		kind = "key"
	case in.ev.Kind == input.KindMouse && in.ev.Action == input.ActionDown,
		in.ev.Kind == input.KindTouch && in.ev.Action == input.ActionStart:
		kind = "down"
	default:
		return false
	}
	if !s.mask.guard(ctx, kind) {
		return false
	}
	s.mask.count(func(st *maskStats) { st.Refused++ })
	s.refusedInput.Add(1)
	v := signaling.Viewer{ID: in.viewerID, Role: RoleAgent}
	if msg := s.refusal(v, in.ev, RefusedMaskedField); msg != nil {
		s.notify(in.viewerID, msg)
		s.w.publishEvent(Event{Type: EventInputRefused, Company: s.req.Company, SessionID: s.req.SessionID,
			ViewerID: in.viewerID, Role: RoleAgent, Reason: RefusedMaskedField})
	}
	return true
}

// navigationKey says whether a key only moves the focus or leaves (Tab,
// Escape, a modifier alone): allowed in a masked field, so that the agent
// is never stuck in it. Everything else there could type, delete, paste or
// copy.
func navigationKey(ev input.Event) bool {
	switch ev.Key {
	case "Tab", "Escape", "Shift", "Control", "Alt", "Meta", "CapsLock":
		return ev.Text == "" && ev.Modifiers&(input.ModCtrl|input.ModMeta|input.ModAlt) == 0
	}
	return false
}
