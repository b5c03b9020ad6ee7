package media

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"go.uber.org/zap/zaptest"
)

// packetLog is the fake track: it keeps every packet written.
type packetLog struct {
	mu   sync.Mutex
	pkts []*rtp.Packet
	err  error // returned by every WriteRTP
}

func (l *packetLog) WriteRTP(p *rtp.Packet) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pkts = append(l.pkts, p)
	return l.err
}

func (l *packetLog) packets() []*rtp.Packet {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*rtp.Packet(nil), l.pkts...)
}

// vp8Frame is one VP8 frame put back together from its packets.
type vp8Frame struct {
	ts   uint32
	data []byte
	key  bool
}

// reassemble depacketizes pkts with pion's VP8 depacketizer, checking the
// framing on the way: consecutive sequence numbers, packets within the MTU,
// a partition start opening and the marker closing every frame, one timestamp
// per frame.
func reassemble(t *testing.T, pkts []*rtp.Packet) []vp8Frame {
	t.Helper()
	var frames []vp8Frame
	var cur *vp8Frame
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if n := p.MarshalSize(); n > rtpMTU {
			t.Fatalf("packet %d: %d bytes, over the MTU %d", i, n, rtpMTU)
		}
		var vp codecs.VP8Packet
		payload, err := vp.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("packet %d: VP8 depacketize: %v", i, err)
		}
		start := vp.S == 1 && vp.PID == 0
		switch {
		case start && cur != nil:
			t.Fatalf("packet %d starts a frame before the previous one ended", i)
		case !start && cur == nil:
			t.Fatalf("packet %d continues a frame that never started", i)
		case start:
			cur = &vp8Frame{ts: p.Timestamp}
		case p.Timestamp != cur.ts:
			t.Fatalf("packet %d: timestamp %d inside a frame stamped %d", i, p.Timestamp, cur.ts)
		}
		cur.data = append(cur.data, payload...)
		if p.Marker {
			cur.key = isKeyFrame(cur.data)
			frames = append(frames, *cur)
			cur = nil
		}
	}
	if cur != nil {
		t.Fatalf("last frame has no marker")
	}
	return frames
}

// session runs a RoleEncoder writing into a packetLog until stop.
type session struct {
	e    *RoleEncoder
	out  *packetLog
	done chan error
	stop func() // cancels Run and waits for it; idempotent
}

func startRole(t *testing.T, cfg RoleEncoderConfig) *session {
	t.Helper()
	out := &packetLog{}
	e := NewRoleEncoder(cfg, out, zaptest.NewLogger(t))
	return runRole(t, e, out)
}

func runRole(t *testing.T, e *RoleEncoder, out *packetLog) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{e: e, out: out, done: make(chan error, 1)}
	go func() { s.done <- e.Run(ctx) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-s.done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// offer hands the encoder a fresh picture and drops the caller's reference.
func offer(e *RoleEncoder, pool *FramePool, w, h int, bg rgba, received time.Time) {
	f := picture(pool, w, h, bg, received)
	e.Offer(f)
	f.Release()
}

// decodeAll decodes frames in order and returns the pictures.
func decodeAll(t *testing.T, frames []vp8Frame) []*Image {
	t.Helper()
	dec := newVP8Decoder(t)
	var imgs []*Image
	for i, f := range frames {
		img, err := dec.Decode(f.data)
		if err != nil {
			t.Fatalf("decode frame %d: %v", i, err)
		}
		imgs = append(imgs, img)
	}
	return imgs
}

func TestRoleEncoderNoViewers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer"})
		offer(s.e, pool, 64, 48, grey, time.Now())
		synctest.Wait()
		time.Sleep(50 * time.Millisecond)
		offer(s.e, pool, 64, 48, blue, time.Now())
		s.e.RequestKeyFrame()
		time.Sleep(5 * time.Second) // several idle-repeat periods
		synctest.Wait()
		if n := len(s.out.packets()); n != 0 {
			t.Fatalf("%d packets written with no viewer, want none", n)
		}
		// The encoder is started for the first viewer, not used.
		if st := s.e.Stats(); st.Frames != 0 || st.Dropped != 1 || st.Width != 64 || st.Height != 48 {
			t.Fatalf("Stats = %+v, want no frames, the grey one dropped, an encoder of 64x48 ready", st)
		}

		// The first viewer gets a key frame of the newest picture at once.
		s.e.SetViewers(1)
		synctest.Wait()
		frames := reassemble(t, s.out.packets())
		if len(frames) != 1 || !frames[0].key {
			t.Fatalf("after the first viewer: %d frames (first key: %v), want one key frame", len(frames), len(frames) > 0 && frames[0].key)
		}
		img := decodeAll(t, frames)[0]
		checkRedSquare(t, img, toYUV(blue))

		// Back to no viewer: the encoder is freed, is not started again for
		// new pictures, and nothing more is written.
		s.e.SetViewers(0)
		synctest.Wait()
		n := len(s.out.packets())
		offer(s.e, pool, 64, 48, green, time.Now())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := len(s.out.packets()); got != n {
			t.Errorf("%d packets written after the viewers left, want none", got-n)
		}
		if st := s.e.Stats(); st.Width != 0 || st.Viewers != 0 {
			t.Errorf("Stats = %+v, want the encoder closed and no viewers", st)
		}

		s.stop()
		if st := pool.Stats(); st.Free != int(st.Allocs) || st.RefErrors != 0 {
			t.Errorf("pool after Run returned: %+v, want every buffer back", st)
		}
	})
}

