package canary

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// TestMain checks that the tests leave no goroutine behind (servers,
// scans), once the shared browser has stopped.
func TestMain(m *testing.M) {
	os.Exit(browsertest.Main(m))
}

// shot is one screenshot's magenta-like pixels: per region, and outside
// every region.
type shot struct {
	inRegion map[string]int
	outside  int
	at       image.Point // an outside pixel, for the failure message
}

// minPixels is how many magenta-like pixels of a half-scale screenshot make
// a region show its canary: the scan's threshold, one pixel per sample.
const minPixels = browsertest.ScanMinSamples

func takeShot(t *testing.T, ctx context.Context, regions []Region) shot {
	t.Helper()
	// Half scale keeps the test quick under -race; the canary's 8 px
	// squares are 4 px there, one pixel per chroma sample of the video.
	vp := browsertest.Eval[[]float64](t, ctx, `[scrollX, scrollY, innerWidth, innerHeight]`)
	fast := true
	captured, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng, OptimizeForSpeed: &fast,
		Clip: &page.Viewport{X: vp[0], Y: vp[1], Width: vp[2], Height: vp[3], Scale: 0.5}})
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(captured.Data))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	b := img.Bounds()
	s := shot{inRegion: map[string]int{}}
	// Screenshots are opaque: RGBA and NRGBA hold the same bytes.
	var pix []uint8
	var stride int
	switch m := img.(type) {
	case *image.RGBA:
		pix, stride = m.Pix, m.Stride
	case *image.NRGBA:
		pix, stride = m.Pix, m.Stride
	default:
		t.Fatalf("screenshot is a %T", img)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			i := (y-b.Min.Y)*stride + (x-b.Min.X)*4
			r, g, bl := pix[i], pix[i+1], pix[i+2]
			if !browsertest.MagentaLike(r, g, bl) {
				continue
			}
			fx, fy := float64(x-b.Min.X)/float64(b.Dx()), float64(y-b.Min.Y)/float64(b.Dy())
			in := false
			for _, reg := range regions {
				if fx >= reg.X && fx < reg.X+reg.W && fy >= reg.Y && fy < reg.Y+reg.H {
					s.inRegion[reg.Name]++
					in = true
				}
			}
			if !in {
				s.outside++
				s.at = image.Pt(x, y)
			}
		}
	}
	return s
}

// seeEveryRegion takes screenshots until every region showed its canary
// (the one-frame flashes need luck: one frame in eight) and at least n
// were taken; no screenshot may have magenta outside the regions.
func seeEveryRegion(t *testing.T, ctx context.Context, regions []Region, n int) {
	t.Helper()
	seen := map[string]int{}
	deadline := time.Now().Add(40 * time.Second)
	for i := 0; ; i++ {
		s := takeShot(t, ctx, regions)
		if s.outside > 0 {
			t.Fatalf("screenshot %d: %d magenta-like pixels outside the regions, one at %v", i, s.outside, s.at)
		}
		for name, px := range s.inRegion {
			if px >= minPixels {
				seen[name]++
			}
		}
		var missing []string
		for _, r := range regions {
			if seen[r.Name] == 0 {
				missing = append(missing, r.Name)
			}
		}
		if len(missing) == 0 && i+1 >= n {
			t.Logf("%d screenshots; shots per region with the canary: %v", i+1, seen)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d screenshots no canary in %v (seen %v)", i+1, missing, seen)
		}
	}
}

// noMagenta takes n screenshots of a page whose canaries are painted white
// and fails on any magenta-like pixel: nothing but the canaries is magenta.
func noMagenta(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if s := takeShot(t, ctx, nil); s.outside > 0 {
			t.Fatalf("screenshot %d of the page without canaries: %d magenta-like pixels, one at %v", i, s.outside, s.at)
		}
	}
}

func isLoad(page, phase string) func(Event) bool {
	return func(e Event) bool { return e.Name == "load" && e.Page == page && (phase == "" || e.Phase == phase) }
}

