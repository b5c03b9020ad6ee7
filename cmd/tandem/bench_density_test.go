package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// densityPage is the support form with a probe: a box fixed at the top
// right that turns from red to blue and back on each press, without
// taking the focus from the field being typed in.
var densityPage = strings.Replace(supportForm, "</body>", `<style>
#probe{position:fixed;left:1140px;top:80px;width:120px;height:120px;background:#f00;z-index:9}
#probe.b{background:#00f}
</style><div id="probe" onmousedown="event.preventDefault();this.classList.toggle('b')"></div></body>`, 1)

// The probe's centre, in the 1280×720 tab.
const probeX, probeY = 1200, 140

// Density targets of issue 8: every viewer keeps this frame rate while the
// page moves, and this click-to-visible p95.
const (
	densityMinFPS = 15
	densityMaxP95 = 250 * time.Millisecond
	// densityCycle is about one round of workDensitySession; the sessions
	// of a level start this far apart over it.
	densityCycle = 40 * time.Second
	// densityRun is how long each session starts new rounds.
	densityRun   = 2 * densityCycle
	densityProbe = 5 * time.Second // a probe not seen by then counts as this late
)

// probeColour names the probe's colour in p; "" before the tab has its size.
func probeColour(p botviewer.Picture) string {
	if p.Width <= probeX || p.Height <= probeY {
		return ""
	}
	return colourAt(p.Image, probeX, probeY)
}

// densityViewer is what one viewer of a density session saw.
type densityViewer struct {
	fps      []float64       // decoded frames a second while the page moved (the strokes), per scroll
	captured []float64       // frames a second the worker captured of the session while it moved, per scroll
	window   []float64       // decoded frames a second over the whole scroll, its pauses included
	lat      []time.Duration // probe pressed → the viewer's picture shows it
}

// workDensitySession works one session in rounds of the support workload
// (supportSteps) until until: load the form with the probe, scroll the
// help text (the viewers' frame rates are measured over it), press the
// probe six times 500 ms apart (each viewer's latency), fill the form,
// opening the dropdown, and then nothing for the workload's 20 s. The
// customer sends everything; the agent, in control, only watches.
func workDensitySession(ctx context.Context, url string, cust, agent *botviewer.Viewer, captured func() float64, until time.Time) (c, a densityViewer, err error) {
	viewers := []*botviewer.Viewer{cust, agent}
	seen := []*densityViewer{&c, &a}
	// A trackpad's wheel steps, 30 a second: Chromium draws a frame per
	// step, and the mouse wheel's eight a second could never show 15 fps.
	w := supportSteps{ctx: ctx, send: cust.Send, wheelEvery: 33 * time.Millisecond}
	// The frame rates are counted over the strokes, while the page moves:
	// a still page draws nothing, and the pauses between strokes are not
	// activity (docs/density.md).
	var moving time.Duration
	var strokeN []int // each viewer's pictures, then the captures, at a stroke's start
	var strokeAt time.Time
	var movedN []int // pictures and captures counted while the page moved, this scroll
	counts := func() []int {
		return []int{latestN(cust), latestN(agent), int(captured())}
	}
	w.stroke = func(begin bool) {
		now, n := time.Now(), counts()
		if begin {
			strokeN, strokeAt = n, now
			return
		}
		moving += now.Sub(strokeAt)
		for i := range n {
			movedN[i] += n[i] - strokeN[i]
		}
	}
	navigate := func(ctx context.Context, url string) error {
		return cust.SendMessage(ctx, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateGo, URL: url})
	}
	for first := true; first || time.Now().Before(until); first = false {
		if err := w.load(url, navigate); err != nil {
			return c, a, err
		}
		colour := "red"
		if _, err := cust.WaitPicture(ctx, func(p botviewer.Picture) bool { return probeColour(p) == colour }); err != nil {
			return c, a, fmt.Errorf("the customer never saw the probe: %w", err)
		}
		n0 := []int{latestN(cust), latestN(agent)}
		moving, movedN = 0, make([]int, 3)
		t0 := time.Now()
		if err := w.scroll(); err != nil {
			return c, a, err
		}
		secs, moved := time.Since(t0).Seconds(), moving.Seconds()
		c.captured = append(c.captured, float64(movedN[2])/moved)
		for i, v := range viewers {
			seen[i].fps = append(seen[i].fps, float64(movedN[i])/moved)
			seen[i].window = append(seen[i].window, float64(latestN(v)-n0[i])/secs)
		}
		time.Sleep(500 * time.Millisecond) // the scroll settles back at the top
		for range 6 {
			want := map[string]string{"red": "blue", "blue": "red"}[colour]
			t1 := time.Now()
			for _, ev := range clickEvents(probeX, probeY) {
				if err := cust.Send(ctx, ev); err != nil {
					return c, a, err
				}
			}
			for i, v := range viewers {
				pctx, cancel := context.WithTimeout(ctx, densityProbe)
				p, err := v.WaitPicture(pctx, func(p botviewer.Picture) bool { return probeColour(p) == want })
				cancel()
				if err != nil {
					seen[i].lat = append(seen[i].lat, densityProbe)
					continue
				}
				seen[i].lat = append(seen[i].lat, p.At.Sub(t1))
			}
			colour = want
			time.Sleep(500 * time.Millisecond)
		}
		if err := w.fill(); err != nil {
			return c, a, err
		}
		time.Sleep(supportIdle)
	}
	return c, a, nil
}

