package mask

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/media"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// report is a measurement at t0+ms with the root scroll at sy and rects.
func report(seq int64, ms int, sy float64, rects ...Rect) Report {
	return Report{Doc: "d1", Seq: seq, At: t0.Add(time.Duration(ms) * time.Millisecond),
		Width: 800, Height: 600, ScrollY: sy, Scale: 1, Rects: rects}
}

// meta is a frame stamped at t0+ms showing the root scrolled to sy.
func meta(ms int, sy float64) media.Meta {
	return media.Meta{PageScaleFactor: 1, DeviceWidth: 800, DeviceHeight: 600, ScrollOffsetY: sy,
		Timestamp: t0.Add(time.Duration(ms) * time.Millisecond)}
}

func tracker(reports ...Report) *Tracker {
	tr := NewTracker(Config{})
	tr.SetContext(Top, 1)
	for _, r := range reports {
		tr.Add(Top, 1, r)
	}
	return tr
}

func wantHold(t *testing.T, err error, reason string) {
	t.Helper()
	var h *HoldError
	if !errors.As(err, &h) || h.Reason != reason {
		t.Fatalf("err = %v, want a hold for %q", err, reason)
	}
}

func TestPlanMapsGrowsAndAligns(t *testing.T) {
	tr := tracker(report(1, 20, 100, Rect{X: 101, Y: 301, W: 50, H: 21}))
	rects, err := tr.Plan(meta(10, 100), 800, 600, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// 101-8 = 93 → 92; 301-100-8 = 193 → 192; right 101+50+8 = 159 → 160; bottom 201+21+8 = 230.
	want := []image.Rectangle{image.Rect(92, 192, 160, 230)}
	if fmt.Sprint(rects) != fmt.Sprint(want) {
		t.Fatalf("rects = %v, want %v", rects, want)
	}
	// The same document rectangle, at another root scroll of the frame.
	rects, err = tr.Plan(meta(10, 150), 800, 600, time.Time{})
	if err == nil {
		t.Fatalf("a frame at a scroll no report measured was planned: %v", rects)
	}
	wantHold(t, err, ReasonUnmeasured)
	// Half-size picture (screencast scaled down): pixels scale too.
	rects, err = tr.Plan(meta(10, 100), 400, 300, time.Time{})
	if err != nil || len(rects) != 1 || rects[0] != image.Rect(42, 92, 84, 120) {
		t.Fatalf("half size: %v %v", rects, err)
	}
	// A picture captured at 3/4 while the page moved, to be scaled back up
	// to 800×600: the margin is 12 of its pixels (8 at full size, plus
	// one), not 8. 101×0.75-12 = 63.75 → 62; 201×0.75-12 = 138.75 → 138;
	// 151×0.75+12 = 125.25 → 126; 222×0.75+12 = 178.5 → 180.
	reduced := meta(10, 100)
	reduced.FullWidth, reduced.FullHeight = 800, 600
	rects, err = tr.Plan(reduced, 600, 450, time.Time{})
	if err != nil || len(rects) != 1 || rects[0] != image.Rect(62, 138, 126, 180) {
		t.Fatalf("3/4 capture: %v %v, want [(62,138)-(126,180)]", rects, err)
	}
}

func TestPlanHoldsWhatItCannotKnow(t *testing.T) {
	cases := map[string]struct {
		tr     *Tracker
		m      media.Meta
		reason string
	}{
		"no report yet":         {tracker(), meta(10, 0), ReasonNavigating},
		"frame newer than news": {tracker(report(1, 0, 0)), meta(30, 0), ReasonUnmeasured},
		"page error":            {tracker(report(1, 0, 0), Report{Doc: "d1", Seq: 2, At: t0.Add(20 * time.Millisecond), Err: "boom"}), meta(10, 0), ReasonError},
		"other size":            {tracker(report(1, 0, 0)), media.Meta{PageScaleFactor: 1, DeviceWidth: 1024, DeviceHeight: 600, Timestamp: t0}, ReasonUnmeasured},
		"other zoom":            {tracker(report(1, 0, 0)), media.Meta{PageScaleFactor: 2, DeviceWidth: 800, DeviceHeight: 600, Timestamp: t0}, ReasonUnmeasured},
		"no metadata":           {tracker(report(1, 0, 0)), media.Meta{}, ReasonError},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rects, err := c.tr.Plan(c.m, 800, 600, time.Time{})
			if err == nil {
				t.Fatalf("planned %v", rects)
			}
			wantHold(t, err, c.reason)
		})
	}
}

