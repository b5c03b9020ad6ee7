package media

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>

// tandem_jpeg lives in C memory so that the header outputs need no Go
// allocation per frame.
typedef struct {
	tjhandle h;
	int width, height, subsamp, colorspace;
} tandem_jpeg;

static int tandem_jpeg_header(tandem_jpeg *d, const unsigned char *buf, unsigned long n) {
	return tjDecompressHeader3(d->h, buf, n, &d->width, &d->height, &d->subsamp, &d->colorspace);
}

// tandem_jpeg_yuv decodes into planes at the JPEG's own size and subsampling.
// u and v are ignored for grayscale JPEGs.
static int tandem_jpeg_yuv(tandem_jpeg *d, const unsigned char *buf, unsigned long n,
		unsigned char *y, unsigned char *u, unsigned char *v, int sy, int suv, int flags) {
	unsigned char *planes[3] = {y, u, v};
	int strides[3] = {sy, suv, suv};
	return tjDecompressToYUVPlanes(d->h, buf, n, planes, d->width, strides, d->height, flags);
}

static int tandem_jpeg_rgb(tandem_jpeg *d, const unsigned char *buf, unsigned long n,
		unsigned char *dst, int pitch, int flags) {
	return tjDecompress2(d->h, buf, n, dst, d->width, pitch, d->height, TJPF_RGB, flags);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// MaxDimension is the largest width or height Decode and NewVP8Encoder
// accept, so that a hostile header cannot make Tandem allocate gigabytes.
const MaxDimension = 4096

// Errors returned by the codecs; wrapped with detail, test with errors.Is.
var (
	ErrInvalidJPEG     = errors.New("media: invalid JPEG")
	ErrUnsupportedJPEG = errors.New("media: unsupported JPEG")
	ErrTooLarge        = errors.New("media: image too large")
	ErrClosed          = errors.New("media: closed")
)

// decodeFlags makes libjpeg-turbo fail on the first warning (a truncated or
// corrupt frame is an error, not a half-grey picture) and bounds the scans of
// progressive JPEGs, whose cost is otherwise unbounded.
const decodeFlags = C.TJFLAG_STOPONWARNING | C.TJFLAG_LIMITSCANS

// Decoder turns JPEG bytes into I420 Frames with libjpeg-turbo. 4:2:0 JPEGs
// (Chromium's screencast sends only those) are decoded straight into the
// Frame's planes; 4:4:4, 4:2:2, 4:4:0, 4:1:1, grayscale and RGB JPEGs are
// converted. The planes hold JFIF (full-range BT.601) values, as JPEG does.
//
// A Decoder is not safe for concurrent use: give each goroutine its own. It
// holds C memory until Close.
type Decoder struct {
	c *C.tandem_jpeg

	// Scratch planes for the conversions, kept between calls.
	chroma []byte
	rgb    []byte
}

// NewDecoder returns a Decoder; the caller must Close it.
func NewDecoder() (*Decoder, error) {
	c := (*C.tandem_jpeg)(C.calloc(1, C.sizeof_tandem_jpeg))
	if c == nil {
		return nil, errors.New("media: new JPEG decoder: out of memory")
	}
	c.h = C.tjInitDecompress()
	if c.h == nil {
		C.free(unsafe.Pointer(c))
		return nil, fmt.Errorf("new JPEG decoder: %s: %w", C.GoString(C.tjGetErrorStr2(nil)), ErrInvalidJPEG)
	}
	return &Decoder{c: c}, nil
}

// Close frees the decoder. It is idempotent; Decode after Close returns
// ErrClosed.
func (d *Decoder) Close() error {
	if d.c == nil {
		return nil
	}
	C.tjDestroy(d.c.h)
	C.free(unsafe.Pointer(d.c))
	d.c = nil
	return nil
}

// Decode decodes one JPEG into a Frame from pool (unpooled if pool is nil)
// holding one reference for the caller. The caller sets the Frame's Meta,
// Received and Seq. jpeg is only read, and not kept. Corrupt or truncated
// input gives an error wrapping ErrInvalidJPEG; CMYK and unknown layouts
// ErrUnsupportedJPEG; a side above MaxDimension ErrTooLarge.
func (d *Decoder) Decode(jpeg []byte, pool *FramePool) (*Frame, error) {
	if d.c == nil {
		return nil, ErrClosed
	}
	if len(jpeg) == 0 {
		return nil, fmt.Errorf("decode JPEG: empty input: %w", ErrInvalidJPEG)
	}
	src, n := (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg))
	if C.tandem_jpeg_header(d.c, src, n) != 0 {
		return nil, d.fail("read JPEG header")
	}
	w, h := int(d.c.width), int(d.c.height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("decode JPEG: size %dx%d: %w", w, h, ErrInvalidJPEG)
	}
	if w > MaxDimension || h > MaxDimension {
		return nil, fmt.Errorf("decode JPEG: size %dx%d: %w", w, h, ErrTooLarge)
	}
	f := pool.Get(w, h)
	var err error
	switch cs, ss := d.c.colorspace, d.c.subsamp; {
	case cs == C.TJCS_YCbCr && ss == C.TJSAMP_420:
		err = d.decodeYUV(src, n, &f.Image, f.U, f.V, f.StrideUV, C.TJSAMP_420, "decode JPEG")
	case cs == C.TJCS_YCbCr || cs == C.TJCS_GRAY:
		err = d.decodeConvert(src, n, &f.Image, int(ss))
	case cs == C.TJCS_RGB:
		err = d.decodeRGB(src, n, &f.Image)
	default:
		err = fmt.Errorf("decode JPEG: colorspace %d, subsampling %d: %w", int(cs), int(ss), ErrUnsupportedJPEG)
	}
	if err != nil {
		f.Release()
		return nil, err
	}
	return f, nil
}

