package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/annotate"
	"github.com/tandem-cobrowse/tandem/pkg/block"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Roles of viewers.
const (
	RoleCustomer = "customer"
	RoleAgent    = "agent"
)

var roles = [...]string{RoleCustomer, RoleAgent}

// inputQueue bounds the events waiting for CDP; past it pointer moves are dropped.
const inputQueue = 256

// ErrUnknownRole is returned for a viewer whose role is neither customer nor agent.
var ErrUnknownRole = errors.New("worker: unknown viewer role")

// ErrNoPeer is returned by an ICE-restart offer of a viewer that has no
// peer to restart (it never offered, or its peer failed and was dropped).
var ErrNoPeer = errors.New("worker: no peer to restart")

type viewer struct {
	v           signaling.Viewer
	peer        *rtc.Peer // nil until the viewer's offer
	lastRefusal time.Time // when the viewer was last told its input was held back
}

// queuedInput is an event for the browser, or a notice for one viewer.
type queuedInput struct {
	role     string
	ev       input.Event
	viewerID string    // who sent ev, or whom notice is for
	received time.Time // when ev came from the viewer (tandem_server_seconds)
	notice   []byte    // when set: send this to viewerID instead of dispatching ev
	// releaseHeld: control changed hands; release every held key and
	// button before the next event (control.go).
	releaseHeld bool
	// nav: a navigation from the address bar (navigation.go), checked for
	// control in the input order like an event.
	nav *protocol.Navigate
}

// roleEncoder is what the two roles' encoders have in common; offering a
// frame is not in it, on purpose (pkg/mask).
type roleEncoder interface {
	RequestKeyFrame()
	SetViewers(n int)
	Prepare(w, h int)
	ReportLoss(fraction float64, now time.Time)
	Stats() media.RoleStats
	Run(ctx context.Context) error
}

// session is one hosted co-browse session: a leased browser, its media
// pipeline and its viewers. run owns its goroutines; end asks it to stop.
type session struct {
	w   *Worker
	req LeaseRequest
	log *zap.Logger
	// browser is the session's current lease; recover (recovery.go) swaps
	// in a fresh one when it dies. Read it through lease().
	browser atomic.Pointer[browserpool.Lease]
	opts    browserpool.LeaseOptions // how the browser was leased; set by startSession
	closing sync.WaitGroup           // dead browsers being closed (recovery.go); closeParts waits
	host    *signaling.Host
	dec     *media.Decoder
	pool    *media.FramePool
	enc     map[string]roleEncoder // both roles, for what they share
	cust    *media.RoleEncoder     // the customers': raw frames
	agent   *mask.Encoder          // the agents': only frames masked by pkg/mask
	mask    *masker
	annot   *annotator       // annotations and chat (annotate.go)
	navs    chan queuedInput // address bar navigations for navLoop (navigation.go)
	files   uploads          // the page's file chooser and the customer's files (files.go)
	cursor  cursors          // the page's cursor under each viewer's pointer (cursor.go)
	track   map[string]*webrtc.TrackLocalStaticRTP
	// screenTrack carries the customer's shared screen to the agents
	// (screenshare.go).
	screenTrack *webrtc.TrackLocalStaticRTP

	inputs       chan queuedInput
	blocks       blockState    // owned by inputLoop (blocking.go)
	held         held          // owned by inputLoop: keys and buttons down, per viewer (control.go)
	sent         []inFlight    // owned by inputLoop: events sent, their answers not taken yet (sent.go)
	gateWake     chan struct{} // cap 1: a gate opened; captureLoop offers the newest frame (gate.go)
	pauseWake    chan struct{} // cap 1: the viewers changed; pauseLoop looks (pause.go)
	droppedInput atomic.Int64
	refusedInput atomic.Int64
	captured     atomic.Uint64
	decodeErrors atomic.Uint64
	screenRelay  atomic.Uint64 // screen packets relayed to the agents
	screenDrop   atomic.Uint64 // screen packets dropped: no share on, or the write failed
	ended        chan struct{}
	endOnce      sync.Once
	started      time.Time

	mu             sync.Mutex
	reason         string               // guarded by mu
	viewers        map[string]*viewer   // guarded by mu
	customerSeen   bool                 // guarded by mu
	customerGoneAt time.Time            // guarded by mu; zero while a customer watches
	emptySince     time.Time            // guarded by mu; zero while anyone watches
	consented      bool                 // guarded by mu; the customer agreed to share (gate.go)
	admitted       bool                 // guarded by mu; an agent let the customer in, or the lease did not ask for it
	control        controlState         // guarded by mu (control.go)
	screen         screenState          // guarded by mu (screenshare.go)
	loc            browserpool.Location // guarded by mu: where the tab is (navigation.go)
	locVer         int64                // guarded by mu: bumped when loc changes
	chooser        chooserState         // guarded by mu: what viewers are told of file choosers (files.go)

	inputTime map[string]prometheus.Observer // per role, tandem_server_seconds of the input path
}

