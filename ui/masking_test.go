package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"
)

// The viewers' side of masking (docs/protocol.md, issue 4): the customer's
// outlines of what the agent cannot see, the agent's "masking paused"
// banner, and the masked_field refusal. The fake worker sends the notices
// as the real one will; pkg/protocol.Notice has no fields for them, so they
// go out as raw JSON.

// noticeJSON sends raw on the n-th "input" channel (1-based, in the order
// the viewers opened them).
func (w *fakeWorker) noticeJSON(n int, raw string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < 1 || n > len(w.inputs) {
		return fmt.Errorf("no input channel %d of %d", n, len(w.inputs))
	}
	return w.inputs[n-1].SendText(raw)
}

// waitInput waits until the page's "input" channel is open and the worker
// has its n-th one open too, so that a notice sent on it arrives.
func (w *fakeWorker) waitInput(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	waitJS(t, ctx, "the page's input channel", `window.tandemViewer?.input?.readyState === 'open'`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.mu.Lock()
		ok := len(w.inputs) >= n && w.inputs[n-1].ReadyState() == webrtc.DataChannelStateOpen
		have := len(w.inputs)
		w.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker has %d input channels, want channel %d open", have, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *fakeWorker) inputCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.inputs)
}

// send sends a notice (any JSON value) on the n-th input channel.
func send(t *testing.T, w *fakeWorker, n int, notice any) {
	t.Helper()
	b, err := json.Marshal(notice)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.noticeJSON(n, string(b)); err != nil {
		t.Fatalf("send %s: %v", b, err)
	}
}

func masksNotice(width, height int, rects ...[4]float64) map[string]any {
	if rects == nil {
		rects = [][4]float64{} // an empty list, not null
	}
	return map[string]any{"type": "masks", "width": width, "height": height, "rects": rects}
}

// overlay is what the overlay canvas shows, read back from its pixels.
type overlay struct {
	Count   string    // the stage's data-mask-count
	Mode    string    // the stage's data-mask-outlines
	CanvasW float64   // the canvas, device px
	WantW   float64   // the stage's width × devicePixelRatio
	Inside  int       // non-transparent pixels inside the expected outlines (grown by 3 CSS px)
	Outside int       // non-transparent pixels anywhere else
	Centres []float64 // alpha in the middle of each expected area
	Edges   []float64 // the highest alpha across the left edge of each expected area
}

// probeJS reads the overlay canvas. The test maps the remote rects to the
// canvas itself, as object-fit: contain lays the video out (not with the
// page's code), clipped to the picture.
const probeJS = `((rw, rh, rects) => {
  const stageEl = document.querySelector('.viewer-stage');
  const v = document.querySelector('.viewer-video');
  const c = document.querySelector('.viewer-overlay');
  const s = stageEl.getBoundingClientRect();
  const r = v.getBoundingClientRect();
  const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const pw = v.videoWidth * scale, ph = v.videoHeight * scale;
  const left = r.left - s.left + (r.width - pw) / 2, top = r.top - s.top + (r.height - ph) / 2;
  const kx = c.width / s.width, ky = c.height / s.height;
  const boxes = rects.map(([x, y, w, h]) => ({
    x0: (left + Math.max(0, x) * pw / rw) * kx, y0: (top + Math.max(0, y) * ph / rh) * ky,
    x1: (left + Math.min(rw, x + w) * pw / rw) * kx, y1: (top + Math.min(rh, y + h) * ph / rh) * ky,
  }));
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const alpha = (x, y) => data[(Math.floor(y) * c.width + Math.floor(x)) * 4 + 3];
  const px = 3 * kx, py = 3 * ky;
  let inside = 0, outside = 0;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      if (!data[(y * c.width + x) * 4 + 3]) continue;
      if (boxes.some((b) => x >= b.x0 - px && x < b.x1 + px && y >= b.y0 - py && y < b.y1 + py)) inside++;
      else outside++;
    }
  }
  return {
    Count: stageEl.dataset.maskCount ?? '', Mode: stageEl.dataset.maskOutlines ?? '',
    CanvasW: c.width, WantW: Math.round(s.width * devicePixelRatio), Inside: inside, Outside: outside,
    Centres: boxes.map((b) => alpha((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2)),
    Edges: boxes.map((b) => Math.max(...[-2, -1, 0, 1].map((d) => alpha(Math.max(0, b.x0 + d), (b.y0 + b.y1) / 2)))),
  };
})(%d, %d, %s)`

func probe(t *testing.T, ctx context.Context, rw, rh int, rects [][4]float64) overlay {
	t.Helper()
	if rects == nil {
		rects = [][4]float64{}
	}
	b, _ := json.Marshal(rects)
	return eval[overlay](t, ctx, fmt.Sprintf(probeJS, rw, rh, b))
}

// drawn reports whether the overlay shows exactly these outlines: the count,
// a light fill (at most 8%) in each, a line on each left edge, and nothing
// elsewhere.
func (o overlay) drawn(n int) error {
	switch {
	case o.Count != fmt.Sprint(n) || o.Mode != "on":
		return fmt.Errorf("data-mask-count %q, data-mask-outlines %q; want %d, on", o.Count, o.Mode, n)
	case o.CanvasW != o.WantW:
		return fmt.Errorf("canvas is %v px wide, want %v (the stage × devicePixelRatio)", o.CanvasW, o.WantW)
	case o.Outside != 0:
		return fmt.Errorf("%d pixels drawn away from the outlines", o.Outside)
	case len(o.Centres) != n || len(o.Edges) != n:
		return fmt.Errorf("probed %d areas, want %d", len(o.Centres), n)
	}
	for i := range n {
		if o.Centres[i] <= 0 || o.Centres[i] > math.Ceil(0.08*255) {
			return fmt.Errorf("area %d: fill alpha %v, want a light fill (1..%v)", i, o.Centres[i], math.Ceil(0.08*255))
		}
		if o.Edges[i] < 60 {
			return fmt.Errorf("area %d: no line on the left edge (alpha %v)", i, o.Edges[i])
		}
	}
	return nil
}

// clear reports whether the overlay shows nothing and counts nothing.
func (o overlay) clear(mode string) error {
	if o.Count != "0" || o.Mode != mode || o.Inside+o.Outside != 0 {
		return fmt.Errorf("data-mask-count %q, data-mask-outlines %q, %d pixels drawn; want 0, %s, none", o.Count, o.Mode, o.Inside+o.Outside, mode)
	}
	return nil
}

// waitOverlay polls the overlay until check passes (a resize redraws on the
// next frame).
func waitOverlay(t *testing.T, ctx context.Context, what string, rw, rh int, rects [][4]float64, check func(overlay) error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check(probe(t, ctx, rw, rh, rects))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCustomerMaskOutlines: the customer sees a light outline of every area
// the agent cannot see, mapped through the letterboxing on any screen
// density, redrawn on resize, behind a switch that is remembered.
func TestCustomerMaskOutlines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		w, h   int64
		mobile bool
		resize chromedp.Action[chromedp.Void]
	}{
		// A 4:3 picture in a wide stage (pillarboxed), at 1 device px per CSS px.
		{"desktop", 1280, 800, false, chromedp.EmulateViewport(1000, 700)},
		// In a tall one (letterboxed), at 2.
		{"phone", 390, 844, true, chromedp.EmulateViewport(430, 700, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			w := srv.worker
			w.setFrame(encodeFrame(t, srv, nil, 640, 480), 640, 480)
			ctx, _ := newTab(t, tc.w, tc.h, tc.mobile)
			run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
			waitLive(t, ctx)
			w.waitInput(t, ctx, 1)

			// Before the worker says what it masks, nothing is promised.
			if !eval[bool](t, ctx, `document.querySelector('.viewer-masks').hidden`) {
				t.Errorf("the outline switch shows before any masks notice")
			}
			if err := probe(t, ctx, 640, 480, nil).clear("on"); err != nil {
				t.Errorf("before any masks notice: %v", err)
			}

			// A, B, and C that runs off the picture's bottom right (clipped).
			rects := [][4]float64{{40, 60, 200, 50}, {400, 300, 120, 80}, {560, 400, 200, 200}}
			send(t, w, 1, masksNotice(640, 480, rects...))
			waitOverlay(t, ctx, "outlines drawn", 640, 480, rects, func(o overlay) error { return o.drawn(3) })
			if got := eval[string](t, ctx, `(() => {
				const s = document.querySelector('.viewer-masks');
				return [s.hidden, s.querySelector('input').checked, s.textContent.trim()].join('|');
			})()`); got != "false|true|Outline what the agent cannot see" {
				t.Errorf("outline switch (hidden|checked|text) = %q", got)
			}
			if over := eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth"); over {
				t.Errorf("the customer view scrolls sideways with the outline switch")
			}
			shot(t, ctx, "customer-masks-"+tc.name)

			// Each notice replaces the last; rects that are not four numbers
			// with a size are dropped, a notice without a size is ignored.
			send(t, w, 1, map[string]any{"type": "masks", "width": 640, "height": 480,
				"rects": []any{[]any{10, 10, "x", 5}, []any{10, 10, -5, 5}, []any{10, 10, 5}, rects[1]}})
			waitOverlay(t, ctx, "one outline left", 640, 480, rects[1:2], func(o overlay) error { return o.drawn(1) })
			// The toast after it shows that the page has read the bad one.
			send(t, w, 1, map[string]any{"type": "masks", "width": 0, "height": 480, "rects": rects})
			send(t, w, 1, map[string]any{"type": "refused", "reason": "from_a_newer_worker", "message": "after the bad notice"})
			waitJS(t, ctx, "toast after the bad notice", `document.querySelector('.viewer-toast').textContent === 'after the bad notice'`)
			if err := probe(t, ctx, 640, 480, rects[1:2]).drawn(1); err != nil {
				t.Errorf("after a notice without a size: %v", err)
			}
			send(t, w, 1, masksNotice(640, 480, rects...))
			waitOverlay(t, ctx, "three again", 640, 480, rects, func(o overlay) error { return o.drawn(3) })

			// A resize lays the picture out anew; the outlines follow.
			run(t, ctx, "resize", tc.resize)
			waitOverlay(t, ctx, "outlines after the resize", 640, 480, rects, func(o overlay) error { return o.drawn(3) })

			// The switch turns them off, and the choice outlives a reload.
			run(t, ctx, "turn the outlines off", chromedp.Click(chromedp.CSS(".viewer-masks-toggle")))
			waitOverlay(t, ctx, "outlines off", 640, 480, rects, func(o overlay) error { return o.clear("off") })
			n := w.inputCount()
			run(t, ctx, "reload", chromedp.Reload())
			waitLive(t, ctx)
			w.waitInput(t, ctx, n+1)
			send(t, w, n+1, masksNotice(640, 480, rects...))
			waitJS(t, ctx, "the switch after the reload", `!document.querySelector('.viewer-masks').hidden`)
			if eval[bool](t, ctx, `document.querySelector('.viewer-masks-toggle').checked`) {
				t.Errorf("the switch is on again after a reload")
			}
			if err := probe(t, ctx, 640, 480, rects).clear("off"); err != nil {
				t.Errorf("after the reload: %v", err)
			}
			run(t, ctx, "turn the outlines on", chromedp.Click(chromedp.CSS(".viewer-masks-toggle")))
			waitOverlay(t, ctx, "outlines on again", 640, 480, rects, func(o overlay) error { return o.drawn(3) })

			// The agent's masking state is none of the customer's business;
			// the masks notice after it proves it arrived.
			send(t, w, n+1, map[string]any{"type": "masking", "state": "paused", "reason": "navigating"})
			send(t, w, n+1, masksNotice(640, 480, rects[0]))
			waitOverlay(t, ctx, "one outline", 640, 480, rects[:1], func(o overlay) error { return o.drawn(1) })
			if got := eval[string](t, ctx, `(document.querySelector('.viewer-masking') ? 'banner ' : '') + (document.querySelector('.viewer-stage').dataset.masking ?? '')`); got != "" {
				t.Errorf("the customer's view shows the agent's masking state: %q", got)
			}

			// An empty list clears the outlines; the switch stays.
			send(t, w, n+1, masksNotice(640, 480))
			waitOverlay(t, ctx, "outlines cleared", 640, 480, rects, func(o overlay) error { return o.clear("on") })
			if eval[bool](t, ctx, `document.querySelector('.viewer-masks').hidden`) {
				t.Errorf("the switch went away with the outlines")
			}
			w.checkClean(t)
		})
	}
}

