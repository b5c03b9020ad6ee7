package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// Meta is the screencast metadata that came with one captured frame (CDP
// Page.ScreencastFrameMetadata): it maps page coordinates to the frame's pixels.
type Meta struct {
	OffsetTop       float64 // top offset in DIP of the frame in the viewport
	PageScaleFactor float64
	DeviceWidth     float64 // viewport width in DIP
	DeviceHeight    float64 // viewport height in DIP
	ScrollOffsetX   float64 // in CSS pixels
	ScrollOffsetY   float64
	Timestamp       time.Time // when Chromium swapped the frame, if it said
	// FullWidth×FullHeight is the viewport's size in pixels at full scale:
	// a picture captured smaller while the page moves is scaled back up to
	// it before encoding (RoleEncoder). 0 when unknown.
	FullWidth, FullHeight int
	// Restarted marks a frame that came while the screencast was being
	// (re)started: Chromium's first picture of a capture, whose pixels and
	// metadata are not known to come from the same paint.
	Restarted bool
}

// Capture is one screencast frame as Chromium sent it: JPEG bytes (4:2:0) and
// their metadata. Received is when Tandem read it off CDP. The JPEG slice is
// owned by the receiver of the Capture.
type Capture struct {
	JPEG     []byte
	Meta     Meta
	Received time.Time
	Seq      uint64 // increasing per lease; a gap means frames were replaced
}

// Image is a planar I420 (YUV 4:2:0) picture. Width and Height are the luma
// size; the chroma planes are (Width+1)/2 × (Height+1)/2.
type Image struct {
	Width, Height int
	Y, U, V       []byte
	StrideY       int
	StrideUV      int
}

// Frame is one decoded picture shared, read-only, by the role encoders. It is
// reference counted: whoever holds it calls Release once; the last Release
// returns its buffers to the pool it came from.
type Frame struct {
	Image
	Meta     Meta
	Received time.Time
	Seq      uint64
	// Verbatim marks a copy of the captured picture Seq with nothing
	// painted on it: the agents may be sent the customers' encoding of it
	// (mask.Apply sets it; RoleEncoderConfig.Follow).
	Verbatim bool

	refs atomic.Int32
	pool *FramePool
	buf  []byte // the backing array of Image, returned to pool by the last Release
}

// maxFreeBuffers bounds the idle buffers a FramePool keeps: enough for the
// frames one session has in flight (decoding, two roles holding a pending and
// a last frame each, the agent's masked copy), few enough that a burst does not
// pin memory.
const maxFreeBuffers = 8

// planeAlign is the row alignment of pooled planes, so that SIMD code in
// libjpeg-turbo and libvpx starts every row on an aligned address.
const planeAlign = 32

// FramePool recycles the pixel buffers of Frames of one size. Get hands out a
// Frame holding one reference; the last Release gives its buffer back. When the
// requested size changes (the page was resized), buffers of the old size are
// dropped as they come back.
//
// A FramePool is safe for concurrent use; its zero value is not usable, call
// NewFramePool. A nil *FramePool hands out unpooled Frames.
type FramePool struct {
	mu   sync.Mutex
	w, h int      // guarded by mu: the size of the buffers in free
	free [][]byte // guarded by mu: idle backing arrays of size w×h

	allocs    atomic.Uint64
	reuses    atomic.Uint64
	refErrors atomic.Uint64
}

// PoolStats counts what a FramePool did since it was created.
type PoolStats struct {
	Allocs    uint64 // buffers allocated because none was free
	Reuses    uint64 // buffers handed out again
	RefErrors uint64 // Retain or Release on a Frame already released (ignored)
	Free      int    // idle buffers held now
}

// NewFramePool returns an empty pool.
func NewFramePool() *FramePool {
	return &FramePool{free: make([][]byte, 0, maxFreeBuffers)}
}