func (w *Worker) startSession(ctx context.Context, req LeaseRequest, log *zap.Logger) (s *session, err error) {
	s = &session{
		w:         w,
		req:       req,
		log:       log,
		pool:      media.NewFramePool(),
		enc:       make(map[string]roleEncoder, len(roles)),
		track:     make(map[string]*webrtc.TrackLocalStaticRTP, len(roles)),
		inputs:    make(chan queuedInput, inputQueue),
		navs:      make(chan queuedInput, navQueue),
		files:     uploads{done: make(chan upload, 1)},
		cursor:    newCursors(),
		blocks:    blockState{downs: map[string]bool{}, audited: map[string]time.Time{}},
		held:      held{},
		control:   controlState{requests: map[string]time.Time{}},
		gateWake:  make(chan struct{}, 1),
		pauseWake: make(chan struct{}, 1),
		ended:     make(chan struct{}),
		viewers:   make(map[string]*viewer),
		started:   time.Now(),

		inputTime: make(map[string]prometheus.Observer, len(roles)),
		admitted:  !req.MustAdmit,
	}
	s.emptySince = s.started
	// "return nil, err" sets the result s to nil before this runs: close
	// the half-built session through its own variable.
	built := s
	defer func() {
		if err != nil {
			built.closeParts()
		}
	}()
	if s.dec, err = media.NewDecoder(); err != nil {
		return nil, fmt.Errorf("jpeg decoder: %w", err)
	}
	// The agents' encoder sends the customers' frames while the mask
	// paints nothing (media.Chain): one encode instead of two.
	chain := media.NewChain()
	for _, role := range roles {
		tr, err := w.rtc.NewTrack(role)
		if err != nil {
			return nil, fmt.Errorf("track for %s: %w", role, err)
		}
		s.track[role] = tr
		s.inputTime[role] = w.serverTime.WithLabelValues(pathInput, role)
		sent := w.serverTime.WithLabelValues(pathFrame, role)
		cfg := media.RoleEncoderConfig{Role: role, BitrateKbps: w.cfg.BitrateKbps, Warm: w.encoders,
			OnSent: func(d time.Duration) { sent.Observe(d.Seconds()) }}
		if role == RoleAgent {
			cfg.Follow = chain
			s.agent = mask.NewEncoder(cfg, tr, log)
			s.enc[role] = s.agent
		} else {
			cfg.Lead = chain
			s.cust = media.NewRoleEncoder(cfg, tr, log)
			s.enc[role] = s.cust
		}
	}
	if s.screenTrack, err = w.rtc.NewScreenTrack(); err != nil {
		return nil, err
	}
	s.mask = newMasker(s, s.agent)
	s.annot = newAnnotator(s)
	script, err := mask.Script(req.Mask)
	if err != nil {
		return nil, err
	}
	blockScript, err := block.Script(req.Block)
	if err != nil {
		return nil, err
	}
	// One isolated world runs them all: the block script finds cross-origin
	// frames through the mask script's tags; the highlight tracker shares
	// the world so that page scripts cannot see or move what it remembers.
	script += "\n" + blockScript + "\n" + annotate.Script()
	lctx, cancel := context.WithTimeout(ctx, w.cfg.StartTimeout)
	defer cancel()
	opts := browserpool.LeaseOptions{StartURL: req.StartURL, Width: req.Width, Height: req.Height,
		World:   &browserpool.World{Name: mask.World, Binding: mask.Binding, Source: script},
		MaxTabs: w.cfg.MaxTabs, TabRefused: s.tabRefused, Downloads: req.Downloads}
	if len(req.Block.Requests) > 0 {
		opts.Guard = &browserpool.RequestGuard{Patterns: req.Block.Requests, Blocked: s.requestBlocked}
	}
	if !req.URLs.Empty() {
		opts.Nav = s.navGuard()
	}
	s.opts = opts
	l, err := w.pool.Lease(lctx, opts)
	if err != nil {
		return nil, fmt.Errorf("lease browser for session %s: %w", req.SessionID, err)
	}
	s.browser.Store(l)
	s.prepareEncoders(l.Viewport())
	s.host, err = signaling.NewHost(w.nc, req.Company, req.SessionID, s, log)
	if err != nil {
		return nil, fmt.Errorf("signaling host: %w", err)
	}
	log.Info("session started")
	return s, nil
}