// BenchmarkDensity: how many sessions this machine holds at once, each
// with a customer and an agent watching, while every viewer keeps at least
// 15 fps during a scroll and the clicks' p95 stays within 250 ms. Each
// session works in rounds of the support workload with its 20 s idle,
// scrolling with a trackpad's steps, and probe presses
// (workDensitySession), starting new rounds for densityRun; the sessions
// of a level start spread evenly over one round, as independent support
// calls would be. Per level: the worst viewer's median frame rate while
// its page moved, over the scrolls' strokes (`fps-min`; over the whole
// scroll, its pauses included, `fps-min-with-pauses`), the worst session's
// median rate of frames Chromium drew while it moved (`fps-captured`: the
// most its viewers could show),
// the least share of those a viewer showed in any scroll (`%shown-min`:
// Tandem's part), the p95 click to visible over all sessions' probes per
// role, CPU per session of Tandem and of Chromium (% of one core), memory
// (PSS) per session of Chromium (tandem_session_browser_memory_bytes) and
// of Tandem's process, and `held` (1 when both targets were met). Levels
// of 1, 2, 3, 4, 6 and 8 sessions run whatever the smaller ones gave, so
// that the trend shows, until one is far past the latency target (p95
// over 1 s). The last entry, `held`, reports the most sessions held. Run
// with -benchtime 1x.
func BenchmarkDensity(b *testing.B) {
	s := startBenchServer(b, "--max-sessions", "12")
	held, allMet, swamped := 0, true, false
	for _, n := range []int{1, 2, 3, 4, 6, 8} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if swamped {
				b.Skip("a smaller level was already far past the targets")
			}
			met, p95 := densityLevel(b, s, n)
			allMet = allMet && met
			if allMet {
				held = n // this level and every smaller one met the targets
			}
			swamped = p95 > 4*densityMaxP95
		})
	}
	b.Run("held", func(b *testing.B) { b.ReportMetric(float64(held), "sessions") })
}

