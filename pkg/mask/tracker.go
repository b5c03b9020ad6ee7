package mask

import (
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// Reasons a frame is held.
const (
	ReasonNavigating = "navigating" // the top document has not reported yet
	ReasonUnmeasured = "unmeasured" // the frame is newer than the newest report, or matches none
	ReasonScriptGone = "script_gone"
	ReasonError      = "error"
)

// HoldError says why a frame cannot be masked now; the frame must not reach
// the agents.
type HoldError struct {
	Reason string
	Detail string
	Stale  bool // a fresh report may settle it: the newest is older than the frame
}

func (e *HoldError) Error() string {
	if e.Detail == "" {
		return "mask: hold: " + e.Reason
	}
	return "mask: hold: " + e.Reason + ": " + e.Detail
}

func hold(reason, format string, args ...any) error {
	return &HoldError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Stale says whether err holds a frame only because the newest report is
// older than it: pulling a report settles it.
func Stale(err error) bool {
	var h *HoldError
	return errors.As(err, &h) && h.Stale
}

// Reason returns the hold reason of err: err's own when it is a HoldError,
// else ReasonError.
func Reason(err error) string {
	var h *HoldError
	if errors.As(err, &h) {
		return h.Reason
	}
	return ReasonError
}

// Config tunes a Tracker. Zero values mean the defaults.
type Config struct {
	// Window is how much older than its stamp a frame's picture may be, at
	// least: Chromium stamps a screencast frame when the capture reaches the
	// browser process, after the page painted it. Every layout measured
	// within the window before the stamp is painted over. A frame that took
	// longer from its stamp to Tandem (a loaded machine) gets lagFactor
	// times that delay. 0 means 1s.
	Window time.Duration
	Grow   int     // pixels added around every masked area; 0 means 8
	Faults *Faults // tests: injected failures
	// FrameOrigins are origins (scheme://host[:port]) whose frames are
	// masked whole even when their own script reports.
	FrameOrigins []string
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = time.Second
	}
	if c.Grow == 0 {
		c.Grow = 8
	}
	return c
}

// keepReports bounds a document's history; a frame older than the oldest
// kept report's window is held.
const keepReports = 1024

// scrollSlack is how long before a picture's stamp the root scrolls the
// page reported are still taken as scrolls the picture may show: a few
// animation frames.
const scrollSlack = 100 * time.Millisecond

// lagFactor scales a frame's delay from its stamp to Tandem into how much
// older than its stamp its picture may be: a machine slow to bring the
// frame here was slow to capture it too.
const lagFactor = 4

// Top is the frame name of the top document in SetContext and Add.
const Top = ""

// history is the reports of one frame's world: the top document's, or a
// cross-origin child frame's (which reports for itself).
type history struct {
	ctx  int64    // the frame's current world context; 0 none
	hist []Report // oldest first
}

func (h *history) push(r Report) {
	h.hist = append(h.hist, r)
	if len(h.hist) > keepReports {
		h.hist = append(h.hist[:0], h.hist[len(h.hist)-keepReports:]...)
	}
}

// sameLayout says whether two reports of a document measured the same.
func sameLayout(a, b *Report) bool {
	return a.Width == b.Width && a.Height == b.Height && a.ScrollX == b.ScrollX && a.ScrollY == b.ScrollY &&
		a.Scale == b.Scale && a.Focus == b.Focus && a.Origin == b.Origin && b.Err == "" &&
		slices.Equal(a.Rects, b.Rects) && slices.Equal(a.Opaque, b.Opaque)
}

// newest is when the newest report was last known true.
func (h *history) newest() time.Time {
	last := &h.hist[len(h.hist)-1]
	if last.Confirmed.After(last.At) {
		return last.Confirmed
	}
	return last.At
}

// window returns the reports that may describe a picture painted in
// [start, stamp]: the one current at start and every later one. It needs
// the newest report to be no older than stamp.
func (h *history) window(start, stamp time.Time) ([]Report, error) {
	n := len(h.hist)
	switch {
	case n == 0:
		return nil, hold(ReasonNavigating, "no report")
	case h.ctx == 0 && h.newest().Before(stamp):
		return nil, hold(ReasonNavigating, "the document is gone")
	case h.hist[n-1].Err != "":
		return nil, hold(ReasonError, "page: %s", h.hist[n-1].Err)
	case h.newest().Before(stamp):
		return nil, &HoldError{Reason: ReasonUnmeasured, Detail: fmt.Sprintf("newest report %v older than the frame", stamp.Sub(h.newest())), Stale: true}
	}
	first := 0
	for i := n - 1; i >= 0; i-- {
		if !h.hist[i].At.After(start) {
			first = i
			break
		}
	}
	if first == 0 && h.hist[0].At.After(start) && n == keepReports {
		return nil, hold(ReasonUnmeasured, "history too short for the frame")
	}
	w := h.hist[first:]
	for i := range w {
		if w[i].Err != "" {
			return nil, hold(ReasonError, "page: %s", w[i].Err)
		}
	}
	return w, nil
}

// Tracker keeps the reports of the page's mask scripts and plans the mask
// of each frame. It is safe for concurrent use.
type Tracker struct {
	cfg Config

	mu       sync.Mutex
	top      history             // guarded by mu
	children map[string]*history // guarded by mu: cross-origin frames by CDP frame id
	lostAt   time.Time           // guarded by mu: reports were lost (queue full) when this was set
}

// NewTracker returns a Tracker with no document: every frame is held until
// SetContext names one and it reports.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.withDefaults(), children: make(map[string]*history)}
}

