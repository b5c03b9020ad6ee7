package browserpool

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// How fast a lease notices that its browser died (docs/recovery.md: within
// 2 s). Each iteration leases a browser on a red page, kills it, and times
// the kill to Done; the metric is the median over the iterations, in ms.

func BenchmarkDetectKilledBrowser(b *testing.B) {
	benchDetect(b, func(l *Lease) { _ = syscall.Kill(-l.PID(), syscall.SIGKILL) }) // kill -9 -pgid
}

func BenchmarkDetectCrashedPage(b *testing.B) {
	benchDetect(b, func(l *Lease) {
		// Page.crash kills the tab's renderer; its answer never comes.
		go func() {
			cctx, stop := l.callCtx(context.Background())
			defer stop()
			_, _ = chromedp.Call(cctx, page.Crash, cdp.Empty{})
		}()
	})
}

func benchDetect(b *testing.B, kill func(*Lease)) {
	if testPool == nil {
		b.Skipf("no browser pool: %v", testPoolErr)
	}
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := testPool.Lease(ctx, LeaseOptions{StartURL: solidPage(red)})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		kill(l)
		select {
		case <-l.Done():
			took = append(took, time.Since(began))
		case <-time.After(waitLimit):
			b.Fatalf("Done not closed %v after the kill", waitLimit)
		}
		b.StopTimer()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "ms-max")
}