// run hosts the session until it ends and returns the reason. Every goroutine
// it starts has returned, and every part is closed, when it returns. A
// browser that dies is replaced (recovery.go).
func (s *session) run(parent context.Context) string {
	ctx, cancel := context.WithCancel(parent)
	g, gctx := errgroup.WithContext(ctx)
	for _, role := range roles {
		enc := s.enc[role]
		g.Go(func() error { return enc.Run(gctx) })
	}
	g.Go(func() error { return s.annot.run(gctx) })
	loops := s.startLoops(gctx, false)
	budget := &restarts{max: s.w.cfg.MaxRestarts}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-parent.Done():
			s.end(ReasonShutdown)
		case <-s.lease().Done():
			loops = s.recover(gctx, loops, budget)
		case <-loops.done:
			s.log.Warn("session part failed", zap.Error(loops.err))
			s.end(ReasonError)
		case <-gctx.Done():
			s.end(ReasonError)
		case now := <-tick.C:
			if r := s.timeout(now); r != "" {
				s.end(r)
			}
		case <-s.ended:
		}
		if s.isEnded() {
			break
		}
	}
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	s.stopScreen(ScreenshareSessionEnded, "")
	if err := s.host.End(reason); err != nil {
		s.log.Warn("tell viewers the session ended", zap.Error(err))
	}
	if err := loops.stop(); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("session part failed", zap.Error(err))
	}
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("session part failed", zap.Error(err))
	}
	s.closeParts()
	return reason
}

// isEnded reports whether end was called.
func (s *session) isEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// lease is the session's current browser: one that may have died, until
// run has swapped in its replacement (recovery.go). Goroutines outside the
// browser's loops may get a dead one; its calls fail.
func (s *session) lease() *browserpool.Lease { return s.browser.Load() }

// timeout says why the session should end now, or "".
func (s *session) timeout(now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case now.Sub(s.started) >= orDefault(s.req.MaxDuration, s.w.cfg.MaxDuration):
		return ReasonMaxLength
	case !s.customerSeen && !s.req.JoinBy.IsZero() && now.After(s.req.JoinBy.Add(s.w.cfg.LeaveGrace)):
		return ReasonPINExpired
	case s.customerSeen && !s.customerGoneAt.IsZero() && now.Sub(s.customerGoneAt) >= s.w.cfg.LeaveGrace:
		return ReasonCustomerLeft
	case !s.emptySince.IsZero() && now.Sub(s.emptySince) >= orDefault(s.req.IdleTimeout, s.w.cfg.IdleTimeout):
		return ReasonIdle
	}
	return ""
}

// end asks the session to stop; the first reason wins.
func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		close(s.ended)
	})
}

// closeParts closes the viewers' peers, the signaling host, the browser and
// the decoder. It works on a half-built session.
func (s *session) closeParts() {
	s.mu.Lock()
	peers := make([]*rtc.Peer, 0, len(s.viewers))
	for id, v := range s.viewers {
		if v.peer != nil {
			peers = append(peers, v.peer)
		}
		delete(s.viewers, id)
	}
	s.mu.Unlock()
	for _, p := range peers {
		_ = p.Close()
	}
	if s.host != nil {
		_ = s.host.Close()
	}
	s.closing.Wait()
	if l := s.lease(); l != nil {
		if err := l.Close(); err != nil {
			s.log.Warn("close browser", zap.Error(err))
		}
	}
	if s.dec != nil {
		_ = s.dec.Close()
	}
}

