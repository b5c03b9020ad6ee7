package media

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// One encode for both roles (docs/encoder.md, "Following the customers'
// stream"). While the mask paints nothing, the agents' picture is the
// customers' picture, and encoding it twice is the largest cost Tandem
// has. The customers' RoleEncoder (the leader) then publishes each frame it
// writes on a Chain, and the agents' RoleEncoder (the follower) writes the
// same VP8 frames on its own RTP stream instead of encoding its own.
//
// A VP8 inter frame codes the difference from the frames before it, so a
// forwarded frame carries information about every frame of the leader's
// stream since its last key frame. The follower therefore forwards a run of
// the leader's frames only if it starts at a key frame and every frame of
// it is one the mask passed verbatim: a picture offered to the follower
// (only mask.Apply makes those) with nothing painted and the same capture
// (Seq and Received). The first leader frame that is not such a picture, or
// that the mask has not passed within followWait, or that the follower
// missed, ends the run: the follower goes back to encoding its own masked
// pictures, starting with a key frame. It follows again from a later key
// frame of the leader, which it asks for once its own pictures have come
// through the mask verbatim for followAfter.

const (
	chainLen = 16 // leader frames kept for the follower
	// followWait bounds how long a leader frame waits for the mask's
	// verdict before the follower gives up the run (the mask's own
	// "paused" threshold).
	followWait = 250 * time.Millisecond
	// followAfter is how long the follower's pictures must have passed
	// the mask verbatim before it asks the leader for a key frame to
	// follow from, and followAskEvery spaces those requests: each costs
	// the customers a key frame.
	followAfter    = time.Second
	followAskEvery = 10 * time.Second
	// verdictsLen is how many of the mask's recent verdicts the follower
	// keeps; a leader frame whose verdict has fallen out counts as
	// painted.
	verdictsLen = 64
)

// capture identifies one captured picture: Seq alone restarts with a new
// browser.
type capture struct {
	seq      uint64
	received int64 // Received in Unix ns
}

func captureOf(f *Frame) capture { return capture{seq: f.Seq, received: f.Received.UnixNano()} }

// chainFrame is one frame the leader wrote.
type chainFrame struct {
	n      uint64 // its index in the chain, from 0
	of     capture
	data   []byte
	key    bool
	repeat bool      // an idle repeat or a key request's re-encode of the last picture
	stamp  time.Time // its RTP time (the capture, or the repeat's time)
	at     time.Time // when it was published
}

// Chain carries the leader's frames to a follower (see above). Make one
// with NewChain and give it to both RoleEncoderConfigs.
type Chain struct {
	mu       sync.Mutex
	ring     [chainLen]chainFrame // guarded by mu
	n        uint64               // guarded by mu: frames published
	lastKey  uint64               // guarded by mu: index+1 of the newest key frame; 0 when none
	leader   *RoleEncoder         // guarded by mu
	follower *RoleEncoder         // guarded by mu
}

// NewChain returns an empty chain.
func NewChain() *Chain { return &Chain{} }

func (c *Chain) join(e *RoleEncoder, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lead {
		c.leader = e
	} else {
		c.follower = e
	}
}

// publish copies one frame the leader wrote and wakes the follower.
func (c *Chain) publish(of capture, data []byte, key, repeat bool, stamp, now time.Time) {
	c.mu.Lock()
	slot := &c.ring[c.n%chainLen]
	slot.n, slot.of, slot.key, slot.repeat, slot.stamp, slot.at = c.n, of, key, repeat, stamp, now
	slot.data = append(slot.data[:0], data...)
	c.n++
	if key {
		c.lastKey = c.n
	}
	f := c.follower
	c.mu.Unlock()
	if f != nil {
		f.signal()
	}
}

// at copies frame i into dst, unless dst holds it already (the follower
// looks at a frame again while it waits for the mask's verdict). ok is
// false when it is not published yet; lost when it was overwritten before
// the follower took it.
func (c *Chain) at(i uint64, dst *chainFrame) (ok, lost bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case i >= c.n:
		return false, false
	case c.n-i > chainLen:
		return false, true
	}
	slot := &c.ring[i%chainLen]
	if dst.n == i && dst.at.Equal(slot.at) {
		return true, false
	}
	data := append(dst.data[:0], slot.data...)
	*dst = *slot
	dst.data = data
	return true, false
}

// newestKey returns the index of the newest key frame still in the ring.
func (c *Chain) newestKey() (i uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastKey == 0 || c.n-(c.lastKey-1) > chainLen {
		return 0, false
	}
	return c.lastKey - 1, true
}

// leaderWatched reports whether the leader has viewers, and so encodes.
func (c *Chain) leaderWatched() bool {
	c.mu.Lock()
	l := c.leader
	c.mu.Unlock()
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.viewers > 0
}

// askKey asks the leader for a key frame.
func (c *Chain) askKey() {
	c.mu.Lock()
	l := c.leader
	c.mu.Unlock()
	if l != nil {
		l.RequestKeyFrame()
	}
}

// verdicts are the mask's recent verdicts on the follower's pictures,
// recorded by Offer (which, latest wins, may replace a picture before Run
// sees it).
type verdicts struct {
	ring     [verdictsLen]capture // pictures passed verbatim
	n        int
	newest   capture   // the newest picture offered, verbatim or not
	newestAt time.Time // when it was offered
	since    time.Time // since when every picture offered was verbatim; zero when the last was not
	offered  bool
}

