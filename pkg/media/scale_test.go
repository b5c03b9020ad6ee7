package media

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A picture captured at 3/4 size comes back at the viewport's size, with
// its content where it was: the square's edges move by at most a pixel,
// both in luma and in chroma.
func TestScale(t *testing.T) {
	src, dst := NewImage(960, 540), NewImage(1280, 720)
	fillRect(&src, 0, 0, 960, 540, grey)
	fillRect(&src, 240, 180, 480, 360, red) // [320,640)×[240,480) at full size
	if err := Scale(&dst, &src); err != nil {
		t.Fatal(err)
	}
	in, out := toYUV(red), toYUV(grey)
	for _, p := range [][2]int{{322, 242}, {637, 477}, {480, 360}} {
		if got := pixel(&dst, p[0], p[1]); !near(got, in, 2) {
			t.Errorf("pixel %v = %v, want red %v", p, got, in)
		}
	}
	for _, p := range [][2]int{{317, 300}, {643, 300}, {400, 237}, {400, 483}, {0, 0}, {1279, 719}} {
		if got := pixel(&dst, p[0], p[1]); !near(got, out, 2) {
			t.Errorf("pixel %v = %v, want grey %v", p, got, out)
		}
	}
	// Odd sizes, chroma planes of (w+1)/2, and a scale down: no read or
	// write outside the planes.
	odd := NewImage(641, 359)
	if err := Scale(&odd, &dst); err != nil {
		t.Fatal(err)
	}
	if got := pixel(&odd, 240, 180); !near(got, in, 2) {
		t.Errorf("scaled down: the square at 240,180 is %v, want red", got)
	}
	for _, c := range []struct{ dw, dh, sw, sh int }{{0, 720, 960, 540}, {1280, 720, 0, 0}, {MaxDimension + 1, 10, 10, 10}} {
		d, s := Image{Width: c.dw, Height: c.dh}, Image{Width: c.sw, Height: c.sh}
		if err := Scale(&d, &s); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Scale %dx%d → %dx%d = %v, want ErrTooLarge", c.sw, c.sh, c.dw, c.dh, err)
		}
	}
}

func TestMetaReduced(t *testing.T) {
	full := Meta{FullWidth: 1280, FullHeight: 720}
	for _, c := range []struct {
		m    Meta
		w, h int
		want bool
	}{
		{full, 960, 540, true},
		{full, 961, 540, true},   // Chromium's rounding
		{full, 1280, 720, false}, // full size
		{full, 859, 720, false},  // another shape: an old picture during a resize
		{Meta{}, 960, 540, false},
		{Meta{FullWidth: 1366, FullHeight: 768}, 1024, 576, true},
	} {
		if got := c.m.Reduced(c.w, c.h); got != c.want {
			t.Errorf("%+v Reduced(%d, %d) = %v, want %v", c.m, c.w, c.h, got, c.want)
		}
	}
}

// The encoder sends a picture captured smaller at the viewport's size, and
// a full-size one after it without starting over: the viewers' video
// keeps its size and needs no key frame.
func TestRoleEncoderScalesReducedCaptures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool := NewFramePool()
		s := startRole(t, RoleEncoderConfig{Role: "customer", BitrateKbps: 800})
		s.e.SetViewers(1)
		f := picture(pool, 240, 180, grey, time.Now())
		f.Meta.FullWidth, f.Meta.FullHeight = 320, 240
		s.e.Offer(f)
		f.Release()
		synctest.Wait()
		time.Sleep(50 * time.Millisecond)
		f = picture(pool, 320, 240, blue, time.Now())
		f.Meta.FullWidth, f.Meta.FullHeight = 320, 240
		s.e.Offer(f)
		f.Release()
		synctest.Wait()

		frames := reassemble(t, s.out.packets())
		if len(frames) != 2 {
			t.Fatalf("%d frames, want 2", len(frames))
		}
		if frames[1].key {
			t.Error("the full-size picture after a reduced one was a key frame")
		}
		imgs := decodeAll(t, frames)
		for i, img := range imgs {
			if img.Width != 320 || img.Height != 240 {
				t.Errorf("frame %d is %dx%d, want the viewport's 320x240", i, img.Width, img.Height)
			}
		}
		// The red square of the middle third stays there once scaled.
		if got, want := pixel(imgs[0], 160, 120), toYUV(red); !near(got, want, 12) {
			t.Errorf("scaled picture's centre %v, want red %v", got, want)
		}
		if got, want := pixel(imgs[0], 20, 20), toYUV(grey); !near(got, want, 12) {
			t.Errorf("scaled picture's corner %v, want grey %v", got, want)
		}
		if st := s.e.Stats(); st.Width != 320 || st.Height != 240 {
			t.Errorf("encoder size %dx%d, want 320x240", st.Width, st.Height)
		}
	})
}