// captureLoop decodes each screencast frame once and offers it to the
// encoder of every role whose gate is open (gate.go); an encoder with no
// viewer only keeps it. The newest frame is held, for a gate that opens.
// On a restored browser, its first frame tells the viewers (recovery.go).
func (s *session) captureLoop(ctx context.Context, restored bool) error {
	frames := s.lease().Frames()
	var latest *media.Frame
	defer func() {
		if latest != nil {
			latest.Release()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.gateWake:
			if latest != nil {
				s.offer(latest)
			}
		case c, ok := <-frames:
			if !ok {
				return nil
			}
			f, err := s.dec.Decode(c.JPEG, s.pool)
			if err != nil {
				if s.decodeErrors.Add(1) == 1 {
					s.log.Warn("decode screencast frame", zap.Error(err))
				}
				continue
			}
			s.captured.Add(1)
			f.Meta, f.Received, f.Seq = c.Meta, c.Received, c.Seq
			s.annot.frame(c.Meta)
			s.offer(f)
			if restored {
				restored = false
				s.restored()
			}
			if latest != nil {
				latest.Release()
			}
			latest = f // our reference
		}
	}
}

// inputLoop dispatches viewers' input to the browser in arrival order.
func (s *session) inputLoop(ctx context.Context) error {
	defer s.settle()
	var next *queuedInput // taken off the queue by mergeWheel, to handle next
	for {
		var in queuedInput
		if next != nil {
			in, next = *next, nil
		} else {
			select {
			case <-ctx.Done():
				return nil
			case in = <-s.inputs:
			}
		}
		if in.ev.Kind == input.KindWheel && in.notice == nil && !in.releaseHeld && in.nav == nil {
			in, next = mergeWheel(s.inputs, in)
		}
		if in.notice != nil {
			s.notify(in.viewerID, in.notice)
			continue
		}
		if !pipelined(in) {
			s.settle() // it depends on how the page took the events before it (sent.go)
		}
		if in.releaseHeld {
			s.releaseAll(ctx)
			continue
		}
		if in.nav != nil {
			s.queueNavigate(in)
			continue
		}
		if in.ev.Kind == input.KindViewport {
			s.resize(ctx, in.ev)
			continue
		}
		if in.role == RoleAgent && !s.inControl(in.viewerID) {
			s.refuseNoControl(in)
			continue
		}
		if s.clipboardRefuses(in) || (in.role == RoleAgent && s.maskRefuses(ctx, in)) {
			continue
		}
		copied := s.selection(ctx, in)
		var ok bool
		switch {
		case in.role == RoleAgent:
			ok = s.dispatchAgent(ctx, in)
		case pipelined(in):
			s.send(ctx, in)
			ok = true
		default:
			ok = s.dispatch(ctx, in)
		}
		if ok {
			s.sendClipboard(in.viewerID, copied)
			s.tellFocus(ctx, in)
		}
	}
}

// mergeWheel adds to a wheel step the steps queued right behind it from
// the same viewer, at the same point and with the same modifiers.
// Chromium answers a wheel dispatch only once it has handled the scroll,
// tens of milliseconds, while a trackpad sends 60 steps a second or more:
// one by one, they would queue up, and everything behind them (the click
// that follows the scroll) would wait for all of them. The first other
// item it takes off the queue is returned, to be handled next.
func mergeWheel(inputs <-chan queuedInput, in queuedInput) (queuedInput, *queuedInput) {
	for {
		select {
		case n := <-inputs:
			e, m := in.ev, n.ev
			if n.notice != nil || n.releaseHeld || n.nav != nil || m.Kind != input.KindWheel || n.viewerID != in.viewerID ||
				m.X != e.X || m.Y != e.Y || m.Modifiers != e.Modifiers ||
				math.Abs(e.DeltaX+m.DeltaX) > input.MaxWheelDelta || math.Abs(e.DeltaY+m.DeltaY) > input.MaxWheelDelta {
				return in, &n
			}
			in.ev.DeltaX += m.DeltaX
			in.ev.DeltaY += m.DeltaY
		default:
			return in, nil
		}
	}
}