func (v *verdicts) add(f *Frame, now time.Time) {
	of := captureOf(f)
	v.newest, v.newestAt, v.offered = of, now, true
	if !f.Verbatim {
		v.since = time.Time{}
		return
	}
	if v.since.IsZero() {
		v.since = now
	}
	v.ring[v.n%verdictsLen] = of
	v.n++
}

// passed reports whether the picture of was offered verbatim; decided
// whether the mask has reached it (it or a newer picture was offered), so
// that it will never pass if it has not.
func (v *verdicts) passed(of capture) (passed, decided bool) {
	for i := range min(v.n, verdictsLen) {
		if v.ring[i] == of {
			return true, true
		}
	}
	return false, v.offered && (of.received < v.newest.received ||
		of.received == v.newest.received && of.seq <= v.newest.seq)
}

// followState is the follower's part of RoleEncoder, owned by Run.
type followState struct {
	on     bool   // forwarding the leader's frames
	next   uint64 // chain index of the next leader frame to forward
	from   uint64 // chain indexes below this are not candidates to start from
	asked  time.Time
	wait   time.Duration // startFollowing wants to look again after this; 0: no need
	ownKey bool          // the next own encode must be a key frame (the run ended)
	cf     chainFrame    // the leader frame looked at last
}

// follow runs the follower's part of step: it reports whether the leader's
// stream is being followed, in which case the follower encodes nothing of
// its own, and when it wants to look again without a wake-up (0: no need).
// key is a key frame request of the follower's viewers.
func (e *RoleEncoder) follow(now time.Time, key bool) (on bool, wait time.Duration) {
	c, fs := e.cfg.Follow, &e.fs
	e.mu.Lock()
	v := e.verdicts
	e.mu.Unlock()
	if !fs.on && !e.startFollowing(now, &v) {
		return false, fs.wait
	}
	switch {
	case !c.leaderWatched():
		e.unfollow("no customer watches")
		return false, 0
	case e.wantRate < e.cfg.BitrateKbps:
		// The follower's own viewers lose packets: their stream must
		// follow their losses, not the leader's.
		e.unfollow("the agents lose packets")
		return false, 0
	case v.offered && v.since.IsZero():
		// The newest picture was painted: the agents must get it now,
		// whatever the leader does.
		e.unfollow("the mask painted a picture")
		return false, 0
	}
	if key {
		c.askKey()
	}
	for {
		ok, lost := c.at(fs.next, &fs.cf)
		if lost {
			e.unfollow("missed frames of the customers' stream")
			return false, 0
		}
		if !ok {
			// Nothing new from the leader. A newer picture the mask
			// passed must come from it within followWait.
			if waited := now.Sub(v.newestAt); v.newest != fs.cf.of && waited < followWait {
				return true, followWait - waited
			} else if v.newest != fs.cf.of {
				e.unfollow("the customers' stream did not bring a picture")
				return false, 0
			}
			return true, 0
		}
		passed, decided := v.passed(fs.cf.of)
		switch {
		case passed:
			e.write(fs.cf.data, fs.cf.key, e.ticks(fs.cf.stamp), now, 0, fs.cf.repeat, time.Unix(0, fs.cf.of.received), true)
			fs.next++
		case decided:
			e.unfollow("the mask painted or skipped a picture")
			return false, 0
		case now.Sub(fs.cf.at) >= followWait:
			e.unfollow("the mask has not passed a picture in time")
			return false, 0
		default:
			return true, followWait - now.Sub(fs.cf.at)
		}
	}
}

// startFollowing looks for a key frame of the leader to follow from, and
// asks for one when the follower's pictures have passed the mask verbatim
// long enough. It reports whether a run starts (at fs.next).
func (e *RoleEncoder) startFollowing(now time.Time, v *verdicts) bool {
	c, fs := e.cfg.Follow, &e.fs
	fs.wait = 0
	if v.since.IsZero() || !c.leaderWatched() || e.wantRate < e.cfg.BitrateKbps {
		return false
	}
	i, ok := c.newestKey()
	if !ok || i < fs.from {
		if now.Sub(v.since) >= followAfter && (fs.asked.IsZero() || now.Sub(fs.asked) >= followAskEvery) {
			fs.asked = now
			c.askKey()
		}
		if d := followAfter - now.Sub(v.since); d > 0 {
			fs.wait = d
		}
		return false
	}
	if ok, _ := c.at(i, &fs.cf); !ok {
		return false
	}
	passed, decided := v.passed(fs.cf.of)
	switch {
	case passed:
		fs.on, fs.next = true, i
		e.mu.Lock()
		e.stats.FollowRuns++
		e.mu.Unlock()
		e.log.Debug("agents follow the customers' stream")
		return true
	case decided || now.Sub(fs.cf.at) >= followWait:
		fs.from = i + 1
	default:
		fs.wait = followWait - now.Sub(fs.cf.at)
	}
	return false
}

// unfollow ends a run: the agents' own encoder takes over at once, with a
// key frame of the newest picture it was offered.
func (e *RoleEncoder) unfollow(why string) {
	fs := &e.fs
	fs.on, fs.ownKey, fs.from = false, true, fs.next
	e.mu.Lock()
	e.stats.FollowBreaks++
	e.mu.Unlock()
	e.log.Debug("agents encode their own stream again", zap.String("why", why))
}
