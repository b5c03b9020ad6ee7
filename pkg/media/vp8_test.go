package media

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"
	"time"
)

func newEncoder(t testing.TB, cfg EncoderConfig) *VP8Encoder {
	t.Helper()
	e, err := NewVP8Encoder(cfg)
	if err != nil {
		t.Fatalf("NewVP8Encoder(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func newVP8Decoder(t testing.TB) *VP8Decoder {
	t.Helper()
	d, err := NewVP8Decoder()
	if err != nil {
		t.Fatalf("NewVP8Decoder: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// isKeyFrame reads the VP8 frame tag (RFC 6386 §9.1): bit 0 clear is a key frame.
func isKeyFrame(data []byte) bool { return len(data) > 0 && data[0]&1 == 0 }

// checkRedSquare checks a decoded picture() frame: red in the middle, bg at the corner.
func checkRedSquare(t *testing.T, img *Image, bg yuv) {
	t.Helper()
	w, h := img.Width, img.Height
	if got, want := pixel(img, w/2, h/2), toYUV(red); !near(got, want, 24) {
		t.Errorf("centre of %dx%d = %+v, want red-ish %+v", w, h, got, want)
	}
	if got := pixel(img, 0, h-1); !near(got, bg, 24) {
		t.Errorf("bottom-left corner of %dx%d = %+v, want %+v", w, h, got, bg)
	}
}

func TestVP8RoundTrip(t *testing.T) {
	pool := NewFramePool()
	for _, sz := range [][2]int{{160, 120}, {33, 17}, {17, 33}, {3, 3}, {1, 1}, {1279, 719}} {
		w, h := sz[0], sz[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			enc := newEncoder(t, EncoderConfig{Width: w, Height: h})
			dec := newVP8Decoder(t)
			f := picture(pool, w, h, grey, time.Time{})
			defer f.Release()
			for i := range 3 {
				data, key, err := enc.Encode(&f.Image, time.Duration(i)*40*time.Millisecond, false)
				if err != nil {
					t.Fatalf("Encode #%d: %v", i, err)
				}
				if key != (i == 0) || key != isKeyFrame(data) {
					t.Errorf("Encode #%d: key = %v, bitstream key = %v, want only the first", i, key, isKeyFrame(data))
				}
				img, err := dec.Decode(data)
				if err != nil {
					t.Fatalf("Decode #%d: %v", i, err)
				}
				if img.Width != w || img.Height != h {
					t.Fatalf("decoded %dx%d, want %dx%d", img.Width, img.Height, w, h)
				}
				if w >= 8 { // smaller squares have no chroma sample of their own
					checkRedSquare(t, img, toYUV(grey))
				}
			}
		})
	}
}

// TestVP8Version checks the bitstream version in every frame's header (RFC
// 6386, 9.1): 2, without a loop filter, unless LoopFilter asks for 0; and
// that both decode to the picture.
func TestVP8Version(t *testing.T) {
	pool := NewFramePool()
	f := picture(pool, 160, 120, grey, time.Time{})
	defer f.Release()
	for _, lf := range []bool{false, true} {
		want := byte(2)
		if lf {
			want = 0
		}
		enc := newEncoder(t, EncoderConfig{Width: 160, Height: 120, LoopFilter: lf})
		dec := newVP8Decoder(t)
		for i := range 3 {
			data, _, err := enc.Encode(&f.Image, time.Duration(i)*40*time.Millisecond, false)
			if err != nil {
				t.Fatalf("LoopFilter %v: Encode #%d: %v", lf, i, err)
			}
			if got := data[0] >> 1 & 7; got != want {
				t.Errorf("LoopFilter %v: frame #%d has version %d, want %d", lf, i, got, want)
			}
			img, err := dec.Decode(data)
			if err != nil {
				t.Fatalf("LoopFilter %v: Decode #%d: %v", lf, i, err)
			}
			checkRedSquare(t, img, toYUV(grey))
		}
	}
}

func TestVP8ForceKey(t *testing.T) {
	pool := NewFramePool()
	enc := newEncoder(t, EncoderConfig{Width: 64, Height: 48, BitrateKbps: 500, CPUUsed: -6, StaticThreshold: 100})
	f := picture(pool, 64, 48, grey, time.Time{})
	defer f.Release()
	for i, want := range []bool{true, false, false, true, false} {
		data, key, err := enc.Encode(&f.Image, time.Duration(i)*50*time.Millisecond, i == 3)
		if err != nil {
			t.Fatalf("Encode #%d: %v", i, err)
		}
		if key != want || isKeyFrame(data) != want {
			t.Errorf("Encode #%d: key = %v (bitstream %v), want %v", i, key, isKeyFrame(data), want)
		}
	}
}

func TestVP8MaxKeyInterval(t *testing.T) {
	pool := NewFramePool()
	enc := newEncoder(t, EncoderConfig{Width: 32, Height: 32, MaxKeyInterval: time.Second})
	f := picture(pool, 32, 32, grey, time.Time{})
	defer f.Release()
	for _, step := range []struct {
		pts time.Duration
		key bool
	}{{0, true}, {500 * time.Millisecond, false}, {999 * time.Millisecond, false}, {time.Second, true}, {1500 * time.Millisecond, false}, {2100 * time.Millisecond, true}} {
		_, key, err := enc.Encode(&f.Image, step.pts, false)
		if err != nil {
			t.Fatalf("Encode at %v: %v", step.pts, err)
		}
		if key != step.key {
			t.Errorf("Encode at %v: key = %v, want %v", step.pts, key, step.key)
		}
	}
}

func TestVP8Errors(t *testing.T) {
	for _, cfg := range []EncoderConfig{{}, {Width: 16}, {Width: -1, Height: 4}, {Width: MaxDimension + 1, Height: 4}, {Width: 4, Height: 4, CPUUsed: 17}, {Width: 4, Height: 4, BitrateKbps: -1},
		{Width: 4, Height: 4, StaticThreshold: -2}, {Width: 4, Height: 4, ScreenContent: 3}} {
		if e, err := NewVP8Encoder(cfg); err == nil {
			e.Close()
			t.Errorf("NewVP8Encoder(%+v) succeeded", cfg)
		}
	}
	pool := NewFramePool()
	enc := newEncoder(t, EncoderConfig{Width: 32, Height: 32})
	wrong := pool.Get(32, 30)
	if _, _, err := enc.Encode(&wrong.Image, 0, false); !errors.Is(err, ErrBadImage) {
		t.Errorf("Encode of a 32x30 image = %v, want ErrBadImage", err)
	}
	short := pool.Get(32, 32)
	short.V = short.V[:short.StrideUV*15+16-1] // one byte short of the last chroma row
	if _, _, err := enc.Encode(&short.Image, 0, false); !errors.Is(err, ErrBadImage) {
		t.Errorf("Encode with a short V plane = %v, want ErrBadImage", err)
	}
	if _, _, err := enc.Encode(nil, 0, false); !errors.Is(err, ErrBadImage) {
		t.Errorf("Encode(nil) = %v, want ErrBadImage", err)
	}
	if err := enc.SetBitrate(800); err != nil {
		t.Errorf("SetBitrate(800): %v", err)
	}
	if err := enc.SetBitrate(0); err == nil {
		t.Error("SetBitrate(0) succeeded")
	}
	enc.Close()
	enc.Close()
	ok := pool.Get(32, 32)
	if _, _, err := enc.Encode(&ok.Image, 0, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close = %v, want ErrClosed", err)
	}
	if err := enc.SetBitrate(800); !errors.Is(err, ErrClosed) {
		t.Errorf("SetBitrate after Close = %v, want ErrClosed", err)
	}

	dec := newVP8Decoder(t)
	for _, in := range [][]byte{nil, {1, 2, 3}, []byte("definitely not a VP8 key frame")} {
		if _, err := dec.Decode(in); !errors.Is(err, ErrCodec) {
			t.Errorf("Decode(%q) = %v, want ErrCodec", in, err)
		}
	}
	dec.Close()
	dec.Close()
	if _, err := dec.Decode([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close = %v, want ErrClosed", err)
	}
}

// TestVP8EncodeAllocs proves the encoder allocates nothing per frame once its
// output buffer has grown to a key frame's size.
func TestVP8EncodeAllocs(t *testing.T) {
	pool := NewFramePool()
	enc := newEncoder(t, EncoderConfig{Width: 320, Height: 240})
	f := picture(pool, 320, 240, grey, time.Time{})
	defer f.Release()
	pts := time.Duration(0)
	encode := func() {
		pts += 50 * time.Millisecond
		if _, _, err := enc.Encode(&f.Image, pts, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := enc.Encode(&f.Image, 0, true); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(20, encode); allocs != 0 {
		t.Errorf("Encode: %v allocations per frame, want 0", allocs)
	}
}

func BenchmarkEncode720p(b *testing.B) {
	pool := NewFramePool()
	// An animating page: the text rows move every frame.
	var frames []*Frame
	for n := range 8 {
		frames = append(frames, imageFromRGBA(pool, pagelike(1280, 720, n)))
	}
	enc := newEncoder(b, EncoderConfig{Width: 1280, Height: 720})
	b.ReportAllocs()
	n, bytes := 0, 0
	for b.Loop() {
		data, _, err := enc.Encode(&frames[n%len(frames)].Image, time.Duration(n)*50*time.Millisecond, false)
		if err != nil {
			b.Fatal(err)
		}
		n++
		bytes += len(data)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(n), "ms/frame")
	b.ReportMetric(float64(bytes)/float64(n), "bytes/frame")
}

// BenchmarkEncodeTuning compares encoder settings on three kinds of page
// change: a caret blinking on a still page (what an idle form sends), text
// appearing as it is typed, and the whole page moving. Per setting it
// reports encode time, bytes per frame, the worst luma PSNR of a decoded
// frame against its source, and the worst mean error of one 16×16 block:
// a setting that saves bits by leaving a stale block on the screen (a
// caret that stays when it should go) shows there, where the PSNR of the
// whole picture hides it (docs/benchmarks.md).
func BenchmarkEncodeTuning(b *testing.B) {
	pool := NewFramePool()
	base := pagelike(1280, 720, 0)
	scenes := []struct {
		name  string
		every time.Duration
		make  func(n int) *image.RGBA
	}{
		{"caret", 500 * time.Millisecond, func(n int) *image.RGBA {
			img := image.NewRGBA(base.Rect)
			copy(img.Pix, base.Pix)
			if n%2 == 0 {
				draw.Draw(img, image.Rect(300, 200, 302, 218), image.Black, image.Point{}, draw.Src)
			}
			return img
		}},
		{"typing", 100 * time.Millisecond, func(n int) *image.RGBA {
			img := image.NewRGBA(base.Rect)
			copy(img.Pix, base.Pix)
			for c := range n % 60 {
				draw.Draw(img, image.Rect(100+c*9, 420, 107+c*9, 432), image.Black, image.Point{}, draw.Src)
			}
			return img
		}},
		{"moving", 60 * time.Millisecond, func(n int) *image.RGBA { return pagelike(1280, 720, n) }},
		{"click", time.Second, func(n int) *image.RGBA {
			img := image.NewRGBA(base.Rect)
			copy(img.Pix, base.Pix)
			c := [2]color.RGBA{{220, 30, 30, 255}, {30, 60, 220, 255}}[n%2]
			draw.Draw(img, image.Rect(256, 144, 1024, 576), image.NewUniform(c), image.Point{}, draw.Src)
			return img
		}},
	}
	settings := []struct {
		name string
		cfg  EncoderConfig
	}{
		{"loopfilter", EncoderConfig{LoopFilter: true}},    // VP8 version 0: the default until 27 November 2026
		{"static-off", EncoderConfig{StaticThreshold: -1}}, // the default until November 2026
		{"static100", EncoderConfig{StaticThreshold: 100}},
		{"static300", EncoderConfig{StaticThreshold: 300}},
		{"static500", EncoderConfig{}}, // the default
		{"static1000", EncoderConfig{StaticThreshold: 1000}},
		{"static2000", EncoderConfig{StaticThreshold: 2000}},
		{"screen1", EncoderConfig{ScreenContent: 1}},
		{"screen2", EncoderConfig{ScreenContent: 2}},
		{"cpu-6", EncoderConfig{CPUUsed: -6}},
		{"cpu4", EncoderConfig{CPUUsed: 4}},
		{"cpu8", EncoderConfig{CPUUsed: 8}},
		{"cpu16", EncoderConfig{CPUUsed: 16}},
	}
	for _, sc := range scenes {
		var frames []*Frame
		for n := range 60 {
			frames = append(frames, imageFromRGBA(pool, sc.make(n)))
		}
		for _, st := range settings {
			b.Run(sc.name+"/"+st.name, func(b *testing.B) {
				cfg := st.cfg
				cfg.Width, cfg.Height = 1280, 720
				enc := newEncoder(b, cfg)
				dec := newVP8Decoder(b)
				var spent time.Duration
				n, bytes, worst, block := 0, 0, math.Inf(1), 0.0
				for b.Loop() {
					f := frames[n%len(frames)]
					start := time.Now()
					data, _, err := enc.Encode(&f.Image, time.Duration(n)*sc.every, false)
					spent += time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					img, err := dec.Decode(data)
					if err != nil {
						b.Fatal(err)
					}
					if n >= 10 { // past the key frame's refinement
						worst = min(worst, lumaPSNR(&f.Image, img))
						block = max(block, worstBlock(&f.Image, img))
					}
					n++
					bytes += len(data)
				}
				b.ReportMetric(float64(spent.Microseconds())/1000/float64(n), "ms/frame")
				b.ReportMetric(float64(bytes)/float64(n), "bytes/frame")
				if !math.IsInf(worst, 1) {
					b.ReportMetric(worst, "worst-dB")
					b.ReportMetric(block, "worst-block-err")
				}
			})
		}
	}
}

// lumaPSNR is the peak signal-to-noise ratio of b's luma against a's, in dB.
func lumaPSNR(a, b *Image) float64 {
	var sse float64
	for y := range a.Height {
		ra, rb := a.Y[y*a.StrideY:][:a.Width], b.Y[y*b.StrideY:][:a.Width]
		for x := range ra {
			d := float64(ra[x]) - float64(rb[x])
			sse += d * d
		}
	}
	if sse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255*float64(a.Width*a.Height)/sse)
}

// worstBlock is the largest mean absolute luma error of a 16×16 block of b
// against a.
func worstBlock(a, b *Image) float64 {
	worst := 0.0
	for by := 0; by+16 <= a.Height; by += 16 {
		for bx := 0; bx+16 <= a.Width; bx += 16 {
			sum := 0
			for y := by; y < by+16; y++ {
				for x := bx; x < bx+16; x++ {
					d := int(a.Y[y*a.StrideY+x]) - int(b.Y[y*b.StrideY+x])
					sum += max(d, -d)
				}
			}
			worst = max(worst, float64(sum)/256)
		}
	}
	return worst
}