// TestCasesPage: at both sizes, zoomed and after navigating, every case
// shows its canary inside its region and nowhere else; without canaries
// nothing is magenta; the cross-origin frame is another process.
func TestCasesPage(t *testing.T) {
	site := Start(t)
	ctx, _ := browsertest.NewTab(t, 1280, 720, false)
	browsertest.Run(t, ctx, "open the cases page", chromedp.Navigate(site.CasesURL(1, Schedule{})))
	ev := site.WaitEvent(t, "the cases page", isLoad("cases", "1"))
	if ev.Width != 1280 || ev.Height != 720 || ev.Zoom != 1 || ev.Origin != site.URL {
		t.Errorf("load event = %+v", ev)
	}
	site.WaitEvent(t, "the cross-origin frame", func(e Event) bool { return isLoad("frame", "")(e) && e.Origin == site.OtherURL })
	site.WaitEvent(t, "the same-origin frame", func(e Event) bool { return isLoad("frame", "")(e) && e.Origin == site.URL })
	if got := browsertest.Eval[bool](t, ctx, `document.scrollingElement.scrollHeight <= innerHeight`); !got {
		t.Errorf("the cases page scrolls at its root")
	}
	// The shadow root is open and holds a masked canary.
	if got := browsertest.Eval[int](t, ctx, `document.getElementById('shadow-host').shadowRoot.querySelectorAll('[data-tandem-mask].canary').length`); got != 1 {
		t.Errorf("the open shadow root has %d masked canaries, want 1", got)
	}

	// The other server's frame is another site: the page cannot reach into
	// it, while it can into the same-origin one. (Whether it runs in its
	// own process depends on the browser: chromium-headless-shell isolates
	// sites only with --site-per-process.)
	if got := browsertest.Eval[string](t, ctx, `(() => {
  const [same, cross] = document.querySelectorAll('iframe');
  let crossOK = false;
  try { cross.contentWindow.document.body; } catch (e) { crossOK = true; }
  return String(!!same.contentDocument.querySelector('[data-tandem-mask].canary')) + ' ' + crossOK;
})()`); got != "true true" {
		t.Errorf("same-origin frame reachable with a canary, cross-origin frame unreachable: %s, want true true", got)
	}

	regions := CaseRegions()
	seeEveryRegion(t, ctx, regions, 30)

	browsertest.Run(t, ctx, "resize", chromedp.EmulateViewport(900, 600))
	site.WaitEvent(t, "the resize", func(e Event) bool { return e.Name == "resize" && e.Width == 900 && e.Height == 600 })
	seeEveryRegion(t, ctx, regions, 10)

	site.Zoom(1.5)
	site.WaitEvent(t, "the zoom", func(e Event) bool { return e.Name == "zoom" && e.Zoom == 1.5 })
	seeEveryRegion(t, ctx, regions, 10)

	site.Navigate(site.CasesURL(2, Schedule{}))
	site.WaitEvent(t, "phase 2", isLoad("cases", "2"))
	seeEveryRegion(t, ctx, regions, 10)

	browsertest.Run(t, ctx, "open the cases page without canaries", chromedp.Navigate(site.CasesURL(3, Schedule{})+"&hide=1"))
	p3 := site.WaitEvent(t, "phase 3", isLoad("cases", "3"))
	site.WaitEvent(t, "its cross-origin frame", func(e Event) bool {
		return isLoad("frame", "")(e) && e.Origin == site.OtherURL && !e.At.Before(p3.At)
	})
	noMagenta(t, ctx, 20)
	site.Zoom(1.5)
	site.WaitEvent(t, "the zoom without canaries", func(e Event) bool { return e.Name == "zoom" && e.Phase == "3" })
	noMagenta(t, ctx, 10)
}

// TestSchedule: a cases page zooms and navigates by itself when its URL
// says so, and only then.
func TestSchedule(t *testing.T) {
	site := Start(t)
	ctx, _ := browsertest.NewTab(t, 900, 600, false)
	next := site.CasesURL(2, Schedule{NavigateAt: 500 * time.Millisecond, Next: site.FormURL()})
	site.Zoom(3) // an order given before any page was served: no page obeys it
	start := time.Now()
	browsertest.Run(t, ctx, "open the cases page", chromedp.Navigate(site.CasesURL(1, Schedule{ZoomAt: 300 * time.Millisecond, Zoom: 2, NavigateAt: 900 * time.Millisecond, Next: next})))
	zoom := site.WaitEvent(t, "the zoom", func(e Event) bool { return e.Name == "zoom" && e.Phase == "1" })
	if zoom.Zoom != 2 || zoom.At.Sub(start) < 300*time.Millisecond {
		t.Errorf("zoom event %+v, %v after the start", zoom, zoom.At.Sub(start))
	}
	p2 := site.WaitEvent(t, "phase 2", isLoad("cases", "2"))
	if p2.Zoom != 1 || p2.At.Sub(start) < 900*time.Millisecond {
		t.Errorf("phase 2 load %+v, %v after the start", p2, p2.At.Sub(start))
	}
	site.WaitEvent(t, "the form", isLoad("form", ""))
	site.Zoom(1.25)
	site.WaitEvent(t, "the form obeys an order", func(e Event) bool { return e.Name == "zoom" && e.Page == "form" && e.Zoom == 1.25 })
	for _, e := range site.Events() {
		if e.Name == "zoom" && e.Zoom == 3 {
			t.Errorf("a page obeyed an order given before it was served: %+v", e)
		}
	}
}

// TestFormPage: the form is long, scrolls by itself, and shows canaries in
// its sticky bar and among its fields; without canaries nothing is magenta.
func TestFormPage(t *testing.T) {
	site := Start(t)
	ctx, _ := browsertest.NewTab(t, 960, 600, false)
	browsertest.Run(t, ctx, "open the form", chromedp.Navigate(site.FormURL()))
	site.WaitEvent(t, "the form", isLoad("form", ""))
	if h := browsertest.Eval[int](t, ctx, `document.documentElement.scrollHeight`); h < 3000 {
		t.Errorf("the form is %d px tall, want thousands", h)
	}
	y0 := browsertest.Eval[float64](t, ctx, `scrollY`)
	browsertest.WaitJS(t, ctx, "the form scrolls", fmt.Sprintf(`scrollY > %v + 100`, y0))
	browsertest.WaitJS(t, ctx, "groups are inserted", `document.querySelectorAll('section.inserted [data-tandem-mask]').length >= 2`)
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('input[type=password], input[autocomplete=cc-number], [data-tandem-mask]').length`); n < 40 {
		t.Errorf("the form has %d masked canary fields, want them all along it", n)
	}
	seeEveryRegion(t, ctx, FormRegions(), 10)

	browsertest.Run(t, ctx, "open the form without canaries", chromedp.Navigate(site.FormURL()+"?hide=1"))
	noMagenta(t, ctx, 15)
}
