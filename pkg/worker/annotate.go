package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/annotate"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Annotations and chat (docs/annotations.md). Viewers draw pen strokes,
// point a laser, highlight elements and chat; the worker relays, keeps what
// a late joiner needs, and resolves highlighted elements from the DOM. None
// of it touches the page or needs control, but all of it is gated like
// input: nothing is taken before the customer's consent (agents) or
// admission (everyone), and nothing is sent to a viewer whose gate is shut.
//
// Two goroutines, both started by session.run: the annotator's run owns
// the state and sends every annotation, chat and scroll notice, in one
// order for all viewers; track asks the page (pick, rects) and hands the
// answers to run, so that neither the input nor the capture loop waits for
// the page.

// RefusedRateLimited is the refusal reason of a chat message beyond the
// viewer's rate.
const RefusedRateLimited = "rate_limited"

const (
	annotateQueue = 256 // viewer messages waiting for run; past it they are dropped
	annotateTick  = 100 * time.Millisecond
	laserEvery    = 33 * time.Millisecond // one viewer's laser notices: 30 a second
	scrollEvery   = 33 * time.Millisecond // scroll notices: 30 a second
	measureEvery  = 33 * time.Millisecond // highlight measures on frames: 30 a second
	measureSlow   = 500 * time.Millisecond
	pageTimeout   = time.Second
	strokeFade    = 4 * time.Second // an unpinned stroke is forgotten this long after its last points
	maxStrokes    = 200
	maxHighlights = 8
	chatHistory   = 200
	welcomeChunk  = 500 // points per stroke message to a late joiner
	chatRate      = 5
	chatBurst     = 10
	annotateRate  = 120
	pickQueue     = 16
)

// annotJob is a viewer's annotate or chat message, or its pointer's
// position (control.go), for run.
type annotJob struct {
	who     protocol.Author
	ann     *protocol.Annotate
	chat    *protocol.Chat
	pointer *[2]float64
}

// stroke is a pen stroke the worker keeps for late joiners.
type stroke struct {
	id      string // "<viewer id>.<the viewer's id>"
	who     protocol.Author
	points  [][2]float64
	pinned  bool
	ended   bool
	touched time.Time
	seq     uint64 // creation order
}

type highlight struct {
	id   string
	who  protocol.Author
	rect annotate.Rect // as last sent
}

// laser is one viewer's laser pointer, or its shared pointer, throttled
// to one notice every laserEvery; the last position always goes out.
type laser struct {
	who     protocol.Author
	pointer bool // the viewer's pointer (to the other role), not its laser (to all others)
	sent    time.Time
	pending bool
	x, y    float64
}

type pickReq struct {
	id   string
	x, y float64
}

// trackResult is the page's answer to a pick (pick set) or to a measure.
type trackResult struct {
	pick  string
	rect  annotate.Rect
	found bool
	rects map[string]annotate.Rect
	gone  []string
}

type limits struct {
	chat, annotate *rate.Limiter
}

type annotator struct {
	s   *session
	log *zap.Logger

	jobs       chan annotJob            // pion goroutines → run
	picks      chan pickReq             // run → track
	results    chan trackResult         // track → run
	frameWake  chan struct{}            // cap 1: a frame was captured (track)
	scrollWake chan struct{}            // cap 1: the scroll offset changed (run)
	live       atomic.Pointer[[]string] // the highlight ids track measures; run publishes

	scrollMu  sync.Mutex
	scroll    [2]float64 // guarded by scrollMu: of the newest captured frame
	hasScroll bool       // guarded by scrollMu

	limMu  sync.Mutex
	limits map[string]*limits // guarded by limMu: per viewer

	// Owned by run.
	strokes    map[string]*stroke
	strokeSeq  uint64
	highlights []*highlight               // oldest first
	pending    map[string]protocol.Author // picks asked, not answered
	lastPick   uint64
	chat       [][]byte // the last chatHistory chat notices, oldest first
	lastChat   uint64
	lasers     map[string]*laser // by laserKey
	sentScroll [2]float64
	scrollAt   time.Time            // when a scroll notice was last sent
	scrollDue  bool                 // a newer offset waits for scrollEvery
	welcomed   map[string]*rtc.Peer // per viewer, the peer that has the state
}

