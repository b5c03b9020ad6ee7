package ui

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

var shotsDir = flag.String("ui.shots", "", "write PNG screenshots of the pages into this directory")

func TestMain(m *testing.M) {
	flag.Parse()
	before := runtime.NumGoroutine()
	code := m.Run()
	browsertest.Stop()
	if code == 0 {
		if err := checkGoroutines(before); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines waits for the goroutines the tests started to end.
func checkGoroutines(before int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() <= before {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return fmt.Errorf("leaked goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf)
}

// The pages' tests use the shared browser of pkg/browsertest through these.
type pageErrors = browsertest.PageErrors

func newTab(t *testing.T, w, h int64, mobile bool) (context.Context, *pageErrors) {
	t.Helper()
	return browsertest.NewTab(t, w, h, mobile)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, actions...)
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return browsertest.Eval[T](t, ctx, expr)
}

func waitJS(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, what, predicate)
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Shot(t, ctx, *shotsDir, name)
}