func (t *Tracker) frame(name string, create bool) *history {
	if name == Top {
		return &t.top
	}
	h := t.children[name]
	if h == nil && create {
		h = &history{}
		t.children[name] = h
	}
	return h
}

// SetContext names the world context of a frame's document (Top, or a
// child frame's id; ctx 0: none, the document is gone); reports of other
// contexts are ignored from now on. The history is kept across documents:
// a frame of the old document that arrives after the new one began is
// still masked with the old layouts.
func (t *Tracker) SetContext(frame string, ctx int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frame(frame, true).ctx = ctx
}

// Forget drops a child frame that went away.
func (t *Tracker) Forget(frame string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.children, frame)
}

// Children returns the child frames that report for themselves.
func (t *Tracker) Children() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.children))
	for name := range t.children {
		out = append(out, name)
	}
	return out
}

// Broken records that a frame's script sent something unusable at at:
// every picture whose window holds that moment is held.
func (t *Tracker) Broken(frame string, at time.Time, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.frame(frame, true)
	r := Report{At: at, Err: why}
	if n := len(h.hist); n > 0 {
		r.Doc, r.Seq = h.hist[n-1].Doc, h.hist[n-1].Seq
	}
	h.push(r)
}

// Lost records that reports were dropped before at: frames that may show
// what those reports said are held.
func (t *Tracker) Lost(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.After(t.lostAt) {
		t.lostAt = at
	}
}

// Add keeps r if it comes from the frame's current context and reports
// whether it did. Reports arrive in the page's order.
func (t *Tracker) Add(frame string, ctx int64, r Report) bool {
	if t.cfg.Faults.dropping() {
		// A lost report leaves a gap in the history: frames that may show
		// what it said are held, as for reports lost on the way.
		t.Lost(r.At)
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.frame(frame, false)
	if h == nil || ctx == 0 || ctx != h.ctx {
		return false
	}
	if n := len(h.hist); n > 0 && r.Doc == h.hist[n-1].Doc && h.hist[n-1].Err == "" {
		last := &h.hist[n-1]
		if r.Seq <= last.Seq {
			return false // an older flush answer after a newer push
		}
		if sameLayout(last, &r) {
			// Nothing changed: the last report holds until r's time. Pulled
			// reports of a still page do not fill the history.
			last.Seq, last.Confirmed = r.Seq, r.At
			return true
		}
	}
	h.push(r)
	return true
}

// Focus reports whether the newest report says the keyboard focus is in a
// masked field; true when there is no report (fail closed).
func (t *Tracker) Focus() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.top.hist)
	return n == 0 || t.top.hist[n-1].Focus || t.top.hist[n-1].Err != ""
}