func newAnnotator(s *session) *annotator {
	a := &annotator{
		s:          s,
		log:        s.log.Named("annotate"),
		jobs:       make(chan annotJob, annotateQueue),
		picks:      make(chan pickReq, pickQueue),
		results:    make(chan trackResult),
		frameWake:  make(chan struct{}, 1),
		scrollWake: make(chan struct{}, 1),
		limits:     map[string]*limits{},
		strokes:    map[string]*stroke{},
		pending:    map[string]protocol.Author{},
		lasers:     map[string]*laser{},
		welcomed:   map[string]*rtc.Peer{},
	}
	a.live.Store(&[]string{})
	return a
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// takeAnnotation checks a viewer's annotate or chat message and queues it
// for run (on pion's goroutine). Like input, it is refused before the
// viewer's gate opens; beyond the viewer's rate it is dropped (a chat
// message is answered rate_limited).
func (s *session) takeAnnotation(v signaling.Viewer, m protocol.ViewerMessage) {
	a := s.annot
	// A laser is like a pointer move: held back without a word.
	asEvent := input.Event{Kind: input.KindKey}
	if m.Annotate != nil && m.Annotate.Action == protocol.AnnotateLaser {
		asEvent = input.Event{Kind: input.KindMouse, Action: input.ActionMove}
	}
	if ok, reason := s.mayInput(v, asEvent); !ok {
		s.refusedInput.Add(1)
		if msg := s.refusal(v, asEvent, reason); msg != nil {
			s.notify(v.ID, msg)
		}
		return
	}
	if !a.allow(v.ID, m.Chat != nil) {
		s.droppedInput.Add(1)
		if m.Chat != nil {
			if msg := s.refusal(v, asEvent, RefusedRateLimited); msg != nil {
				s.notify(v.ID, msg)
			}
		}
		return
	}
	select {
	case a.jobs <- annotJob{who: protocol.Author{ViewerID: v.ID, Role: v.Role, Name: v.Name}, ann: m.Annotate, chat: m.Chat}:
	default:
		s.droppedInput.Add(1)
	}
}

// allow spends one of the viewer's chat or annotate tokens.
func (a *annotator) allow(viewerID string, chat bool) bool {
	a.limMu.Lock()
	defer a.limMu.Unlock()
	l := a.limits[viewerID]
	if l == nil {
		l = &limits{chat: rate.NewLimiter(chatRate, chatBurst), annotate: rate.NewLimiter(annotateRate, annotateRate)}
		a.limits[viewerID] = l
	}
	if chat {
		return l.chat.Allow()
	}
	return l.annotate.Allow()
}

// frame takes a captured frame's scroll offset and wakes the highlight
// tracker (on captureLoop's goroutine: never blocks).
func (a *annotator) frame(m media.Meta) {
	off := [2]float64{m.ScrollOffsetX, m.ScrollOffsetY}
	a.scrollMu.Lock()
	changed := !a.hasScroll || a.scroll != off
	a.scroll, a.hasScroll = off, true
	a.scrollMu.Unlock()
	if changed {
		wake(a.scrollWake)
	}
	wake(a.frameWake)
}

func (a *annotator) currentScroll() ([2]float64, bool) {
	a.scrollMu.Lock()
	defer a.scrollMu.Unlock()
	return a.scroll, a.hasScroll
}

// run owns the annotation state and sends every notice, until ctx ends.
func (a *annotator) run(ctx context.Context) error {
	tick := time.NewTicker(annotateTick)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var timerAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-a.jobs:
			a.handle(j, time.Now())
		case r := <-a.results:
			a.onTrack(r)
		case <-a.scrollWake:
			a.onScroll(time.Now())
		case now := <-timer.C:
			timerAt = time.Time{}
			a.flushDue(now)
		case now := <-tick.C:
			a.expire(now)
			a.welcomeAll()
		}
		if due := a.nextDue(); !due.IsZero() && (timerAt.IsZero() || due.Before(timerAt)) {
			timer.Reset(time.Until(due))
			timerAt = due
		}
	}
}

