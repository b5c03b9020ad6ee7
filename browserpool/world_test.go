package browserpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// worldPage has a password field at a known place, a long body to scroll,
// and a page script that tries to reach the world's globals.
const worldPage = `<!doctype html><html><body style="margin:0;height:3000px">
<input type="password" style="position:absolute;left:100px;top:200px;width:200px;height:30px;border:0;padding:0;box-sizing:border-box">
<script>window.reached = typeof __tandemMask + typeof __tandemMaskReport;</script>
</body></html>`

func maskWorld(t *testing.T) *World {
	t.Helper()
	src, err := mask.Script(mask.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return &World{Name: mask.World, Binding: mask.Binding, Source: src}
}

// nextReport waits for a report of the top document's world.
func nextReport(t *testing.T, l *Lease, ok func(mask.Report) bool) mask.Report {
	t.Helper()
	deadline := time.After(waitLimit)
	ctxID := l.world.ctxID.Load()
	for {
		select {
		case ev := <-l.WorldEvents():
			switch ev.Kind {
			case WorldContext:
				ctxID = ev.Context
			case WorldCall:
				if ev.Context != ctxID {
					continue
				}
				r, err := mask.ParseReport([]byte(ev.Payload), ev.Received)
				if err != nil {
					t.Fatalf("report %s: %v", ev.Payload, err)
				}
				if ok(r) {
					return r
				}
			}
		case <-deadline:
			t.Fatal("no matching report of the mask world")
		}
	}
}

func TestWorldReportsAndHidesFromThePage(t *testing.T) {
	l := lease(t, LeaseOptions{Width: 800, Height: 600, World: maskWorld(t)})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.Navigate(ctx, "data:text/html,"+url.PathEscape(worldPage)); err != nil {
		t.Fatal(err)
	}
	r := nextReport(t, l, func(r mask.Report) bool { return len(r.Rects) == 1 })
	got := r.Rects[0]
	if got.X != 100 || got.Y != 200 || got.W != 200 || got.H != 30 || got.Bound {
		t.Fatalf("password field reported at %+v, want 100,200 200x30", got)
	}
	// The page's own scripts see neither the world's object nor its binding.
	reached, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](`window.reached`))
	if err != nil {
		t.Fatal(err)
	}
	if reached != "undefinedundefined" {
		t.Fatalf("the page saw the world's globals: %q", reached)
	}
	// A flush answers from the current document.
	_, payload, err := l.EvalWorld(ctx, "", mask.FlushExpression)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(payload, `"r":[[100,200,200,30,0]]`) {
		t.Fatalf("flush = %s", payload)
	}

	// Scrolling: the report has the new root scroll and the same document
	// coordinates; the frame's metadata has the same scroll.
	if err := chromedp.Do(l.bctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 150)`)); err != nil {
		t.Fatal(err)
	}
	r = nextReport(t, l, func(r mask.Report) bool { return r.ScrollY == 150 })
	if len(r.Rects) != 1 || r.Rects[0].Y != 200 {
		t.Fatalf("after scrolling: %+v", r.Rects)
	}
	f := waitFrame(t, l, "scrolled frame", func(f frame) bool { return f.Meta.ScrollOffsetY == 150 })
	if f.Meta.PageScaleFactor != 1 || f.Meta.DeviceWidth != 800 {
		t.Fatalf("frame meta %+v", f.Meta)
	}

	// Pinch zoom: the frame's scale and scroll say how the picture maps.
	if _, err := chromedp.Call(l.bctx, emulation.SetPageScaleFactor, emulation.SetPageScaleFactorParams{PageScaleFactor: 2}); err != nil {
		t.Fatal(err)
	}
	r = nextReport(t, l, func(r mask.Report) bool { return r.Scale == 2 })
	f = waitFrame(t, l, "zoomed frame", func(f frame) bool { return f.Meta.PageScaleFactor == 2 })
	t.Logf("zoom: report scroll %v,%v scale %v; frame meta %+v", r.ScrollX, r.ScrollY, r.Scale, f.Meta)
}

func TestEvalWorldWithoutWorld(t *testing.T) {
	l := lease(t, LeaseOptions{Width: 400, Height: 300})
	if _, _, err := l.EvalWorld(context.Background(), "", "1"); !errors.Is(err, ErrNoWorld) {
		t.Fatalf("EvalWorld without a world = %v, want ErrNoWorld", err)
	}
}

// A cross-origin frame runs in its own process: the lease attaches to it,
// runs the world there, and tags its element in the top document's world.
func TestWorldRunsInCrossOriginFrames(t *testing.T) {
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `<!doctype html><body style="margin:0"><input type="password" style="position:absolute;left:10px;top:20px;width:50px;height:20px;border:0;padding:0;box-sizing:border-box"></body>`)
	}))
	defer inner.Close()
	// Another site than the top page (127.0.0.1): site isolation gives it
	// its own process.
	innerURL := strings.Replace(inner.URL, "127.0.0.1", "localhost", 1)
	top := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><body style="margin:0"><iframe src="%s/" style="position:absolute;left:100px;top:50px;width:300px;height:200px;border:2px solid black;padding:0"></iframe></body>`, innerURL)
	}))
	defer top.Close()

	l := lease(t, LeaseOptions{Width: 800, Height: 600, World: maskWorld(t)})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.Navigate(ctx, top.URL); err != nil {
		t.Fatal(err)
	}
	var child, tagged string
	ctxs := map[string]int64{"": l.world.ctxID.Load()}
	deadline := time.After(waitLimit)
	for child == "" || tagged == "" {
		select {
		case ev := <-l.WorldEvents():
			if ev.Kind == WorldContext {
				ctxs[ev.Frame] = ev.Context
				continue
			}
			if ev.Context != ctxs[ev.Frame] {
				continue
			}
			r, err := mask.ParseReport([]byte(ev.Payload), ev.Received)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ev.Frame != "" && len(r.Rects) == 1:
				if q := r.Rects[0]; q.X != 10 || q.Y != 20 || q.W != 50 {
					t.Fatalf("the frame reported %+v", q)
				}
				if !strings.HasPrefix(r.Origin, "http://localhost:") {
					t.Fatalf("the frame's origin = %q", r.Origin)
				}
				child = ev.Frame
			case ev.Frame == "" && len(r.Opaque) == 1 && r.Opaque[0].Frame != "":
				if c := r.Opaque[0].Content; c.X != 102 || c.Y != 52 || c.W != 300 || c.H != 200 {
					t.Fatalf("frame content box %+v", c)
				}
				tagged = r.Opaque[0].Frame
			}
		case <-deadline:
			t.Fatalf("child report %q, tag %q: the cross-origin frame was not instrumented", child, tagged)
		}
	}
	if child != tagged {
		t.Fatalf("the frame reported as %q but its element is tagged %q", child, tagged)
	}
	if got := l.WorldFrames(); len(got) != 1 || got[0] != child {
		t.Fatalf("WorldFrames = %v", got)
	}
	if _, payload, err := l.EvalWorld(ctx, child, mask.FlushExpression); err != nil || !strings.Contains(payload, `"r":[[10,20,50,20,0]]`) {
		t.Fatalf("flush in the frame = %s, %v", payload, err)
	}
}
