package browserpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
)

const waitLimit = 20 * time.Second // generous: the machine is shared

var (
	red  = color.RGBA{200, 30, 40, 255}
	blue = color.RGBA{30, 60, 220, 255}
)

// lease leases a browser from the shared pool and closes it at the end of
// the test.
func lease(t *testing.T, o LeaseOptions) *Lease {
	t.Helper()
	p := needPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := p.Lease(ctx, o)
	if err != nil {
		t.Fatalf("Lease(%+v): %v", o, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// solidPage is a data: URL of a page filled with c.
func solidPage(c color.RGBA) string {
	return "data:text/html," + url.PathEscape(fmt.Sprintf(
		`<html><body style="margin:0;background:rgb(%d,%d,%d)"></body></html>`, c.R, c.G, c.B))
}

// frame is a received capture and its decoded image.
type frame struct {
	media.Capture
	img image.Image
}

// waitFrame returns the first frame for which ok is true, failing the test
// after waitLimit or when the lease ends.
func waitFrame(t *testing.T, l *Lease, what string, ok func(frame) bool) frame {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	var last frame
	for n := 0; ; n++ {
		select {
		case c := <-l.Frames():
			img, err := jpeg.Decode(bytes.NewReader(c.JPEG))
			if err != nil {
				t.Fatalf("frame %d is not a JPEG: %v", c.Seq, err)
			}
			f := frame{Capture: c, img: img}
			if ok(f) {
				return f
			}
			last = f
		case <-l.Done():
			t.Fatalf("waiting for %s: lease done: %v", what, l.Err())
		case <-timer.C:
			if last.img == nil {
				t.Fatalf("no frame with %s after %v (no frames at all)", what, waitLimit)
			}
			t.Fatalf("no frame with %s after %v (%d frames; last %v, centre %v)",
				what, waitLimit, n, last.img.Bounds().Size(), colourAt(last.img, 0.5, 0.5))
		}
	}
}

// colourAt returns the colour at a fraction of the image's size.
func colourAt(img image.Image, fx, fy float64) color.RGBA {
	b := img.Bounds()
	x := b.Min.X + int(fx*float64(b.Dx()-1))
	y := b.Min.Y + int(fy*float64(b.Dy()-1))
	r, g, bl, _ := img.At(x, y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}
}

// near reports whether two colours match within JPEG error.
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
	return d(a.R, b.R) <= 20 && d(a.G, b.G) <= 20 && d(a.B, b.B) <= 20
}

// isColour matches a frame whose sampled points all have colour c.
func isColour(c color.RGBA) func(frame) bool {
	return func(f frame) bool {
		for _, p := range [][2]float64{{0.5, 0.5}, {0.1, 0.1}, {0.9, 0.9}} {
			if !near(colourAt(f.img, p[0], p[1]), c) {
				return false
			}
		}
		return true
	}
}

func TestLeaseStreamsThePage(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: solidPage(red)})
	f := waitFrame(t, l, "the page's red", isColour(red))
	if got := f.img.Bounds().Size(); got != image.Pt(1280, 720) {
		t.Errorf("frame size = %v, want 1280x720", got)
	}
	if f.Meta.DeviceWidth != 1280 || f.Meta.DeviceHeight != 720 || f.Meta.PageScaleFactor != 1 {
		t.Errorf("Meta = %+v, want a 1280x720 device at scale 1", f.Meta)
	}
	if f.Seq == 0 || f.Received.IsZero() || time.Since(f.Received) > time.Minute {
		t.Errorf("Seq = %d, Received = %v", f.Seq, f.Received)
	}
	if f.Meta.Timestamp.IsZero() || time.Since(f.Meta.Timestamp).Abs() > time.Minute {
		t.Errorf("Meta.Timestamp = %v, want about now", f.Meta.Timestamp)
	}
	if w, h := l.Viewport(); w != 1280 || h != 720 {
		t.Errorf("Viewport() = %dx%d, want 1280x720", w, h)
	}
	st := testPool.Stats()
	if st.Leased < 1 || st.WarmStarts+st.ColdStarts < 1 || st.LastStart <= 0 {
		t.Errorf("Stats() = %+v, want a lease and a start", st)
	}

	// A second page in the same lease streams too, with increasing Seq.
	if err := l.Navigate(context.Background(), solidPage(blue)); err != nil {
		t.Fatalf("Navigate: %v", err)
	}
	g := waitFrame(t, l, "blue after Navigate", isColour(blue))
	if g.Seq <= f.Seq {
		t.Errorf("Seq went from %d to %d", f.Seq, g.Seq)
	}
	if err := l.Navigate(context.Background(), "file:///etc/passwd"); !errors.Is(err, ErrURLNotAllowed) {
		t.Errorf("Navigate(file:) = %v, want ErrURLNotAllowed", err)
	}
}

