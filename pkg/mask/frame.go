package mask

import (
	"image"

	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// Fill is the value of all three planes in masked areas: a neutral grey.
// Solid, never a blur: nothing of what is under it survives.
const Fill = 128

// Frame is a picture safe for the agents: only Apply makes one, and the
// agents' Encoder takes nothing else. The zero Frame is empty.
type Frame struct {
	f *media.Frame
}

// Release gives the picture back to its pool.
func (f Frame) Release() {
	if f.f != nil {
		f.f.Release()
	}
}

// Apply returns a copy of src with rects (from Tracker.Plan) painted over.
// src is not changed: the customers' stream keeps it. The copy comes from
// pool and carries src's metadata.
func Apply(src *media.Frame, rects []image.Rectangle, pool *media.FramePool) Frame {
	dst := pool.Get(src.Width, src.Height)
	dst.Meta, dst.Received, dst.Seq = src.Meta, src.Received, src.Seq
	copyPlane(dst.Y, dst.StrideY, src.Y, src.StrideY, src.Width, src.Height)
	cw, ch := (src.Width+1)/2, (src.Height+1)/2
	copyPlane(dst.U, dst.StrideUV, src.U, src.StrideUV, cw, ch)
	copyPlane(dst.V, dst.StrideUV, src.V, src.StrideUV, cw, ch)
	bounds := image.Rect(0, 0, src.Width, src.Height)
	painted := false
	for _, r := range rects {
		r = r.Intersect(bounds)
		painted = painted || !r.Empty()
		paint(&dst.Image, r)
	}
	// Only a picture with nothing painted lets the agents be sent the
	// customers' encoding of it (media.RoleEncoderConfig.Follow).
	dst.Verbatim = !painted
	return Frame{f: dst}
}

func copyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	for y := range h {
		copy(dst[y*dstStride:y*dstStride+w], src[y*srcStride:y*srcStride+w])
	}
}

// paint fills r (even-aligned by Plan; odd edges are widened) in all planes.
func paint(img *media.Image, r image.Rectangle) {
	if r.Empty() {
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Y[y*img.StrideY:]
		for x := r.Min.X; x < r.Max.X; x++ {
			row[x] = Fill
		}
	}
	cx0, cy0 := r.Min.X/2, r.Min.Y/2
	cx1, cy1 := (r.Max.X+1)/2, (r.Max.Y+1)/2
	cw, ch := (img.Width+1)/2, (img.Height+1)/2
	cx1, cy1 = min(cx1, cw), min(cy1, ch)
	for y := cy0; y < cy1; y++ {
		u := img.U[y*img.StrideUV:]
		v := img.V[y*img.StrideUV:]
		for x := cx0; x < cx1; x++ {
			u[x], v[x] = Fill, Fill
		}
	}
}