// Prepare starts the encoder ahead of the pictures of its size: the first
// picture takes it instead of starting one, also while viewers watch at
// another size (a resize); a picture of another size starts its own and
// the prepared one is freed; after the last viewer left nothing is
// prepared.
func TestRoleEncoderPrepare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer"})
		want := func(what string, width, prepared int, starts uint64) {
			t.Helper()
			synctest.Wait()
			st := s.e.Stats()
			if st.Width != width || st.PreparedWidth != prepared || st.Starts != starts {
				t.Fatalf("%s: running %dx%d, prepared %dx%d, %d starts; want width %d, prepared width %d, %d starts",
					what, st.Width, st.Height, st.PreparedWidth, st.PreparedHeight, st.Starts, width, prepared, starts)
			}
		}
		s.e.Prepare(64, 48)
		want("prepared before any picture", 0, 64, 1)
		offer(s.e, pool, 64, 48, grey, time.Now())
		want("the first picture", 64, 0, 1)
		s.e.SetViewers(1)
		synctest.Wait()

		s.e.Prepare(32, 24) // the tab is being resized
		want("prepared while watched", 64, 32, 2)
		offer(s.e, pool, 64, 48, blue, time.Now()) // a late picture of the old size
		want("an old-size picture", 64, 32, 2)
		offer(s.e, pool, 32, 24, green, time.Now())
		want("the new size", 32, 0, 2)
		frames := reassemble(t, s.out.packets())
		if last := frames[len(frames)-1]; !last.key {
			t.Fatal("the first picture of the new size is not a key frame")
		}
		imgs := decodeAll(t, frames)
		if img := imgs[len(imgs)-1]; img.Width != 32 || img.Height != 24 {
			t.Fatalf("last picture %dx%d, want 32x24", img.Width, img.Height)
		}

		s.e.Prepare(80, 60)
		want("prepared for a size", 32, 80, 3)
		offer(s.e, pool, 48, 32, grey, time.Now())
		want("a picture of another size", 48, 0, 4)

		s.e.SetViewers(0)
		s.e.Prepare(64, 48)
		want("after the last viewer left", 0, 0, 4)

		s.stop()
		if st := pool.Stats(); st.RefErrors != 0 {
			t.Errorf("pool after Run returned: %+v, want no reference errors", st)
		}
	})
}

func TestRoleEncoderStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		var sentMu sync.Mutex
		var sent []time.Duration
		s := startRole(t, RoleEncoderConfig{Role: "agent", BitrateKbps: 800, OnSent: func(d time.Duration) {
			sentMu.Lock()
			sent = append(sent, d)
			sentMu.Unlock()
		}})
		s.e.SetViewers(2)
		t0 := time.Now()

		// A busy first picture, so that its key frame spans several packets.
		f := picture(pool, 320, 240, grey, t0)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range f.StrideY * 24 {
			f.Y[i] = byte(rng.Uint32())
		}
		s.e.Offer(f)
		f.Release()
		synctest.Wait()
		time.Sleep(40 * time.Millisecond)
		offer(s.e, pool, 320, 240, blue, time.Now())
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		// Captured (by its stamp) before the previous frame: must not step back.
		offer(s.e, pool, 320, 240, green, time.Now().Add(-120*time.Millisecond))
		synctest.Wait()
		// Nothing new for a second: the last picture is sent again, stamped with the repeat time.
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()

		pkts := s.out.packets()
		frames := reassemble(t, pkts)
		if len(frames) != 4 {
			t.Fatalf("%d frames, want 4 (three offered, one repeat)", len(frames))
		}
		if frames[0].ts != pkts[0].Timestamp || len(pkts) < 5 {
			t.Errorf("%d packets for 4 frames: the busy key frame should span several", len(pkts))
		}
		wantTicks := []uint32{0, 3600, 3601, 90000 * 1140 / 1000} // 0, 40 ms, +1 tick, 1.14 s
		for i, fr := range frames {
			if got := fr.ts - frames[0].ts; got != wantTicks[i] {
				t.Errorf("frame %d: RTP time %d ticks after the first, want %d", i, got, wantTicks[i])
			}
			if fr.key != (i == 0) {
				t.Errorf("frame %d: key = %v, want %v", i, fr.key, i == 0)
			}
		}
		imgs := decodeAll(t, frames)
		for i, bg := range []rgba{grey, blue, green, green} {
			checkRedSquare(t, imgs[i], toYUV(bg))
		}
		if st := s.e.Stats(); st.Frames != 4 || st.KeyFrames != 1 || st.Repeats != 1 || st.Packets != uint64(len(pkts)) ||
			st.Width != 320 || st.Height != 240 || st.Viewers != 2 || st.Role != "agent" {
			t.Errorf("Stats = %+v", st)
		}

		// Each captured frame's time in Tandem is told, since its
		// Received (the fake clock stands still while it is encoded);
		// not the repeat's.
		sentMu.Lock()
		if want := []time.Duration{0, 0, 120 * time.Millisecond}; !slices.Equal(sent, want) {
			t.Errorf("OnSent got %v, want %v", sent, want)
		}
		sentMu.Unlock()

		// A new size restarts the encoder: the next frame is a key frame of that size.
		offer(s.e, pool, 161, 91, white, time.Now())
		synctest.Wait()
		frames = reassemble(t, s.out.packets())
		last := frames[len(frames)-1]
		if !last.key || last.ts-frames[3].ts != 90 {
			t.Errorf("after a resize: key = %v, %d ticks after the repeat; want a key frame 90 ticks (1 ms) later", last.key, last.ts-frames[3].ts)
		}
		imgs = decodeAll(t, frames)
		if img := imgs[len(imgs)-1]; img.Width != 161 || img.Height != 91 {
			t.Errorf("after a resize: decoded %dx%d, want 161x91", img.Width, img.Height)
		} else {
			checkRedSquare(t, img, toYUV(white))
		}
		s.stop()
	})
}

func TestRoleEncoderKeyFrameRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer", IdleRepeat: time.Hour})
		t0 := time.Now()
		keys := func() []uint32 {
			var ts []uint32
			for _, f := range reassemble(t, s.out.packets()) {
				if f.key {
					ts = append(ts, uint32(f.ts))
				}
			}
			return ts
		}
		wantKeys := func(what string, n int) []uint32 {
			t.Helper()
			synctest.Wait()
			ks := keys()
			if len(ks) != n {
				t.Fatalf("%s (at %v): %d key frames, want %d", what, time.Since(t0), len(ks), n)
			}
			return ks
		}

		s.e.SetViewers(1)
		offer(s.e, pool, 64, 48, grey, t0)
		wantKeys("first viewer", 1)
		s.e.RequestKeyFrame() // the peer connected: answered at once despite the limit
		wantKeys("first request after joining", 2)
		s.e.RequestKeyFrame()
		s.e.RequestKeyFrame()
		s.e.RequestKeyFrame()
		wantKeys("requests within the interval", 2)
		time.Sleep(499 * time.Millisecond)
		offer(s.e, pool, 64, 48, blue, time.Now()) // a new picture meanwhile goes out as a delta frame
		wantKeys("1 ms before the interval ends", 2)
		time.Sleep(time.Millisecond)
		ks := wantKeys("when the interval ends", 3)
		if got := ks[2] - ks[0]; got != 45000 {
			t.Errorf("deferred key frame %d ticks after the first, want 45000 (500 ms)", got)
		}
		time.Sleep(2 * time.Second)
		wantKeys("coalesced requests", 3)
		s.e.RequestKeyFrame()
		wantKeys("a request after the interval", 4)
		s.e.RequestKeyFrame()
		wantKeys("a request right after", 4)

		// Viewers gone and back: a key frame, and again the first request is answered at once.
		s.e.SetViewers(0)
		synctest.Wait()
		s.e.SetViewers(1)
		s.e.RequestKeyFrame() // before the join key frame went out: answered by it
		wantKeys("rejoin", 5)
		s.e.RequestKeyFrame()
		wantKeys("first request after the rejoin key frame", 6)
		s.e.RequestKeyFrame()
		wantKeys("second request", 6)
		if st := s.e.Stats(); st.KeyFrames != 6 {
			t.Errorf("Stats.KeyFrames = %d, want 6", st.KeyFrames)
		}
		s.stop()
	})
}

func TestRoleEncoderLatestWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		out := &packetLog{}
		e := NewRoleEncoder(RoleEncoderConfig{Role: "customer"}, out, nil)
		e.SetViewers(1)
		for _, c := range []rgba{grey, blue, green} {
			offer(e, pool, 48, 32, c, time.Now())
		}
		s := runRole(t, e, out)
		synctest.Wait()
		frames := reassemble(t, out.packets())
		if len(frames) != 1 {
			t.Fatalf("%d frames, want only the latest", len(frames))
		}
		checkRedSquare(t, decodeAll(t, frames)[0], toYUV(green))
		if st := e.Stats(); st.Dropped != 2 {
			t.Errorf("Stats.Dropped = %d, want 2", st.Dropped)
		}
		if err := e.Run(context.Background()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
		s.stop()
		// After Run returned, an offered frame is released at once.
		offer(e, pool, 48, 32, grey, time.Now())
		if st := pool.Stats(); st.Free != int(st.Allocs) || st.RefErrors != 0 {
			t.Errorf("pool after Run returned: %+v, want every buffer back", st)
		}
	})
}

func TestRoleEncoderWriteErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer"})
		s.out.err = errors.New("peer gone")
		s.e.SetViewers(1)
		offer(s.e, pool, 32, 32, grey, time.Now())
		time.Sleep(2500 * time.Millisecond) // two idle repeats
		synctest.Wait()
		st := s.e.Stats()
		if st.Frames != 3 || st.WriteErrors != st.Packets || st.WriteErrors == 0 {
			t.Errorf("Stats = %+v, want 3 frames and every write counted as failed", st)
		}
		s.stop()
	})
}

