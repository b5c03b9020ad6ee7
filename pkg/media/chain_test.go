package media

import (
	"testing"
	"time"
)

// followPair is a leader (the customers' encoder) and its follower (the
// agents'), each with one viewer, fed by show as the worker feeds them.
type followPair struct {
	t          *testing.T
	lead, fol  *session
	pool       *FramePool
	seq        uint64
	leadFrames uint64 // the encoders' frames when show began
	folFrames  uint64
}

const followW, followH = 160, 120

var (
	secretColour = rgba{R: 20, G: 200, B: 40, A: 255}   // what the agents must never see
	paintColour  = rgba{R: 128, G: 128, B: 128, A: 255} // the mask's fill
	skipColour   = rgba{R: 200, G: 20, B: 200, A: 255}  // a picture the mask never got
)

func startFollowPair(t *testing.T, leaderWatched bool) *followPair {
	chain := NewChain()
	p := &followPair{t: t, pool: NewFramePool()}
	p.lead = startRole(t, RoleEncoderConfig{Role: "customer", Lead: chain})
	p.fol = startRole(t, RoleEncoderConfig{Role: "agent", Follow: chain})
	if leaderWatched {
		p.lead.e.SetViewers(1)
	}
	p.fol.e.SetViewers(1)
	return p
}

// show captures one picture with background bg: the leader gets it as it
// is; with secret, it has a square of secretColour, which the follower gets
// painted over; with skip, the follower gets nothing (the mask missed it).
// It waits until each encoder that got a picture has written a frame.
func (p *followPair) show(bg rgba, secret, skip bool) {
	p.t.Helper()
	p.seq++
	p.leadFrames, p.folFrames = p.lead.e.Stats().Frames, p.fol.e.Stats().Frames
	now := time.Now()
	f := p.pool.Get(followW, followH)
	fillRect(&f.Image, 0, 0, followW, followH, bg)
	if secret {
		fillRect(&f.Image, 32, 32, 96, 96, secretColour)
	}
	f.Seq, f.Received = p.seq, now
	p.lead.e.Offer(f)
	if !skip {
		// What mask.Apply makes: a copy, painted or verbatim.
		g := p.pool.Get(followW, followH)
		copy(g.buf, f.buf)
		g.Seq, g.Received, g.Verbatim = f.Seq, f.Received, !secret
		if secret {
			fillRect(&g.Image, 32, 32, 96, 96, paintColour)
		}
		p.fol.e.Offer(g)
		g.Release()
	}
	f.Release()
	if p.lead.e.Stats().Viewers > 0 {
		waitUntil(p.t, "the leader's frame", func() bool { return p.lead.e.Stats().Frames > p.leadFrames })
	}
	if !skip {
		waitUntil(p.t, "the follower's frame", func() bool { return p.fol.e.Stats().Frames > p.folFrames })
	}
}

// follow shows clean pictures of bg until the follower forwards the
// leader's frames.
func (p *followPair) follow(bg rgba) {
	p.t.Helper()
	for range 4 {
		p.show(bg, false, false)
	}
	waitUntil(p.t, "the follower to follow", func() bool { return p.fol.e.Stats().Followed > 0 })
}

// checkAgentsSaw decodes everything the follower wrote and checks that each
// picture is one it was offered: the secret's square shows the background
// or the paint, never the secret, a picture it was not offered, nor the
// mixture a leader frame coded against a picture the follower never had
// would decode to.
func (p *followPair) checkAgentsSaw(bgs ...rgba) {
	p.t.Helper()
	imgs := decodeAll(p.t, reassemble(p.t, p.fol.out.packets()))
	if len(imgs) == 0 {
		p.t.Fatal("the follower wrote nothing")
	}
	allowed := append([]rgba{paintColour}, bgs...)
	for i, img := range imgs {
		in, out := pixel(img, 64, 64), pixel(img, 140, 100)
		okIn, okOut := false, false
		for _, c := range allowed {
			okIn = okIn || near(in, toYUV(c), 12)
		}
		for _, c := range bgs {
			okOut = okOut || near(out, toYUV(c), 12)
		}
		if !okIn || !okOut {
			p.t.Errorf("agents' picture %d of %d: secret's square %+v, background %+v; offered only %v",
				i, len(imgs), in, out, allowed)
		}
	}
}