// A report that comes after the frame but says nothing changed since an
// older one still covers every layout the frame may show: the union over the
// window.
func TestPlanCoversEveryLayoutOfTheWindow(t *testing.T) {
	a := Rect{X: 10, Y: 10, W: 20, H: 20}
	b := Rect{X: 400, Y: 10, W: 20, H: 20}
	c := Rect{X: 700, Y: 500, W: 20, H: 20}
	tr := tracker(
		report(1, -3000, 0, c), // long before: replaced by a, not in the frame's window
		report(2, -1100, 0, a), // current at the window's start (frame at 0 - 1 s)
		report(3, -100, 0, b),  // moved during the window
		report(4, 5, 0, b),
	)
	rects, err := tr.Plan(meta(0, 0), 800, 600, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rects)
	for _, r := range []string{"(2,2)-(38,38)", "(392,2)-(428,38)"} {
		if !strings.Contains(got, r) {
			t.Fatalf("rects %s lack %s", got, r)
		}
	}
	if strings.Contains(got, "(692,492)") {
		t.Fatalf("rects %s hold a layout from before the window", got)
	}
}

// Bound (fixed, sticky) rectangles count only from reports measured at the
// frame's scroll; document ones from every report of the window.
func TestPlanBoundRectangles(t *testing.T) {
	sticky := func(y float64) Rect { return Rect{X: 0, Y: y, W: 800, H: 40, Bound: true} }
	tr := tracker(
		report(1, -50, 0, sticky(0)),
		report(2, -20, 300, sticky(300)),
		report(3, 5, 300, sticky(300)),
	)
	rects, err := tr.Plan(meta(0, 300), 800, 600, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rects) != 1 || rects[0] != image.Rect(0, 0, 800, 48) {
		t.Fatalf("rects = %v", rects)
	}
	rects, err = tr.Plan(meta(0, 0), 800, 600, time.Time{})
	if err != nil || len(rects) != 1 || rects[0] != image.Rect(0, 0, 800, 48) {
		t.Fatalf("at scroll 0: %v %v", rects, err)
	}
}

func TestTrackerIgnoresOtherContextsAndStaleFlushes(t *testing.T) {
	tr := tracker(report(5, 0, 0, Rect{X: 10, Y: 10, W: 10, H: 10}))
	if tr.Add(Top, 2, report(6, 10, 0)) {
		t.Fatal("a report of another context was kept")
	}
	if tr.Add(Top, 1, report(4, 10, 0)) {
		t.Fatal("an older report of the same document was kept")
	}
	// A new document keeps the old layouts in the window: a frame of the
	// old document that arrives late is still masked.
	r := report(1, 20, 0)
	r.Doc = "d2"
	if !tr.Add(Top, 1, r) {
		t.Fatal("the new document's report was dropped")
	}
	rects, err := tr.Plan(meta(15, 0), 800, 600, time.Time{})
	if err != nil || len(rects) != 1 {
		t.Fatalf("old frame after navigation: %v %v", rects, err)
	}
	tr.SetContext(Top, 0)
	_, err = tr.Plan(meta(30, 0), 800, 600, time.Time{})
	wantHold(t, err, ReasonNavigating)
}

