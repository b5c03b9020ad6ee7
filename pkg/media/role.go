package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"go.uber.org/zap"
)

// RTP framing of the role streams. The track rewrites payload type and SSRC
// for each peer, so those two only have to be valid.
const (
	rtpMTU         = 1200
	rtpClockRate   = 90000
	rtpPayloadType = 96
)

// ErrRunning is returned by a second call of RoleEncoder.Run.
var ErrRunning = errors.New("media: role encoder already running")

// RoleEncoderConfig sets up a RoleEncoder. Zero values mean the defaults.
type RoleEncoderConfig struct {
	Role                string        // "customer" or "agent", for logs and metrics
	BitrateKbps         int           // VP8 CBR target; 0 means 1500
	IdleRepeat          time.Duration // re-encode the last frame when nothing new came; 0 means 1s
	KeyFrameMinInterval time.Duration // rate limit of requested key frames; 0 means 500ms
	// OnSent, when set, is called on the encoder's goroutine after a
	// captured frame's packets were written, with the time since the
	// frame's Received: Tandem's own part of the frame's way. Not for
	// repeats, nor for frames without a Received time.
	OnSent func(since time.Duration)
	// Warm, when set, has encoders started ahead; a picture of its size
	// takes one instead of starting it (EncoderPool).
	Warm *EncoderPool
	// Lead, when set, has every frame written published on it for a
	// follower; Follow, when set, makes this encoder that follower: it
	// writes the leader's frames instead of its own while the pictures
	// offered to it are the leader's, unpainted (chain.go).
	Lead, Follow *Chain
}

func (c RoleEncoderConfig) withDefaults() RoleEncoderConfig {
	if c.BitrateKbps == 0 {
		c.BitrateKbps = 1500
	}
	if c.IdleRepeat == 0 {
		c.IdleRepeat = time.Second
	}
	if c.KeyFrameMinInterval == 0 {
		c.KeyFrameMinInterval = 500 * time.Millisecond
	}
	return c
}

// Validate reports settings out of range.
func (c RoleEncoderConfig) Validate() error {
	if c.BitrateKbps < 0 || c.IdleRepeat < 0 || c.KeyFrameMinInterval < 0 {
		return fmt.Errorf("media: role encoder config %+v: negative value", c)
	}
	return nil
}

// rtpWriter takes the packets of a role's stream; *webrtc.TrackLocalStaticRTP
// satisfies it and fans them out to every peer of the role.
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// RoleStats counts what a RoleEncoder did since it was created.
type RoleStats struct {
	Role          string
	Viewers       int
	Frames        uint64        // VP8 frames written, repeats included
	KeyFrames     uint64        // of which key frames
	Repeats       uint64        // frames re-encoded from the last picture (idle repeat or key request)
	Bytes         uint64        // VP8 bytes written
	Packets       uint64        // RTP packets written
	Dropped       uint64        // offered frames replaced or skipped before being encoded
	EncodeErrors  uint64        // encoder start or encode failures (the frame is skipped)
	WriteErrors   uint64        // WriteRTP calls that failed
	LastEncode    time.Duration // wall time of the last VP8 encode
	EncodeTime    time.Duration // wall time of all VP8 encodes
	Width, Height int           // size of the running encoder; zero when none
	// Size of an encoder started ahead by Prepare and not taken yet; zero
	// when none.
	PreparedWidth, PreparedHeight int
	BitrateKbps                   int    // the target now: the configured one, or lower while viewers lose packets (ReportLoss)
	Starts                        uint64 // VP8 encoders started, Prepare's included
	WarmTaken                     uint64 // of which taken ready from the Warm pool
	Followed                      uint64 // frames written from the leader's stream (Follow), of Frames
	FollowRuns                    uint64 // runs of following the leader begun
	FollowBreaks                  uint64 // runs ended (a painted or missing picture, the leader stopped)
}

