package browserpool

import (
	"net/url"
	"testing"
	"time"
)

// animatedPage changes its colour on every animation frame.
var animatedPage = "data:text/html," + url.PathEscape(`<html><body style="margin:0"><script>
let n = 0;
const tick = () => { n++; document.body.style.background = 'rgb(' + (n % 256) + ',0,' + (255 - n % 256) + ')'; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
</script></body></html>`)

// framesFor counts the frames that come within d, and how many of them are
// marked Restarted.
func framesFor(l *Lease, d time.Duration) (n, restarted int) {
	deadline := time.After(d)
	for {
		select {
		case c := <-l.Frames():
			n++
			if c.Meta.Restarted {
				restarted++
			}
		case <-deadline:
			return n, restarted
		}
	}
}

// When Chromium stops sending frames (here: their acknowledgements are
// withheld, after which it sends no more, as after the stall seen in CI),
// the watchdog restarts the screencast: a frame comes every few seconds,
// marked Restarted, and once frames are acknowledged again they flow.
// Without the watchdog they stop.
func TestWatchdogRestartsASilentScreencast(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: animatedPage})
	// The page animates (slowly on a loaded machine: other test packages
	// run at the same time).
	if n, _ := framesFor(l, 3*time.Second); n < 4 {
		t.Fatalf("the animated page sent %d frames in 3 s", n)
	}
	l.testHoldWatchdog.Store(true)
	l.testDropAcks.Store(true)
	framesFor(l, time.Second) // the frames in flight
	if n, _ := framesFor(l, 2*stallAfter); n > 1 {
		t.Fatalf("%d frames came without acknowledgements: the stall this test needs did not happen", n)
	}
	l.testHoldWatchdog.Store(false)
	n, restarted := framesFor(l, 3*stallAfter)
	if n < 2 || restarted < 2 || l.Restarts() < 2 {
		t.Fatalf("with the watchdog: %d frames (%d restarted) and %d restarts in %v, want 2 or more", n, restarted, l.Restarts(), 3*stallAfter)
	}
	l.testDropAcks.Store(false)
	framesFor(l, stallAfter+time.Second) // the next restart's frame is acknowledged
	if n, restarted := framesFor(l, 3*time.Second); n < 4 || restarted > 1 {
		t.Fatalf("acknowledged again: %d frames in 3 s (%d restarted), want the flow back", n, restarted)
	}
}