// reporter is an httptest server for pages that report values back with
// fetch('/report?v=...').
type reporter struct {
	*httptest.Server
	values chan string
}

func newReporter(t *testing.T, page string) *reporter {
	t.Helper()
	return reporterWith(t, page, nil)
}

// reporterWith is newReporter with more routes added by extra.
func reporterWith(t *testing.T, page string, extra func(*http.ServeMux)) *reporter {
	t.Helper()
	r := &reporter{values: make(chan string, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	mux.HandleFunc("/report", func(w http.ResponseWriter, req *http.Request) {
		select {
		case r.values <- req.URL.Query().Get("v"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if extra != nil {
		extra(mux)
	}
	r.Server = httptest.NewServer(mux)
	t.Cleanup(r.Close)
	return r
}

// waitValue waits until the page reports want.
func (r *reporter) waitValue(t *testing.T, l *Lease, want string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	var got []string
	for {
		select {
		case v := <-r.values:
			if v == want {
				return
			}
			got = append(got, v)
		case <-l.Done():
			t.Fatalf("waiting for %q: lease done: %v", want, l.Err())
		case <-timer.C:
			t.Fatalf("page never reported %q; it reported %q", want, got)
		}
	}
}

func dispatch(t *testing.T, l *Lease, evs ...input.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := l.Dispatch(context.Background(), ev); err != nil {
			t.Fatalf("Dispatch(%+v): %v", ev, err)
		}
	}
}

func click(x, y float64) []input.Event {
	return []input.Event{
		{Kind: input.KindMouse, Action: input.ActionMove, X: x, Y: y},
		{Kind: input.KindMouse, Action: input.ActionDown, X: x, Y: y, Button: input.ButtonLeft, Buttons: 1, Clicks: 1},
		{Kind: input.KindMouse, Action: input.ActionUp, X: x, Y: y, Button: input.ButtonLeft, Clicks: 1},
	}
}

// buttonPage is red with a button at (100,100)-(400,300) that turns it
// blue.
var buttonPage = "data:text/html," + url.PathEscape(fmt.Sprintf(`<html><body style="margin:0;height:100vh;background:rgb(%d,%d,%d)">
<button style="position:absolute;left:100px;top:100px;width:300px;height:200px"
 onclick="document.body.style.background='rgb(%d,%d,%d)'">go</button></body></html>`,
	red.R, red.G, red.B, blue.R, blue.G, blue.B))

// atCorner matches a frame whose bottom right has colour c.
func atCorner(c color.RGBA) func(frame) bool {
	return func(f frame) bool { return near(colourAt(f.img, 0.9, 0.9), c) }
}

func TestClickChangesThePage(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: buttonPage})
	waitFrame(t, l, "red before the click", atCorner(red))
	dispatch(t, l, click(250, 200)...)
	waitFrame(t, l, "blue after the click", atCorner(blue))
}

func TestTypingLandsInTheInput(t *testing.T) {
	r := newReporter(t, `<!doctype html><meta charset="utf-8">
<input id="t" style="position:absolute;left:50px;top:50px;width:400px;height:40px">
<script>
const t = document.getElementById('t');
t.addEventListener('input', () => fetch('/report?v=' + encodeURIComponent(t.value)));
</script>`)
	l := lease(t, LeaseOptions{StartURL: r.URL})
	dispatch(t, l, click(100, 70)...) // focus the input
	key := func(keyName, code string, keyCode int, text string) []input.Event {
		return []input.Event{
			{Kind: input.KindKey, Action: input.ActionDown, Key: keyName, Code: code, KeyCode: keyCode, Text: text},
			{Kind: input.KindKey, Action: input.ActionUp, Key: keyName, Code: code, KeyCode: keyCode},
		}
	}
	dispatch(t, l, key("a", "KeyA", 65, "a")...)
	dispatch(t, l, key("b", "KeyB", 66, "b")...)
	dispatch(t, l, key("c", "KeyC", 67, "c")...)
	r.waitValue(t, l, "abc")
	dispatch(t, l, key("Backspace", "Backspace", 8, "")...) // rawKeyDown: no text
	r.waitValue(t, l, "ab")
	dispatch(t, l, input.Event{Kind: input.KindText, Text: "こんにちは、世界"})
	r.waitValue(t, l, "abこんにちは、世界")
}

// A wheel scrolls the page, vertical (deltaX 0) and horizontal (deltaY 0).
func TestWheelScrollsThePage(t *testing.T) {
	r := newReporter(t, `<!doctype html><body style="margin:0;width:4000px;height:4000px">
<script>addEventListener('scroll', () => fetch('/report?v=' + scrollX + ',' + scrollY));</script>`)
	l := lease(t, LeaseOptions{StartURL: r.URL})
	dispatch(t, l, input.Event{Kind: input.KindWheel, X: 400, Y: 300, DeltaY: 250})
	r.waitValue(t, l, "0,250")
	dispatch(t, l, input.Event{Kind: input.KindWheel, X: 400, Y: 300, DeltaX: 120})
	r.waitValue(t, l, "120,250")
}

// Send returns once the event is on its way, before Chromium answers it,
// and the events sent one after the other reach the page in that order.
// The page's handler of the first move to the right half keeps it busy
// for 300 ms, so the move's answer cannot have come when Send returns.
func TestSendKeepsOrderWithoutWaiting(t *testing.T) {
	r := newReporter(t, `<!doctype html><meta charset="utf-8">
<input id="t" style="position:absolute;left:50px;top:50px;width:400px;height:40px">
<script>
const t = document.getElementById('t'), log = [];
let busy = false;
document.addEventListener('mousemove', e => {
  if (!busy && e.clientX > 250) { busy = true; const end = performance.now() + 300; while (performance.now() < end) {} }
  if (log[log.length - 1] !== 'move') log.push('move');
});
document.addEventListener('keydown', e => log.push(e.key));
t.addEventListener('input', e => { if (e.inputType === 'insertText' && e.data.length > 1) log.push(e.data) });
document.addEventListener('mousedown', () => log.push('down'));
document.addEventListener('mouseup', () => { log.push('up'); fetch('/report?v=' + encodeURIComponent(log.join(','))) });
</script>`)
	l := lease(t, LeaseOptions{StartURL: r.URL})
	dispatch(t, l, input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 100, Y: 70, Button: input.ButtonLeft, Buttons: 1, Clicks: 1},
		input.Event{Kind: input.KindMouse, Action: input.ActionUp, X: 100, Y: 70, Button: input.ButtonLeft, Clicks: 1}) // focus the input
	r.waitValue(t, l, "move,down,up") // Chromium moves the pointer there first

	ctx := context.Background()
	move := l.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 300, Y: 300})
	select {
	case err := <-move:
		t.Fatalf("Send of the move returned after Chromium answered it (%v)", err)
	default:
	}
	answers := []<-chan error{move}
	for _, k := range []string{"a", "b", "c"} {
		code := "Key" + strings.ToUpper(k)
		answers = append(answers,
			l.Send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: k, Code: code, Text: k}),
			l.Send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionUp, Key: k, Code: code}))
	}
	answers = append(answers, l.Send(ctx, input.Event{Kind: input.KindText, Text: "日本語"}))
	for _, ev := range click(300, 300)[1:] {
		answers = append(answers, l.Send(ctx, ev))
	}
	for i, a := range answers {
		if err := <-a; err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	r.waitValue(t, l, "move,down,up,move,a,b,c,日本語,down,up")
}