// decodeYUV decodes into img's Y plane and the given chroma planes (in the
// JPEG's own subsampling ss; nil for grayscale). libjpeg-turbo writes whole
// MCU rows and columns (tjPlaneWidth, tjPlaneHeight): the planes' capacities
// are checked against that before C writes into them.
func (d *Decoder) decodeYUV(src *C.uchar, n C.ulong, img *Image, u, v []byte, suv, ss int, op string) error {
	w, h := img.Width, img.Height
	pw := int(C.tjPlaneWidth(0, C.int(w), C.int(ss)))
	ph := int(C.tjPlaneHeight(0, C.int(h), C.int(ss)))
	if pw <= 0 || ph <= 0 || img.StrideY < pw || cap(img.Y) < img.StrideY*(ph-1)+pw {
		return fmt.Errorf("%s: luma plane too small for %dx%d: %w", op, w, h, ErrBadImage)
	}
	var up, vp *C.uchar
	if ss != C.TJSAMP_GRAY {
		cw := int(C.tjPlaneWidth(1, C.int(w), C.int(ss)))
		ch := int(C.tjPlaneHeight(1, C.int(h), C.int(ss)))
		if cw <= 0 || ch <= 0 || suv < cw || cap(u) < suv*(ch-1)+cw || cap(v) < suv*(ch-1)+cw {
			return fmt.Errorf("%s: chroma planes too small for %dx%d: %w", op, w, h, ErrBadImage)
		}
		up, vp = (*C.uchar)(unsafe.Pointer(&u[:1][0])), (*C.uchar)(unsafe.Pointer(&v[:1][0]))
	}
	if C.tandem_jpeg_yuv(d.c, src, n, (*C.uchar)(unsafe.Pointer(&img.Y[:1][0])), up, vp,
		C.int(img.StrideY), C.int(suv), decodeFlags) != 0 {
		return d.fail(op)
	}
	return nil
}

// decodeConvert decodes a YCbCr or grayscale JPEG that is not 4:2:0: luma
// straight into img, chroma into scratch planes resampled to 4:2:0 after.
func (d *Decoder) decodeConvert(src *C.uchar, n C.ulong, img *Image, ss int) error {
	w, h := img.Width, img.Height
	cw, ch := (w+1)/2, (h+1)/2
	if ss == C.TJSAMP_GRAY {
		if err := d.decodeYUV(src, n, img, nil, nil, 0, ss, "decode grayscale JPEG"); err != nil {
			return err
		}
		for y := range ch {
			clear128(img.U[y*img.StrideUV : y*img.StrideUV+cw])
			clear128(img.V[y*img.StrideUV : y*img.StrideUV+cw])
		}
		return nil
	}
	// Luma pixels per chroma sample, as shifts (tjMCUWidth/8, tjMCUHeight/8).
	var sx, sy uint
	switch ss {
	case C.TJSAMP_444:
	case C.TJSAMP_422:
		sx = 1
	case C.TJSAMP_440:
		sy = 1
	case C.TJSAMP_411:
		sx = 2
	default:
		return fmt.Errorf("decode JPEG: subsampling %d: %w", ss, ErrUnsupportedJPEG)
	}
	pw, ph := (w+1<<sx-1)>>sx, (h+1<<sy-1)>>sy
	if need := 2 * pw * ph; cap(d.chroma) < need {
		d.chroma = make([]byte, need)
	}
	u, v := d.chroma[:pw*ph], d.chroma[pw*ph:2*pw*ph]
	if err := d.decodeYUV(src, n, img, u, v, pw, ss, "decode JPEG"); err != nil {
		return err
	}
	resampleChroma(img.U, img.StrideUV, u, pw, sx, sy, w, h)
	resampleChroma(img.V, img.StrideUV, v, pw, sx, sy, w, h)
	return nil
}