// Get returns a w×h Frame holding one reference, with its buffers taken from
// the pool when one of that size is free. The pixel contents are undefined;
// Meta, Received and Seq are zero. Non-positive sizes give an empty Image.
//
// The small Frame header is allocated anew on every Get, on purpose: a Frame
// released twice by mistake then never touches a later user's buffers (see
// Release); the buffers, which are what costs, are reused.
func (p *FramePool) Get(w, h int) *Frame {
	w, h = max(w, 0), max(h, 0)
	size := frameSize(w, h)
	var buf []byte
	if p != nil {
		p.mu.Lock()
		if p.w != w || p.h != h {
			clear(p.free)
			p.free = p.free[:0]
			p.w, p.h = w, h
		}
		if n := len(p.free); n > 0 {
			buf = p.free[n-1]
			p.free[n-1] = nil
			p.free = p.free[:n-1]
		}
		p.mu.Unlock()
		if buf != nil {
			p.reuses.Add(1)
		} else {
			p.allocs.Add(1)
		}
	}
	if buf == nil {
		buf = make([]byte, size)
	}
	f := &Frame{Image: layoutImage(w, h, buf), pool: p, buf: buf}
	f.refs.Store(1)
	return f
}

// Stats returns the pool's counters (zero for a nil pool).
func (p *FramePool) Stats() PoolStats {
	if p == nil {
		return PoolStats{}
	}
	p.mu.Lock()
	free := len(p.free)
	p.mu.Unlock()
	return PoolStats{
		Allocs:    p.allocs.Load(),
		Reuses:    p.reuses.Load(),
		RefErrors: p.refErrors.Load(),
		Free:      free,
	}
}

// put takes back the buffer of a released w×h Frame.
func (p *FramePool) put(w, h int, buf []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w != p.w || h != p.h || len(p.free) >= maxFreeBuffers {
		return // an old size, or enough idle: let the GC have it
	}
	p.free = append(p.free, buf)
}

// Retain adds a reference to f and returns f, for the new holder to Release.
// Retaining a Frame that was already released is a bug; it is ignored (and
// counted in the pool's RefErrors) rather than resurrecting recycled buffers.
// A Frame not made by Get or Decode (a literal) is not counted at all.
func (f *Frame) Retain() *Frame {
	for {
		r := f.refs.Load()
		if r <= 0 {
			if f.pool != nil {
				f.pool.refErrors.Add(1)
			}
			return f
		}
		if f.refs.CompareAndSwap(r, r+1) {
			return f
		}
	}
}

// Release drops one reference. The last Release returns the buffers to the
// pool and empties f.Image, so that a holder that keeps using f after its
// Release fails loudly instead of reading someone else's picture. A Release
// beyond the last is ignored and counted in the pool's RefErrors; it never
// touches the buffers, which may already belong to another Frame. A Frame
// with no pool simply releases to nothing.
func (f *Frame) Release() {
	for {
		r := f.refs.Load()
		if r <= 0 {
			if f.pool != nil {
				f.pool.refErrors.Add(1)
			}
			return
		}
		if !f.refs.CompareAndSwap(r, r-1) {
			continue
		}
		if r == 1 && f.pool != nil {
			w, h, buf := f.Width, f.Height, f.buf
			f.Image, f.buf = Image{}, nil
			f.pool.put(w, h, buf)
		}
		return
	}
}

// alignUp rounds n up to a multiple of planeAlign.
func alignUp(n int) int { return (n + planeAlign - 1) &^ (planeAlign - 1) }

// frameSize is the length of the backing array of a pooled w×h I420 frame.
// The luma plane has an even number of rows: libjpeg-turbo writes 4:2:0 and
// 4:4:0 luma in whole chroma rows (tjPlaneHeight), one row beyond an odd
// height.
func frameSize(w, h int) int {
	cw, ch := (w+1)/2, (h+1)/2
	return alignUp(w)*2*ch + 2*alignUp(cw)*ch
}

// layoutImage cuts buf (of at least frameSize(w, h) bytes) into the planes of
// a w×h I420 Image with aligned strides. Each plane's capacity includes its
// padding, which stays outside its length.
func layoutImage(w, h int, buf []byte) Image {
	cw, ch := (w+1)/2, (h+1)/2
	sy, suv := alignUp(w), alignUp(cw)
	yCap, uvSize := sy*2*ch, suv*ch
	return Image{
		Width:    w,
		Height:   h,
		Y:        buf[: sy*h : yCap],
		U:        buf[yCap : yCap+uvSize : yCap+uvSize],
		V:        buf[yCap+uvSize : yCap+2*uvSize : yCap+2*uvSize],
		StrideY:  sy,
		StrideUV: suv,
	}
}
