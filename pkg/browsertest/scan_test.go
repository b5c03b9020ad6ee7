package browsertest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMain checks that the tests leave no goroutine behind (servers,
// scans), once the shared browser has stopped.
func TestMain(m *testing.M) {
	os.Exit(Main(m))
}

// loopPage plays a canvas through a real WebRTC connection inside the page
// (VP8 at 1.5 Mbit/s, as Tandem sends) into a video.viewer-video, so that
// the scanner reads decoded VP8 frames as in a viewer. The canvas shows
// moving blocks of many colours, grey (the mask's 128) among them; with
// window.canary = true it also shows a canary (magenta and black 8 px
// squares, 48×32) moving in the left half only; window.still = true stops
// all movement while frames go on being sent.
const loopPage = `<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">
<video class="viewer-video" autoplay muted playsinline style="width:480px;height:300px"></video>
<canvas id="c" width="960" height="600" style="width:96px"></canvas>
<script>
window.canary = false;
window.still = false;
const c = document.getElementById('c'), g = c.getContext('2d');
// The canary's tile: 16×16, magenta and black squares of 8 px.
const tile = document.createElement('canvas');
tile.width = tile.height = 16;
const tg = tile.getContext('2d');
tg.fillStyle = '#f0f'; tg.fillRect(0, 0, 16, 16);
tg.fillStyle = '#000'; tg.fillRect(8, 0, 8, 8); tg.fillRect(0, 8, 8, 8);
const pattern = g.createPattern(tile, 'repeat');
// Colours that must not count: the canary pages' palette and saturated
// colours a page may have, each apart from the others.
const colours = ['#808080', '#1a7f5a', '#2e8b57', '#dde8f0', '#123', '#000', '#00f', '#0af', '#0c0', '#ff0', '#f80', '#f00', '#fff'];
let n = 0;
function draw() {
  if (!window.still) n++;
  g.fillStyle = '#f4f7fa';
  g.fillRect(0, 0, 960, 600);
  colours.forEach((col, i) => {
    g.fillStyle = col;
    g.fillRect(20 + ((n * 3 + i * 70) % 800), 20 + (i % 4) * 140 + (i > 8 ? 60 : 0), 60, 40);
  });
  g.fillStyle = '#123';
  g.font = '20px sans-serif';
  g.fillText('frame ' + n + ' テスト', 500, 580);
  if (window.canary) {
    const x = 40 + (n * 5) % 360, y = 100 + (n * 3) % 300;
    g.save();
    g.translate(x, y);
    g.fillStyle = pattern;
    g.fillRect(0, 0, 48, 32);
    g.restore();
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
(async () => {
  const stream = c.captureStream(30);
  const pc1 = new RTCPeerConnection(), pc2 = new RTCPeerConnection();
  pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
  pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
  const v = document.querySelector('video');
  pc2.ontrack = (e) => { v.srcObject = new MediaStream([e.track]); };
  const tr = pc1.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly', sendEncodings: [{ maxBitrate: 1500000 }] });
  tr.setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs.filter((x) => x.mimeType === 'video/VP8'));
  const p = tr.sender.getParameters();
  p.degradationPreference = 'maintain-resolution';
  await tr.sender.setParameters(p);
  await pc1.setLocalDescription();
  await pc2.setRemoteDescription(pc1.localDescription);
  await pc2.setLocalDescription();
  await pc1.setRemoteDescription(pc2.localDescription);
  window.tandemViewer = { pc: pc2 };
})();
</script></body></html>`

func loopTab(t *testing.T) context.Context {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, loopPage) }))
	t.Cleanup(srv.Close)
	ctx, _ := NewTab(t, 800, 600, false)
	Run(t, ctx, "open the loop page", chromedp.Navigate(srv.URL))
	WaitJS(t, ctx, "the loop plays", `document.querySelector('video').videoWidth === 960`)
	return ctx
}

var halves = []Region{{Name: "left", X: 0, Y: 0, W: 0.5, H: 1}, {Name: "right", X: 0.5, Y: 0, W: 0.5, H: 1}}

