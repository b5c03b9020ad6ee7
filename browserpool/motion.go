package browserpool

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A captured 720p frame costs Chromium about 70–100 ms of CPU, most of it
// reading the picture back and encoding it as JPEG (docs/density.md). With
// Config.MotionFPS set (it is off by default: on an always-animating page
// it costs Tandem more than it saves Chromium, docs/density.md), while the
// page moves faster than the capture keeps up with (a scroll, an
// animation, on a machine shared by several sessions), the screencast is
// taken at a smaller size, which Chromium scales down before reading it
// back: a quarter less per frame, so more frames a second. The encoders
// scale the pictures back up to the viewport's size (Meta.FullWidth), so
// the viewers' video keeps its size and nothing downstream changes. Once
// the page is still, the capture goes back to full size: the picture one
// reads, and the one the viewers keep on the screen, is always sharp
// (docs/density.md, "Smaller captures while the page moves").

// Capture sizes and the motion that switches between them.
const (
	// reducedNum/reducedDen is the reduced capture's share of each side.
	reducedNum, reducedDen = 3, 4
	// motionGap: frames closer together than this are one motion.
	motionGap = 250 * time.Millisecond
	// motionLook and motionIntervals: how long a motion runs, and how many
	// intervals between its frames it has, before its rate is judged; a
	// rate from two or three intervals took a 21 fps animation for a slow
	// one.
	motionLook      = 120 * time.Millisecond
	motionIntervals = 4
	// stillAfter: no motion for this long (frames further apart than
	// motionGap, or none) and the page is still; the capture goes back to
	// full size.
	stillAfter = time.Second
	// retryFull: a motion that goes on this long is tried at full size
	// again (the machine may have room by then), and reduced again if the
	// rate is still low. Every switch restarts the capture, which breaks
	// the agents' following of the customers' encoding (docs/encoder.md)
	// for a while: not often.
	retryFull = 20 * time.Second
)

// motionState is the capture-size policy of a lease. The frame side (frame)
// runs on chromedp's reader goroutine and never calls CDP; motionLoop makes
// the switches.
type motionState struct {
	mu        sync.Mutex
	minFPS    float64   // Config.MotionFPS; 0 or less: never reduce
	start     time.Time // first frame of the current motion
	last      time.Time // newest frame
	moved     time.Time // newest frame that continued a motion (came within motionGap of the one before)
	frames    int       // frames of the current motion
	waited    int       // of those, frames Chromium had ready before the one before them arrived
	reduced   bool      // the capture runs, or is being switched to, reduced
	reducedAt time.Time // when it was reduced
	wake      chan struct{}
	switches  int64 // reductions and restorations made
}

// frame records a frame received at now and stamped by Chromium at stamp
// (zero when it did not say), and asks motionLoop to reduce the capture
// when the motion it belongs to is too slow.
func (m *motionState) frame(now, stamp time.Time) {
	m.mu.Lock()
	if m.minFPS <= 0 {
		m.mu.Unlock()
		return
	}
	if now.Sub(m.last) > motionGap {
		m.start, m.frames, m.waited = now, 0, 0
	} else {
		m.moved = now
		// Chromium stamps a frame once it has it; one stamped before the
		// frame before it reached us waited for that frame's ack: the
		// page drew faster than the capture delivers.
		if !stamp.IsZero() && !stamp.After(m.last) {
			m.waited++
		}
	}
	m.last = now
	m.frames++
	slow := !m.reduced && m.tooSlow(now)
	m.mu.Unlock()
	if slow {
		m.signal()
	}
}

// tooSlow says whether the current motion has run long enough at a rate
// below minFPS, held back by the capture: at least half of its frames
// waited for the one before them (m.mu held). A page that changes slowly
// by itself (typing, a ticking clock) does not make its frames wait, and
// keeps the full size. The first frame opens the motion and is not
// counted.
func (m *motionState) tooSlow(now time.Time) bool {
	d := now.Sub(m.start)
	n := m.frames - 1
	return d >= motionLook && n >= motionIntervals && float64(n)/d.Seconds() < m.minFPS && 2*m.waited >= n
}

func (m *motionState) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// want returns the capture size motionLoop should switch to (reduce) and
// whether a switch is due at now, and when to look again without a frame.
func (m *motionState) want(now time.Time) (reduce, due bool, next time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.reduced && m.tooSlow(now) && now.Sub(m.last) <= motionGap:
		return true, true, 0
	case !m.reduced:
		return false, false, 0
	case now.Sub(m.moved) >= stillAfter:
		// Still, or changing only now and then (a caret blinking every
		// 500 ms is not motion).
		return false, true, 0
	case now.Sub(m.reducedAt) >= retryFull:
		return false, true, 0
	}
	next = min(m.moved.Add(stillAfter).Sub(now), m.reducedAt.Add(retryFull).Sub(now))
	return true, false, max(next, time.Millisecond)
}

// switched records a switch made at now.
func (m *motionState) switched(reduce bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reduced = reduce
	m.switches++
	if reduce {
		m.reducedAt = now
	} else {
		// Judge the next motion afresh, at full size, from its first
		// frame: the restart's own gap is not the page's.
		m.last, m.frames, m.waited = time.Time{}, 0, 0
	}
}

// isReduced reports whether the capture is, or is being switched to, the
// reduced size.
func (m *motionState) isReduced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reduced
}

// motionLoop switches the capture size as motionState asks, until the
// lease ends.
func (l *Lease) motionLoop() {
	m := &l.motion
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-l.bctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
		reduce, due, next := m.want(time.Now())
		if due {
			if err := l.setReduced(reduce); err != nil && l.bctx.Err() == nil {
				l.log.Debug("switch the capture size", zap.Bool("reduced", reduce), zap.Error(err))
			}
			reduce, _, next = m.want(time.Now())
		}
		if reduce && next > 0 {
			timer.Reset(next)
		}
	}
}

// setReduced restarts the screencast at the reduced or the full size. A
// paused or stopped capture only records the choice.
func (l *Lease) setReduced(reduce bool) error {
	ctx, cancel := context.WithTimeout(l.bctx, stallAfter)
	defer cancel()
	release, err := l.holdView(ctx, "switch the capture size")
	if err != nil {
		return err
	}
	defer release()
	l.motion.switched(reduce, time.Now())
	l.mu.Lock()
	w, h, casting := l.width, l.height, l.casting
	l.mu.Unlock()
	if !casting {
		return nil
	}
	cctx, cancelCall := l.callCtx(ctx)
	defer cancelCall()
	return l.cast(ctx, cctx, w, h)
}

// captureSize is the size the screencast of a w×h viewport is taken at.
func (l *Lease) captureSize(w, h int) (int, int) {
	if !l.motion.isReduced() {
		return w, h
	}
	return max(w*reducedNum/reducedDen, 1), max(h*reducedNum/reducedDen, 1)
}

// CaptureReduced reports whether the capture is, or is being switched to,
// the reduced size.
func (l *Lease) CaptureReduced() bool { return l.motion.isReduced() }

// CaptureSwitches is how many times the capture changed size (reduced while
// the page moved, or back to full size).
func (l *Lease) CaptureSwitches() int64 {
	l.motion.mu.Lock()
	defer l.motion.mu.Unlock()
	return l.motion.switches
}