func TestBrokenAndLostHold(t *testing.T) {
	tr := tracker(report(1, 0, 0), report(2, 100, 0))
	tr.Broken(Top, t0.Add(50*time.Millisecond), "bad report")
	_, err := tr.Plan(meta(60, 0), 800, 600, time.Time{})
	wantHold(t, err, ReasonError)
	tr = tracker(report(1, 0, 0), report(2, 100, 0))
	tr.Lost(t0.Add(40 * time.Millisecond))
	_, err = tr.Plan(meta(60, 0), 800, 600, time.Time{})
	wantHold(t, err, ReasonUnmeasured)
	if _, err := tr.Plan(meta(60+600, 0), 800, 600, time.Time{}); err == nil {
		t.Fatal("a frame newer than the newest report was planned")
	}
}

func TestFaults(t *testing.T) {
	var f Faults
	tr := NewTracker(Config{Faults: &f})
	tr.SetContext(Top, 1)
	tr.Add(Top, 1, report(1, 0, 0))
	f.SetFail(true)
	if _, err := tr.Plan(meta(0, 0), 800, 600, time.Time{}); !errors.Is(err, ErrInjected) {
		t.Fatalf("fail fault: %v", err)
	}
	f.SetFail(false)
	f.SetPanic(true)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic fault did not panic")
			}
		}()
		_, _ = tr.Plan(meta(0, 0), 800, 600, time.Time{})
	}()
	f.SetPanic(false)
	f.SetDropReports(true)
	if tr.Add(Top, 1, report(2, 10, 0)) {
		t.Fatal("a report was kept while reports are dropped")
	}
	f.SetDropReports(false)
	tr.Add(Top, 1, report(3, 1200, 0))
	// The dropped report leaves a gap: a frame whose window holds it may
	// show what it said.
	_, err := tr.Plan(meta(900, 0), 800, 600, time.Time{})
	wantHold(t, err, ReasonUnmeasured)
	if _, err := tr.Plan(meta(1100, 0), 800, 600, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// The picture may be newer than its stamp (up to when it was received) and,
// on a slow machine, older than the window: both ends widen.
func TestPlanCoversFromTheLagToTheArrival(t *testing.T) {
	a := Rect{X: 10, Y: 10, W: 20, H: 20}
	b := Rect{X: 400, Y: 10, W: 20, H: 20}
	tr := tracker(report(1, -1500, 0, a), report(2, -1200, 0), report(3, 20, 0))
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	_, err := tr.Plan(meta(0, 0), 800, 600, at(30))
	wantHold(t, err, ReasonUnmeasured)
	if !Stale(err) {
		t.Fatalf("a report older than the frame's arrival: %v, want a stale hold", err)
	}
	tr.Add(Top, 1, report(4, 35, 0, b))
	rects, err := tr.Plan(meta(0, 0), 800, 600, at(30))
	if err != nil || fmt.Sprint(rects) != "[(392,2)-(428,38)]" {
		t.Fatalf("rects %v, %v: want the layout measured before the arrival", rects, err)
	}
	// Received 400 ms after its stamp: the picture may be 1.6 s old.
	rects, err = tr.Plan(meta(0, 0), 800, 600, at(400))
	if err == nil {
		t.Fatalf("planned %v with no report after the arrival", rects)
	}
	tr.Add(Top, 1, report(5, 410, 0, b))
	rects, err = tr.Plan(meta(0, 0), 800, 600, at(400))
	if err != nil || !strings.Contains(fmt.Sprint(rects), "(2,2)-(38,38)") {
		t.Fatalf("rects %v, %v: want the layout of 1.5 s before the stamp too", rects, err)
	}
}

// While the viewport changes size Chromium may send a picture of the old
// size with the new metadata: it is held, not stretched.
func TestPlanHoldsMisshapenPictures(t *testing.T) {
	tr := tracker(report(1, 0, 0, Rect{X: 700, Y: 10, W: 90, H: 20}), report(2, 20, 0))
	_, err := tr.Plan(meta(10, 0), 779, 600, time.Time{})
	wantHold(t, err, ReasonUnmeasured)
	for _, size := range [][2]int{{800, 600}, {400, 300}, {640, 480}, {1280, 960}} {
		if _, err := tr.Plan(meta(10, 0), size[0], size[1], time.Time{}); err != nil {
			t.Fatalf("%v: %v", size, err)
		}
	}
}

func TestApplyPaintsOnlyTheCopy(t *testing.T) {
	pool := media.NewFramePool()
	src := pool.Get(64, 48)
	for i := range src.Y {
		src.Y[i] = 200
	}
	for i := range src.U {
		src.U[i], src.V[i] = 30, 220
	}
	src.Seq = 7
	got := Apply(src, []image.Rectangle{image.Rect(8, 4, 20, 10), image.Rect(60, 40, 70, 50)}, pool)
	defer got.Release()
	defer src.Release()
	img := got.f.Image
	at := func(p []byte, stride, x, y int) byte { return p[y*stride+x] }
	if at(img.Y, img.StrideY, 8, 4) != Fill || at(img.Y, img.StrideY, 19, 9) != Fill || at(img.Y, img.StrideY, 63, 47) != Fill {
		t.Fatal("luma not painted")
	}
	if at(img.Y, img.StrideY, 20, 10) != 200 || at(img.Y, img.StrideY, 7, 4) != 200 {
		t.Fatal("painted outside the rectangle")
	}
	if at(img.U, img.StrideUV, 4, 2) != Fill || at(img.V, img.StrideUV, 9, 4) != Fill || at(img.U, img.StrideUV, 10, 5) != 30 {
		t.Fatal("chroma not painted as the luma")
	}
	if src.Y[4*src.StrideY+8] != 200 || got.f.Seq != 7 {
		t.Fatal("the source changed, or the copy lost its metadata")
	}
	if got.f.Verbatim {
		t.Fatal("a painted copy is marked verbatim: the agents could be sent the customers' encoding of it")
	}
}

// Only a copy with nothing painted may stand for the customers' picture
// (media.RoleEncoderConfig.Follow): no areas, or areas all outside it.
func TestApplyVerbatim(t *testing.T) {
	pool := media.NewFramePool()
	src := pool.Get(64, 48)
	defer src.Release()
	for _, c := range []struct {
		rects []image.Rectangle
		want  bool
	}{
		{nil, true},
		{[]image.Rectangle{image.Rect(70, 0, 90, 10), image.Rect(0, 0, 0, 0)}, true},
		{[]image.Rectangle{image.Rect(70, 0, 90, 10), image.Rect(63, 47, 64, 48)}, false},
	} {
		got := Apply(src, c.rects, pool)
		if got.f.Verbatim != c.want {
			t.Errorf("Apply(%v).Verbatim = %v, want %v", c.rects, got.f.Verbatim, c.want)
		}
		got.Release()
	}
}

func TestParseReport(t *testing.T) {
	ok := `{"v":1,"doc":"x","seq":3,"t":1764158400000.5,"w":800,"h":600,"sx":0,"sy":10,"scale":1,"r":[[1,2,3,4,1]],"o":[[5,6,7,8,0,"F1",6,7,5,6]],"f":1,"a":0}`
	r, err := ParseReport([]byte(ok), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rects) != 1 || !r.Rects[0].Bound || len(r.Opaque) != 1 || r.Opaque[0].Frame != "F1" || r.Opaque[0].Content.W != 5 || !r.Focus || r.ScrollY != 10 {
		t.Fatalf("parsed %+v", r)
	}
	for _, bad := range []string{
		`{`, `{"v":2,"doc":"x","t":1}`, `{"v":1,"doc":"","t":1}`, `{"v":1,"doc":"x","t":1,"w":0,"h":1,"scale":1}`,
		`{"v":1,"doc":"x","t":1,"w":1,"h":1,"scale":1,"r":[[1,2,-3,4,0]]}`,
		`{"v":1,"doc":"x","t":1,"w":1,"h":1,"scale":1,"o":[[1,2,3,"a",0,""]]}`,
		`{"v":1,"doc":"x","t":1,"w":1,"h":1,"scale":1,"o":[[1,2,3,4,0,""," "]]}`,
		`{"v":1,"doc":"x","t":1,"w":1,"h":1,"scale":1,"o":[[1,2,3,4,0,"",1,2,-3,4]]}`,
		`{"v":1,"doc":"x","t":1,"w":1,"h":1,"scale":1,"r":[` + strings.Repeat(`[1,1,1,1,1],`, 50000) + `[1,1,1,1,1]]}`,
	} {
		if _, err := ParseReport([]byte(bad), time.Now()); err == nil {
			t.Errorf("ParseReport(%.60s) accepted", bad)
		}
	}
	r, err = ParseReport([]byte(`{"v":1,"doc":"x","seq":1,"t":5,"err":"SyntaxError"}`), time.Now())
	if err != nil || r.Err != "SyntaxError" {
		t.Fatalf("error report: %+v %v", r, err)
	}
}

func TestScriptCarriesPolicyAsData(t *testing.T) {
	src, err := Script(Policy{Mask: []Selector{{Selector: `"]);alert(1);//`, URLs: []string{"https://shop.example/*"}}}, PrivateByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(src, "__TANDEM_MASK_CONFIG__") || !strings.Contains(src, `"private":true`) || !strings.Contains(src, `"binding":"__tandemMaskReport"`) {
		t.Fatal("config not in the script")
	}
	if strings.Contains(src, `"]);alert(1);//"`) && !strings.Contains(src, `"\"]);alert(1);//"`) {
		t.Fatal("selector not escaped as a JSON string")
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"v":1,"doc":"x","seq":3,"t":1,"w":800,"h":600,"sx":0,"sy":10,"scale":1,"r":[[1,2,3,4,1]],"o":[[5,6,7,8,0,"F1",6,7,5,6]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b, time.Now())
		if err != nil {
			return
		}
		rs := slices.Clone(r.Rects)
		for _, o := range r.Opaque {
			rs = append(rs, o.Rect, o.Content)
		}
		for _, q := range rs {
			if q.W < 0 || q.H < 0 {
				t.Fatalf("negative rect %+v", q)
			}
		}
	})
}

// A cross-origin frame is masked whole until its own script reports; then
// its masked areas are placed in its content box, clipped to it.
func TestPlanPlacesChildFrames(t *testing.T) {
	frame := Opaque{Rect: Rect{X: 100, Y: 100, W: 300, H: 200}, Frame: "F1", Content: Rect{X: 102, Y: 102, W: 296, H: 196}}
	top := report(1, 5, 0)
	top.Opaque = []Opaque{frame}
	tr := tracker(top)
	rects, err := tr.Plan(meta(0, 0), 800, 600, time.Time{})
	if err != nil || len(rects) != 1 || rects[0] != image.Rect(92, 92, 408, 308) {
		t.Fatalf("unreported frame: %v %v, want it whole", rects, err)
	}
	tr.SetContext("F1", 7)
	child := Report{Doc: "c", Seq: 1, At: t0.Add(3 * time.Millisecond), Width: 296, Height: 196, Scale: 1, ScrollY: 50,
		Origin: "https://pay.example", Rects: []Rect{{X: 10, Y: 60, W: 20, H: 10}, {X: 280, Y: 230, W: 100, H: 100}}}
	if !tr.Add("F1", 7, child) {
		t.Fatal("child report dropped")
	}
	rects, err = tr.Plan(meta(0, 0), 800, 600, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// (10, 60-50) in the child → (112, 112) on the page; the second rect is
	// clipped to the content box's corner (398, 298).
	want := "[(104,104)-(140,130) (374,274)-(406,306)]"
	if fmt.Sprint(rects) != want {
		t.Fatalf("placed child = %v, want %s", rects, want)
	}
	// A child whose newest report is older than the picture holds it.
	_, err = tr.Plan(meta(4, 0), 800, 600, time.Time{})
	wantHold(t, err, ReasonUnmeasured)
	// So does one whose newest report is older than when the picture was
	// received: the browser may have put a newer surface of the frame in it.
	_, err = tr.Plan(meta(0, 0), 800, 600, t0.Add(4*time.Millisecond))
	wantHold(t, err, ReasonUnmeasured)
	if _, err := tr.Plan(meta(0, 0), 800, 600, t0.Add(3*time.Millisecond)); err != nil {
		t.Fatalf("a child report as new as the picture's arrival: %v", err)
	}
	// A company-masked origin stays whole.
	tr2 := NewTracker(Config{FrameOrigins: []string{"https://pay.example"}})
	tr2.SetContext(Top, 1)
	tr2.Add(Top, 1, top)
	tr2.SetContext("F1", 7)
	tr2.Add("F1", 7, child)
	rects, err = tr2.Plan(meta(0, 0), 800, 600, time.Time{})
	if err != nil || len(rects) != 1 || rects[0] != image.Rect(92, 92, 408, 308) {
		t.Fatalf("masked origin: %v %v, want the frame whole", rects, err)
	}
}

// Pulled reports of a still page extend the last one instead of filling the
// history: a frame waiting through a storm of them is still planned.
func TestIdenticalReportsConfirmTheLast(t *testing.T) {
	a := Rect{X: 10, Y: 10, W: 20, H: 20}
	tr := tracker(report(1, 0, 0, a))
	for i := range 1000 {
		if !tr.Add(Top, 1, report(int64(i+2), i+1, 0, a)) {
			t.Fatal("identical report refused")
		}
	}
	if n := len(tr.top.hist); n != 1 {
		t.Fatalf("history grew to %d reports", n)
	}
	rects, err := tr.Plan(meta(900, 0), 800, 600, time.Time{})
	if err != nil || len(rects) != 1 {
		t.Fatalf("plan after confirmations: %v %v", rects, err)
	}
	if _, err := tr.Plan(meta(1200, 0), 800, 600, time.Time{}); !Stale(err) {
		t.Fatalf("a frame newer than the last confirmation: %v, want a stale hold", err)
	}
}

// The first picture of a restarted capture is planned only when the page
// did not change in its window: its pixels may be another paint than its
// metadata says.
func TestPlanRestartedCapture(t *testing.T) {
	a := Rect{X: 10, Y: 10, W: 20, H: 20}
	moving := tracker(report(1, -200, 0, a), report(2, -100, 9, a), report(3, 5, 18, a))
	restarted := meta(0, 18)
	restarted.Restarted = true
	_, err := moving.Plan(restarted, 800, 600, time.Time{})
	wantHold(t, err, ReasonUnmeasured)
	if _, err := moving.Plan(meta(0, 18), 800, 600, time.Time{}); err != nil {
		t.Fatalf("the same picture from a running capture: %v", err)
	}
	still := tracker(report(1, -3000, 18, a), report(2, 5, 18, a)) // the second confirms the first
	if rects, err := still.Plan(restarted, 800, 600, time.Time{}); err != nil || len(rects) != 1 {
		t.Fatalf("a restarted capture of a still page: %v, %v", rects, err)
	}
}

// Document rectangles are painted at every root scroll the page reported
// around the picture's time, not only at its metadata's: the picture may
// be a scroll step away from it. Scrolls reported long before are not.
func TestPlanCoversTheNeighbouringScrolls(t *testing.T) {
	a := Rect{X: 100, Y: 100, W: 40, H: 20}
	tr := tracker(
		report(1, -900, 60, a), // replaced before the picture's time: not a scroll it may show
		report(2, -150, 0, a),
		report(3, -16, 9, a),
		report(4, 5, 18, a),
	)
	rects, err := tr.Plan(meta(0, 9), 800, 600, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var top, bottom = 600, 0
	for _, r := range rects {
		if r.Min.X <= 100 && r.Max.X >= 140 {
			top, bottom = min(top, r.Min.Y), max(bottom, r.Max.Y)
		}
	}
	// At scroll 18 the area starts at 100-18-8 = 74; at scroll 0 it ends at
	// 100+20+8 = 128.
	if top > 74 || bottom < 128 {
		t.Errorf("painted rows %d..%d, want 74..128 at least: %v", top, bottom, rects)
	}
	if top < 60 {
		t.Errorf("painted %v: the scroll replaced long before (60) counted too", rects)
	}
}
