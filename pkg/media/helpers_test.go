package media

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if a RoleEncoder loop outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(2 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "media.(*RoleEncoder).Run") {
				break
			}
			if time.Now().After(deadline) {
				os.Stderr.WriteString("leaked RoleEncoder.Run goroutine:\n" + stacks)
				code = 1
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// rgba is a colour of the test pictures.
type rgba = color.RGBA

// yuv is one pixel in JFIF YCbCr, the values our planes hold.
type yuv struct{ Y, U, V int }

func toYUV(c color.RGBA) yuv {
	y, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
	return yuv{int(y), int(cb), int(cr)}
}

var (
	red   = color.RGBA{230, 20, 30, 255}
	green = color.RGBA{20, 200, 40, 255}
	blue  = color.RGBA{25, 40, 220, 255}
	white = color.RGBA{255, 255, 255, 255}
	grey  = color.RGBA{128, 128, 128, 255}
	black = color.RGBA{0, 0, 0, 255}
)

// quadrants is a w×h picture with red, green, blue and white quadrants.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := [2][2]color.RGBA{{red, green}, {blue, white}}[y*2/h][x*2/w]
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func uniform(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// goJPEG encodes img with Go's image/jpeg (4:2:0 for colour, 1 component for gray).
func goJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatalf("jpeg.Encode: %v", err)
	}
	return b.Bytes()
}

// pixel reads the YUV of luma pixel (x, y) of img.
func pixel(img *Image, x, y int) yuv {
	c := (y/2)*img.StrideUV + x/2
	return yuv{int(img.Y[y*img.StrideY+x]), int(img.U[c]), int(img.V[c])}
}

func near(got, want yuv, tol int) bool {
	d := func(a, b int) bool { return a-b <= tol && b-a <= tol }
	return d(got.Y, want.Y) && d(got.U, want.U) && d(got.V, want.V)
}

// fillRect paints the luma pixels [x0,x1)×[y0,y1) of img with c, and the
// chroma samples whose top-left luma pixel lies inside.
func fillRect(img *Image, x0, y0, x1, y1 int, c color.RGBA) {
	p := toYUV(c)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.Y[y*img.StrideY+x] = byte(p.Y)
			if x%2 == 0 && y%2 == 0 {
				img.U[(y/2)*img.StrideUV+x/2] = byte(p.U)
				img.V[(y/2)*img.StrideUV+x/2] = byte(p.V)
			}
		}
	}
}

// picture returns a pooled w×h frame: grey with a red square in the middle
// third, captured at received.
func picture(pool *FramePool, w, h int, bg color.RGBA, received time.Time) *Frame {
	f := pool.Get(w, h)
	fillRect(&f.Image, 0, 0, w, h, bg)
	fillRect(&f.Image, w/3, h/3, 2*w/3, 2*h/3, red)
	f.Received = received
	return f
}

// pagelike is a 720p picture like a web page: white, blocks of colour and
// rows of dark "text" whose phase moves with n.
func pagelike(w, h, n int) *image.RGBA {
	img := uniform(w, h, white)
	for y := range h {
		for x := range w {
			switch {
			case y < 60:
				img.SetRGBA(x, y, color.RGBA{30, 60, 140, 255})
			case x > w-300 && y > 100 && y < 400:
				img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), 180, 255})
			case y%24 < 12 && x > 40 && x < w-340 && ((x+n*7)/5+y/24)%7 < 4:
				img.SetRGBA(x, y, color.RGBA{20, 20, 20, 255})
			}
		}
	}
	return img
}

// imageFromRGBA converts an RGBA picture to a pooled I420 frame.
func imageFromRGBA(pool *FramePool, src *image.RGBA) *Frame {
	b := src.Bounds()
	f := pool.Get(b.Dx(), b.Dy())
	rgb := make([]byte, 0, 3*b.Dx()*b.Dy())
	for i := 0; i < len(src.Pix); i += 4 {
		rgb = append(rgb, src.Pix[i], src.Pix[i+1], src.Pix[i+2])
	}
	rgbToI420(&f.Image, rgb)
	return f
}
