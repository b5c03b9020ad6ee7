package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	"github.com/tandem-cobrowse/tandem/pkg/canary"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// The proof of masking (SECURITY.md P1) on the real video: the hosted
// browser shows canary pages (pkg/canary) whose secrets are magenta blocks
// carried by masked elements; both viewers' decoded video is scanned frame
// by frame (browsertest.StartScan). The agent's must never show magenta;
// the customer's must, in every case's region, which proves the scan can
// see what it looks for.

// canaryRunFrames is how many decoded agent frames the canary run examines
// at least: a leak in one frame of a thousand would be caught.
const canaryRunFrames = 3000

// Customer window sizes: the customer's stage (the window less the page's
// top bar) becomes the remote viewport, about 960×600 and then smaller.
const (
	canaryCustW, canaryCustH   = 960, 660
	canaryCustW2, canaryCustH2 = 880, 600
)

// startCanaryServe is startServe without the test page, with faults
// injected into the worker's mask path (nil: none).
func startCanaryServe(t *testing.T, faults *mask.Faults) *server {
	t.Helper()
	s := &server{done: make(chan error, 1)}
	serveFor(t, s, faults)
	return s
}

// liveSession is a live session: the customer joined and agreed, the
// agent watches in the console.
type liveSession struct {
	id          string
	cust, agent context.Context
}

// openCanarySession opens a live session on a canary page.
func openCanarySession(t *testing.T, s *server, startURL string) liveSession {
	return openLiveSession(t, s, startURL, canaryCustW, canaryCustH)
}

// openLiveSession creates a session for startURL over REST; the customer,
// in a custW×custH window, joins through the join page and starts sharing,
// the agent logs in and opens it in the console; it returns once both see
// the tab.
func openLiveSession(t *testing.T, s *server, startURL string, custW, custH int64) liveSession {
	t.Helper()
	cust, _ := browsertest.NewLongTab(t, custW, custH, 20*time.Minute)
	return openLiveSessionIn(t, s, startURL, cust)
}

// openLiveSessionIn is openLiveSession with the customer in the tab cust.
func openLiveSessionIn(t *testing.T, s *server, startURL string, cust context.Context) liveSession {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"start_url": startURL})
	sess := s.api(t, "POST", "/api/v1/sessions", string(body))
	id, pin := sess["id"].(string), sess["pin"].(string)

	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", pin)
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "consent screen", `document.body.dataset.consent === 'asking' && !document.getElementById('consent').hidden`)
	browsertest.Run(t, cust, "start sharing", chromedp.Click("#consent-start"))
	browsertest.WaitJS(t, cust, "sharing", `document.body.dataset.consent === 'sharing' && document.querySelector('.viewer-stage')?.dataset.state === 'live'`)

	// The console about as wide as the picture: no scaling up to composite.
	agent, _ := browsertest.NewLongTab(t, 1024, 720, 20*time.Minute)
	agentOpens(t, s, agent, sess["agent_url"].(string))
	browsertest.WaitJS(t, agent, "agent live", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	return liveSession{id: id, cust: cust, agent: agent}
}

// stageSizeJS is the customer's stage in whole CSS px, as the viewer
// reports it, made even as the worker makes the viewport.
const stageSizeJS = `(() => {
  const r = document.querySelector('.viewer-stage').getBoundingClientRect();
  return [Math.round(r.width) & ~1, Math.round(r.height) & ~1];
})()`

