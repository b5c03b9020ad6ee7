package ui

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
	pmedia "github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The viewers' side of screen sharing (docs/screenshare.md). The customer's
// page runs in the capture browser (pkg/browsertest.NewCaptureTab): full
// headless Chromium whose real getDisplayMedia shares another tab, a green
// page, without a picker (the headless shell of the other tests has no
// getDisplayMedia). The fake worker decodes what the page sends on its
// screen m-line; it streams a green picture on the agent's.

func isScreenshare(action string) func(received) bool {
	return func(r received) bool { return r.Screenshare != nil && r.Screenshare.Action == action }
}

// greenCentre says whether the centre of img is saturated green.
func greenCentre(img *pmedia.Image) bool {
	x, y := img.Width/2, img.Height/2
	u, v := img.U[(y/2)*img.StrideUV+x/2], img.V[(y/2)*img.StrideUV+x/2]
	return u < 100 && v < 100
}

// waitScreenPictures waits until the fake worker decoded more than n
// pictures of the customer's screen, the newest green, and returns the count.
func waitScreenPictures(t *testing.T, w *fakeWorker, n int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		img, got := w.screen()
		if got > n && img != nil && greenCentre(img) {
			return got
		}
		if time.Now().After(deadline) {
			w.mu.Lock()
			codecs := w.screenCodecs
			w.mu.Unlock()
			t.Fatalf("the worker decoded %d pictures of the customer's screen (want more than %d, green); tracks %v", got, n, codecs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenBar reads the view's screen sharing state: data-screen | the bar's
// words | its button (” when hidden) | whether the bar shows.
func screenBar(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `(() => {
		const c = document.querySelector('.viewer-screen');
		const b = c.querySelector('.viewer-screen-button');
		return [document.querySelector('.viewer').dataset.screen, c.querySelector('.viewer-screen-text').textContent,
			b.hidden ? '' : b.textContent, c.checkVisibility()].join('|');
	})()`)
}

func waitScreenBar(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := screenBar(t, ctx)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen bar = %q, want %q", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func waitToast(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitJS(t, ctx, "toast "+want, fmt.Sprintf(`(() => { const e = document.querySelector('.viewer-toast'); return !e.hidden && e.textContent === %q; })()`, want))
}

// capturing reads whether the customer's page captures a screen now and
// sends it: its stream, and the screen sender's track.
func capturing(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `(() => {
		const s = window.tandemViewer.screen;
		const tr = s.transceiver?.sender.track;
		return (s.capture ? 'capture' : 'none') + '/' + (tr ? tr.readyState : 'no-track');
	})()`)
}

func waitCapturing(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := capturing(t, ctx)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture = %q, want %q", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// TestCustomerSharesScreen: the agent's question shows as a prompt that
// leaves the focus (and the keys) with the tab; Allow shares a real screen
// (another tab, green) on the connection's screen m-line; the customer's
// bar says so and stops it; the agent's stop and the browser's own end of
// the capture stop it too; Don't share refuses; both languages.
func TestCustomerSharesScreen(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
	target := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(rw, `<!doctype html><title>%s</title><body style="margin:0;height:100vh;background:#0f0"></body>`, browsertest.CaptureTitle)
	}))
	defer target.Close()
	screenCtx := browsertest.CaptureContext(t)
	run(t, screenCtx, "open the screen to share", chromedp.Navigate(target.URL))

	ctx, errs := browsertest.NewCaptureTab(t, 1280, 800)
	// Chromium reports its camera policy (camera=(), ui.go) on every
	// getDisplayMedia although display-capture is allowed and the capture
	// works (the worker below decodes it).
	errs.Allow("Permissions policy violation: camera is not allowed in this document")
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)
	w.waitInput(t, ctx, 1)
	if got := eval[string](t, ctx, `window.tandemViewer.screen.transceiver?.direction || ''`); got != "sendonly" {
		t.Fatalf("the customer's screen m-line is %q, want sendonly", got)
	}
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	waitScreenBar(t, ctx, "idle|||false")

	// The question: a prompt over the picture that leaves the focus where
	// it is; a key typed then goes to the tab.
	eval[bool](t, ctx, `(() => { document.querySelector('.viewer-video').focus(); return true; })()`)
	tabFocus := eval[string](t, ctx, `document.activeElement.className`) // the video, or the field behind it that takes text
	from := w.count()
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitJS(t, ctx, "the prompt", `document.querySelector('.viewer-screen-ask').checkVisibility()`)
	texts := eval[map[string]any](t, ctx, `({
		text: document.querySelector('.viewer-screen-ask-text').textContent,
		allow: document.querySelector('.viewer-screen-allow').textContent,
		deny: document.querySelector('.viewer-screen-deny').textContent,
		live: document.querySelector('.viewer-screen-ask').getAttribute('aria-live'),
		focused: document.activeElement.className,
	})`)
	if texts["text"] != "Aiko Tanaka asks to see your screen, to help with something outside this page. Only the agents of this session will see it, until you stop; they cannot operate it, and nothing is recorded." ||
		texts["allow"] != "Choose what to share…" || texts["deny"] != "Don't share" || texts["live"] != "assertive" || texts["focused"] != tabFocus {
		t.Errorf("prompt = %v", texts)
	}
	shot(t, ctx, "customer-screenshare-ask-en")
	run(t, ctx, "type while asked", chromedp.KeyEvent("a"))
	if ev := w.waitEvent(t, &from, "the key", isKind(pinput.KindKey)); ev.Event.Key != "a" {
		t.Errorf("key while asked = %+v, want a to the tab", ev.Event)
	}
	for _, r := range w.eventsSince(0) {
		if r.Screenshare != nil {
			t.Fatalf("the key answered the question: %+v", r.Screenshare)
		}
	}

	// Allow: the browser shares the green tab; the worker decodes it.
	run(t, ctx, "allow", chromedp.Click(".viewer-screen-allow"))
	w.waitEvent(t, &from, "start", isScreenshare(protocol.ScreenshareStart))
	n := waitScreenPictures(t, w, 0)
	waitCapturing(t, ctx, "capture/live")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "sharing", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitScreenBar(t, ctx, "sharing|You are sharing your screen|Stop sharing|true")
	if eval[bool](t, ctx, `document.querySelector('.viewer-screen-ask').checkVisibility()`) {
		t.Errorf("the prompt stays while sharing")
	}
	if got := eval[string](t, ctx, `document.activeElement.className`); got != tabFocus {
		t.Errorf("after Allow the focus is on %q, want the tab's %q", got, tabFocus)
	}
	waitScreenPictures(t, w, n+5) // it goes on
	shot(t, ctx, "customer-screenshare-sharing-en")

	// The customer stops it from the bar.
	run(t, ctx, "stop sharing", chromedp.Click(".viewer-screen-button"))
	w.waitEvent(t, &from, "stop", isScreenshare(protocol.ScreenshareStop))
	waitCapturing(t, ctx, "none/no-track")
	waitToast(t, ctx, "You stopped sharing your screen.")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	waitScreenBar(t, ctx, "idle|||false")

	// Don't share refuses.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitJS(t, ctx, "the prompt again", `document.querySelector('.viewer-screen-ask').checkVisibility()`)
	run(t, ctx, "don't share", chromedp.Click(".viewer-screen-deny"))
	if r := w.waitEvent(t, &from, "refusal", isScreenshare(protocol.ScreenshareRefuse)); r.Screenshare.Reason != "" {
		t.Errorf("refusal = %+v, want no reason", r.Screenshare)
	}
	waitJS(t, ctx, "the prompt gone", `!document.querySelector('.viewer-screen-ask').checkVisibility()`)

	// Allowed again, the agent stops it: the page stops capturing.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	run(t, ctx, "allow again", chromedp.Click(".viewer-screen-allow"))
	w.waitEvent(t, &from, "second start", isScreenshare(protocol.ScreenshareStart))
	waitCapturing(t, ctx, "capture/live")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "sharing", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitScreenBar(t, ctx, "sharing|You are sharing your screen|Stop sharing|true")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	waitCapturing(t, ctx, "none/no-track")
	waitToast(t, ctx, "Screen sharing ended.")
	waitScreenBar(t, ctx, "idle|||false")

	// In Japanese; allowed, the shared tab closes (the browser ends the
	// capture, as its own "Stop sharing" does): the page stops.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitJS(t, ctx, "the Japanese prompt", `document.querySelector('.viewer-screen-ask').checkVisibility() && document.querySelector('.viewer-screen-allow').textContent === '共有する画面を選ぶ…'`)
	if got := eval[string](t, ctx, `document.querySelector('.viewer-screen-ask-text').textContent`); got != "Aiko Tanaka が、このページの外のことをお手伝いするために、あなたの画面を見たいと言っています。画面を見られるのはこのセッションの担当者だけで、あなたが止めるまでです。担当者は画面を操作できず、録画もされません。" {
		t.Errorf("Japanese prompt = %q", got)
	}
	shot(t, ctx, "customer-screenshare-ask-ja")
	run(t, ctx, "allow in Japanese", chromedp.Click(".viewer-screen-allow"))
	w.waitEvent(t, &from, "third start", isScreenshare(protocol.ScreenshareStart))
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "sharing", "viewer_id": "v_agent", "name": "Aiko Tanaka"})
	waitScreenBar(t, ctx, "sharing|画面を共有しています|共有を停止|true")
	if err := chromedp.Cancel(screenCtx); err != nil {
		t.Fatalf("close the shared tab: %v", err)
	}
	w.waitEvent(t, &from, "stop when the capture ended", isScreenshare(protocol.ScreenshareStop))
	waitCapturing(t, ctx, "none/no-track")
	w.checkClean(t)
}

