package ui

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

var shotsDir = flag.String("ui.shots", "", "write PNG screenshots of the pages into this directory")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(browsertest.Main(m))
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