// laserKey names a viewer's laser or shared pointer in annotator.lasers.
func laserKey(viewerID string, pointer bool) string {
	if pointer {
		return "pointer:" + viewerID
	}
	return "laser:" + viewerID
}

// movePointer takes a laser or shared pointer position and sends it now, or
// when laserEvery since the last one has passed.
func (a *annotator) movePointer(who protocol.Author, pointer bool, x, y float64, now time.Time) {
	key := laserKey(who.ViewerID, pointer)
	l := a.lasers[key]
	if l == nil {
		l = &laser{who: who, pointer: pointer}
		a.lasers[key] = l
	}
	l.x, l.y, l.pending = x, y, true
	if now.Sub(l.sent) >= laserEvery {
		a.sendLaser(l, now)
	}
}

func (a *annotator) handle(j annotJob, now time.Time) {
	if j.pointer != nil {
		a.movePointer(j.who, true, j.pointer[0], j.pointer[1], now)
		return
	}
	if j.chat != nil {
		a.onChat(j.who, j.chat.Text, now)
		return
	}
	switch m := j.ann; m.Action {
	case protocol.AnnotateStroke:
		a.onStroke(j.who, m, now)
	case protocol.AnnotateLaser:
		a.movePointer(j.who, false, m.X, m.Y, now)
	case protocol.AnnotateHighlight:
		a.lastPick++
		id := fmt.Sprintf("h%d", a.lastPick)
		a.pending[id] = j.who
		a.publishLive() // before the pick: a measure must not forget it
		select {
		case a.picks <- pickReq{id: id, x: m.X, y: m.Y}:
		default:
			a.s.droppedInput.Add(1)
			delete(a.pending, id)
			a.publishLive()
		}
	case protocol.AnnotateClear:
		clear(a.strokes)
		clear(a.pending)
		a.highlights = nil
		for _, l := range a.lasers {
			l.pending = l.pending && l.pointer
		}
		a.publishLive()
		a.broadcast(protocol.Encode(protocol.ClearNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateClear, Author: j.who}), "")
	}
}

func (a *annotator) onStroke(who protocol.Author, m *protocol.Annotate, now time.Time) {
	id := who.ViewerID + "." + m.ID
	st := a.strokes[id]
	switch {
	case st == nil:
		a.strokeSeq++
		st = &stroke{id: id, who: who, seq: a.strokeSeq}
		a.strokes[id] = st
		a.trimStrokes()
	case st.ended, len(st.points)+len(m.Points) > protocol.MaxStrokeLen:
		a.s.droppedInput.Add(1)
		return
	}
	st.points = append(st.points, m.Points...)
	st.pinned, st.ended, st.touched = m.Pinned, m.End, now
	pts := m.Points
	if pts == nil {
		pts = [][2]float64{}
	}
	a.broadcast(protocol.Encode(protocol.StrokeNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateStroke,
		ID: id, Author: who, Points: pts, Pinned: st.pinned, End: st.ended}), who.ViewerID)
}

// trimStrokes keeps at most maxStrokes: the oldest pinned one goes first
// (the viewers are told), else the oldest.
func (a *annotator) trimStrokes() {
	for len(a.strokes) > maxStrokes {
		var oldest, oldestPinned *stroke
		for _, st := range a.strokes {
			if oldest == nil || st.seq < oldest.seq {
				oldest = st
			}
			if st.pinned && (oldestPinned == nil || st.seq < oldestPinned.seq) {
				oldestPinned = st
			}
		}
		if oldestPinned != nil {
			oldest = oldestPinned
			a.broadcast(protocol.Encode(protocol.RemoveNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateRemove, ID: oldest.id}), "")
		}
		delete(a.strokes, oldest.id)
	}
}

