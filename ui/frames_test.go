package ui

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// The fake worker streams one VP8 key frame over and over. The test browser
// makes it: it draws a picture (a test pattern, or a screenshot of the demo
// shop) and encodes it with WebCodecs, libvpx inside Chromium.

const encodeJS = `(async (w, h, src) => {
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext('2d');
  if (src) {
    const img = await createImageBitmap(await (await fetch(src)).blob());
    g.drawImage(img, 0, 0, w, h);
  } else {
    const grad = g.createLinearGradient(0, 0, w, h);
    grad.addColorStop(0, '#1e3a8a');
    grad.addColorStop(1, '#0f766e');
    g.fillStyle = grad;
    g.fillRect(0, 0, w, h);
    g.strokeStyle = 'rgba(255,255,255,0.4)';
    for (let x = 0; x <= w; x += 40) { g.beginPath(); g.moveTo(x, 0); g.lineTo(x, h); g.stroke(); }
    for (let y = 0; y <= h; y += 40) { g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke(); }
    g.fillStyle = '#fbbf24';
    g.beginPath(); g.arc(w / 2, h / 2, Math.min(w, h) / 6, 0, 2 * Math.PI); g.fill();
  }
  const frame = new VideoFrame(canvas, { timestamp: 0 });
  const chunks = [];
  let failure = null;
  const enc = new VideoEncoder({
    output: (c) => { const b = new Uint8Array(c.byteLength); c.copyTo(b); chunks.push({ key: c.type === 'key', b }); },
    error: (e) => { failure = e; },
  });
  enc.configure({ codec: 'vp8', width: w, height: h, bitrate: 8000000, framerate: 5 });
  enc.encode(frame, { keyFrame: true });
  frame.close();
  await enc.flush();
  enc.close();
  if (failure) throw failure;
  if (!chunks.length || !chunks[0].key) throw new Error('no key frame');
  let s = '';
  for (const x of chunks[0].b) s += String.fromCharCode(x);
  return btoa(s);
})(%d, %d, %q)`

// helperTab opens a tab for the test's own work (frames, demo screenshots);
// its page errors are not the pages' errors.
func helperTab(t *testing.T, w, h int64) context.Context {
	t.Helper()
	return browsertest.PlainTab(t, w, h)
}

// encodeFrame returns one VP8 key frame of w×h: a test pattern, or the PNG
// picture scaled to that size.
func encodeFrame(t *testing.T, srv *fakeServer, png []byte, w, h int) []byte {
	t.Helper()
	ctx := helperTab(t, 640, 480)
	run(t, ctx, "open blank page", chromedp.Navigate(srv.URL+"/test/blank"))
	src := ""
	if png != nil {
		src = "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	}
	b64 := eval[string](t, ctx, fmt.Sprintf(encodeJS, w, h, src))
	frame, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(frame) < 10 {
		t.Fatalf("encoded frame: %d bytes, %v", len(frame), err)
	}
	// A VP8 key frame starts with a frame tag whose bit 0 is 0, then the
	// start code 9d 01 2a (RFC 6386, section 9.1).
	if frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		t.Fatalf("not a VP8 key frame: % x", frame[:10])
	}
	return frame
}

// demoShot returns a w×h screenshot of a demo shop page, as the hosted
// browser would show it.
func demoShot(t *testing.T, srv *fakeServer, path string, w, h int) []byte {
	t.Helper()
	ctx := helperTab(t, int64(w), int64(h))
	run(t, ctx, "open demo page", chromedp.Navigate(srv.URL+path))
	run(t, ctx, "wait for fonts", chromedp.Evaluate[chromedp.Void]("document.fonts.ready", chromedp.EvalAwaitPromise))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot demo: %v", err)
	}
	return png
}