// Plan returns the areas to paint over, in pixels of a w×h picture with
// metadata m, or a *HoldError when the frame cannot be masked with certainty
// (the caller asks the page for fresh reports and tries again, or drops the
// frame). received is when Tandem read the frame, used when m has no stamp,
// and as the time of the cross-origin frames' content (see placeChild).
func (t *Tracker) Plan(m media.Meta, w, h int, received time.Time) (rects []image.Rectangle, err error) {
	if err := t.cfg.Faults.check(); err != nil {
		return nil, err
	}
	if m.DeviceWidth <= 0 || m.DeviceHeight <= 0 || w <= 0 || h <= 0 {
		return nil, hold(ReasonError, "frame without metadata")
	}
	if !sameShape(m, w, h) {
		// While the viewport changes size Chromium may send a picture of the
		// old size with the new metadata: its pixels are not where the
		// metadata says.
		return nil, hold(ReasonUnmeasured, "a %dx%d picture for a %vx%v viewport", w, h, m.DeviceWidth, m.DeviceHeight)
	}
	scale := m.PageScaleFactor
	if scale <= 0 {
		scale = 1
	}
	stamp := m.Timestamp
	if stamp.IsZero() {
		stamp = received
	}
	// The page measures with millisecond clocks.
	stamp = stamp.Truncate(time.Millisecond)
	// The picture may be older than its stamp (the window), and newer: the
	// browser copies the surface after stamping it, and on a loaded machine
	// a later paint can be in the copy. Every layout from the window's
	// start up to when Tandem received the frame is painted over.
	upto := stamp
	back := t.cfg.Window
	if !received.IsZero() {
		upto = latest(stamp, received.Truncate(time.Millisecond))
		back = max(back, lagFactor*upto.Sub(stamp))
	}
	start := stamp.Add(-back)

	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.lostAt.IsZero() && !t.lostAt.Before(start) {
		return nil, hold(ReasonUnmeasured, "reports were lost")
	}
	window, err := t.top.window(start, upto)
	if err != nil {
		return nil, err
	}
	if m.Restarted && len(window) > 1 {
		// The first picture of a (re)started capture may not be the paint
		// its metadata describes: trusted only when the page did not
		// change in its window, so that every paint in it looked the same.
		return nil, hold(ReasonUnmeasured, "a restarted capture while the page changes")
	}
	matched := false
	for i := range window {
		matched = matched || matches(&window[i], m, scale)
	}
	if !matched {
		return nil, hold(ReasonUnmeasured, "no report at the frame's scroll %v,%v size %vx%v scale %v",
			m.ScrollOffsetX, m.ScrollOffsetY, m.DeviceWidth, m.DeviceHeight, scale)
	}
	grow := t.cfg.Grow
	if m.Reduced(w, h) {
		// A picture captured smaller (while the page moves) is scaled back
		// up before encoding: the margin, in its own pixels, keeps at least
		// its full-size width once scaled up, which also covers what
		// Chromium's scaling down blends across an edge.
		grow = int(math.Ceil(float64(grow*m.FullWidth)/float64(w))) + 1
	}
	mp := mapper{m: m, scale: scale, sx: float64(w) / m.DeviceWidth, sy: float64(h) / m.DeviceHeight, w: w, h: h, grow: grow}
	// The picture may be painted at a root scroll a step away from its
	// metadata's (a sliver along a canary of the always-scrolling form
	// leaked in CI, one scroll step off): document rectangles cover every
	// root scroll the page reported around the picture's time too. A
	// rectangle placed at each of those scrolls lies within the one that
	// spans the lowest to the highest, so each is widened once.
	var lowX, highX, lowY, highY float64 // scroll offsets from the metadata's
	from := stamp.Add(-scrollSlack)
	for i := range window {
		r := &window[i]
		if i < len(window)-1 && !window[i+1].At.After(from) {
			continue // replaced before the picture's time
		}
		if math.Abs(r.Scale-scale) > 0.01 {
			continue
		}
		dx, dy := r.ScrollX-m.ScrollOffsetX, r.ScrollY-m.ScrollOffsetY
		lowX, highX = min(lowX, dx), max(highX, dx)
		lowY, highY = min(lowY, dy), max(highY, dy)
	}
	add := func(q Rect, here bool) {
		if q.Bound && !here {
			return // measured at another scroll: only the matching reports place it
		}
		if !q.Bound {
			// Scrolled d further, the page shows q d higher.
			q.X, q.W = q.X-highX, q.W+highX-lowX
			q.Y, q.H = q.Y-highY, q.H+highY-lowY
		}
		if px, ok := mp.pixels(q); ok {
			rects = append(rects, px)
		}
	}
	for i := range window {
		r := &window[i]
		here := matches(r, m, scale)
		for _, q := range r.Rects {
			add(q, here)
		}
		for _, op := range r.Opaque {
			inner, err := t.placeChild(op, start, upto)
			if err != nil {
				return nil, err
			}
			if inner == nil {
				add(op.Rect, here) // cannot be seen into: masked whole
				continue
			}
			for _, q := range inner {
				add(q, here)
			}
		}
	}
	return merge(rects), nil
}