// prepareEncoders has both roles' encoders started for the tab's w×h
// pictures while Chromium draws the first of them (media.RoleEncoder.Prepare).
func (s *session) prepareEncoders(w, h int) {
	for _, role := range roles {
		s.enc[role].Prepare(w, h)
	}
}

// resize makes the tab the customer's window: its size, and a phone's
// viewport, touch, user agent and pixel ratio when the customer is on one.
func (s *session) resize(ctx context.Context, ev input.Event) {
	w, h := input.ClampViewport(ev.Width, ev.Height)
	d := browserpool.Device{Mobile: ev.Mobile, Scale: ev.DPR}
	if cw, ch, cd := s.lease().View(); cw == w && ch == h && cd == d.Clamped() {
		return
	}
	_, _, was := s.lease().View()
	s.prepareEncoders(w, h)
	if err := s.lease().SetView(ctx, w, h, d); err != nil {
		s.log.Warn("resize viewport", zap.Error(err))
		return
	}
	s.mask.notify() // every viewer is told the new size, a late one on a later tick
	if was.Mobile != d.Mobile {
		// Sites choose a phone or a desktop layout (and touch handling)
		// when they load: load the page again for the new device.
		if err := s.lease().Reload(ctx); err != nil {
			s.log.Info("reload for the new device", zap.Error(err))
		}
	}
}

// onInput runs on pion's DataChannel goroutine: decode, check, queue.
func (s *session) onInput(v signaling.Viewer, data []byte) {
	m, err := protocol.DecodeViewerMessage(data)
	if err != nil {
		s.droppedInput.Add(1)
		return
	}
	switch {
	case m.Control != nil:
		if ok, _ := s.mayInput(v, input.Event{Kind: input.KindKey}); ok {
			s.onControl(v, m.Control)
		}
		return
	case m.Annotate != nil || m.Chat != nil:
		s.takeAnnotation(v, m)
		return
	case m.Navigate != nil:
		s.takeNavigate(v, m.Navigate)
		return
	case m.Screenshare != nil:
		// Gated like control: nothing before consent or admission.
		if ok, _ := s.mayInput(v, input.Event{Kind: input.KindKey}); ok {
			s.onScreenshare(v, m.Screenshare)
		} else if msg := s.refusal(v, input.Event{Kind: input.KindKey}, RefusedNoConsent); msg != nil && v.Role == RoleAgent {
			s.notify(v.ID, msg)
		}
		return
	}
	ev := m.Event
	s.sharePointer(v, ev)
	if ev.Kind == input.KindViewport && v.Role != RoleCustomer {
		return // only the customer's window sizes the remote tab
	}
	if ev.BrowserShortcut() != "" {
		// Save, print, devtools and the like would reach the hosted
		// browser's own features: nobody's key gets there.
		s.refusedInput.Add(1)
		if ev.Action == input.ActionDown {
			if msg := s.refusal(v, ev, RefusedShortcut); msg != nil {
				s.enqueue(v, ev, queuedInput{viewerID: v.ID, notice: msg})
			}
		}
		return
	}
	s.enqueue(v, ev, queuedInput{role: v.Role, ev: ev, viewerID: v.ID})
}

// enqueue queues in for the input loop, or, while v's gate is shut, the
// refusal of an event like probe (none for pointer moves).
func (s *session) enqueue(v signaling.Viewer, probe input.Event, in queuedInput) {
	if ok, reason := s.mayInput(v, probe); !ok {
		s.refusedInput.Add(1)
		in = queuedInput{viewerID: v.ID, notice: s.refusal(v, probe, reason)}
		if in.notice == nil {
			return
		}
	}
	if in.received.IsZero() {
		in.received = time.Now()
	}
	select {
	case s.inputs <- in:
	default:
		s.droppedInput.Add(1)
	}
}

// orDefault is a company's limit, or the worker's when the company set none.
func orDefault(company, worker time.Duration) time.Duration {
	if company > 0 {
		return company
	}
	return worker
}