func (a *annotator) sendLaser(l *laser, now time.Time) {
	l.sent, l.pending = now, false
	if l.pointer {
		msg := protocol.Encode(protocol.Pointer{Type: protocol.TypePointer, ViewerID: l.who.ViewerID, Role: l.who.Role, Name: l.who.Name, X: l.x, Y: l.y})
		a.send(msg, func(t target) bool { return t.role != l.who.Role })
		return
	}
	a.broadcast(protocol.Encode(protocol.LaserNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateLaser,
		Author: l.who, X: l.x, Y: l.y}), l.who.ViewerID)
}

func (a *annotator) onChat(who protocol.Author, text string, now time.Time) {
	a.lastChat++
	msg := protocol.Encode(protocol.ChatNotice{Type: protocol.TypeChat, ID: fmt.Sprintf("c%d", a.lastChat),
		Author: who, Text: text, At: now.UTC().Truncate(time.Millisecond)})
	if len(a.chat) == chatHistory {
		a.chat = append(a.chat[:0], a.chat[1:]...)
	}
	a.chat = append(a.chat, msg)
	a.broadcast(msg, "")
}

func (a *annotator) onScroll(now time.Time) {
	off, ok := a.currentScroll()
	if !ok || off == a.sentScroll && !a.scrollAt.IsZero() {
		a.scrollDue = false
		return
	}
	if now.Sub(a.scrollAt) < scrollEvery {
		a.scrollDue = true
		return
	}
	a.scrollDue = false
	a.sentScroll, a.scrollAt = off, now
	a.broadcast(protocol.Encode(protocol.ScrollNotice{Type: protocol.TypeScroll, X: off[0], Y: off[1]}), "")
}

// flushDue sends the trailing laser positions and scroll offset whose
// time came.
func (a *annotator) flushDue(now time.Time) {
	for _, l := range a.lasers {
		if l.pending && now.Sub(l.sent) >= laserEvery {
			a.sendLaser(l, now)
		}
	}
	if a.scrollDue && now.Sub(a.scrollAt) >= scrollEvery {
		a.onScroll(now)
	}
}

// nextDue is when the next trailing notice is due; zero when none waits.
func (a *annotator) nextDue() time.Time {
	var due time.Time
	earliest := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	for _, l := range a.lasers {
		if l.pending {
			earliest(l.sent.Add(laserEvery))
		}
	}
	if a.scrollDue {
		earliest(a.scrollAt.Add(scrollEvery))
	}
	return due
}

// expire forgets the unpinned strokes that faded, and the lasers, rate
// limits and welcomes of viewers that left.
func (a *annotator) expire(now time.Time) {
	for id, st := range a.strokes {
		if !st.pinned && now.Sub(st.touched) > strokeFade {
			delete(a.strokes, id)
		}
	}
	present := map[string]bool{}
	a.s.mu.Lock()
	for id := range a.s.viewers {
		present[id] = true
	}
	a.s.mu.Unlock()
	for key, l := range a.lasers {
		if !present[l.who.ViewerID] {
			delete(a.lasers, key)
		}
	}
	for id := range a.welcomed {
		if !present[id] {
			delete(a.welcomed, id)
		}
	}
	a.limMu.Lock()
	for id := range a.limits {
		if !present[id] {
			delete(a.limits, id)
		}
	}
	a.limMu.Unlock()
}

// publishLive tells track which highlights to measure: those shown and
// those being picked.
func (a *annotator) publishLive() {
	ids := make([]string, 0, len(a.highlights)+len(a.pending))
	for _, h := range a.highlights {
		ids = append(ids, h.id)
	}
	for id := range a.pending {
		ids = append(ids, id)
	}
	a.live.Store(&ids)
}