// RoleEncoder encodes the frames of one role (customer or agent) once and
// writes them as one RTP stream that all the role's viewers share. Offer,
// RequestKeyFrame, SetViewers and Stats are safe for concurrent use and never
// block on encoding; Run does the encoding on the caller's goroutine.
type RoleEncoder struct {
	cfg  RoleEncoderConfig
	out  rtpWriter
	log  *zap.Logger
	wake chan struct{} // capacity 1: something in the guarded state changed

	mu         sync.Mutex
	pending    *Frame     // guarded by mu: latest offered frame Run has not taken
	viewers    int        // guarded by mu
	joinKey    bool       // guarded by mu: viewers went 0→n, the next encode is a key frame
	keyWanted  bool       // guarded by mu: a RequestKeyFrame not answered yet
	honourNext bool       // guarded by mu: the next request skips the rate limit (set on 0→n)
	lastKey    time.Time  // guarded by mu: when the last key frame was written
	running    bool       // guarded by mu: Run was called
	loss       lossWindow // guarded by mu: the viewers' losses reported since the last adaptation
	rate       int        // guarded by mu: the target bitrate now, kbps
	prepW      int        // guarded by mu: Prepare's size, until Run takes it; 0 when none
	prepH      int        // guarded by mu
	done       bool       // guarded by mu: Run returned; Offer releases at once
	stats      RoleStats  // guarded by mu
	verdicts   verdicts   // guarded by mu: the pictures offered, for following (chain.go)

	// Owned by Run's goroutine.
	last        *Frame // the newest picture; encoded again on idle and key requests
	up          Image  // last scaled up to the viewport's size for encoding (encodedSize)
	lastEncoded bool   // last has been encoded at least once
	lastEncode  time.Time
	watched     bool // a viewer has watched since Run began
	enc         *VP8Encoder
	encW, encH  int
	encRate     int         // the bitrate enc was set to
	wantRate    int         // e.rate as step last read it
	next        *VP8Encoder // started by Prepare for pictures of nextW×nextH; nil when none
	nextW       int
	nextH       int
	failing     bool // the last encode failed: log only the first of a run of failures
	pk          rtp.Packetizer
	stamped     bool      // t0 and lastTicks are set
	t0          time.Time // capture time of the first frame written
	lastTicks   int64     // RTP ticks since t0 of the last frame written
	fs          followState
}

// NewRoleEncoder returns an idle encoder for cfg.Role writing to out. Nothing
// is encoded until Run runs and SetViewers reports a viewer. A nil log
// discards logs.
func NewRoleEncoder(cfg RoleEncoderConfig, out rtpWriter, log *zap.Logger) *RoleEncoder {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	e := &RoleEncoder{
		cfg:   cfg,
		out:   out,
		log:   log.Named("encoder").With(zap.String("role", cfg.Role)),
		wake:  make(chan struct{}, 1),
		rate:  cfg.BitrateKbps,
		stats: RoleStats{Role: cfg.Role, BitrateKbps: cfg.BitrateKbps},
		pk: rtp.NewPacketizer(rtpMTU, rtpPayloadType, 0,
			&codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), rtpClockRate),
	}
	if cfg.Lead != nil {
		cfg.Lead.join(e, true)
	}
	if cfg.Follow != nil {
		cfg.Follow.join(e, false)
	}
	return e
}

// Offer hands f to the encoder, which retains it; the caller keeps its own
// reference and releases it as usual. The latest frame wins: a frame offered
// earlier and not yet taken by Run is released. f's Received is its capture
// time and becomes its RTP timestamp. While the role has no viewer the newest
// frame is only kept, so that a joining viewer sees the page at once.
func (e *RoleEncoder) Offer(f *Frame) {
	if f == nil {
		return
	}
	f.Retain()
	e.mu.Lock()
	if e.done {
		e.mu.Unlock()
		f.Release()
		return
	}
	old := e.pending
	e.pending = f
	if e.cfg.Follow != nil {
		e.verdicts.add(f, time.Now())
	}
	if old != nil {
		e.stats.Dropped++
	}
	e.mu.Unlock()
	if old != nil {
		old.Release()
	}
	e.signal()
}

