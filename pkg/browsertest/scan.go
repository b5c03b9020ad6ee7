package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A scan looks for the canary (pkg/canary: magenta and black squares) in
// every frame a viewer tab decodes. It counts in the chroma planes only: a
// sample is magenta-like when both U and V are above ScanChromaMin. The
// canary's magenta squares decode from Tandem's VP8 at 1.5 Mbit/s as about
// U 224, V 240, samples across a magenta/black edge as about 176/184; grey
// (the mask, 128/128), white, black, and the greens, blues and navy of the
// canary pages have V at or below 128. VP8's ringing at the edge of
// saturated blocks (pure red next to blue, say) can make a stray sample or
// two magenta-like, so a frame shows the canary only from ScanMinSamples.
const (
	// ScanChromaMin is the U and V a chroma sample must both exceed to be
	// magenta-like.
	ScanChromaMin = 170
	// ScanMinSamples is how many magenta-like chroma samples (each 2×2
	// pixels) make a frame, or a region of it, "show the canary". A 48×32
	// canary has about 190 of them.
	ScanMinSamples = 12
	// scanStep is the size, in pixels, of the blocks whose mean luma tells
	// a moving picture from a held one (a repeated picture that the encoder
	// refines must not count); scanMoveDelta and scanMoveSamples say how
	// many of the means must change by how much.
	scanStep        = 16
	scanMoveDelta   = 12
	scanMoveSamples = 2
)

// Region is a part of the video picture, in fractions of its width and
// height.
type Region struct {
	Name       string
	X, Y, W, H float64
}

// ScanResult is what a scan saw.
type ScanResult struct {
	Method     string         // MediaStreamTrackProcessor, or requestVideoFrameCallback where that is missing
	Frames     int            // decoded frames examined
	Decoded    int            // frames the viewer's peer decoded meanwhile (WebRTC stats); -1 when unknown
	Shown      int            // frames with at least ScanMinSamples magenta-like samples
	Worst      int            // the most magenta-like samples in one frame
	WorstIndex int            // that frame's number, from 0; -1 when no frame had any
	WorstAt    time.Duration  // when it came, from the start of the scan
	WorstBox   [4]float64     // where its magenta lay: x, y, w, h in fractions of the frame
	WorstSize  string         // its picture size, "960x600"
	Hits       []ScanHit      // the first frames (up to 10) that showed the canary
	Regions    map[string]int // frames in which each region showed the canary
	Moved      int            // frames that visibly differ from the frame before
	Sizes      map[string]int // frames per picture size, "960x600"
	Formats    map[string]int // frames per VideoFrame pixel format
	Tracks     int            // video tracks scanned (a reconnect brings a new one)
	Elapsed    time.Duration
	Errors     []string // what went wrong in the page while scanning
}

// ScanHit is one frame that showed the canary.
type ScanHit struct {
	Index   int           // the frame's number in the scan, from 0
	At      time.Duration // when it came, from the start of the scan
	Size    string        // its picture size
	Samples int           // its magenta-like chroma samples
	Box     [4]float64    // where they lay: x, y, w, h in fractions of the frame
}

func (h ScanHit) String() string {
	return fmt.Sprintf("frame %d at %v (%s): %d samples in %.3f", h.Index, h.At.Round(time.Millisecond), h.Size, h.Samples, h.Box)
}

// FPS is the rate of examined frames.
func (r ScanResult) FPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Frames) / r.Elapsed.Seconds()
}

// String sums the result up for a test log.
func (r ScanResult) String() string {
	var regions []string
	for name, n := range r.Regions {
		regions = append(regions, fmt.Sprintf("%s %d", name, n))
	}
	slices.Sort(regions)
	return fmt.Sprintf("%d frames in %v (%.1f/s, %d decoded, %s, sizes %v, formats %v, %d tracks), %d moved; canary in %d frames, worst %d samples in frame %d at %v (%s) box %.3f; regions: %s",
		r.Frames, r.Elapsed.Round(time.Millisecond), r.FPS(), r.Decoded, r.Method, r.Sizes, r.Formats, r.Tracks, r.Moved,
		r.Shown, r.Worst, r.WorstIndex, r.WorstAt.Round(time.Millisecond), r.WorstSize, r.WorstBox, strings.Join(regions, ", "))
}