// onTrack applies the page's answer: a new highlight, or the boxes that
// moved and the elements that went.
func (a *annotator) onTrack(r trackResult) {
	if r.pick != "" {
		who, ok := a.pending[r.pick]
		if !ok {
			return // cleared meanwhile
		}
		delete(a.pending, r.pick)
		if r.found {
			h := &highlight{id: r.pick, who: who, rect: r.rect}
			a.highlights = append(a.highlights, h)
			for len(a.highlights) > maxHighlights {
				a.broadcast(a.removeNotice(a.highlights[0].id), "")
				a.highlights = a.highlights[1:]
			}
			a.broadcast(a.highlightNotice(h), "")
		}
		a.publishLive()
		return
	}
	gone := map[string]bool{}
	for _, id := range r.gone {
		gone[id] = true
	}
	kept := a.highlights[:0]
	for _, h := range a.highlights {
		if gone[h.id] {
			a.broadcast(a.removeNotice(h.id), "")
			continue
		}
		if rect, ok := r.rects[h.id]; ok && rect.Moved(h.rect) {
			h.rect = rect
			a.broadcast(a.highlightNotice(h), "")
		}
		kept = append(kept, h)
	}
	clear(a.highlights[len(kept):])
	a.highlights = kept
	if len(r.gone) > 0 {
		a.publishLive()
	}
}

func (a *annotator) highlightNotice(h *highlight) []byte {
	return protocol.Encode(protocol.HighlightNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateHighlight,
		ID: h.id, Author: h.who, Rect: h.rect})
}

func (a *annotator) removeNotice(id string) []byte {
	return protocol.Encode(protocol.RemoveNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateRemove, ID: id})
}

// target is a viewer that may be sent annotations: it has a peer and its
// gate is open.
type target struct {
	id, role string
	peer     *rtc.Peer
}

func (a *annotator) targets() []target {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	out := make([]target, 0, len(a.s.viewers))
	for id, vw := range a.s.viewers {
		if vw.peer != nil && a.s.openLocked(vw.v.Role) {
			out = append(out, target{id, vw.v.Role, vw.peer})
		}
	}
	return out
}

// broadcast sends msg to every target but except.
func (a *annotator) broadcast(msg []byte, except string) {
	a.send(msg, func(t target) bool { return t.id != except })
}

// send sends msg to the targets to accepts. A target that does not have
// the state yet gets all of it instead (msg is part of it, or, for a
// pointer, stale the moment after).
func (a *annotator) send(msg []byte, to func(target) bool) {
	for _, t := range a.targets() {
		if a.welcomed[t.id] != t.peer {
			a.welcome(t)
			continue
		}
		if to(t) {
			_ = t.peer.Send(msg) // a peer going away: its viewer gets the state again on its next peer
		}
	}
}

// welcomeAll gives every target that lacks it the state.
func (a *annotator) welcomeAll() {
	for _, t := range a.targets() {
		if a.welcomed[t.id] != t.peer {
			a.welcome(t)
		}
	}
}

// welcome sends a viewer whose channel just opened (or whose gate just
// opened) what it needs to draw what the others see: the scroll offset,
// the strokes kept (its own too: a reloaded page draws them again), the
// live highlights and the chat history, in that order.
func (a *annotator) welcome(t target) {
	if !t.peer.InputOpen() {
		return // told on a later tick
	}
	var msgs [][]byte
	if off, ok := a.currentScroll(); ok {
		msgs = append(msgs, protocol.Encode(protocol.ScrollNotice{Type: protocol.TypeScroll, X: off[0], Y: off[1]}))
	}
	for _, st := range a.strokesInOrder() {
		for i := 0; i == 0 || i < len(st.points); i += welcomeChunk {
			pts := st.points[i:min(i+welcomeChunk, len(st.points))]
			last := i+welcomeChunk >= len(st.points)
			msgs = append(msgs, protocol.Encode(protocol.StrokeNotice{Type: protocol.TypeAnnotation, Action: protocol.AnnotateStroke,
				ID: st.id, Author: st.who, Points: append([][2]float64{}, pts...), Pinned: st.pinned, End: st.ended && last}))
		}
	}
	for _, h := range a.highlights {
		msgs = append(msgs, a.highlightNotice(h))
	}
	msgs = append(msgs, a.chat...)
	for _, m := range msgs {
		if err := t.peer.Send(m); err != nil {
			return // its channel closed: the next peer is welcomed afresh
		}
	}
	a.welcomed[t.id] = t.peer
}

