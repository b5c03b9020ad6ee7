package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/media/internal/jpegtest"
)

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// checkQuadrants checks the centre of each quadrant of a decoded quadrants()
// picture. For grayscale JPEGs the expected values are the luma with neutral
// chroma.
func checkQuadrants(t *testing.T, f *Frame, gray bool, tol int) {
	t.Helper()
	w, h := f.Width, f.Height
	for i, c := range []color.RGBA{red, green, blue, white} {
		x, y := w/4+(i%2)*w/2, h/4+(i/2)*h/2
		want := toYUV(c)
		if gray {
			want.U, want.V = 128, 128
		}
		if got := pixel(&f.Image, x, y); !near(got, want, tol) {
			t.Errorf("pixel (%d, %d) = %+v, want %+v ± %d", x, y, got, want, tol)
		}
	}
}

func TestDecode420KnownColours(t *testing.T) {
	d := newDecoder(t)
	pool := NewFramePool()
	f, err := d.Decode(goJPEG(t, quadrants(64, 64), 100), pool)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	defer f.Release()
	if f.Width != 64 || f.Height != 64 {
		t.Fatalf("size %dx%d, want 64x64", f.Width, f.Height)
	}
	checkQuadrants(t, f, false, 3)
	// Every pixel of a quadrant, not only the centre: interior of the red one.
	want := toYUV(red)
	for y := 4; y < 28; y++ {
		for x := 4; x < 28; x++ {
			if got := pixel(&f.Image, x, y); !near(got, want, 4) {
				t.Fatalf("pixel (%d, %d) = %+v, want %+v", x, y, got, want)
			}
		}
	}
}

func TestDecodeOddSizes(t *testing.T) {
	d := newDecoder(t)
	pool := NewFramePool()
	for _, sz := range [][2]int{{1, 1}, {2, 1}, {3, 5}, {33, 17}, {17, 33}, {641, 359}} {
		w, h := sz[0], sz[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			f, err := d.Decode(goJPEG(t, uniform(w, h, blue), 95), pool)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			defer f.Release()
			if f.Width != w || f.Height != h {
				t.Fatalf("size %dx%d, want %dx%d", f.Width, f.Height, w, h)
			}
			// Every pixel, the odd last row and column included.
			want := toYUV(blue)
			for y := range h {
				for x := range w {
					if got := pixel(&f.Image, x, y); !near(got, want, 4) {
						t.Fatalf("pixel (%d, %d) = %+v, want %+v", x, y, got, want)
					}
				}
			}
		})
	}
}

func TestDecodeSubsamplings(t *testing.T) {
	d := newDecoder(t)
	pool := NewFramePool()
	for _, ss := range []jpegtest.Subsampling{jpegtest.S420, jpegtest.S444, jpegtest.S422, jpegtest.S440, jpegtest.S411, jpegtest.SGray} {
		for _, sz := range [][2]int{{64, 48}, {37, 23}} {
			for _, progressive := range []bool{false, true} {
				name := fmt.Sprintf("%v/%dx%d/progressive=%v", ss, sz[0], sz[1], progressive)
				t.Run(name, func(t *testing.T) {
					data, err := jpegtest.Encode(quadrants(sz[0], sz[1]), ss, 98, progressive)
					if err != nil {
						t.Fatal(err)
					}
					f, err := d.Decode(data, pool)
					if err != nil {
						t.Fatalf("Decode: %v", err)
					}
					defer f.Release()
					if f.Width != sz[0] || f.Height != sz[1] {
						t.Fatalf("size %dx%d, want %dx%d", f.Width, f.Height, sz[0], sz[1])
					}
					checkQuadrants(t, f, ss == jpegtest.SGray, 4)
				})
			}
		}
	}
}

func TestDecodeGoGray(t *testing.T) {
	d := newDecoder(t)
	img := image.NewGray(image.Rect(0, 0, 31, 9))
	for i := range img.Pix {
		img.Pix[i] = 77
	}
	f, err := d.Decode(goJPEG(t, img, 100), nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	defer f.Release()
	for y := range 9 {
		for x := range 31 {
			if got := pixel(&f.Image, x, y); !near(got, yuv{77, 128, 128}, 1) {
				t.Fatalf("pixel (%d, %d) = %+v, want grey 77", x, y, got)
			}
		}
	}
}

// adobeRGB marks a Go JPEG as Adobe transform 0: its components are then
// read as R, G, B rather than Y, Cb, Cr.
func adobeRGB(j []byte) []byte {
	app14 := []byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}
	return append(append(append([]byte{}, j[:2]...), app14...), j[2:]...)
}

