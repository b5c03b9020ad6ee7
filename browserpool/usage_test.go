package browserpool

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Usage counts every process of the browser, its CPU grows while the page
// works, its memory is that of a running Chromium, and it is zero once the
// lease closed.
func TestUsage(t *testing.T) {
	l := lease(t, LeaseOptions{Width: 400, Height: 300, StartURL: "about:blank"})
	first := l.Usage()
	if first.Procs < 2 || first.Memory < 10<<20 || first.CPU <= 0 {
		t.Fatalf("usage of a live browser = %+v; want its processes, tens of MB and some CPU", first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cctx, ccancel := l.callCtx(ctx)
	defer ccancel()
	if err := chromedp.Do(cctx, chromedp.Evaluate[chromedp.Void](`(() => { const end = performance.now() + 1500; while (performance.now() < end) {} })()`)); err != nil {
		t.Fatal(err)
	}
	busy := l.Usage()
	if busy.CPU-first.CPU < 500*time.Millisecond {
		t.Errorf("CPU grew by %v over 1.5 s of a busy script; want most of it", busy.CPU-first.CPU)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if u := l.Usage(); u != (Usage{}) {
		t.Errorf("usage after Close = %+v, want zero", u)
	}
}
