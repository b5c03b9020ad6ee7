package browserpool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
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
	// A fixed amount of work (about half a second of CPU on this
	// machine), whatever the load: the CPU it took must show.
	if err := chromedp.Do(cctx, chromedp.Evaluate[chromedp.Void](`(() => { let x = 0; for (let i = 0; i < 2e8; i++) x = (x + i) % 1000003; return x; })()`)); err != nil {
		t.Fatal(err)
	}
	busy := l.Usage()
	if busy.CPU-first.CPU < 150*time.Millisecond {
		t.Errorf("CPU grew by %v over a busy script; want at least 150ms", busy.CPU-first.CPU)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if u := l.Usage(); u != (Usage{}) {
		t.Errorf("usage after Close = %+v, want zero", u)
	}
}

// A browser over the pool's memory limit is killed: Done closes with
// ErrMemoryLimit, and its processes are gone.
func TestMemoryLimitKillsTheBrowser(t *testing.T) {
	needPool(t)
	p, err := New(Config{Warm: -1, TempDir: testTempDir, MaxMemory: 40 << 20}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := p.Lease(ctx, LeaseOptions{Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	select {
	case <-l.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("a browser using %d MiB outlived a 40 MiB limit", l.Usage().Memory>>20)
	}
	if !errors.Is(l.Err(), ErrMemoryLimit) {
		t.Errorf("Err = %v, want ErrMemoryLimit", l.Err())
	}
	pid := l.PID()
	deadline := time.Now().Add(10 * time.Second)
	for len(procsMentioning(l.userDataDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("browser %d's processes outlived the kill", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
