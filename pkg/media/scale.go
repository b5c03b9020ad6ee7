package media

/*
#cgo CFLAGS: -O3

// tandem_scale_plane resamples one 8-bit plane of sw×sh to dw×dh, bilinear,
// with pixel centres aligned (as libyuv and most scalers do): each output
// row blends two source rows into a row of 16-bit sums (a loop compilers
// vectorise), then each output pixel blends two of those. Sizes are at
// most MaxDimension, so the tables fit on the stack.
static void tandem_scale_plane(const unsigned char *src, int sw, int sh, int ss,
		unsigned char *dst, int dw, int dh, int ds) {
	int x0[4096];
	unsigned short fx[4096], row[4097];
	for (int x = 0; x < dw; x++) {
		// Source position of the centre of dst column x, in 1/65536 pixels.
		long long p = ((2LL * x + 1) * sw * 65536LL) / (2LL * dw) - 32768;
		if (p < 0) p = 0;
		int i = (int)(p >> 16);
		if (i >= sw - 1) { i = sw - 1; p = (long long)i << 16; }
		x0[x] = i;
		fx[x] = (unsigned short)((p & 0xffff) >> 8); // 0..255
	}
	for (int y = 0; y < dh; y++) {
		long long p = ((2LL * y + 1) * sh * 65536LL) / (2LL * dh) - 32768;
		if (p < 0) p = 0;
		int j = (int)(p >> 16);
		if (j >= sh - 1) { j = sh - 1; p = (long long)j << 16; }
		unsigned short fy = (unsigned short)((p & 0xffff) >> 8), gy = 256 - fy;
		const unsigned char *r0 = src + (long)j * ss;
		const unsigned char *r1 = j + 1 < sh ? r0 + ss : r0;
		for (int i = 0; i < sw; i++) {
			row[i] = (unsigned short)(r0[i] * gy + r1[i] * fy);
		}
		row[sw] = row[sw - 1]; // the last column blends with itself
		unsigned char *out = dst + (long)y * ds;
		for (int x = 0; x < dw; x++) {
			const unsigned short *q = row + x0[x];
			unsigned int f = fx[x];
			out[x] = (unsigned char)((q[0] * (256 - f) + q[1] * f + 32768) >> 16);
		}
	}
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Scale resamples src into dst (bilinear), whatever their sizes: a picture
// Chromium captured smaller while the page moved is brought back to the
// viewport's size before encoding (browserpool's motion.go). Both must be
// non-empty and at most MaxDimension on each side.
func Scale(dst, src *Image) error {
	if src.Width <= 0 || src.Height <= 0 || dst.Width <= 0 || dst.Height <= 0 ||
		max(src.Width, src.Height, dst.Width, dst.Height) > MaxDimension {
		return fmt.Errorf("scale %dx%d to %dx%d: %w", src.Width, src.Height, dst.Width, dst.Height, ErrTooLarge)
	}
	scalePlane(src.Y, src.Width, src.Height, src.StrideY, dst.Y, dst.Width, dst.Height, dst.StrideY)
	sw, sh, dw, dh := (src.Width+1)/2, (src.Height+1)/2, (dst.Width+1)/2, (dst.Height+1)/2
	scalePlane(src.U, sw, sh, src.StrideUV, dst.U, dw, dh, dst.StrideUV)
	scalePlane(src.V, sw, sh, src.StrideUV, dst.V, dw, dh, dst.StrideUV)
	return nil
}

func scalePlane(src []byte, sw, sh, ss int, dst []byte, dw, dh, ds int) {
	// The last row need not be full stride; check what is read and written.
	if len(src) < (sh-1)*ss+sw || len(dst) < (dh-1)*ds+dw {
		panic(fmt.Sprintf("media: plane buffers too small for %dx%d → %dx%d", sw, sh, dw, dh))
	}
	C.tandem_scale_plane((*C.uchar)(unsafe.Pointer(&src[0])), C.int(sw), C.int(sh), C.int(ss),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(dw), C.int(dh), C.int(ds))
}

// NewImage returns a w×h Image with buffers of its own, laid out as pooled
// Frames are.
func NewImage(w, h int) Image {
	return layoutImage(w, h, make([]byte, frameSize(w, h)))
}

// Reduced says whether a w×h picture with metadata m was captured smaller
// than its viewport, with the viewport's shape, and so is to be scaled up to
// m.FullWidth×m.FullHeight. A picture of another shape (one of the old size
// sent while the viewport changes) is not.
func (m Meta) Reduced(w, h int) bool {
	fw, fh := m.FullWidth, m.FullHeight
	if fw <= 0 || fh <= 0 || w >= fw || h >= fh {
		return false
	}
	// Same shape, within the rounding of each side.
	return abs(w*fh-h*fw) <= fw+fh
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