// densityLevel runs n sessions at once and reports them; it says whether
// every viewer met the targets, and the worse role's p95.
func densityLevel(b *testing.B, s *benchServer, n int) (met bool, worstP95 time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	type pair struct {
		id          string
		cust, agent *botviewer.Viewer
	}
	var sessions []pair
	for range n {
		id, cust, custJar, _ := s.customerSession(b, ctx, "/density")
		sessions = append(sessions, pair{id, cust, s.addAgent(b, ctx, id, cust, custJar)})
	}
	defer func() {
		for _, p := range sessions {
			s.end(b, p.id)
			_ = p.cust.Close()
			_ = p.agent.Close()
		}
		time.Sleep(2 * time.Second) // the browsers exit before the next level
	}()

	b.ResetTimer()
	hz := 100.0 // USER_HZ on Linux
	self0, kids0 := cpuTicks(s.cmd.Process.Pid)
	t0 := time.Now()
	until := t0.Add(densityRun)
	captured := func(id string) func() float64 {
		key := `tandem_session_frames_captured_total{company_id="demo",session_id="` + id + `"}`
		return func() float64 { return s.metrics(b)[key] }
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cust, agent []densityViewer
	var errs []error
	for i, p := range sessions {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * densityCycle / time.Duration(n))
			c, a, err := workDensitySession(ctx, s.page.URL+"/density", p.cust, p.agent, captured(p.id), until)
			mu.Lock()
			defer mu.Unlock()
			cust, agent = append(cust, c), append(agent, a)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	// Memory halfway through, when every session is at work.
	time.Sleep(densityRun / 2)
	m := s.metrics(b)
	tandemPSS := browserpool.ProcessMemory(s.cmd.Process.Pid)
	wg.Wait()
	self1, kids1 := cpuTicks(s.cmd.Process.Pid)
	secs := time.Since(t0).Seconds()
	b.StopTimer()
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}

	var browserPSS float64
	for k, v := range m {
		if strings.HasPrefix(k, "tandem_session_browser_memory_bytes{") {
			browserPSS += v
		}
	}
	perSession := func(v float64) float64 { return v / float64(n) }
	b.ReportMetric(perSession(float64(self1-self0)/hz/secs*100), "%cpu-tandem/session")
	b.ReportMetric(perSession(float64(kids1-kids0)/hz/secs*100), "%cpu-chromium/session")
	b.ReportMetric(perSession(browserPSS)/(1<<20), "MB-chromium/session")
	b.ReportMetric(perSession(float64(tandemPSS))/(1<<20), "MB-tandem/session")

	ok := true
	minFPS, minCaptured, minShown, minWindow := -1.0, -1.0, -1.0, -1.0
	lower := func(m *float64, v float64) {
		if *m < 0 || v < *m {
			*m = v
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, c := range cust {
		if len(c.captured) > 0 {
			lower(&minCaptured, median(c.captured))
		}
	}
	for role, vs := range map[string][]densityViewer{"customer": cust, "agent": agent} {
		var lat []time.Duration
		for i, v := range vs {
			lat = append(lat, v.lat...)
			if len(v.fps) == 0 {
				continue
			}
			lower(&minFPS, median(v.fps))
			lower(&minWindow, median(v.window))
			// What the viewer showed of what Chromium drew for its session.
			for j, f := range v.fps {
				if capd := cust[i].captured[j]; capd > 0 {
					lower(&minShown, f/capd*100)
				}
			}
		}
		p95 := percentile(lat, 95)
		worstP95 = max(worstP95, p95)
		b.ReportMetric(ms(percentile(lat, 50)), "ms-p50-"+role)
		b.ReportMetric(ms(p95), "ms-p95-"+role)
		ok = ok && len(lat) > 0 && p95 <= densityMaxP95
	}
	b.ReportMetric(minFPS, "fps-min")
	b.ReportMetric(minWindow, "fps-min-with-pauses")
	b.ReportMetric(minCaptured, "fps-captured")
	b.ReportMetric(minShown, "%shown-min")
	ok = ok && minFPS >= densityMinFPS
	if ok {
		b.ReportMetric(1, "held")
	} else {
		b.ReportMetric(0, "held")
	}
	return ok, worstP95
}
