package browserpool

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"net/url"
	"testing"
	"time"
)

// The policy alone, on a clock of its own: a slow motion is reduced once
// it has run motionLook and motionIntervals, a fast one never, nor one
// whose frames did not wait; a still page goes back to full
// size; a motion that goes on is tried at full size after retryFull.
func TestMotionPolicy(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	m := &motionState{minFPS: 18, wake: make(chan struct{}, 1)}
	// A frame received at t that Chromium had ready 150 ms before: while
	// frames come less than 150 ms apart, it waited for the one before.
	frame := func(m *motionState, t time.Time) { m.frame(t, t.Add(-150*time.Millisecond)) }
	// 30 frames a second: never too slow.
	for ms := 0; ms <= 1000; ms += 33 {
		frame(m, at(ms))
	}
	if reduce, due, _ := m.want(at(1000)); reduce || due {
		t.Fatalf("a 30 fps motion: want() = %v, %v; want nothing to do", reduce, due)
	}
	// Typing: 8 frames a second, each stamped after the one before it
	// arrived: the page is slow, not the capture.
	for ms := 1500; ms <= 2500; ms += 125 {
		m.frame(at(ms), at(ms-20))
		if reduce, due, _ := m.want(at(ms)); reduce || due {
			t.Fatalf("typing at 8 frames a second that did not wait, at %d ms: want() = %v, %v", ms, reduce, due)
		}
	}
	// Still for a while, then 10 frames a second, each of which waited.
	for ms := 2800; ms < 3200; ms += 100 {
		frame(m, at(ms))
		if reduce, due, _ := m.want(at(ms)); due {
			t.Fatalf("at %d ms, before motionIntervals: want() = %v, due", ms, reduce)
		}
	}
	frame(m, at(3200))
	select {
	case <-m.wake:
	default:
		t.Fatal("a 10 fps motion past motionLook did not wake motionLoop")
	}
	reduce, due, _ := m.want(at(3200))
	if !reduce || !due {
		t.Fatalf("a 10 fps motion past motionLook: want() = %v, %v; want reduce, due", reduce, due)
	}
	m.switched(true, at(3200))
	// Moving on: nothing due until the page is still, and the wait says when.
	frame(m, at(3300))
	if reduce, due, next := m.want(at(3300)); !reduce || due || next != stillAfter {
		t.Fatalf("reduced, moving: want() = %v, %v, %v; want reduced, not due, %v", reduce, due, next, stillAfter)
	}
	if reduce, due, _ := m.want(at(3300).Add(stillAfter)); reduce || !due {
		t.Fatalf("reduced, still for stillAfter: want() = %v, %v; want full, due", reduce, due)
	}
	// A motion that never stops is tried at full size again.
	for ms := 3400; ms < 3200+int(retryFull/time.Millisecond); ms += 100 {
		frame(m, at(ms))
		if _, due, _ := m.want(at(ms)); due {
			t.Fatalf("reduced, moving, at %d ms: a switch is due before retryFull", ms)
		}
	}
	end := at(3200).Add(retryFull)
	frame(m, end)
	if reduce, due, _ := m.want(end); reduce || !due {
		t.Fatalf("reduced for retryFull while moving: want() = %v, %v; want full, due", reduce, due)
	}
	m.switched(false, end)
	if m.isReduced() {
		t.Fatal("isReduced after switching back")
	}
	// Reduced again, then a caret blinking every 500 ms: not motion, so
	// the page counts as still and goes back to full size.
	blink := end.Add(time.Second)
	for i := range 4 {
		frame(m, blink.Add(time.Duration(i)*100*time.Millisecond))
	}
	m.switched(true, blink.Add(300*time.Millisecond))
	last := blink.Add(300 * time.Millisecond)
	for i := 1; i <= 4; i++ {
		frame(m, last.Add(time.Duration(i)*500*time.Millisecond))
	}
	if reduce, due, _ := m.want(last.Add(2 * time.Second)); reduce || !due {
		t.Fatalf("reduced, a caret blinking for 2 s: want() = %v, %v; want full, due", reduce, due)
	}
	// Turned off: nothing is ever too slow.
	off := &motionState{minFPS: -1, wake: make(chan struct{}, 1)}
	for ms := 0; ms <= 2000; ms += 200 {
		frame(off, at(ms))
	}
	if reduce, due, _ := off.want(at(2000)); reduce || due {
		t.Fatalf("MotionFPS negative: want() = %v, %v", reduce, due)
	}
}

// stoppablePage animates every frame until it is clicked, then stays still.
var stoppablePage = "data:text/html," + url.PathEscape(`<html><body style="margin:0"><script>
let n = 0, on = true;
const tick = () => { if (!on) return; n++; document.body.style.background = 'rgb(' + (n % 256) + ',0,' + (255 - n % 256) + ')'; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
addEventListener('mousedown', () => { on = false; document.body.style.background = 'rgb(30,200,60)'; });
</script></body></html>`)

// On real Chromium: while the page moves slower than MotionFPS the
// screencast comes at 3/4 size, saying the viewport's; once the page is
// still the capture is full size again, and the still picture is the last
// thing sent. A motion fast enough keeps the full size.
func TestMotionReducesTheCaptureWhilePagesMove(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: stoppablePage})
	setMotionFPS(l, 1000) // every motion is too slow
	f := waitFrame(t, l, "a reduced frame", func(f frame) bool { return f.img.Bounds().Size() == image.Pt(960, 540) })
	if f.Meta.FullWidth != 1280 || f.Meta.FullHeight != 720 {
		t.Fatalf("a reduced frame says the viewport is %dx%d, want 1280x720", f.Meta.FullWidth, f.Meta.FullHeight)
	}
	if n := l.CaptureSwitches(); n < 1 {
		t.Fatalf("CaptureSwitches = %d after a reduced frame", n)
	}
	dispatch(t, l, click(100, 100)...)
	waitFrame(t, l, "the still page at full size", func(f frame) bool {
		return f.img.Bounds().Size() == image.Pt(1280, 720) && near(colourAt(f.img, 0.5, 0.5), color.RGBA{30, 200, 60, 255})
	})
	// Nothing after it: the still picture stays full size.
	deadline := time.After(2 * stillAfter)
	for waiting := true; waiting; {
		select {
		case c := <-l.Frames():
			img, err := jpeg.Decode(bytes.NewReader(c.JPEG))
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds().Size() != image.Pt(1280, 720) {
				t.Fatalf("a %v frame after the full-size still picture", img.Bounds().Size())
			}
		case <-deadline:
			waiting = false
		}
	}

	fast := lease(t, LeaseOptions{StartURL: animatedPage})
	setMotionFPS(fast, 1) // any motion is fast enough
	if n, _ := framesFor(fast, 3*time.Second); n < 4 {
		t.Fatalf("the animated page sent %d frames in 3 s", n)
	}
	waitFrame(t, fast, "a full-size frame", func(f frame) bool { return f.img.Bounds().Size() == image.Pt(1280, 720) })
	if n := fast.CaptureSwitches(); n != 0 {
		t.Fatalf("a motion faster than MotionFPS switched the capture %d times", n)
	}
}

func setMotionFPS(l *Lease, fps float64) {
	l.motion.mu.Lock()
	l.motion.minFPS = fps
	l.motion.mu.Unlock()
}