// TestFollowerForwardsOnlyVerbatimRuns is the security test of one encode
// for both roles (SECURITY.md P1): the agents get the customers' VP8 frames
// only while every picture since the key frame they follow from came to
// them verbatim; a painted picture, or one the mask never passed, ends the
// run at once, and the next run starts only at a new key frame.
func TestFollowerForwardsOnlyVerbatimRuns(t *testing.T) {
	p := startFollowPair(t, true)
	white, blue := rgba{R: 240, G: 240, B: 240, A: 255}, rgba{R: 30, G: 60, B: 220, A: 255}
	p.follow(white)
	for range 3 {
		p.show(white, false, false)
	}
	s := p.fol.e.Stats()
	if s.FollowRuns != 1 || s.FollowBreaks != 0 {
		t.Fatalf("after clean pictures: %d runs, %d breaks; want 1 run, none ended", s.FollowRuns, s.FollowBreaks)
	}
	if own := s.Frames - s.Followed; own > 2 {
		t.Errorf("the follower encoded %d frames of its own while following", own)
	}

	// A masked field appears, then goes: the customers' frame after it is
	// coded against the secret, and must not reach the agents.
	p.show(white, true, false)
	p.show(white, false, false)
	p.show(blue, false, false)
	// A picture the mask missed (replaced while it waited for a report),
	// in a run that had started again, ends it too.
	if s := p.fol.e.Stats(); s.FollowBreaks != 1 {
		t.Fatalf("after a painted picture: %d runs ended, want 1", s.FollowBreaks)
	}
	keys, followed := p.lead.e.Stats().KeyFrames, p.fol.e.Stats().Followed
	waitUntil(t, "a key frame asked of the customers' encoder", func() bool { return p.lead.e.Stats().KeyFrames > keys })
	waitUntil(t, "a second run from that key frame", func() bool {
		s := p.fol.e.Stats()
		return s.FollowRuns == 2 && s.Followed > followed
	})
	followed = p.fol.e.Stats().Followed
	p.show(blue, false, false)
	if p.fol.e.Stats().Followed == followed {
		t.Fatalf("the second run forwarded nothing: %+v", p.fol.e.Stats())
	}
	p.show(skipColour, false, true)
	p.show(blue, false, false)
	if s := p.fol.e.Stats(); s.FollowBreaks != 2 {
		t.Fatalf("after a picture the mask missed: %d runs ended, want 2", s.FollowBreaks)
	}
	p.show(white, false, false)
	p.checkAgentsSaw(white, blue)
}

// TestFollowerFallsBack: with no customer watching, the customers' encoder
// encodes nothing and the agents' encodes its own pictures; when the
// customers stop watching during a run, or the agents' own viewers lose
// packets (their bitrate must follow their losses), the agents' own
// stream takes over at the next picture.
func TestFollowerFallsBack(t *testing.T) {
	white, blue := rgba{R: 240, G: 240, B: 240, A: 255}, rgba{R: 30, G: 60, B: 220, A: 255}
	t.Run("never", func(t *testing.T) {
		p := startFollowPair(t, false)
		for range 3 {
			p.show(white, false, false)
		}
		p.show(blue, false, false)
		if s := p.fol.e.Stats(); s.Followed != 0 || s.Frames < 4 {
			t.Errorf("follower: %d frames, %d of them forwarded; want its own for each picture", s.Frames, s.Followed)
		}
		p.checkAgentsSaw(white, blue)
	})
	t.Run("stops", func(t *testing.T) {
		p := startFollowPair(t, true)
		p.follow(white)
		p.lead.e.SetViewers(0)
		p.show(blue, false, false)
		if s := p.fol.e.Stats(); s.FollowBreaks != 1 {
			t.Errorf("%d runs ended when the customers left, want 1", s.FollowBreaks)
		}
		imgs := decodeAll(t, reassemble(t, p.fol.out.packets()))
		if got := pixel(imgs[len(imgs)-1], 140, 100); !near(got, toYUV(blue), 12) {
			t.Errorf("the agents' last picture is %+v, want the blue one", got)
		}
		p.checkAgentsSaw(white, blue)
	})
	t.Run("agents lose packets", func(t *testing.T) {
		p := startFollowPair(t, true)
		p.follow(white)
		now := time.Now()
		p.fol.e.ReportLoss(0.5, now)
		p.fol.e.ReportLoss(0.5, now.Add(lossEvery))
		p.show(blue, false, false)
		if s := p.fol.e.Stats(); s.FollowBreaks != 1 || s.BitrateKbps >= 1500 {
			t.Errorf("after the agents lost half their packets: %d runs ended, %d kbps; want 1, under 1500", s.FollowBreaks, s.BitrateKbps)
		}
		followed := p.fol.e.Stats().Followed
		time.Sleep(followAfter + 200*time.Millisecond)
		p.show(white, false, false)
		if s := p.fol.e.Stats(); s.Followed != followed || s.FollowRuns != 1 {
			t.Errorf("the agents follow again while they lose packets: %+v", s)
		}
		p.checkAgentsSaw(white, blue)
	})
}