// greenPNG is a w×h solid green picture.
func greenPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{G: 255, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAgentSeesScreen: the agent asks from the bar, sees the customer's
// screen in a panel beside the tab, view only, and stops it; refusals and
// the end are said; both languages.
func TestAgentSeesScreen(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 1280, 720), 1280, 720)
	w.setScreenFrame(encodeFrame(t, srv, greenPNG(t, 320, 240), 320, 240))
	ctx := agentLive(t, srv, "s_scr")
	if got := eval[string](t, ctx, `window.tandemViewer.screen.transceiver?.direction || ''`); got != "recvonly" {
		t.Fatalf("the agent's screen m-line is %q, want recvonly", got)
	}
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	waitScreenBar(t, ctx, "idle||See the customer's screen|true")

	from := 0
	run(t, ctx, "ask", chromedp.Click(".viewer-screen-button"))
	w.waitEvent(t, &from, "request", isScreenshare(protocol.ScreenshareRequest))
	waitScreenBar(t, ctx, "asking|Asking to see the screen…||true")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_test", "name": "Aiko Tanaka"})
	waitScreenBar(t, ctx, "asking|Asking to see the screen…|Cancel|true")

	// Shared: the panel plays the screen; the tab stays the tab.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "sharing", "viewer_id": "v_test", "name": "Aiko Tanaka"})
	waitScreenBar(t, ctx, "sharing|You see the customer's screen||true")
	waitJS(t, ctx, "the screen in the panel", browsertest.ScreenPanelGreenJS)
	texts := eval[map[string]any](t, ctx, `({
		title: document.querySelector('.viewer-screen-title').textContent,
		label: document.querySelector('.viewer-screen-video').getAttribute('aria-label'),
		tab: document.querySelector('.viewer-video').videoWidth,
		stop: document.querySelector('.viewer-screen-stop').textContent,
	})`)
	if texts["title"] != "Customer's screen (view only)" || texts["label"] != "The customer's shared screen. View only: nothing you do here reaches it." ||
		texts["tab"] != float64(1280) || texts["stop"] != "Stop viewing" {
		t.Errorf("panel = %v", texts)
	}
	shot(t, ctx, "agent-screenshare-en")

	// View only: a click and a key on the panel send nothing.
	start := w.count()
	r := eval[map[string]float64](t, ctx, `(() => { const r = document.querySelector('.viewer-screen-video').getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`)
	run(t, ctx, "click the screen", chromedp.MouseClickXY(r["x"], r["y"]))
	run(t, ctx, "type on the screen", chromedp.KeyEvent("x"))
	run(t, ctx, "enlarge", chromedp.Click(".viewer-screen-size"))
	waitJS(t, ctx, "enlarged", `document.querySelector('.viewer-screen-panel').dataset.size === 'large' && document.querySelector('.viewer-screen-size').getAttribute('aria-pressed') === 'true' && document.querySelector('.viewer-screen-size').textContent === 'Make smaller'`)
	time.Sleep(300 * time.Millisecond) // what would have gone out is out by now
	for _, ev := range w.eventsSince(start) {
		if ev.Event.Kind == pinput.KindMouse || ev.Event.Kind == pinput.KindKey {
			t.Errorf("the screen panel sent %+v", ev.Event)
		}
	}

	// The agent stops it; the worker confirms.
	run(t, ctx, "stop viewing", chromedp.Click(".viewer-screen-stop"))
	w.waitEvent(t, &from, "stop", isScreenshare(protocol.ScreenshareStop))
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	waitJS(t, ctx, "the panel gone", `!document.querySelector('.viewer-screen-panel').checkVisibility()`)
	waitToast(t, ctx, "Screen sharing ended.")
	waitScreenBar(t, ctx, "idle||See the customer's screen|true")

	// Refusals.
	run(t, ctx, "ask again", chromedp.Click(".viewer-screen-button"))
	w.waitEvent(t, &from, "second request", isScreenshare(protocol.ScreenshareRequest))
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "refused"})
	waitToast(t, ctx, "The customer did not share their screen.")
	waitScreenBar(t, ctx, "idle||See the customer's screen|true")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "refused", "reason": "unsupported"})
	waitToast(t, ctx, "The customer's browser cannot share a screen (phones cannot).")
	// A question the gate held back (no consent yet) waits for nothing.
	run(t, ctx, "ask before consent", chromedp.Click(".viewer-screen-button"))
	w.waitEvent(t, &from, "third request", isScreenshare(protocol.ScreenshareRequest))
	waitScreenBar(t, ctx, "asking|Asking to see the screen…||true")
	send(t, w, 1, map[string]any{"type": "refused", "reason": "no_consent"})
	waitScreenBar(t, ctx, "idle||See the customer's screen|true")

	// Another agent asked: this one sees so and cannot ask too.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "requested", "viewer_id": "v_other", "name": "Ken Sato"})
	waitScreenBar(t, ctx, "requested|Ken Sato asked to see the screen||true")

	// A company that does not let agents ask: no button.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "never"})
	waitScreenBar(t, ctx, "never|||false")

	// In Japanese.
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "idle"})
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitScreenBar(t, ctx, "idle||お客様の画面を見る|true")
	send(t, w, 1, map[string]any{"type": "screenshare", "state": "sharing", "viewer_id": "v_other", "name": "Ken Sato"})
	waitScreenBar(t, ctx, "sharing|お客様の画面を表示中||true")
	waitJS(t, ctx, "the Japanese panel", `document.querySelector('.viewer-screen-title').textContent === 'お客様の画面（表示のみ）' && document.querySelector('.viewer-screen-stop').textContent === '表示をやめる'`)
	shot(t, ctx, "agent-screenshare-ja")
	w.checkClean(t)
}