// TestAgentMaskingPaused: while the worker holds the agent's picture the
// console says so over the video, with the reason, in the page's language;
// a refused keystroke into a masked field has its own words; the agent's
// overlay never outlines masks.
func TestAgentMaskingPaused(t *testing.T) {
	const (
		pausedEN = "Masking paused — the picture is held until Tandem can be sure private fields are covered."
		pausedJA = "マスキング一時停止中 — 非公開の欄が確実に隠れるまで、画面を止めています。"
	)
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 1280, 720), 1280, 720)
	ctx := agentLive(t, srv, "s_mask")

	banner := func() string {
		return eval[string](t, ctx, `(() => {
			const b = document.querySelector('.viewer-masking');
			const r = b.querySelector('.viewer-masking-reason');
			return [document.querySelector('.viewer-stage').dataset.masking ?? '', b.checkVisibility(),
				b.querySelector('.viewer-masking-title').textContent, r.hidden ? '' : r.textContent].join('|');
		})()`)
	}
	if got := banner(); got != "|false|"+pausedEN+"|" {
		t.Errorf("before any masking notice: %q, want no state and no banner", got)
	}
	if eval[bool](t, ctx, `!!document.querySelector('.viewer-masks')`) {
		t.Errorf("the agent's view has the customer's outline switch")
	}

	// A keystroke into a masked field was refused.
	send(t, w, 1, map[string]any{"type": "refused", "reason": "masked_field", "message": "That field is private: the agent cannot type into it."})
	waitJS(t, ctx, "masked_field toast", `(() => { const e = document.querySelector('.viewer-toast'); return !e.hidden && e.textContent === 'That field is private: you cannot type into it.'; })()`)

	// Paused while the page loads: the banner, over the video.
	send(t, w, 1, map[string]any{"type": "masking", "state": "paused", "reason": "navigating"})
	waitJS(t, ctx, "paused", `document.querySelector('.viewer-stage').dataset.masking === 'paused'`)
	if got, want := banner(), "paused|true|"+pausedEN+"|The page is loading."; got != want {
		t.Errorf("paused banner = %q, want %q", got, want)
	}
	if !eval[bool](t, ctx, `(() => {
		const b = document.querySelector('.viewer-masking').getBoundingClientRect();
		const v = document.querySelector('.viewer-video').getBoundingClientRect();
		const top = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
		return b.width > 0 && b.top >= v.top && b.bottom <= v.bottom && b.left >= v.left && b.right <= v.right &&
			document.querySelector('.viewer-masking').contains(top);
	})()`) {
		t.Errorf("the banner is not on top of the video")
	}
	shot(t, ctx, "agent-masking-paused-desktop")

	// In Japanese, and with the other reasons.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese banner", fmt.Sprintf(`document.querySelector('.viewer-masking-title').textContent === %q`, pausedJA))
	if got, want := banner(), "paused|true|"+pausedJA+"|ページを読み込んでいます。"; got != want {
		t.Errorf("Japanese banner = %q, want %q", got, want)
	}
	shot(t, ctx, "agent-masking-paused-desktop-ja")
	for _, tc := range []struct{ reason, want string }{
		{"unmeasured", "ページが変化しています。"},
		{"script_gone", "マスキングを利用できません。"},
		{"error", "マスキングを利用できません。"},
		{"from_a_newer_worker", ""}, // no words for it: the banner alone
	} {
		send(t, w, 1, map[string]any{"type": "masking", "state": "paused", "reason": tc.reason})
		waitJS(t, ctx, "reason "+tc.reason, fmt.Sprintf(`(() => {
			const r = document.querySelector('.viewer-masking-reason');
			return r.hidden ? %q === '' : r.textContent === %q;
		})()`, tc.want, tc.want))
		if got, want := banner(), "paused|true|"+pausedJA+"|"+tc.want; got != want {
			t.Errorf("banner for %s = %q, want %q", tc.reason, got, want)
		}
	}
	send(t, w, 1, map[string]any{"type": "refused", "reason": "masked_field", "message": "worker text"})
	waitJS(t, ctx, "Japanese masked_field toast", `document.querySelector('.viewer-toast').textContent === 'この欄は非公開のため、入力できません。'`)

	// Active again: the banner goes.
	send(t, w, 1, map[string]any{"type": "masking", "state": "active"})
	waitJS(t, ctx, "active", `document.querySelector('.viewer-stage').dataset.masking === 'active'`)
	if got := banner(); got != "active|false|"+pausedJA+"|" {
		t.Errorf("active = %q, want the banner hidden", got)
	}

	// The agent never draws masks, even if a notice came; the paused notice
	// after it proves it arrived.
	send(t, w, 1, masksNotice(1280, 720, [4]float64{100, 100, 400, 200}))
	send(t, w, 1, map[string]any{"type": "masking", "state": "paused", "reason": "unmeasured"})
	waitJS(t, ctx, "paused again", `document.querySelector('.viewer-stage').dataset.masking === 'paused'`)
	if got := eval[string](t, ctx, `(() => {
		const c = document.querySelector('.viewer-overlay');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
		return n + '|' + (document.querySelector('.viewer-stage').dataset.maskCount ?? '');
	})()`); got != "0|" {
		t.Errorf("agent overlay (drawn pixels|data-mask-count) = %q, want nothing", got)
	}

	// The session ends: no banner over the ended state.
	w.end("agent_ended")
	waitJS(t, ctx, "ended", `document.querySelector('.viewer')?.dataset.state === 'ended'`)
	if got := banner(); got != "|false|"+pausedJA+"|" {
		t.Errorf("after the end = %q, want no state and no banner", got)
	}
	w.checkClean(t)
}