// latest returns the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// placeChild returns the masked areas of a cross-origin frame, in the top
// document's coordinates, from the frame's own reports; nil when the frame
// is to be masked whole (not tagged, no script, a company-masked origin, or
// its script failed). A frame whose reports are older than upto holds the
// picture: a fresh report is on its way.
//
// upto is the later of the picture's stamp and when Tandem received it: a
// cross-origin frame renders in its own process, and the browser puts its
// newest surface into the picture when it copies it, which can be after
// the top document's stamp (a leak at a frame's edge showed it). The copy
// is done by the time Tandem has the picture.
func (t *Tracker) placeChild(op Opaque, start, upto time.Time) ([]Rect, error) {
	if op.Frame == "" {
		return nil, nil
	}
	h := t.children[op.Frame]
	if h == nil || len(h.hist) == 0 {
		return nil, nil
	}
	window, err := h.window(start, upto)
	if err != nil {
		if Reason(err) == ReasonUnmeasured {
			return nil, err
		}
		return nil, nil
	}
	box := op.Content
	var out []Rect
	for i := range window {
		r := &window[i]
		if t.maskedOrigin(r.Origin) {
			return nil, nil
		}
		inner := slices.Clone(r.Rects)
		for _, o := range r.Opaque {
			inner = append(inner, o.Rect) // the child's own children: whole
		}
		for _, q := range inner {
			// Child document → child viewport → the frame's content box.
			x0 := max(box.X+q.X-r.ScrollX, box.X)
			y0 := max(box.Y+q.Y-r.ScrollY, box.Y)
			x1 := min(box.X+q.X-r.ScrollX+q.W, box.X+box.W)
			y1 := min(box.Y+q.Y-r.ScrollY+q.H, box.Y+box.H)
			if x1 > x0 && y1 > y0 {
				out = append(out, Rect{X: x0, Y: y0, W: x1 - x0, H: y1 - y0, Bound: op.Bound})
			}
		}
	}
	return out, nil
}

// maskedOrigin says whether the company masks frames of origin whole.
func (t *Tracker) maskedOrigin(origin string) bool {
	if origin == "" {
		return true // a child must say where it is
	}
	return slices.Contains(t.cfg.FrameOrigins, origin)
}

// sameShape says whether a w×h picture is the device area of m scaled
// evenly (the screencast keeps the aspect ratio, to a pixel of rounding).
func sameShape(m media.Meta, w, h int) bool {
	sx, sy := float64(w)/m.DeviceWidth, float64(h)/m.DeviceHeight
	return math.Abs(m.DeviceWidth*sy-float64(w)) <= 1.5 && math.Abs(m.DeviceHeight*sx-float64(h)) <= 1.5
}

// matches says whether r was measured with the frame's scroll, size and
// scale, that is whether the frame can show the layout r measured.
func matches(r *Report, m media.Meta, scale float64) bool {
	const px = 1.01
	return math.Abs(r.ScrollX-m.ScrollOffsetX) <= px && math.Abs(r.ScrollY-m.ScrollOffsetY) <= px &&
		math.Abs(r.Width-m.DeviceWidth) <= px && math.Abs(r.Height-m.DeviceHeight) <= px &&
		math.Abs(r.Scale-scale) <= 0.01
}

// mapper maps CSS pixels of the document to pixels of a frame.
type mapper struct {
	m      media.Meta
	scale  float64
	sx, sy float64
	w, h   int
	grow   int
}

// pixels returns q on the frame, grown and aligned to even pixels (the
// chroma planes have half the resolution), clipped to the picture.
func (p mapper) pixels(q Rect) (image.Rectangle, bool) {
	x0 := (q.X-p.m.ScrollOffsetX)*p.scale*p.sx - float64(p.grow)
	y0 := ((q.Y-p.m.ScrollOffsetY)*p.scale+p.m.OffsetTop)*p.sy - float64(p.grow)
	x1 := x0 + q.W*p.scale*p.sx + 2*float64(p.grow)
	y1 := y0 + q.H*p.scale*p.sy + 2*float64(p.grow)
	r := image.Rect(evenDown(x0), evenDown(y0), evenUp(x1), evenUp(y1)).Intersect(image.Rect(0, 0, p.w, p.h))
	return r, !r.Empty()
}

func evenDown(v float64) int {
	i := int(math.Floor(v))
	if i%2 != 0 {
		i--
	}
	return i
}

func evenUp(v float64) int {
	i := int(math.Ceil(v))
	if i%2 != 0 {
		i++
	}
	return i
}

// merge drops rectangles inside others (many reports repeat the same areas).
func merge(rs []image.Rectangle) []image.Rectangle {
	out := rs[:0]
next:
	for i, r := range rs {
		for j, o := range rs {
			if i != j && r.In(o) && (r != o || j < i) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}