func TestDispatchClampsAndValidates(t *testing.T) {
	r := newReporter(t, `<!doctype html><body style="margin:0;height:100vh">
<script>document.addEventListener('mousedown', e => fetch('/report?v=' + e.clientX + ',' + e.clientY));</script>`)
	l := lease(t, LeaseOptions{StartURL: r.URL, Width: 800, Height: 600})
	dispatch(t, l, input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 5000, Y: -30, Button: input.ButtonLeft, Buttons: 1})
	r.waitValue(t, l, "799,0")
	dispatch(t, l, input.Event{Kind: input.KindMouse, Action: input.ActionUp, X: 5000, Y: -30, Button: input.ButtonLeft})

	bad := input.Event{Kind: input.KindMouse, Action: "hover"}
	if err := l.Dispatch(context.Background(), bad); !errors.Is(err, input.ErrInvalid) {
		t.Errorf("Dispatch(%+v) = %v, want input.ErrInvalid", bad, err)
	}
}

func TestSetViewportResizesFrames(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: solidPage(red), Width: 1000, Height: 700})
	ofSize := func(w, h int) func(frame) bool {
		return func(f frame) bool {
			return f.img.Bounds().Size() == image.Pt(w, h) && f.Meta.DeviceWidth == float64(w) &&
				f.Meta.DeviceHeight == float64(h) && isColour(red)(f)
		}
	}
	waitFrame(t, l, "1000x700 from LeaseOptions", ofSize(1000, 700))

	if err := l.SetViewport(context.Background(), 640, 480); err != nil {
		t.Fatalf("SetViewport: %v", err)
	}
	if w, h := l.Viewport(); w != 640 || h != 480 {
		t.Errorf("Viewport() = %dx%d, want 640x480", w, h)
	}
	waitFrame(t, l, "640x480", ofSize(640, 480))

	// Through Dispatch, and clamped to the allowed range.
	dispatch(t, l, input.Event{Kind: input.KindViewport, Width: 101, Height: 5001})
	if w, h := l.Viewport(); w != input.MinViewportW || h != input.MaxViewportH {
		t.Errorf("Viewport() = %dx%d, want %dx%d", w, h, input.MinViewportW, input.MaxViewportH)
	}
	waitFrame(t, l, "the clamped size", ofSize(input.MinViewportW, input.MaxViewportH))
}

