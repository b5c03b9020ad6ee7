package media

/*
#cgo pkg-config: vpx
#include <stdlib.h>
#include <string.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>

// tandem_vp8enc lives in C memory: libvpx keeps pointers into ctx, and the
// per-frame outputs need no Go allocation.
typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_codec_enc_cfg_t cfg;
	vpx_image_t img;
	int inited;
	const unsigned char *out; // the last frame's bytes, owned by libvpx until the next encode
	size_t out_len;
	int out_key;
} tandem_vp8enc;

static vpx_codec_err_t tandem_vp8enc_init(tandem_vp8enc *e, unsigned int w, unsigned int h,
		unsigned int kbps, int cpu_used, unsigned int static_thresh, unsigned int screen_content, unsigned int profile) {
	vpx_codec_enc_cfg_t *c = &e->cfg;
	vpx_codec_err_t err = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), c, 0);
	if (err != VPX_CODEC_OK) return err;
	c->g_profile = profile;
	c->g_w = w;
	c->g_h = h;
	c->g_timebase.num = 1;
	c->g_timebase.den = 90000; // the RTP clock
	c->g_threads = 1;          // two threads gained nothing on 2 cores (MEASUREMENTS.md)
	c->g_lag_in_frames = 0;
	c->g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
	c->g_pass = VPX_RC_ONE_PASS;
	c->rc_end_usage = VPX_CBR;
	c->rc_target_bitrate = kbps;
	c->rc_min_quantizer = 2;
	c->rc_max_quantizer = 56;
	c->rc_undershoot_pct = 100; // as libwebrtc: let still pages spend little
	c->rc_overshoot_pct = 15;
	c->rc_buf_initial_sz = 500;
	c->rc_buf_optimal_sz = 600;
	c->rc_buf_sz = 1000;
	c->rc_dropframe_thresh = 0; // frames come on damage: a dropped one may be the last for a while
	c->rc_resize_allowed = 0;
	c->kf_mode = VPX_KF_DISABLED; // key frames on request only (and MaxKeyInterval, done in Go)
	err = vpx_codec_enc_init(&e->ctx, vpx_codec_vp8_cx(), c, 0);
	if (err != VPX_CODEC_OK) return err;
	e->inited = 1;
	if ((err = vpx_codec_control(&e->ctx, VP8E_SET_CPUUSED, cpu_used)) != VPX_CODEC_OK) return err;
	if ((err = vpx_codec_control(&e->ctx, VP8E_SET_STATIC_THRESHOLD, static_thresh)) != VPX_CODEC_OK) return err;
	if ((err = vpx_codec_control(&e->ctx, VP8E_SET_NOISE_SENSITIVITY, 0)) != VPX_CODEC_OK) return err;
	if ((err = vpx_codec_control(&e->ctx, VP8E_SET_SCREEN_CONTENT_MODE, screen_content)) != VPX_CODEC_OK) return err;
	if ((err = vpx_codec_control(&e->ctx, VP8E_SET_TOKEN_PARTITIONS, VP8_ONE_TOKENPARTITION)) != VPX_CODEC_OK) return err;
	memset(&e->img, 0, sizeof e->img);
	e->img.fmt = VPX_IMG_FMT_I420;
	e->img.w = e->img.d_w = w;
	e->img.h = e->img.d_h = h;
	e->img.x_chroma_shift = 1;
	e->img.y_chroma_shift = 1;
	e->img.bps = 12;
	return VPX_CODEC_OK;
}

// tandem_vp8enc_encode encodes one picture whose planes are Go memory: they
// are referenced only during the call (VP8 copies the picture into its
// look-ahead buffer).
static vpx_codec_err_t tandem_vp8enc_encode(tandem_vp8enc *e, unsigned char *y, unsigned char *u,
		unsigned char *v, int sy, int suv, long long pts, unsigned long dur, int force_key) {
	e->img.planes[VPX_PLANE_Y] = y;
	e->img.planes[VPX_PLANE_U] = u;
	e->img.planes[VPX_PLANE_V] = v;
	e->img.stride[VPX_PLANE_Y] = sy;
	e->img.stride[VPX_PLANE_U] = suv;
	e->img.stride[VPX_PLANE_V] = suv;
	vpx_codec_err_t err = vpx_codec_encode(&e->ctx, &e->img, (vpx_codec_pts_t)pts, dur,
		force_key ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
	e->img.planes[VPX_PLANE_Y] = e->img.planes[VPX_PLANE_U] = e->img.planes[VPX_PLANE_V] = NULL;
	e->out = NULL;
	e->out_len = 0;
	e->out_key = 0;
	if (err != VPX_CODEC_OK) return err;
	vpx_codec_iter_t iter = NULL;
	const vpx_codec_cx_pkt_t *pkt;
	while ((pkt = vpx_codec_get_cx_data(&e->ctx, &iter)) != NULL) {
		if (pkt->kind == VPX_CODEC_CX_FRAME_PKT && e->out == NULL) {
			e->out = pkt->data.frame.buf;
			e->out_len = pkt->data.frame.sz;
			e->out_key = (pkt->data.frame.flags & VPX_FRAME_IS_KEY) != 0;
		}
	}
	return VPX_CODEC_OK;
}

static vpx_codec_err_t tandem_vp8enc_set_bitrate(tandem_vp8enc *e, unsigned int kbps) {
	e->cfg.rc_target_bitrate = kbps;
	return vpx_codec_enc_config_set(&e->ctx, &e->cfg);
}

static const char *tandem_vpx_detail(vpx_codec_ctx_t *ctx) {
	const char *d = vpx_codec_error_detail(ctx);
	return d ? d : "";
}

typedef struct {
	vpx_codec_ctx_t ctx;
	vpx_image_t *img; // the last decoded picture, owned by libvpx
} tandem_vp8dec;

static vpx_codec_err_t tandem_vp8dec_init(tandem_vp8dec *d) {
	vpx_codec_dec_cfg_t cfg = {1, 0, 0};
	return vpx_codec_dec_init(&d->ctx, vpx_codec_vp8_dx(), &cfg, 0);
}

static vpx_codec_err_t tandem_vp8dec_decode(tandem_vp8dec *d, const unsigned char *data, unsigned int n) {
	d->img = NULL;
	vpx_codec_err_t err = vpx_codec_decode(&d->ctx, data, n, NULL, 0);
	if (err != VPX_CODEC_OK) return err;
	vpx_codec_iter_t iter = NULL;
	d->img = vpx_codec_get_frame(&d->ctx, &iter);
	return VPX_CODEC_OK;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrCodec reports a failure inside libvpx; ErrBadImage an Image whose size
// or planes do not fit the encoder.
var (
	ErrCodec    = errors.New("media: VP8 codec error")
	ErrBadImage = errors.New("media: image does not fit")
)

// defaultCPUUsed is libvpx's speed setting. Negative values let VP8's
// realtime mode pick its speed from the time left in the frame budget:
// measured on a 720p always-moving page here, -12 encodes in 5.7 ms with
// 5.1 KB per frame against 8.8 ms and 5.5 KB for +8 (BenchmarkEncode720p).
const defaultCPUUsed = -12

// defaultStaticThreshold is VP8's encode breakout: a macroblock whose
// prediction from the last frame is off by a summed squared error below it
// is skipped. Measured on 720p pages (BenchmarkEncodeTuning): with it off,
// a caret blinking on a still page cost 2300 bytes a frame, as the encoder
// kept recoding unchanged blocks; at 500, 836 bytes, with encoding about
// 25-55 % faster on every scene, and the decoded picture still within a mean
// error of 1.5 of the source in every 16×16 block (a skipped change is
// below what the eye sees: 500 over a block is under 1.4 per pixel).
const defaultStaticThreshold = 500

// EncoderConfig sets up a VP8Encoder. Zero values mean the defaults.
type EncoderConfig struct {
	Width, Height   int           // picture size, 1..MaxDimension; odd sizes are fine
	BitrateKbps     int           // CBR target; 0 means 1500
	CPUUsed         int           // libvpx cpu-used, -16..16; 0 means -12 (see defaultCPUUsed)
	MaxKeyInterval  time.Duration // force a key frame when the last is this old; 0 means never (keys on request)
	StaticThreshold int           // VP8E_SET_STATIC_THRESHOLD (skip blocks that changed less); 0 means 500 (see defaultStaticThreshold), -1 off
	ScreenContent   int           // VP8E_SET_SCREEN_CONTENT_MODE: 0 off, 1 on, 2 on with stricter rate control
	LoopFilter      bool          // VP8 version 0 (six-tap prediction, loop filter) instead of version 2 (see EncoderConfig.version)
}

// version is the VP8 bitstream version (vpx g_profile) to encode. Version 2
// predicts motion bilinearly and has no loop filter; the loop filter alone
// was about 40 % of the time libvpx spends on a 720p picture that barely
// changed (a blinking caret), and sharp screen content does not need it:
// on the pages measured (BenchmarkEncodeTuning), version 2 coded every
// scene 10-25 % faster, in fewer bytes and with no worse a picture, also
// at 200 kbit/s (docs/encoder.md). Every VP8 decoder decodes all four
// versions (RFC 6386, section 9.1).
func (c EncoderConfig) version() int {
	if c.LoopFilter {
		return 0
	}
	return 2
}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.BitrateKbps == 0 {
		c.BitrateKbps = 1500
	}
	if c.CPUUsed == 0 {
		c.CPUUsed = defaultCPUUsed
	}
	switch c.StaticThreshold {
	case 0:
		c.StaticThreshold = defaultStaticThreshold
	case -1:
		c.StaticThreshold = 0 // libvpx's off
	}
	return c
}

// Validate reports a size or setting the encoder cannot take.
func (c EncoderConfig) Validate() error {
	switch {
	case c.Width <= 0 || c.Height <= 0:
		return fmt.Errorf("media: encoder size %dx%d: %w", c.Width, c.Height, ErrBadImage)
	case c.Width > MaxDimension || c.Height > MaxDimension:
		return fmt.Errorf("media: encoder size %dx%d: %w", c.Width, c.Height, ErrTooLarge)
	case c.BitrateKbps < 0, c.CPUUsed < -16 || c.CPUUsed > 16, c.MaxKeyInterval < 0, c.StaticThreshold < -1,
		c.ScreenContent < 0 || c.ScreenContent > 2:
		return fmt.Errorf("media: encoder config %+v out of range", c)
	}
	return nil
}

// VP8Encoder is a realtime, single-threaded, CBR, error-resilient libvpx VP8
// encoder for pictures of one size. It is not safe for concurrent use and
// holds C memory until Close.
type VP8Encoder struct {
	c   *C.tandem_vp8enc
	cfg EncoderConfig
	out []byte // returned by Encode, reused

	started bool
	lastPts int64         // in 1/90000 s
	lastKey time.Duration // pts of the last key frame
}

// NewVP8Encoder starts an encoder; the caller must Close it. Its first frame
// is always a key frame.
func NewVP8Encoder(cfg EncoderConfig) (*VP8Encoder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := (*C.tandem_vp8enc)(C.calloc(1, C.sizeof_tandem_vp8enc))
	if c == nil {
		return nil, errors.New("media: new VP8 encoder: out of memory")
	}
	e := &VP8Encoder{c: c, cfg: cfg}
	if rc := C.tandem_vp8enc_init(c, C.uint(cfg.Width), C.uint(cfg.Height), C.uint(cfg.BitrateKbps),
		C.int(cfg.CPUUsed), C.uint(cfg.StaticThreshold), C.uint(cfg.ScreenContent), C.uint(cfg.version())); rc != C.VPX_CODEC_OK {
		err := e.fail("new VP8 encoder", rc)
		e.Close()
		return nil, err
	}
	return e, nil
}

// Encode compresses img, which must have the encoder's size, as the picture
// shown at pts (any origin; kept strictly increasing inside). forceKey asks
// for a key frame. data is valid until the next Encode or Close; it is empty
// if libvpx produced nothing for this picture.
func (e *VP8Encoder) Encode(img *Image, pts time.Duration, forceKey bool) (data []byte, key bool, err error) {
	if e.c == nil {
		return nil, false, ErrClosed
	}
	if err := checkImage(img, e.cfg.Width, e.cfg.Height); err != nil {
		return nil, false, fmt.Errorf("VP8 encode: %w", err)
	}
	ts := pts.Nanoseconds() * 9 / 100000 // 90 kHz ticks
	dur := int64(3000)                   // for the first frame: any plausible frame time
	if e.started {
		ts = max(ts, e.lastPts+1)
		dur = ts - e.lastPts
	}
	if e.started && e.cfg.MaxKeyInterval > 0 && pts-e.lastKey >= e.cfg.MaxKeyInterval {
		forceKey = true
	}
	force := C.int(0)
	if forceKey {
		force = 1
	}
	if rc := C.tandem_vp8enc_encode(e.c, (*C.uchar)(unsafe.Pointer(&img.Y[0])), (*C.uchar)(unsafe.Pointer(&img.U[0])),
		(*C.uchar)(unsafe.Pointer(&img.V[0])), C.int(img.StrideY), C.int(img.StrideUV),
		C.longlong(ts), C.ulong(dur), force); rc != C.VPX_CODEC_OK {
		return nil, false, e.fail("VP8 encode", rc)
	}
	e.started, e.lastPts = true, ts
	e.out = append(e.out[:0], unsafe.Slice((*byte)(unsafe.Pointer(e.c.out)), int(e.c.out_len))...)
	key = e.c.out_key != 0
	if key {
		e.lastKey = pts
	}
	return e.out, key, nil
}

// SetBitrate changes the CBR target from the next frame on.
func (e *VP8Encoder) SetBitrate(kbps int) error {
	if e.c == nil {
		return ErrClosed
	}
	if kbps <= 0 {
		return fmt.Errorf("media: VP8 bitrate %d kbps out of range", kbps)
	}
	if rc := C.tandem_vp8enc_set_bitrate(e.c, C.uint(kbps)); rc != C.VPX_CODEC_OK {
		return e.fail("VP8 set bitrate", rc)
	}
	e.cfg.BitrateKbps = kbps
	return nil
}

// Close frees the encoder. It is idempotent.
func (e *VP8Encoder) Close() error {
	if e.c == nil {
		return nil
	}
	if e.c.inited != 0 {
		C.vpx_codec_destroy(&e.c.ctx)
	}
	C.free(unsafe.Pointer(e.c))
	e.c = nil
	return nil
}

func (e *VP8Encoder) fail(op string, rc C.vpx_codec_err_t) error {
	return vpxError(op, &e.c.ctx, rc)
}

func vpxError(op string, ctx *C.vpx_codec_ctx_t, rc C.vpx_codec_err_t) error {
	msg := C.GoString(C.vpx_codec_err_to_string(rc))
	if ctx != nil && ctx.iface != nil {
		if d := C.GoString(C.tandem_vpx_detail(ctx)); d != "" {
			msg += " (" + d + ")"
		}
	}
	return fmt.Errorf("%s: %s: %w", op, msg, ErrCodec)
}

// checkImage makes sure libvpx will read only inside img's planes.
func checkImage(img *Image, w, h int) error {
	if img == nil {
		return fmt.Errorf("nil image: %w", ErrBadImage)
	}
	if img.Width != w || img.Height != h {
		return fmt.Errorf("image %dx%d, encoder %dx%d: %w", img.Width, img.Height, w, h, ErrBadImage)
	}
	cw, ch := (w+1)/2, (h+1)/2
	if img.StrideY < w || img.StrideUV < cw ||
		len(img.Y) < img.StrideY*(h-1)+w ||
		len(img.U) < img.StrideUV*(ch-1)+cw || len(img.V) < img.StrideUV*(ch-1)+cw {
		return fmt.Errorf("planes too small for %dx%d: %w", w, h, ErrBadImage)
	}
	return nil
}

// VP8Decoder decodes VP8 frames with libvpx, for tests and benchmarks that
// check what viewers would see. It is not safe for concurrent use and holds C
// memory until Close.
type VP8Decoder struct {
	c *C.tandem_vp8dec
}

// NewVP8Decoder starts a decoder; the caller must Close it.
func NewVP8Decoder() (*VP8Decoder, error) {
	c := (*C.tandem_vp8dec)(C.calloc(1, C.sizeof_tandem_vp8dec))
	if c == nil {
		return nil, errors.New("media: new VP8 decoder: out of memory")
	}
	if rc := C.tandem_vp8dec_init(c); rc != C.VPX_CODEC_OK {
		err := vpxError("new VP8 decoder", nil, rc)
		C.free(unsafe.Pointer(c))
		return nil, err
	}
	return &VP8Decoder{c: c}, nil
}

// Decode decodes one VP8 frame and returns a copy of the picture, with
// strides equal to the plane widths.
func (d *VP8Decoder) Decode(data []byte) (*Image, error) {
	if d.c == nil {
		return nil, ErrClosed
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("VP8 decode: empty frame: %w", ErrCodec)
	}
	if rc := C.tandem_vp8dec_decode(d.c, (*C.uchar)(unsafe.Pointer(&data[0])), C.uint(len(data))); rc != C.VPX_CODEC_OK {
		return nil, vpxError("VP8 decode", &d.c.ctx, rc)
	}
	img := d.c.img
	if img == nil {
		return nil, fmt.Errorf("VP8 decode: no picture: %w", ErrCodec)
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("VP8 decode: image format %d: %w", int(img.fmt), ErrCodec)
	}
	w, h := int(img.d_w), int(img.d_h)
	cw, ch := (w+1)/2, (h+1)/2
	out := &Image{Width: w, Height: h, StrideY: w, StrideUV: cw}
	out.Y = copyPlane(img.planes[C.VPX_PLANE_Y], int(img.stride[C.VPX_PLANE_Y]), w, h)
	out.U = copyPlane(img.planes[C.VPX_PLANE_U], int(img.stride[C.VPX_PLANE_U]), cw, ch)
	out.V = copyPlane(img.planes[C.VPX_PLANE_V], int(img.stride[C.VPX_PLANE_V]), cw, ch)
	return out, nil
}

// Close frees the decoder. It is idempotent.
func (d *VP8Decoder) Close() error {
	if d.c == nil {
		return nil
	}
	C.vpx_codec_destroy(&d.c.ctx)
	C.free(unsafe.Pointer(d.c))
	d.c = nil
	return nil
}

func copyPlane(p *C.uchar, stride, w, h int) []byte {
	src := unsafe.Slice((*byte)(unsafe.Pointer(p)), stride*(h-1)+w)
	dst := make([]byte, w*h)
	for y := range h {
		copy(dst[y*w:y*w+w], src[y*stride:y*stride+w])
	}
	return dst
}