// NewLongTab is NewTab (a fresh browser context, page errors fail the
// test) for runs longer than NewTab's 90 s, such as a scan of thousands of
// frames: the tab lives until the test ends or life has passed. chromedp
// closes a tab when the context of its first action ends, so the limit has
// to be set before that action.
func NewLongTab(t testing.TB, w, h int64, life time.Duration) (context.Context, *PageErrors) {
	t.Helper()
	return openTab(t, w, h, false, life)
}

// NewLongPhoneTab is NewLongTab with phone emulation (touch, a mobile
// viewport, pixel ratio 2), as NewTab's mobile.
func NewLongPhoneTab(t testing.TB, w, h int64, life time.Duration) (context.Context, *PageErrors) {
	t.Helper()
	return openTab(t, w, h, true, life)
}

// Scan is a running scan of one viewer tab's video.
type Scan struct {
	ctx     context.Context
	regions []Region
	stopped bool
}

// StartScan starts examining every frame that the tab's
// video.viewer-video decodes: it taps the video's track (a clone of it, so
// the page's own playback is untouched) with MediaStreamTrackProcessor and
// copies each VideoFrame out. It follows the video to a new track when the
// viewer reconnects. It waits until a track is tapped; Stop ends it (the
// test's cleanup does if the test does not). One scan at a time per tab.
func StartScan(t testing.TB, ctx context.Context, regions []Region) *Scan {
	t.Helper()
	type jsRegion struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
		W float64 `json:"w"`
		H float64 `json:"h"`
	}
	rs := make([]jsRegion, len(regions))
	for i, r := range regions {
		rs[i] = jsRegion{r.X, r.Y, r.W, r.H}
	}
	raw, err := json.Marshal(rs)
	if err != nil {
		t.Fatalf("scan regions: %v", err)
	}
	// The scanner is the only maker of VideoFrames in the page (the views
	// play a <video>). When the viewer's connection closes under it,
	// Chromium errors the processor's stream, and the frames it had queued
	// can no longer be read, and so not closed: Chromium then warns of
	// them. That is the scanner's, not the page's.
	if errs := errorsOf(ctx); errs != nil {
		errs.Allow("A VideoFrame was garbage collected without being closed")
	}
	js := fmt.Sprintf(scanJS, ScanChromaMin, ScanMinSamples, scanStep, scanMoveDelta, scanMoveSamples, raw)
	Run(t, ctx, "start the video scan", chromedp.Evaluate[chromedp.Void](js, chromedp.EvalAwaitPromise))
	s := &Scan{ctx: ctx, regions: regions}
	t.Cleanup(func() {
		if !s.stopped {
			_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.__tandemScan && window.__tandemScan.stop()`, chromedp.EvalAwaitPromise))
		}
	})
	WaitJS(t, ctx, "the scan taps the video", `window.__tandemScan.tracks > 0`)
	return s
}

// Snapshot returns what the scan saw so far; it goes on.
func (s *Scan) Snapshot(t testing.TB) ScanResult {
	t.Helper()
	return s.result(t, `window.__tandemScan.result()`)
}

// Stop ends the scan and returns what it saw; errors inside the page's
// scanner fail the test.
func (s *Scan) Stop(t testing.TB) ScanResult {
	t.Helper()
	r := s.result(t, `window.__tandemScan.stop()`)
	s.stopped = true
	if len(r.Errors) > 0 {
		t.Errorf("the video scan failed in the page: %v", r.Errors)
	}
	return r
}

func (s *Scan) result(t testing.TB, expr string) ScanResult {
	t.Helper()
	var raw struct {
		Method     string     `json:"method"`
		Frames     int        `json:"frames"`
		Decoded    int        `json:"decoded"`
		Shown      int        `json:"shown"`
		Worst      int        `json:"worst"`
		WorstIndex int        `json:"worstIndex"`
		WorstAt    float64    `json:"worstAt"`
		WorstBox   [4]float64 `json:"worstBox"`
		WorstSize  string     `json:"worstSize"`
		Hits       []struct {
			Index   int        `json:"index"`
			At      float64    `json:"at"`
			Size    string     `json:"size"`
			Samples int        `json:"samples"`
			Box     [4]float64 `json:"box"`
		} `json:"hits"`
		Regions []int          `json:"regions"`
		Moved   int            `json:"moved"`
		Sizes   map[string]int `json:"sizes"`
		Formats map[string]int `json:"formats"`
		Tracks  int            `json:"tracks"`
		Elapsed float64        `json:"elapsed"`
		Errors  []string       `json:"errors"`
	}
	str := Eval[string](t, s.ctx, `(async () => JSON.stringify(await `+expr+`))()`)
	if err := json.Unmarshal([]byte(str), &raw); err != nil {
		t.Fatalf("scan result %s: %v", str, err)
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	r := ScanResult{Method: raw.Method, Frames: raw.Frames, Decoded: raw.Decoded, Shown: raw.Shown, Worst: raw.Worst,
		WorstIndex: raw.WorstIndex, WorstAt: ms(raw.WorstAt), WorstBox: raw.WorstBox, WorstSize: raw.WorstSize, Regions: map[string]int{},
		Moved: raw.Moved, Sizes: raw.Sizes, Formats: raw.Formats, Tracks: raw.Tracks, Elapsed: ms(raw.Elapsed), Errors: raw.Errors}
	for _, h := range raw.Hits {
		r.Hits = append(r.Hits, ScanHit{Index: h.Index, At: ms(h.At), Size: h.Size, Samples: h.Samples, Box: h.Box})
	}
	for i, reg := range s.regions {
		if i < len(raw.Regions) {
			r.Regions[reg.Name] = raw.Regions[i]
		}
	}
	return r
}

// MagentaLike tells whether an RGB colour counts as the canary, with the
// scan's thresholds on its full-range BT.601 chroma.
func MagentaLike(r, g, b uint8) bool {
	u, v := chroma(float64(r), float64(g), float64(b))
	return u > ScanChromaMin && v > ScanChromaMin
}

func chroma(r, g, b float64) (u, v float64) {
	return 128 - 0.168736*r - 0.331264*g + 0.5*b, 128 + 0.5*r - 0.418688*g - 0.081312*b
}

// scanJS installs window.__tandemScan. Its arguments: ScanChromaMin,
// ScanMinSamples, scanStep, scanMoveDelta, scanMoveSamples, the regions.
//
// Frames are read one at a time, each copied out and closed before the
// next read, so the decoder never waits on us; the processor's queue
// (maxBufferSize) absorbs a slow moment. Decoded counts the peer's
// framesDecoded to show whether any frame escaped the scan.
const scanJS = `(async () => {
  if (window.__tandemScan && !window.__tandemScan.stopped) throw new Error('a scan already runs in this tab');
  const MIN_UV = %d, MIN_SAMPLES = %d, STEP = %d, MOVE_DELTA = %d, MOVE_SAMPLES = %d;
  const regions = %s;
  const st = {
    method: typeof MediaStreamTrackProcessor === 'function' ? 'MediaStreamTrackProcessor' : 'requestVideoFrameCallback',
    frames: 0, decoded: -1, shown: 0, worst: 0, worstIndex: -1, worstAt: 0, worstBox: [0, 0, 0, 0], worstSize: '', hits: [],
    regions: regions.map(() => 0), moved: 0, sizes: {}, formats: {}, tracks: 0, elapsed: 0, errors: [],
  };
  const t0 = performance.now();
  const rc = new Int32Array(regions.length);
  let buf = new Uint8Array(0), sig = new Uint8Array(0), prevSig = new Uint8Array(0), prevW = 0, prevH = 0;
  let source = null, detach = null, timer = 0, stopped = false;
  const fail = (what, e) => { if (st.errors.length < 5) st.errors.push(what + ': ' + (e && e.message || e)); };

  // decodedNow is the viewer's framesDecoded, or null without a viewer peer.
  const peer = () => window.tandemViewer && window.tandemViewer.pc;
  const decodedNow = async (pc) => {
    if (!pc) return null;
    let n = 0;
    try {
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0; });
    } catch (e) { return null; }
    return n;
  };
  const pc0 = peer(), decoded0 = await decodedNow(pc0);

  // scan counts one frame's magenta-like chroma samples. fmt is I420, NV12
  // or RGBA/RGBX/BGRA/BGRX; layout is copyTo's plane layout in buf.
  function scan(fmt, w, h, layout) {
    const idx = st.frames++;
    st.sizes[w + 'x' + h] = (st.sizes[w + 'x' + h] || 0) + 1;
    st.formats[fmt] = (st.formats[fmt] || 0) + 1;
    const cw = (w + 1) >> 1, ch = (h + 1) >> 1;
    const rb = regions.map((r) => [Math.floor(r.x * cw), Math.ceil((r.x + r.w) * cw), Math.floor(r.y * ch), Math.ceil((r.y + r.h) * ch)]);
    const nr = rb.length;
    rc.fill(0);
    let count = 0, x0 = cw, x1 = -1, y0 = ch, y1 = -1;
    const hit = (x, y) => {
      count++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      for (let i = 0; i < nr; i++) {
        const b = rb[i];
        if (x >= b[0] && x < b[1] && y >= b[2] && y < b[3]) rc[i]++;
      }
    };
    // The signature: the mean luma of each STEP×STEP block, from every
    // fourth pixel each way. Means ignore the encoder's requantization of
    // a repeated picture (edges shift by a few levels); a moved element
    // shifts the means of the blocks it enters and leaves.
    const sw = Math.floor(w / STEP), sh = Math.floor(h / STEP);
    if (sig.length !== sw * sh) sig = new Uint8Array(sw * sh);
    const luma = (at) => {
      for (let j = 0, k = 0; j < sh; j++) for (let i = 0; i < sw; i++) {
        let sum = 0;
        for (let dy = 0; dy < STEP; dy += 4) for (let dx = 0; dx < STEP; dx += 4) sum += at(i * STEP + dx, j * STEP + dy);
        sig[k++] = sum / ((STEP / 4) * (STEP / 4));
      }
    };
    if (fmt === 'I420' || fmt === 'I420A' || fmt === 'NV12') {
      const nv = fmt === 'NV12';
      const uo = layout[1].offset, us = layout[1].stride;
      const vo = nv ? uo + 1 : layout[2].offset, vs = nv ? us : layout[2].stride, d = nv ? 2 : 1;
      for (let y = 0; y < ch; y++) {
        let ui = uo + y * us, vi = vo + y * vs;
        for (let x = 0; x < cw; x++, ui += d, vi += d) {
          if (buf[ui] > MIN_UV && buf[vi] > MIN_UV) hit(x, y);
        }
      }
      const yo = layout[0].offset, ys = layout[0].stride;
      luma((x, y) => buf[yo + y * ys + x]);
    } else {
      // RGB: each chroma sample from the mean of its 2×2 pixels, as I420 has it.
      const o = layout[0].offset, s = layout[0].stride, bgr = fmt[0] === 'B';
      const R = bgr ? 2 : 0, B = bgr ? 0 : 2;
      for (let y = 0; y < ch; y++) {
        for (let x = 0; x < cw; x++) {
          let r = 0, g = 0, b = 0, n = 0;
          for (let dy = 0; dy < 2 && 2 * y + dy < h; dy++) for (let dx = 0; dx < 2 && 2 * x + dx < w; dx++) {
            const p = o + (2 * y + dy) * s + (2 * x + dx) * 4;
            r += buf[p + R]; g += buf[p + 1]; b += buf[p + B]; n++;
          }
          r /= n; g /= n; b /= n;
          const u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b, v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
          if (u > MIN_UV && v > MIN_UV) hit(x, y);
        }
      }
      luma((x, y) => {
        const p = o + y * s + x * 4;
        return (buf[p + R] * 77 + buf[p + 1] * 150 + buf[p + B] * 29) >> 8;
      });
    }
    const box = () => [x0 / cw, y0 / ch, (x1 - x0 + 1) / cw, (y1 - y0 + 1) / ch];
    if (count >= MIN_SAMPLES) {
      st.shown++;
      if (st.hits.length < 10) st.hits.push({ index: idx, at: performance.now() - t0, size: w + 'x' + h, samples: count, box: box() });
    }
    if (count > st.worst) {
      st.worst = count;
      st.worstIndex = idx;
      st.worstAt = performance.now() - t0;
      st.worstBox = box();
      st.worstSize = w + 'x' + h;
    }
    for (let i = 0; i < nr; i++) if (rc[i] >= MIN_SAMPLES) st.regions[i]++;
    if (prevW === w && prevH === h) {
      let changed = 0;
      for (let k = 0; k < sig.length; k++) if (Math.abs(sig[k] - prevSig[k]) > MOVE_DELTA) changed++;
      if (changed >= MOVE_SAMPLES) st.moved++;
    }
    [sig, prevSig, prevW, prevH] = [prevSig, sig, w, h];
  }

  const known = new Set(['I420', 'I420A', 'NV12', 'RGBA', 'RGBX', 'BGRA', 'BGRX']);
  async function onFrame(frame) {
    const rect = frame.visibleRect;
    const w = rect ? rect.width : frame.displayWidth, h = rect ? rect.height : frame.displayHeight;
    // Other formats (I422, I444, GPU frames without one): the browser converts.
    const opts = known.has(frame.format) ? undefined : { format: 'RGBA' };
    const size = frame.allocationSize(opts);
    if (buf.length < size) buf = new Uint8Array(size);
    const layout = await frame.copyTo(buf, opts);
    if (!stopped) scan(opts ? 'RGBA' : frame.format, w, h, layout);
  }

  function attach(track) {
    st.tracks++;
    if (st.method === 'MediaStreamTrackProcessor') {
      const clone = track.clone();
      const reader = new MediaStreamTrackProcessor({ track: clone, maxBufferSize: 60 }).readable.getReader();
      let live = true;
      (async () => {
        // Read to the end, after detach too: every frame the processor
        // queued must be closed, or Chromium complains of a leak.
        for (;;) {
          let r;
          try {
            r = await reader.read();
          } catch (e) {
            if (live) fail('read', e);
            return;
          }
          if (r.done) return;
          try {
            if (live) await onFrame(r.value);
          } catch (e) {
            fail('frame', e);
          } finally {
            r.value.close();
          }
        }
      })();
      return () => {
        live = false;
        // Ending the track ends the stream once the queue is read. Never
        // cancel the reader: a cancel drops the queued frames unclosed, and
        // Chromium then reports them as leaked.
        clone.stop();
      };
    }
    // Fallback without MediaStreamTrackProcessor: the frames the element
    // presents, drawn to a canvas. It can miss frames the element skipped.
    const v = document.querySelector('video.viewer-video');
    const c = document.createElement('canvas');
    const g = c.getContext('2d', { willReadFrequently: true });
    let live = true;
    const cb = () => {
      if (!live) return;
      try {
        const w = v.videoWidth, h = v.videoHeight;
        if (w && h) {
          if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
          g.drawImage(v, 0, 0);
          buf = g.getImageData(0, 0, w, h).data;
          scan('RGBA', w, h, [{ offset: 0, stride: w * 4 }]);
        }
      } catch (e) {
        fail('frame', e);
      }
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
    return () => { live = false; };
  }

  // follow attaches to the video's track, and to the next one after a
  // reconnect.
  function follow() {
    if (stopped) return;
    const v = document.querySelector('video.viewer-video');
    const so = v && v.srcObject;
    const track = so && so.getVideoTracks ? so.getVideoTracks()[0] : null;
    if (track && track !== source && track.readyState === 'live') {
      if (detach) detach();
      source = track;
      try {
        detach = attach(track);
      } catch (e) {
        fail('attach', e);
      }
    }
    timer = setTimeout(follow, 250);
  }

  const result = async () => {
    st.elapsed = performance.now() - t0;
    const pc = peer();
    const n = pc === pc0 && decoded0 !== null ? await decodedNow(pc) : null;
    st.decoded = n === null ? -1 : n - decoded0;
    return st;
  };
  window.__tandemScan = {
    get tracks() { return st.tracks; },
    get stopped() { return stopped; },
    result,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (detach) detach();
      return result();
    },
  };
  follow();
})()`