// RequestKeyFrame asks for a key frame (a viewer joined, its peer connected,
// or it sent a PLI). Requests are coalesced and answered at most once per
// KeyFrameMinInterval; one that comes too early is answered when the interval
// has passed. The first request after the role's viewers went from zero is
// answered at once: the key frame sent on joining is usually lost before DTLS
// is up. Ignored while the role has no viewer.
func (e *RoleEncoder) RequestKeyFrame() {
	e.mu.Lock()
	if e.viewers > 0 {
		e.keyWanted = true
	}
	e.mu.Unlock()
	e.signal()
}

// SetViewers sets how many viewers watch the role. With none nothing is
// encoded; going from none to some writes a key frame of the newest picture.
func (e *RoleEncoder) SetViewers(n int) {
	n = max(n, 0)
	e.mu.Lock()
	if e.viewers == 0 && n > 0 {
		e.joinKey, e.honourNext = true, true
	}
	if n == 0 {
		e.joinKey, e.keyWanted, e.honourNext = false, false, false
		// The next viewers start at the full target: the losses were
		// those who left.
		e.rate, e.loss = e.cfg.BitrateKbps, lossWindow{}
		e.stats.BitrateKbps = e.rate
	}
	e.viewers = n
	e.stats.Viewers = n
	e.mu.Unlock()
	e.signal()
}

// Prepare has the encoder for w×h pictures started ahead of the first of
// them: starting a 720p VP8 encoder takes about 70 ms, 130–250 ms while
// Chromium loads a page (docs/encoder.md), and the first picture of a new
// session or size would wait for it. The worker calls it when the tab
// gets its size, before Chromium has drawn at that size. A picture of
// another size starts its own encoder as before. Nothing is prepared
// while the role has had viewers and has none now.
func (e *RoleEncoder) Prepare(w, h int) {
	if w <= 0 || h <= 0 {
		return
	}
	e.mu.Lock()
	e.prepW, e.prepH = w, h
	e.mu.Unlock()
	e.signal()
}

// ReportLoss takes one viewer's receiver report on the role's stream: the
// fraction (0 to 1) of packets it lost since its previous report. The
// role's bitrate follows the worst viewer's loss, as the loss-based half
// of Google's congestion control does (docs/encoder.md): about once a
// second, over 10 % lost lowers it by half the loss, under 2 % raises it
// by 8 %, between the two it stays; never under MinBitrateKbps nor over
// the configured target. All the role's viewers share the stream, so one
// viewer on a poor link lowers the quality for all of them. Safe to call
// from any goroutine; it does not block on encoding.
func (e *RoleEncoder) ReportLoss(fraction float64, now time.Time) {
	e.mu.Lock()
	prev := e.rate
	next, ok := e.loss.add(fraction, now, e.rate, e.cfg.BitrateKbps)
	changed := ok && next != e.rate
	if changed {
		e.rate = next
		e.stats.BitrateKbps = next
	}
	e.mu.Unlock()
	if !changed {
		return
	}
	// One line per episode, not per step.
	switch target := e.cfg.BitrateKbps; {
	case prev == target:
		e.log.Info("viewers lose packets: bitrate lowered", zap.Int("kbps", next))
	case next == target:
		e.log.Info("bitrate back to its target", zap.Int("kbps", next))
	}
	e.signal()
}

// Stats returns the encoder's counters.
func (e *RoleEncoder) Stats() RoleStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

func (e *RoleEncoder) signal() {
	select {
	case e.wake <- struct{}{}:
	default: // a wake-up is already pending; it will see the new state
	}
}