// waitFrames waits until the scan examined n frames.
func waitFrames(t *testing.T, sc *Scan, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for sc.Snapshot(t).Frames < n {
		if time.Now().After(deadline) {
			t.Fatalf("the scan saw only %v", sc.Snapshot(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestScanFindsTheCanary proves the scanner both ways on decoded VP8: a
// picture full of other colours, grey among them, never counts; the canary
// counts in (nearly) every frame, in its region only; a still picture does
// not count as moving.
func TestScanFindsTheCanary(t *testing.T) {
	ctx := loopTab(t)

	sc := StartScan(t, ctx, halves)
	waitFrames(t, sc, 90)
	plain := sc.Stop(t)
	t.Logf("without the canary: %v", plain)
	if plain.Method != "MediaStreamTrackProcessor" {
		t.Errorf("method = %s: this Chromium should have MediaStreamTrackProcessor", plain.Method)
	}
	// VP8's ringing at the edges of saturated blocks may make a stray
	// sample or two magenta-like, never a canary's worth.
	if plain.Shown != 0 || plain.Worst >= ScanMinSamples/2 {
		t.Errorf("without the canary: %d frames showed it, worst %d samples at %v", plain.Shown, plain.Worst, plain.WorstBox)
	}
	if plain.Moved < plain.Frames/2 {
		t.Errorf("the moving picture moved in only %d of %d frames", plain.Moved, plain.Frames)
	}
	// Every decoded frame is examined (a frame or two may be in flight at
	// either end).
	if plain.Decoded < 0 || plain.Frames < plain.Decoded-3 {
		t.Errorf("examined %d frames of %d decoded", plain.Frames, plain.Decoded)
	}
	if plain.Sizes["960x600"] != plain.Frames || plain.Formats["I420"] != plain.Frames {
		t.Errorf("sizes %v, formats %v; want 960x600 I420", plain.Sizes, plain.Formats)
	}

	Run(t, ctx, "show the canary", chromedp.Evaluate[chromedp.Void](`window.canary = true`))
	WaitJS(t, ctx, "the canary drawn", `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	time.Sleep(500 * time.Millisecond) // frames drawn before it have been decoded
	sc = StartScan(t, ctx, halves)
	waitFrames(t, sc, 90)
	shown := sc.Stop(t)
	t.Logf("with the canary: %v", shown)
	if shown.Shown < shown.Frames*95/100 || shown.Regions["left"] < shown.Frames*95/100 {
		t.Errorf("the canary showed in %d frames (left half %d) of %d", shown.Shown, shown.Regions["left"], shown.Frames)
	}
	if shown.Regions["right"] != 0 {
		t.Errorf("the canary showed in the right half in %d frames; it never goes there", shown.Regions["right"])
	}
	if b := shown.WorstBox; shown.Worst < 150 || b[0]+b[2] > 0.5 || b[2] > 0.1 || b[3] > 0.1 || shown.WorstSize != "960x600" {
		t.Errorf("worst frame: %d samples in box %v at %s; want the 48×32 canary's ~190 in the left half of 960x600", shown.Worst, b, shown.WorstSize)
	}
	if len(plain.Hits) != 0 || len(shown.Hits) != 10 || shown.Hits[0].Index != 0 || shown.Hits[9].Index != 9 || shown.Hits[9].Samples < ScanMinSamples {
		t.Errorf("first frames with the canary: without it %v, with it %v; want none, then frames 0 to 9", plain.Hits, shown.Hits)
	}

	Run(t, ctx, "hold still", chromedp.Evaluate[chromedp.Void](`window.still = true`))
	time.Sleep(time.Second)
	sc = StartScan(t, ctx, halves)
	waitFrames(t, sc, 60)
	still := sc.Stop(t)
	t.Logf("still: %v", still)
	if still.Moved > 1 {
		t.Errorf("a still picture moved in %d of %d frames", still.Moved, still.Frames)
	}
}

// TestScanFollowsNewTrack: when the video gets another track (a viewer's
// reconnect) the scan goes on with it; here it is the canvas's own track,
// whose frames come in another pixel format than decoded VP8.
func TestScanFollowsNewTrack(t *testing.T) {
	ctx := loopTab(t)
	Run(t, ctx, "show the canary", chromedp.Evaluate[chromedp.Void](`window.canary = true`))
	sc := StartScan(t, ctx, halves)
	waitFrames(t, sc, 20)
	Run(t, ctx, "another track", chromedp.Evaluate[chromedp.Void](`document.querySelector('video').srcObject = document.getElementById('c').captureStream(30)`))
	WaitJS(t, ctx, "the scan follows", `window.__tandemScan.tracks === 2`)
	before := sc.Snapshot(t).Frames
	waitFrames(t, sc, before+40)
	r := sc.Stop(t)
	t.Logf("%v", r)
	if r.Tracks != 2 || r.Shown < r.Frames*9/10 || r.Regions["right"] != 0 {
		t.Errorf("across two tracks: %v", r)
	}
	if len(r.Formats) < 2 {
		t.Logf("the canvas track's frames came as %v, like the decoded ones", r.Formats)
	}
}

// TestScanFallback: without MediaStreamTrackProcessor the scan reads the
// presented frames through a canvas, and still tells canary from none.
func TestScanFallback(t *testing.T) {
	ctx := loopTab(t)
	Run(t, ctx, "hide MediaStreamTrackProcessor", chromedp.Evaluate[chromedp.Void](`delete window.MediaStreamTrackProcessor`))
	sc := StartScan(t, ctx, halves)
	waitFrames(t, sc, 30)
	plain := sc.Stop(t)
	Run(t, ctx, "show the canary", chromedp.Evaluate[chromedp.Void](`window.canary = true`))
	time.Sleep(500 * time.Millisecond)
	sc = StartScan(t, ctx, halves)
	waitFrames(t, sc, 30)
	shown := sc.Stop(t)
	t.Logf("fallback without canary: %v", plain)
	t.Logf("fallback with canary: %v", shown)
	if plain.Method != "requestVideoFrameCallback" || plain.Shown != 0 || plain.Worst >= ScanMinSamples/2 {
		t.Errorf("fallback without the canary: %v", plain)
	}
	if shown.Shown < shown.Frames*9/10 || shown.Regions["right"] != 0 {
		t.Errorf("fallback with the canary: %v", shown)
	}
}

// TestMagentaLike: the canary's magenta counts; grey, white, black and the
// pages' other colours do not.
func TestMagentaLike(t *testing.T) {
	for _, c := range []struct {
		r, g, b uint8
		want    bool
	}{
		{255, 0, 255, true}, {230, 20, 230, true},
		{128, 128, 128, false}, {255, 255, 255, false}, {0, 0, 0, false}, {255, 0, 0, false}, {0, 0, 255, false},
		{0, 255, 0, false}, {255, 136, 0, false}, {26, 127, 90, false}, {221, 232, 240, false}, {255, 192, 203, false},
	} {
		if got := MagentaLike(c.r, c.g, c.b); got != c.want {
			t.Errorf("MagentaLike(%d, %d, %d) = %v, want %v", c.r, c.g, c.b, got, c.want)
		}
	}
}