func TestDecodeRGBColorspace(t *testing.T) {
	d := newDecoder(t)
	data := adobeRGB(goJPEG(t, quadrants(40, 24), 100))
	ref, err := jpeg.Decode(bytes.NewReader(data)) // Go reads it as RGB too
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	if _, ok := ref.(*image.RGBA); !ok {
		t.Fatalf("image/jpeg decoded %T, want an RGB image: the test JPEG is not Adobe RGB", ref)
	}
	f, err := d.Decode(data, nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	defer f.Release()
	for _, p := range [][2]int{{10, 6}, {30, 6}, {10, 18}, {30, 18}} {
		want := toYUV(color.RGBAModel.Convert(ref.At(p[0], p[1])).(color.RGBA))
		if got := pixel(&f.Image, p[0], p[1]); !near(got, want, 3) {
			t.Errorf("pixel %v = %+v, want %+v", p, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	d := newDecoder(t)
	pool := NewFramePool()
	good := goJPEG(t, quadrants(64, 64), 80)
	huge := bytes.Clone(good)
	sof := bytes.Index(huge, []byte{0xff, 0xc0})
	huge[sof+5], huge[sof+6], huge[sof+7], huge[sof+8] = 0x13, 0x88, 0x13, 0x88 // 5000×5000

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrInvalidJPEG},
		{"not a JPEG", []byte("hello, this is not a picture"), ErrInvalidJPEG},
		{"SOI only", []byte{0xff, 0xd8}, ErrInvalidJPEG},
		{"header only", good[:sof+20], ErrInvalidJPEG},
		{"truncated", good[:len(good)/2], ErrInvalidJPEG},
		{"no EOI", good[:len(good)-2], ErrInvalidJPEG},
		{"too large", huge, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := d.Decode(tc.in, pool)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			if f != nil {
				t.Fatalf("Decode returned a frame with error %v", err)
			}
		})
	}
	// Failed decodes gave their frames back, and the decoder still works.
	if s := pool.Stats(); s.Allocs != 1 || s.Free != 1 || s.RefErrors != 0 {
		t.Errorf("pool after errors: %+v, want the one buffer back", s)
	}
	f, err := d.Decode(good, pool)
	if err != nil {
		t.Fatalf("Decode after errors: %v", err)
	}
	f.Release()

	d.Close()
	d.Close()
	if _, err := d.Decode(good, pool); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close = %v, want ErrClosed", err)
	}
}

// seedJPEGs are real JPEGs of every kind the decoder handles.
func seedJPEGs(t testing.TB) [][]byte {
	seeds := [][]byte{
		goJPEG(t, quadrants(64, 48), 80),
		goJPEG(t, uniform(33, 17, green), 50),
		goJPEG(t, image.NewGray(image.Rect(0, 0, 9, 7)), 90),
		adobeRGB(goJPEG(t, quadrants(16, 16), 90)),
	}
	for _, ss := range []jpegtest.Subsampling{jpegtest.S420, jpegtest.S444, jpegtest.S422, jpegtest.S440, jpegtest.S411, jpegtest.SGray} {
		for _, progressive := range []bool{false, true} {
			data, err := jpegtest.Encode(quadrants(21, 13), ss, 75, progressive)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, data)
		}
	}
	return seeds
}

func FuzzDecode(f *testing.F) {
	for _, s := range seedJPEGs(f) {
		f.Add(s)
	}
	d := newDecoder(f)
	pool := NewFramePool()
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := d.Decode(data, pool)
		if err != nil {
			if fr != nil {
				t.Fatalf("frame with error %v", err)
			}
			if !errors.Is(err, ErrInvalidJPEG) && !errors.Is(err, ErrUnsupportedJPEG) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps none of the sentinels", err)
			}
			return
		}
		defer fr.Release()
		if fr.Width <= 0 || fr.Height <= 0 || fr.Width > MaxDimension || fr.Height > MaxDimension {
			t.Fatalf("decoded size %dx%d", fr.Width, fr.Height)
		}
		if err := checkImage(&fr.Image, fr.Width, fr.Height); err != nil {
			t.Fatalf("decoded image: %v", err)
		}
	})
}

func BenchmarkDecode720p(b *testing.B) {
	data := goJPEG(b, pagelike(1280, 720, 0), 80)
	d := newDecoder(b)
	pool := NewFramePool()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f, err := d.Decode(data, pool)
		if err != nil {
			b.Fatal(err)
		}
		f.Release()
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(n), "ms/frame")
}