// decodeRGB decodes a JPEG stored as RGB (Adobe transform 0) and converts it.
func (d *Decoder) decodeRGB(src *C.uchar, n C.ulong, img *Image) error {
	w, h := img.Width, img.Height
	if len(img.Y) < img.StrideY*(h-1)+w {
		return fmt.Errorf("decode RGB JPEG: luma plane too small for %dx%d: %w", w, h, ErrBadImage)
	}
	if need := 3 * w * h; cap(d.rgb) < need {
		d.rgb = make([]byte, need)
	}
	rgb := d.rgb[:3*w*h]
	if C.tandem_jpeg_rgb(d.c, src, n, (*C.uchar)(unsafe.Pointer(&rgb[0])), C.int(3*w), decodeFlags) != 0 {
		return d.fail("decode RGB JPEG")
	}
	rgbToI420(img, rgb)
	return nil
}

// fail wraps libjpeg-turbo's last message.
func (d *Decoder) fail(op string) error {
	return fmt.Errorf("%s: %s: %w", op, C.GoString(C.tjGetErrorStr2(d.c.h)), ErrInvalidJPEG)
}

func clear128(b []byte) {
	for i := range b {
		b[i] = 128
	}
}

// resampleChroma fills the 4:2:0 plane dst from src, a chroma plane with one
// sample per 1<<sx × 1<<sy luma pixels of a w×h picture: each output sample
// averages the source samples under its 2×2 luma pixels (clipped at the
// edges).
func resampleChroma(dst []byte, dstStride int, src []byte, srcStride int, sx, sy uint, w, h int) {
	cw, ch := (w+1)/2, (h+1)/2
	for cy := range ch {
		y0 := 2 * cy
		y1 := min(y0+1, h-1)
		r0 := src[(y0>>sy)*srcStride:]
		r1 := src[(y1>>sy)*srcStride:]
		out := dst[cy*dstStride : cy*dstStride+cw]
		for cx := range out {
			x0 := 2 * cx
			x1 := min(x0+1, w-1)
			a, b := x0>>sx, x1>>sx
			sum := int(r0[a]) + int(r0[b]) + int(r1[a]) + int(r1[b])
			out[cx] = byte((sum + 2) >> 2)
		}
	}
}

// rgbToI420 converts packed RGB (3 bytes a pixel, rows of 3·Width) to img
// with the JFIF equations, so that every path yields the same full-range
// values. Chroma is taken from the average colour of each 2×2 block.
func rgbToI420(img *Image, rgb []byte) {
	w, h := img.Width, img.Height
	pitch := 3 * w
	for y := range h {
		row := rgb[y*pitch : y*pitch+pitch]
		out := img.Y[y*img.StrideY : y*img.StrideY+w]
		for x := range out {
			r, g, b := int32(row[3*x]), int32(row[3*x+1]), int32(row[3*x+2])
			// 0.299, 0.587, 0.114 in 16.16 fixed point.
			out[x] = byte((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	for cy := range ch {
		y0, y1 := 2*cy, min(2*cy+1, h-1)
		for cx := range cw {
			x0, x1 := 2*cx, min(2*cx+1, w-1)
			var r, g, b int32
			for _, p := range [4]int{y0*pitch + 3*x0, y0*pitch + 3*x1, y1*pitch + 3*x0, y1*pitch + 3*x1} {
				r += int32(rgb[p])
				g += int32(rgb[p+1])
				b += int32(rgb[p+2])
			}
			// Sums of four pixels: the coefficients are divided by 4 via >>18.
			// Cb = 128 - 0.168736 R - 0.331264 G + 0.5 B; Cr = 128 + 0.5 R - 0.418688 G - 0.081312 B.
			cb := (-11059*r - 21709*g + 32768*b + 1<<17) >> 18
			cr := (32768*r - 27439*g - 5329*b + 1<<17) >> 18
			img.U[cy*img.StrideUV+cx] = clampByte(cb + 128)
			img.V[cy*img.StrideUV+cx] = clampByte(cr + 128)
		}
	}
}

func clampByte(v int32) byte {
	return byte(min(max(v, 0), 255))
}