// Run encodes until ctx ends, then releases the frames it holds, closes the
// VP8 encoder and returns nil. It starts no goroutine. Run may be called only
// once; a second call returns ErrRunning. Encoding and writing failures are
// counted in Stats, and the frame is skipped: a viewer resyncs on the next key
// frame.
func (e *RoleEncoder) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return ErrRunning
	}
	e.running = true
	e.mu.Unlock()
	defer e.shutdown()

	e.log.Info("role encoder started")
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if wait, ok := e.step(time.Now()); ok {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			e.log.Info("role encoder stopped")
			return nil
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// step does what the state asks for at now and returns how long until it
// must run again without a wake-up (ok false: only a wake-up matters).
func (e *RoleEncoder) step(now time.Time) (wait time.Duration, ok bool) {
	e.mu.Lock()
	f := e.pending
	e.pending = nil
	viewers := e.viewers
	prepW, prepH := e.prepW, e.prepH // a one-off request
	e.prepW, e.prepH = 0, 0
	e.wantRate = e.rate
	force, join := false, false
	if viewers > 0 {
		join = e.joinKey
		byRequest := e.keyWanted && (e.honourNext || now.Sub(e.lastKey) >= e.cfg.KeyFrameMinInterval)
		force = join || byRequest
		if byRequest && !join {
			e.honourNext = false
		}
		if force {
			e.joinKey, e.keyWanted = false, false
		}
	}
	e.mu.Unlock()

	if f != nil {
		if e.last != nil {
			e.dropLast()
		}
		e.last, e.lastEncoded = f, false
	}
	if viewers == 0 && e.watched {
		// No one watches any more: free the encoders; the next viewer gets
		// a key frame anyway.
		if e.enc != nil {
			e.closeEncoder()
		}
		e.dropNext()
		e.fs.on = false
		return 0, false
	}
	if viewers == 0 && e.last != nil {
		// Nobody has watched yet: have the encoder ready for the first
		// viewer, who would otherwise wait for it to start (about 70 ms
		// at 720p, more while Chromium loads the page; docs/encoder.md).
		if err := e.ensureEncoder(encodedSize(e.last)); err != nil {
			e.countError(err)
		}
	}
	e.prepare(prepW, prepH)
	if viewers == 0 {
		return 0, false
	}
	e.watched = true
	var followWake time.Duration // when following wants to look again; 0: no need
	if e.cfg.Follow != nil && e.last != nil {
		on, fw := e.follow(now, force)
		if on {
			// The leader's frames are this role's: no idle repeat of its
			// own, and the picture counts as sent.
			e.lastEncode, e.lastEncoded = now, true
			if fw > 0 {
				return fw, true
			}
			return 0, false
		}
		force, followWake = force || e.fs.ownKey, fw
	}
	switch {
	case e.last == nil:
		// Nothing to show yet; a key request taken above is answered by the
		// first frame, which a new encoder always makes a key frame.
		return 0, false
	case f != nil:
		stamp := f.Received
		if stamp.IsZero() {
			stamp = now
		}
		e.encode(f, stamp, now, force, false)
	case force || now.Sub(e.lastEncode) >= e.cfg.IdleRepeat:
		e.encode(e.last, now, now, force, true)
	}

	wait = e.lastEncode.Add(e.cfg.IdleRepeat).Sub(now)
	e.mu.Lock()
	if e.keyWanted {
		wait = min(wait, e.lastKey.Add(e.cfg.KeyFrameMinInterval).Sub(now))
	}
	e.mu.Unlock()
	if followWake > 0 {
		wait = min(wait, followWake)
	}
	// Due work was done above; the floor only guards against a busy loop
	// should a deadline ever stay in the past.
	return max(wait, time.Millisecond), true
}

// encodedSize is the size f is encoded at: the viewport's, when Chromium
// captured it smaller while the page moved (scale.go), else its own.
func encodedSize(f *Frame) (w, h int) {
	if f.Meta.Reduced(f.Width, f.Height) {
		return f.Meta.FullWidth, f.Meta.FullHeight
	}
	return f.Width, f.Height
}

// encode writes f as the picture captured at stamp. Failures are counted, and
// logged once per run of failures, never per frame.
func (e *RoleEncoder) encode(f *Frame, stamp, now time.Time, force, repeat bool) {
	e.lastEncode = now // also on failure, so that a failing picture is retried at the idle pace
	w, h := encodedSize(f)
	if err := e.ensureEncoder(w, h); err != nil {
		e.countError(err)
		return
	}
	img := &f.Image
	if w != f.Width || h != f.Height {
		if e.up.Width != w || e.up.Height != h {
			e.up = NewImage(w, h)
		}
		if err := Scale(&e.up, img); err != nil {
			e.countError(err)
			return
		}
		img = &e.up
	}
	if rate := e.wantRate; rate != e.encRate {
		if err := e.enc.SetBitrate(rate); err != nil {
			e.countError(err)
		} else {
			e.encRate = rate
		}
	}
	ticks := e.ticks(stamp)
	start := time.Now()
	data, key, err := e.enc.Encode(img, time.Duration(ticks)*100000/9, force) // ticks → ns
	took := time.Since(start)
	if err != nil {
		e.countError(err)
		return
	}
	e.lastEncoded = true
	if e.failing {
		e.failing = false
		e.log.Info("encoding recovered")
	}
	if len(data) == 0 {
		return
	}
	if key {
		e.fs.ownKey = false
	}
	if e.cfg.Lead != nil {
		e.cfg.Lead.publish(captureOf(f), data, key, repeat, stamp, now)
	}
	e.write(data, key, ticks, now, took, repeat, f.Received, false)
}

// write sends one VP8 frame as RTP and counts it: ticks is its RTP time
// (RoleEncoder.ticks), received the capture time of its picture (for
// OnSent), followed whether it is the leader's (chain.go).
func (e *RoleEncoder) write(data []byte, key bool, ticks int64, now time.Time, took time.Duration,
	repeat bool, received time.Time, followed bool) {
	// The packetizer stamps its running timestamp and then adds the samples
	// given; advance it to this frame's capture time first.
	e.pk.SkipSamples(uint32(ticks - e.lastTicks))
	e.lastTicks = ticks
	pkts := e.pk.Packetize(data, 0)
	var writeErrs uint64
	for _, p := range pkts {
		if err := e.out.WriteRTP(p); err != nil {
			writeErrs++
		}
	}

	e.mu.Lock()
	s := &e.stats
	s.Frames++
	s.Bytes += uint64(len(data))
	s.Packets += uint64(len(pkts))
	s.WriteErrors += writeErrs
	s.LastEncode = took
	s.EncodeTime += took
	if repeat {
		s.Repeats++
	}
	if followed {
		s.Followed++
	}
	onSent := !repeat && e.cfg.OnSent != nil && !received.IsZero()
	if key {
		s.KeyFrames++
		e.lastKey = now
		e.keyWanted = false // this key frame answers any request made so far
	}
	e.mu.Unlock()
	if onSent {
		e.cfg.OnSent(time.Since(received))
	}
}

// ticks returns the RTP time of stamp in 90 kHz ticks since the first frame,
// strictly after the previous frame's: capture times drive the clock
// (damage-driven frames have no fixed duration), and a repeat or a late
// capture time must never step it back.
func (e *RoleEncoder) ticks(stamp time.Time) int64 {
	if !e.stamped {
		e.stamped, e.t0, e.lastTicks = true, stamp, 0
		return 0
	}
	t := stamp.Sub(e.t0).Nanoseconds() * 9 / 100000
	return max(t, e.lastTicks+1)
}

// prepare starts the encoder Prepare asked for, unless the running one
// or the one already prepared has that size.
func (e *RoleEncoder) prepare(w, h int) {
	if w == 0 || (e.enc != nil && e.encW == w && e.encH == h) || (e.next != nil && e.nextW == w && e.nextH == h) {
		return
	}
	e.dropNext()
	enc, err := e.newEncoder(w, h)
	if err != nil {
		e.countError(err)
		return
	}
	e.setNext(enc, w, h)
}

func (e *RoleEncoder) newEncoder(w, h int) (*VP8Encoder, error) {
	if enc := e.cfg.Warm.Take(w, h, e.cfg.BitrateKbps); enc != nil {
		e.mu.Lock()
		e.stats.Starts++
		e.stats.WarmTaken++
		e.mu.Unlock()
		return enc, nil
	}
	enc, err := NewVP8Encoder(EncoderConfig{Width: w, Height: h, BitrateKbps: e.cfg.BitrateKbps})
	if err != nil {
		return nil, fmt.Errorf("start VP8 encoder %dx%d: %w", w, h, err)
	}
	e.mu.Lock()
	e.stats.Starts++
	e.mu.Unlock()
	return enc, nil
}

// setNext makes enc the prepared encoder (nil: none); the one there was
// is the caller's.
func (e *RoleEncoder) setNext(enc *VP8Encoder, w, h int) {
	e.next, e.nextW, e.nextH = enc, w, h
	e.mu.Lock()
	e.stats.PreparedWidth, e.stats.PreparedHeight = w, h
	e.mu.Unlock()
}

func (e *RoleEncoder) dropNext() {
	if e.next != nil {
		e.next.Close()
		e.setNext(nil, 0, 0)
	}
}

// ensureEncoder (re)starts the VP8 encoder for a w×h picture, taking the
// prepared one when it has that size.
func (e *RoleEncoder) ensureEncoder(w, h int) error {
	if e.enc != nil && e.encW == w && e.encH == h {
		return nil
	}
	if e.enc != nil {
		e.closeEncoder()
	}
	enc := e.next
	if enc != nil && e.nextW == w && e.nextH == h {
		e.setNext(nil, 0, 0) // taken
	} else {
		e.dropNext() // prepared for a size that did not come
		var err error
		if enc, err = e.newEncoder(w, h); err != nil {
			return err
		}
	}
	e.enc, e.encW, e.encH, e.encRate = enc, w, h, e.cfg.BitrateKbps
	e.mu.Lock()
	e.stats.Width, e.stats.Height = w, h
	e.mu.Unlock()
	e.log.Info("VP8 encoder started", zap.Int("width", w), zap.Int("height", h))
	return nil
}

func (e *RoleEncoder) closeEncoder() {
	e.enc.Close()
	e.enc, e.encW, e.encH = nil, 0, 0
	e.mu.Lock()
	e.stats.Width, e.stats.Height = 0, 0
	e.mu.Unlock()
}

func (e *RoleEncoder) countError(err error) {
	e.mu.Lock()
	e.stats.EncodeErrors++
	e.mu.Unlock()
	if !e.failing {
		e.failing = true
		e.log.Warn("encoding failed; skipping frames until it works", zap.Error(err))
	}
}

// dropLast releases the held picture, counting it if it was never encoded.
func (e *RoleEncoder) dropLast() {
	if !e.lastEncoded {
		e.mu.Lock()
		e.stats.Dropped++
		e.mu.Unlock()
	}
	e.last.Release()
	e.last = nil
}

// shutdown releases everything Run holds; later Offers release at once.
func (e *RoleEncoder) shutdown() {
	e.mu.Lock()
	e.done = true
	f := e.pending
	e.pending = nil
	e.mu.Unlock()
	if f != nil {
		f.Release()
	}
	if e.last != nil {
		e.last.Release()
		e.last = nil
	}
	if e.enc != nil {
		e.closeEncoder()
	}
	e.dropNext()
}

// Loss-based adaptation of a role's bitrate (ReportLoss).
const (
	lossEvery      = time.Second // how often the bitrate may change
	lossHigh       = 0.10        // over this, lower the bitrate
	lossLow        = 0.02        // under this, raise it
	lossRaise      = 1.08        // the factor of one raise
	MinBitrateKbps = 200         // the least a role's bitrate is lowered to
)

// lossWindow gathers the viewers' losses between two adaptations.
type lossWindow struct {
	since time.Time // the first report of the window; zero: none yet
	worst float64
}

// add counts one report at now and, once a window of lossEvery is over,
// returns the next bitrate for the current one (ok true).
func (w *lossWindow) add(fraction float64, now time.Time, cur, target int) (next int, ok bool) {
	if w.since.IsZero() {
		w.since = now
	}
	w.worst = max(w.worst, min(max(fraction, 0), 1))
	if now.Sub(w.since) < lossEvery {
		return cur, false
	}
	loss := w.worst
	*w = lossWindow{since: now}
	switch {
	case loss > lossHigh:
		next = int(float64(cur) * (1 - loss/2))
	case loss < lossLow:
		next = int(float64(cur)*lossRaise) + 1
	default:
		next = cur
	}
	return min(max(next, min(MinBitrateKbps, target)), target), true
}