// procStatus returns a field of /proc/<pid>/status, such as "Uid".
func procStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func cmdline(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// waitGone waits until none of pids is alive (zombies count as gone).
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		var alive []int
		for _, pid := range pids {
			if info, err := readProc(pid); err == nil && info.state != 'Z' {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still alive", alive)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func TestBrowserIsIsolatedAndCloseDestroysIt(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: solidPage(red)})
	waitFrame(t, l, "red", isColour(red)) // a renderer is up
	pid, dir := l.PID(), l.dir
	if pid <= 0 {
		t.Fatalf("PID() = %d", pid)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("Getpgid(%d) = %d, %v; want its own group", pid, pgid, err)
	}
	pids := browserProcs(pid, l.userDataDir)
	if len(pids) < 3 {
		t.Fatalf("browser group has %d processes %v, want the browser, its zygotes and a renderer", len(pids), pids)
	}
	forbidden := []string{"--no-sandbox", "--disable-setuid-sandbox", "--single-process", "--no-zygote",
		"--disable-site-isolation-trials", "--disable-web-security", "--remote-debugging-port"}
	renderers := 0
	for _, p := range pids {
		args := cmdline(p)
		joined := strings.Join(args, " ")
		for _, a := range args {
			name, _, _ := strings.Cut(a, "=")
			if slices.Contains(forbidden, name) {
				t.Errorf("process %d runs with %s: %s", p, a, joined)
			}
		}
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--disable-features="); ok && (strings.Contains(v, "IsolateOrigins") || strings.Contains(v, "SitePerProcess") || strings.Contains(v, "site-per-process")) {
				t.Errorf("process %d turns site isolation off: %s", p, joined)
			}
		}
		if os.Geteuid() == 0 {
			if uids := procStatus(t, p, "Uid"); uids == "" || strings.Fields(uids)[0] == "0" || strings.Fields(uids)[1] == "0" {
				t.Errorf("process %d runs as uid %q, want the unprivileged browser user", p, uids)
			}
		}
		if strings.Contains(joined, "--type=renderer") {
			renderers++
			// The seccomp-bpf part of the sandbox: mode 2 is a filter.
			if s := procStatus(t, p, "Seccomp"); s != "2" {
				t.Errorf("renderer %d has Seccomp %q, want 2 (sandboxed)", p, s)
			}
		}
	}
	if renderers == 0 {
		t.Errorf("no renderer among %v", pids)
	}
	main := strings.Join(cmdline(pid), " ")
	for _, want := range []string{"--remote-debugging-pipe", "--user-data-dir=" + l.userDataDir, "--disable-extensions", "--site-per-process"} {
		if !strings.Contains(main, want) {
			t.Errorf("browser command line lacks %s: %s", want, main)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("profile dir: %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGone(t, pids) // Close waits, so this should pass at once
	if left := browserProcs(pid, l.userDataDir); len(left) > 0 {
		t.Errorf("after Close, group %d still has %v", pid, left)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, profile dir %s: %v; want it removed", dir, err)
	}
	select {
	case <-l.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if !errors.Is(l.Err(), ErrLeaseClosed) {
		t.Errorf("Err() = %v, want ErrLeaseClosed", l.Err())
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Dispatch(context.Background(), click(1, 1)[0]); !errors.Is(err, ErrLeaseClosed) {
		t.Errorf("Dispatch after Close = %v, want ErrLeaseClosed", err)
	}
}

func TestKilledBrowserClosesDone(t *testing.T) {
	l := lease(t, LeaseOptions{})
	pid := l.PID()
	pids := browserProcs(pid, l.userDataDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
	select {
	case <-l.Done():
	case <-time.After(waitLimit):
		t.Fatalf("Done not closed %v after the browser was killed", waitLimit)
	}
	if !errors.Is(l.Err(), ErrBrowserLost) {
		t.Errorf("Err() = %v, want ErrBrowserLost", l.Err())
	}
	if err := l.SetViewport(context.Background(), 800, 600); !errors.Is(err, ErrBrowserLost) {
		t.Errorf("SetViewport on a dead browser = %v, want ErrBrowserLost", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGone(t, pids)
	if _, err := os.Stat(l.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile dir %s: %v; want it removed", l.dir, err)
	}
	if !errors.Is(l.Err(), ErrBrowserLost) {
		t.Errorf("after Close, Err() = %v; want it to still say ErrBrowserLost", l.Err())
	}
}

func TestCrashedPageClosesDone(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: solidPage(red)})
	// Page.crash kills the tab's renderer, as a real renderer crash would.
	// Its reply may never come, so do not wait for it.
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{})
	go func() {
		defer close(called)
		cctx, stop := l.callCtx(ctx)
		defer stop()
		_, _ = chromedp.Call(cctx, page.Crash, cdp.Empty{})
	}()
	defer func() { cancel(); <-called }()
	select {
	case <-l.Done():
	case <-time.After(waitLimit):
		t.Fatalf("Done not closed %v after the page crashed", waitLimit)
	}
	if !errors.Is(l.Err(), ErrPageCrashed) {
		t.Errorf("Err() = %v, want ErrPageCrashed", l.Err())
	}
}

func TestPoolCloseClosesLiveLeases(t *testing.T) {
	p := needPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := p.Lease(ctx, LeaseOptions{})
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	// Deliberately not closed: TestMain checks that Pool.Close does it.
	leftOpen = l
}

func TestFailedStartLeavesNothing(t *testing.T) {
	needPool(t)
	dir, err := os.MkdirTemp("", "browserpool-failed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil { // the browser user must reach it
		t.Fatal(err)
	}
	// A second pool, but it never holds a running browser for long: Warm
	// is negative and every start is cut short.
	p, err := New(Config{Warm: -1, TempDir: dir, StartTimeout: 300 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer p.Close()
	if _, err := p.Lease(context.Background(), LeaseOptions{}); !errors.Is(err, ErrStartTimeout) {
		t.Errorf("Lease with a 300ms start timeout = %v, want ErrStartTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := p.Lease(ctx, LeaseOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Lease with a context canceled during the start = %v, want context.Canceled", err)
	}
	if st := p.Stats(); st.FailedStarts != 2 || st.Warm != 0 || st.Leased != 0 {
		t.Errorf("Stats() = %+v, want 2 failed starts and nothing else", st)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("failed starts left %d entries in %s", len(entries), dir)
	}
	if pids := procsMentioning(dir); len(pids) > 0 {
		t.Errorf("failed starts left processes %v", pids)
	}
}

// A still page sends no frames; Recapture makes Chromium send one of the
// page as it is.
func TestRecaptureSendsAFrameOfAStillPage(t *testing.T) {
	l := lease(t, LeaseOptions{StartURL: solidPage(red)})
	waitFrame(t, l, "the page's red", isColour(red))
	// Drain until the page has been quiet for a while.
	for quiet := time.NewTimer(time.Second); ; {
		select {
		case <-l.Frames():
			quiet.Reset(time.Second)
			continue
		case <-quiet.C:
		}
		break
	}
	asked := time.Now()
	if err := l.Recapture(context.Background()); err != nil {
		t.Fatalf("Recapture: %v", err)
	}
	f := waitFrame(t, l, "red again", isColour(red))
	if f.Received.Before(asked) {
		t.Fatalf("the frame was received before Recapture was asked")
	}
	if f.Meta.DeviceWidth != 1280 || f.Meta.DeviceHeight != 720 {
		t.Errorf("Meta = %+v after Recapture, want the same 1280x720 device", f.Meta)
	}
}
