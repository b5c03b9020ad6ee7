package browserpool

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"slices"
	"testing"
	"time"
)

// A paused capture sends nothing while the page animates; the watchdog
// does not take the silence for a stall; a restart or a resize while
// paused starts nothing; resuming brings the flow back, at the size set
// meanwhile.
func TestPauseCaptureStopsFrames(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: animatedPage})
	if n, _ := framesFor(l, 3*time.Second); n < 4 {
		t.Fatalf("the animated page sent %d frames in 3 s", n)
	}
	pauseCapture(t, l, true)
	if !l.CapturePaused() {
		t.Fatal("CapturePaused() = false after PauseCapture(true)")
	}
	framesFor(l, time.Second) // the frames in flight
	if n, _ := framesFor(l, stallAfter+2*time.Second); n > 0 {
		t.Fatalf("%d frames came while paused", n)
	}
	if r := l.Restarts(); r != 0 {
		t.Fatalf("the watchdog restarted a paused screencast %d times", r)
	}
	if err := l.Recapture(context.Background()); err != nil {
		t.Fatalf("Recapture while paused: %v", err)
	}
	if err := l.SetViewport(context.Background(), 800, 600); err != nil {
		t.Fatalf("SetViewport while paused: %v", err)
	}
	if n, _ := framesFor(l, 2*time.Second); n != 0 {
		t.Fatalf("a restart and a resize while paused sent %d frames", n)
	}
	pauseCapture(t, l, false)
	if l.CapturePaused() {
		t.Fatal("CapturePaused() = true after PauseCapture(false)")
	}
	f := waitFrame(t, l, "a frame after the resume", func(frame) bool { return true })
	if got := f.img.Bounds().Size(); got != image.Pt(800, 600) {
		t.Fatalf("the first frame after the resume is %v, want the size set while paused, 800×600", got)
	}
	if n, _ := framesFor(l, 3*time.Second); n < 4 {
		t.Fatalf("resumed: %d frames in 3 s, want the flow back", n)
	}
}

// What changed while the capture was paused is the first thing sent on
// resume, also on a page that stays still afterwards.
func TestPauseCaptureResumesWithTheLatestPicture(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: buttonPage})
	waitFrame(t, l, "red before the pause", atCorner(red))
	pauseCapture(t, l, true)
	framesFor(l, 500*time.Millisecond)
	dispatch(t, l, click(250, 200)...) // input still reaches the page
	deadline := time.After(2 * time.Second)
	for waiting := true; waiting; {
		select {
		case c := <-l.Frames():
			img, err := jpeg.Decode(bytes.NewReader(c.JPEG))
			if err == nil && near(colourAt(img, 0.9, 0.9), blue) {
				t.Fatal("the click's blue was sent while the capture was paused")
			}
		case <-deadline:
			waiting = false
		}
	}
	pauseCapture(t, l, false)
	waitFrame(t, l, "blue after the resume", atCorner(blue))
}

func pauseCapture(t *testing.T, l *Lease, pause bool) {
	t.Helper()
	if err := l.PauseCapture(context.Background(), pause); err != nil {
		t.Fatalf("PauseCapture(%v): %v", pause, err)
	}
}

// BenchmarkCapturePause: the CPU of one browser (% of one core, all its
// processes) on a page that animates all the time, over 5 s with the
// screencast running (its frames taken and acknowledged) and over 5 s
// paused, in turns; medians over b.N turns.
func BenchmarkCapturePause(b *testing.B) {
	p := needPool(b)
	ctx := context.Background()
	l, err := p.Lease(ctx, LeaseOptions{StartURL: animatedPage})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			select {
			case <-l.Frames():
			case <-l.Done():
				return
			}
		}
	}()
	time.Sleep(2 * time.Second) // the page loaded and animating
	cpu := map[bool][]float64{}
	b.ResetTimer()
	for range b.N {
		for _, pause := range []bool{false, true} {
			if err := l.PauseCapture(ctx, pause); err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second) // settle
			u0 := l.Usage()
			time.Sleep(5 * time.Second)
			u1 := l.Usage()
			cpu[pause] = append(cpu[pause], (u1.CPU-u0.CPU).Seconds()/5*100)
		}
	}
	b.StopTimer()
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(cpu[false]), "%cpu-capturing")
	b.ReportMetric(median(cpu[true]), "%cpu-paused")
}