// waitRemoteViewport waits until the remote page, both viewers and the
// customer's decoded video have the size of the customer's stage, and
// returns it.
func waitRemoteViewport(t *testing.T, site *canary.Site, cs liveSession, since time.Time) (w, h int) {
	t.Helper()
	wh := browsertest.Eval[[]int](t, cs.cust, stageSizeJS)
	w, h = wh[0], wh[1]
	site.WaitEvent(t, fmt.Sprintf("the remote page at %dx%d", w, h), func(e canary.Event) bool {
		return (e.Name == "resize" || e.Name == "load") && e.Page != "frame" && e.Width == w && e.Height == h && !e.At.Before(since)
	})
	// Both viewers are told the size and decode pictures of it.
	const sizesJS = `(() => {
  const d = document.querySelector('.viewer').dataset, v = document.querySelector('video.viewer-video');
  return 'remote ' + d.remoteWidth + 'x' + d.remoteHeight + ', video ' + v.videoWidth + 'x' + v.videoHeight;
})()`
	for who, ctx := range map[string]context.Context{"customer": cs.cust, "agent": cs.agent} {
		want := fmt.Sprintf("remote %dx%d, video %dx%d", w, h, w, h)
		deadline := time.Now().Add(20 * time.Second)
		for got := browsertest.Eval[string](t, ctx, sizesJS); !strings.HasSuffix(got, want); got = browsertest.Eval[string](t, ctx, sizesJS) {
			if time.Now().After(deadline) {
				t.Fatalf("the %s's viewer: %s, want %s", who, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return w, h
}

func scanRegions(rs []canary.Region, prefix string) []browsertest.Region {
	out := make([]browsertest.Region, len(rs))
	for i, r := range rs {
		out[i] = browsertest.Region(r)
		out[i].Name = prefix + r.Name
	}
	return out
}

// scanPhase is one stretch of the canary run, from snapshots of the
// running agent scan.
type scanPhase struct {
	name         string
	frames, seen int // agent frames, and those with the canary
	custFrames   int
	elapsed      time.Duration
}

// TestMaskCanaryVideo: for over 3000 decoded agent frames, through the
// cases page (every case animating), a resize of the customer's window, a
// zoom, a navigation and the long scrolling form, the agent's video never
// shows a canary pixel while the customer's shows every case's canary.
func TestMaskCanaryVideo(t *testing.T) {
	start := time.Now()
	s := startCanaryServe(t, nil)
	site := canary.Start(t)
	cs := openCanarySession(t, s, site.CasesURL(1, canary.Schedule{}))
	w, h := waitRemoteViewport(t, site, cs, start)
	t.Logf("session live after %v, remote viewport %dx%d", time.Since(start).Round(time.Millisecond), w, h)

	// The agent's scan runs through the whole run; its regions (cases and
	// form) only say where a leak was. The customer's scans go by page.
	agentScan := browsertest.StartScan(t, cs.agent, append(scanRegions(canary.CaseRegions(), ""), scanRegions(canary.FormRegions(), "form:")...))
	custScan := browsertest.StartScan(t, cs.cust, scanRegions(canary.CaseRegions(), ""))

	last, custLast := agentScan.Snapshot(t), custScan.Snapshot(t)
	phaseStart := time.Now()
	// runUntil lets the page run until the agent's scan has seen n frames
	// in all (or the phase took max), and records the phase.
	runUntil := func(name string, n int, max time.Duration) {
		t.Helper()
		deadline := time.Now().Add(max)
		r := agentScan.Snapshot(t)
		for r.Frames < n && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			r = agentScan.Snapshot(t)
		}
		c := custScan.Snapshot(t)
		p := scanPhase{name: name, frames: r.Frames - last.Frames, seen: r.Shown - last.Shown,
			custFrames: c.Frames - custLast.Frames, elapsed: time.Since(phaseStart)}
		t.Logf("phase %-18s %v: agent %4d frames (%4.1f/s), %4d with the canary; customer %4d frames (%4.1f/s)",
			p.name, p.elapsed.Round(time.Millisecond), p.frames, float64(p.frames)/p.elapsed.Seconds(), p.seen,
			p.custFrames, float64(p.custFrames)/p.elapsed.Seconds())
		last, custLast, phaseStart = r, c, time.Now()
	}

	runUntil("cases", canaryRunFrames/5, 40*time.Second)

	// The customer's window shrinks: the remote viewport follows.
	resized := time.Now()
	browsertest.Run(t, cs.cust, "resize the customer's window", chromedp.EmulateViewport(canaryCustW2, canaryCustH2))
	w2, h2 := waitRemoteViewport(t, site, cs, resized)
	if w2 >= w || h2 >= h {
		t.Errorf("remote viewport %dx%d after shrinking the window from %dx%d", w2, h2, w, h)
	}
	runUntil(fmt.Sprintf("cases at %dx%d", w2, h2), 2*canaryRunFrames/5, 40*time.Second)

	site.Zoom(1.5)
	site.WaitEvent(t, "the zoom", func(e canary.Event) bool { return e.Name == "zoom" && e.Zoom == 1.5 })
	runUntil("cases zoomed 1.5", 3*canaryRunFrames/5, 40*time.Second)

	site.Navigate(site.CasesURL(2, canary.Schedule{}))
	site.WaitEvent(t, "the cases page, phase 2", func(e canary.Event) bool { return e.Name == "load" && e.Page == "cases" && e.Phase == "2" })
	runUntil("cases, phase 2", 4*canaryRunFrames/5, 40*time.Second)

	cust := custScan.Stop(t)
	t.Logf("customer on the cases page: %v", cust)
	for _, r := range canary.CaseRegions() {
		if cust.Regions[r.Name] == 0 {
			t.Errorf("the customer's video never showed the %s canary in %d frames: the scan cannot see it", r.Name, cust.Frames)
		}
	}

	custScan = browsertest.StartScan(t, cs.cust, scanRegions(canary.FormRegions(), ""))
	custLast = custScan.Snapshot(t)
	site.Navigate(site.FormURL())
	site.WaitEvent(t, "the form", func(e canary.Event) bool { return e.Name == "load" && e.Page == "form" })
	// The rest of the frames on the form, however long this machine takes.
	runUntil("form", canaryRunFrames, 10*time.Minute)
	agent := agentScan.Stop(t)
	cust = custScan.Stop(t)
	t.Logf("customer on the form: %v", cust)
	logTicks(t, site)
	for _, r := range canary.FormRegions() {
		if cust.Regions[r.Name] == 0 {
			t.Errorf("the customer's video never showed the form's %s canaries in %d frames", r.Name, cust.Frames)
		}
	}

	t.Logf("agent, whole run: %v", agent)
	if agent.Frames < canaryRunFrames {
		t.Errorf("the agent's scan examined only %d frames, want %d", agent.Frames, canaryRunFrames)
	}
	// Every frame the agent's viewer decoded was examined (one or two may
	// be in flight at either end).
	if agent.Decoded < 0 || agent.Frames < agent.Decoded-3 {
		t.Errorf("the agent's scan examined %d of %d decoded frames", agent.Frames, agent.Decoded)
	}
	if agent.Shown > 0 {
		t.Errorf("CANARY IN THE AGENT'S VIDEO: %d of %d frames showed it; worst frame %d (at %v, %s) had %d magenta samples in %.3f; frames per region: %v; first frames: %v",
			agent.Shown, agent.Frames, agent.WorstIndex, agent.WorstAt.Round(time.Millisecond), agent.WorstSize, agent.Worst, agent.WorstBox, agent.Regions, agent.Hits)
	}
	t.Logf("run took %v", time.Since(start).Round(time.Millisecond))
}

// maskingStateJS is the agent console's masking state on its stage.
const maskingStateJS = `document.querySelector('.viewer-stage')?.dataset.masking || ''`

// waitMasking polls the agent's masking state for up to d; it reports
// whether it became want and the last state seen.
func waitMasking(t *testing.T, ctx context.Context, want string, d time.Duration) (bool, string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := browsertest.Eval[string](t, ctx, maskingStateJS)
		if got == want {
			return true, got
		}
		if time.Now().After(deadline) {
			return false, got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMaskFaultsVideo: while the mask path panics, fails, or loses the
// page's reports, the agent's video shows no canary and the console says
// masking is paused; once the fault is gone the agent's picture moves
// again and masking is active; the audit trail has the pauses.
func TestMaskFaultsVideo(t *testing.T) {
	faults := &mask.Faults{}
	s := startCanaryServe(t, faults)
	site := canary.Start(t)
	cs := openCanarySession(t, s, site.CasesURL(1, canary.Schedule{}))
	if ok, got := waitMasking(t, cs.agent, "active", 10*time.Second); !ok {
		t.Errorf("before any fault the agent's masking state is %q, want active", got)
	}
	regions := scanRegions(canary.CaseRegions(), "")

	for _, f := range []struct {
		name string
		set  func(bool)
	}{
		{"panic", faults.SetPanic},
		{"fail", faults.SetFail},
		{"drop reports", faults.SetDropReports},
	} {
		agentScan := browsertest.StartScan(t, cs.agent, regions)
		custScan := browsertest.StartScan(t, cs.cust, regions)
		f.set(true)
		on := time.Now()
		onAt := agentScan.Snapshot(t).Elapsed // the fault's times in the agent scan's clock
		paused, state := waitMasking(t, cs.agent, "paused", 4*time.Second)
		if !paused {
			t.Errorf("%s: the agent's stage has data-masking=%q while the fault is on, want paused", f.name, state)
		}
		// Frames captured before the switch may still be on their way for
		// a moment; after that the agent gets no new picture.
		time.Sleep(time.Until(on.Add(500 * time.Millisecond)))
		held := agentScan.Snapshot(t)
		time.Sleep(time.Until(on.Add(4 * time.Second)))
		during := agentScan.Snapshot(t)
		custDuring := custScan.Snapshot(t)
		f.set(false)
		offAt := onAt + time.Since(on)

		// The agent's picture moves again and masking is active again.
		deadline := time.Now().Add(15 * time.Second)
		after := agentScan.Snapshot(t)
		for after.Moved < during.Moved+10 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			after = agentScan.Snapshot(t)
		}
		if after.Moved < during.Moved+10 {
			t.Errorf("%s: after the fault the agent's picture moved in only %d new frames", f.name, after.Moved-during.Moved)
		}
		if ok, got := waitMasking(t, cs.agent, "active", 10*time.Second); !ok {
			t.Errorf("%s: after the fault the agent's stage has data-masking=%q, want active", f.name, got)
		}
		agent := agentScan.Stop(t)
		cust := custScan.Stop(t)
		t.Logf("%s: fault on at %v, off at %v of the agent's scan", f.name, onAt.Round(time.Millisecond), offAt.Round(time.Millisecond))
		t.Logf("%s: agent during the fault (4 s): %d frames, %d moved; through recovery: %v", f.name, during.Frames, during.Moved, agent)
		t.Logf("%s: customer during the fault: %d frames, %d moved, %d with the canary", f.name, custDuring.Frames, custDuring.Moved, custDuring.Shown)
		if moved := during.Moved - held.Moved; moved > 0 {
			t.Errorf("%s: the agent's picture moved in %d of %d frames while the fault was on, want it held", f.name, moved, during.Frames-held.Frames)
		}
		if agent.Shown > 0 {
			t.Errorf("%s: CANARY IN THE AGENT'S VIDEO: %d of %d frames showed it; worst frame %d (at %v, %s) had %d magenta samples in %.3f; per region %v; first frames: %v",
				f.name, agent.Shown, agent.Frames, agent.WorstIndex, agent.WorstAt.Round(time.Millisecond), agent.WorstSize, agent.Worst, agent.WorstBox, agent.Regions, agent.Hits)
		}
		if cust.Shown == 0 {
			t.Errorf("%s: the customer's video showed no canary in %d frames: the scan cannot see it", f.name, cust.Frames)
		}
	}

	// One pause episode per fault at least, each with its reason. The
	// gateway records the worker's events a moment later.
	var pauses, seen []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		pauses, seen = nil, nil
		events, _ := s.api(t, "GET", "/api/v1/sessions/"+cs.id+"/audit", "")["events"].([]any)
		for _, e := range events {
			ev, _ := e.(map[string]any)
			seen = append(seen, fmt.Sprint(ev["type"]))
			if ev["type"] == "mask.paused" {
				details, _ := ev["details"].(map[string]any)
				pauses = append(pauses, fmt.Sprint(details["reason"]))
			}
		}
		if len(pauses) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("mask.paused reasons: %v", pauses)
	if len(pauses) < 3 {
		t.Errorf("audit trail has %d mask.paused events, want one per fault at least; events: %s", len(pauses), strings.Join(seen, ", "))
	}
	for _, r := range pauses {
		switch r {
		case "navigating", "unmeasured", "script_gone", "error":
		default:
			t.Errorf("mask.paused with reason %q", r)
		}
	}
}

// logTicks logs how the form page animated: its animation frames over
// time and its visibility, from its ticks.
func logTicks(t *testing.T, site *canary.Site) {
	t.Helper()
	var ticks []canary.Event
	for _, e := range site.Events() {
		if e.Name == "tick" && e.Page == "form" {
			ticks = append(ticks, e)
		}
	}
	if len(ticks) < 2 {
		t.Logf("the form page sent %d ticks", len(ticks))
		return
	}
	var b strings.Builder
	for i := 1; i < len(ticks); i++ {
		d := ticks[i].At.Sub(ticks[i-1].At).Seconds()
		fmt.Fprintf(&b, " %.0f", float64(ticks[i].Frames-ticks[i-1].Frames)/d)
		if ticks[i].Visibility != "visible" {
			fmt.Fprintf(&b, "(%s)", ticks[i].Visibility)
		}
	}
	t.Logf("the form page's animation frames per second, every 2 s:%s", b.String())
}