// TestRoleEncoderRealClock runs the loop on the real clock once: idle repeats
// keep coming at their pace.
func TestRoleEncoderRealClock(t *testing.T) {
	pool := NewFramePool()
	s := startRole(t, RoleEncoderConfig{Role: "customer", IdleRepeat: 20 * time.Millisecond})
	s.e.SetViewers(1)
	offer(s.e, pool, 32, 32, grey, time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for s.e.Stats().Repeats < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want 3 idle repeats", s.e.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.stop()
	frames := reassemble(t, s.out.packets())
	for i := 1; i < len(frames); i++ {
		if d := int32(frames[i].ts - frames[i-1].ts); d <= 0 {
			t.Errorf("frame %d: RTP time steps by %d", i, d)
		}
	}
}

// The adaptation's steps: a window of a second, the worst report in it,
// lowered by half the loss over 10 %, raised by 8 % under 2 %, kept in
// between, within MinBitrateKbps and the target.
func TestLossWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var w lossWindow
	if _, ok := w.add(0.5, t0, 1500, 1500); ok {
		t.Fatal("the first report adapted at once")
	}
	if _, ok := w.add(0, t0.Add(500*time.Millisecond), 1500, 1500); ok {
		t.Fatal("adapted within the window")
	}
	if next, ok := w.add(0, t0.Add(time.Second), 1500, 1500); !ok || next != 1125 {
		t.Fatalf("after a window whose worst loss was 50 %%: %d (%v), want 1125", next, ok)
	}
	for _, c := range []struct {
		loss      float64
		cur, want int
	}{
		{0.05, 1000, 1000}, // between the thresholds: kept
		{0.01, 1000, 1081}, // raised by 8 %
		{0.01, 1450, 1500}, // not over the target
		{0.9, 300, 200},    // not under the floor
		{1.5, 1000, 500},   // a report over 1 counts as 1
		{-1, 1000, 1081},   // under 0 as 0
		{0.2, 150, 150},    // a target under the floor is the floor
	} {
		w := lossWindow{since: t0}
		target := max(1500, c.cur)
		if c.cur == 150 {
			target = 150
		}
		if next, ok := w.add(c.loss, t0.Add(time.Second), c.cur, target); !ok || next != c.want {
			t.Errorf("loss %v at %d kbps: %d (%v), want %d", c.loss, c.cur, next, ok, c.want)
		}
	}
}

// Reported losses lower the bitrate the encoder writes at, and the
// stream's frames shrink; once the losses stop it climbs back to the
// configured target.
func TestRoleEncoderFollowsLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer"})
		s.e.SetViewers(1)
		n := 0
		// bytesPer encodes frames of noise, which no bitrate can carry
		// whole, for d at 20 fps and returns the mean frame size.
		bytesPer := func(d time.Duration) float64 {
			before := s.e.Stats()
			for end := time.Now().Add(d); time.Now().Before(end); n++ {
				f := pool.Get(640, 360)
				for i := range f.Y {
					f.Y[i] = byte((i*7919 + n*104729) >> 3)
				}
				f.Received = time.Now()
				s.e.Offer(f)
				f.Release()
				time.Sleep(50 * time.Millisecond)
				synctest.Wait()
			}
			after := s.e.Stats()
			return float64(after.Bytes-before.Bytes) / float64(after.Frames-before.Frames)
		}
		high := bytesPer(3 * time.Second)
		for range 10 {
			s.e.ReportLoss(0.4, time.Now())
			time.Sleep(time.Second)
		}
		if got := s.e.Stats().BitrateKbps; got != MinBitrateKbps {
			t.Fatalf("after 10 s of 40 %% loss the bitrate is %d kbps, want the floor %d", got, MinBitrateKbps)
		}
		low := bytesPer(3 * time.Second)
		// Noise at the quantizer's limit does not shrink to the budget;
		// a frame still well smaller shows the target was applied.
		if low > high*0.7 {
			t.Errorf("frames of %.0f bytes at %d kbps against %.0f at 1500, want clearly smaller", low, MinBitrateKbps, high)
		}
		for range 40 {
			s.e.ReportLoss(0, time.Now())
			time.Sleep(time.Second)
		}
		if got := s.e.Stats().BitrateKbps; got != 1500 {
			t.Fatalf("after 40 s without loss the bitrate is %d kbps, want the configured 1500", got)
		}
		// Lowered again, then the viewers leave: the next ones start at
		// the full target.
		for range 3 {
			s.e.ReportLoss(0.5, time.Now())
			time.Sleep(time.Second)
		}
		if got := s.e.Stats().BitrateKbps; got >= 1500 {
			t.Fatalf("after 3 s of 50 %% loss the bitrate is %d kbps", got)
		}
		s.e.SetViewers(0)
		if got := s.e.Stats().BitrateKbps; got != 1500 {
			t.Errorf("with no viewer left the bitrate is %d kbps, want 1500 for the next ones", got)
		}
		s.stop()
	})
}