func (a *annotator) strokesInOrder() []*stroke {
	out := make([]*stroke, 0, len(a.strokes))
	for _, st := range a.strokes {
		out = append(out, st)
	}
	for i := 1; i < len(out); i++ { // insertion sort: at most maxStrokes, mostly in order
		for j := i; j > 0 && out[j].seq < out[j-1].seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// track asks the page to pick elements and measures the highlighted ones:
// on captured frames (at most every measureEvery, the last one always) and
// every measureSlow (an element can go without a new picture), while any
// highlight lives. It runs until ctx ends.
func (a *annotator) track(ctx context.Context) error {
	slow := time.NewTicker(measureSlow)
	defer slow.Stop()
	trail := time.NewTimer(time.Hour)
	trail.Stop()
	defer trail.Stop()
	trailing := false
	var last time.Time
	measure := func() bool {
		last = time.Now()
		r, ok := a.measure(ctx)
		return !ok || a.deliver(ctx, r)
	}
	for {
		var ok = true
		select {
		case <-ctx.Done():
			return nil
		case p := <-a.picks:
			ok = a.deliver(ctx, a.pick(ctx, p))
		case <-a.frameWake:
			if trailing || len(*a.live.Load()) == 0 {
				continue
			}
			if wait := measureEvery - time.Since(last); wait > 0 {
				trail.Reset(wait)
				trailing = true
				continue
			}
			ok = measure()
		case <-trail.C:
			trailing = false
			ok = measure()
		case <-slow.C:
			if len(*a.live.Load()) > 0 {
				ok = measure()
			}
		}
		if !ok {
			return nil
		}
	}
}

// deliver hands a result to run; false when the session ends first.
func (a *annotator) deliver(ctx context.Context, r trackResult) bool {
	select {
	case a.results <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *annotator) pick(ctx context.Context, p pickReq) trackResult {
	cctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	r := trackResult{pick: p.id}
	_, ans, err := a.s.lease().EvalWorld(cctx, mask.Top, annotate.PickExpression(p.id, p.x, p.y))
	if err != nil {
		a.log.Debug("pick an element", zap.Error(err))
		return r
	}
	r.rect, r.found, err = annotate.ParsePick(ans)
	if err != nil {
		a.log.Warn("pick an element", zap.Error(err)) // a broken tracker, not a page between documents
	}
	return r
}

// measure asks the page where the highlighted elements are; false when it
// could not answer (between documents): nothing changes then.
func (a *annotator) measure(ctx context.Context) (trackResult, bool) {
	ids := *a.live.Load()
	if len(ids) == 0 {
		return trackResult{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	_, ans, err := a.s.lease().EvalWorld(cctx, mask.Top, annotate.RectsExpression(ids))
	if err != nil {
		if !errors.Is(err, browserpool.ErrNoWorld) && ctx.Err() == nil {
			a.log.Debug("measure highlights", zap.Error(err))
		}
		return trackResult{}, false
	}
	rects, gone, err := annotate.ParseRects(ans, ids)
	if err != nil {
		a.log.Debug("measure highlights", zap.Error(err))
		return trackResult{}, false
	}
	return trackResult{rects: rects, gone: gone}, true
}
