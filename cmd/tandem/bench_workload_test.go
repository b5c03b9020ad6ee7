package main

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// blankPage is where the support workload starts: white, still.
const blankPage = `<!doctype html><html><body style="margin:0;background:#fff"></body></html>`

// supportForm is the page of the support workload: a contact form (name,
// e-mail, a <select>, a card number the agent sees masked, a message) above
// a long help text to scroll through. The controls sit at fixed places so
// that the script can click them.
const supportForm = `<!doctype html><html><head><meta charset="utf-8"><title>Support</title><style>
body{margin:0;font:18px sans-serif;background:#fff;color:#222}
header{height:60px;background:#234;color:#fff;font-size:22px;line-height:60px;padding:0 40px}
label{position:absolute;left:40px}
input,select,textarea{position:absolute;left:40px;width:420px;height:36px;font-size:18px;box-sizing:border-box}
aside{position:absolute;left:520px;top:90px;width:700px;color:#456}
.help{position:absolute;top:620px;left:40px;right:40px}
.help p{margin:0 0 18px;line-height:1.5}
</style></head><body><header>Support — お問い合わせ</header>
<label style="top:92px" for="name">Name</label><input id="name" style="top:117px" autocomplete="name">
<label style="top:172px" for="email">E-mail</label><input id="email" style="top:197px" type="email">
<label style="top:252px" for="topic">Topic</label>
<select id="topic" style="top:277px"><option>Billing</option><option>Delivery</option><option>Returns</option><option>Something else</option></select>
<label style="top:332px" for="card">Card number</label><input id="card" style="top:357px" autocomplete="cc-number">
<label style="top:412px" for="msg">Message</label><textarea id="msg" style="top:437px;height:140px"></textarea>
<aside><h2>How can we help?</h2><p>Tell us what happened and we will answer within one working day.
Your card number is only used to find your order.</p></aside>
<div class="help"><h2>Frequently asked questions</h2><script>
for (let i = 1; i <= 40; i++) document.write('<p><b>Question ' + i + '.</b> Where is my parcel, and how do I change the address ' +
  'of an order that has already left the warehouse? 配送状況の確認と住所の変更について。 Answer: open your orders, pick the ' +
  'order and follow the delivery link; an address can be changed until the carrier has scanned the parcel.</p>');
</script></div></body></html>`

// typeSlowly types s one key at a time, as a person at about eight keys a
// second.
func typeSlowly(ctx context.Context, send func(context.Context, input.Event) error, s string) error {
	for _, r := range s {
		k := string(r)
		if err := send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: k, Text: k}); err != nil {
			return err
		}
		if err := send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionUp, Key: k}); err != nil {
			return err
		}
		time.Sleep(120 * time.Millisecond)
	}
	return nil
}

// supportWorkload is a customer's few seconds of a support call: load the
// form, scroll down the help text and back up, fill the name and e-mail,
// open the <select> and pick with the keyboard, type a card number and a
// message. send delivers an input event, navigate loads an address.
func supportWorkload(ctx context.Context, url string, send func(context.Context, input.Event) error, navigate func(context.Context, string) error) error {
	w := supportSteps{ctx: ctx, send: send}
	if err := w.load(url, navigate); err != nil {
		return err
	}
	if err := w.scroll(); err != nil {
		return err
	}
	return w.fill()
}

// supportSteps are the support workload's parts, for the benchmarks that
// measure around one of them (BenchmarkDensity).
type supportSteps struct {
	ctx  context.Context
	send func(context.Context, input.Event) error
	// wheelEvery spaces the scroll's wheel steps: 0 means 120 ms, a mouse
	// wheel's notches (eight of 150 px each way); shorter is a trackpad's
	// stream of smaller steps over the same distance.
	wheelEvery time.Duration
	// stroke, when set, is called as each of the scroll's two strokes
	// begins (true) and once its last step has had its interval (false):
	// the page moves between the two; the 400 ms pauses are outside.
	stroke func(begin bool)
}

// load opens url and gives it 1.5 s to draw.
func (w supportSteps) load(url string, navigate func(context.Context, string) error) error {
	if err := navigate(w.ctx, url); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	return nil
}

// scroll moves the help text 1200 px down and back up, each way in about
// a second of wheel steps (wheelEvery apart) and a 400 ms pause: 2.7 s.
func (w supportSteps) scroll() error {
	every := cmp.Or(w.wheelEvery, 120*time.Millisecond)
	steps := max(int(960*time.Millisecond/every), 1)
	for _, dir := range []float64{1, -1} {
		if w.stroke != nil {
			w.stroke(true)
		}
		for range steps {
			if err := w.send(w.ctx, input.Event{Kind: input.KindWheel, X: 640, Y: 400, DeltaY: dir * 1200 / float64(steps)}); err != nil {
				return err
			}
			time.Sleep(every)
		}
		if w.stroke != nil {
			w.stroke(false)
		}
		time.Sleep(400 * time.Millisecond)
	}
	return nil
}

// fill types into the form, opening the dropdown on the way.
func (w supportSteps) fill() error {
	ctx, send := w.ctx, w.send
	pause := func(d time.Duration) { time.Sleep(d) }
	click := func(x, y float64) error {
		for _, ev := range clickEvents(x, y) {
			if err := send(ctx, ev); err != nil {
				return err
			}
		}
		pause(200 * time.Millisecond)
		return nil
	}
	key := func(k, code string, kc int, text string) error {
		if err := send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: k, Code: code, KeyCode: kc, Text: text}); err != nil {
			return err
		}
		if err := send(ctx, input.Event{Kind: input.KindKey, Action: input.ActionUp, Key: k, Code: code, KeyCode: kc}); err != nil {
			return err
		}
		pause(250 * time.Millisecond)
		return nil
	}
	for _, step := range []func() error{
		func() error { return click(250, 135) },
		func() error { return typeSlowly(ctx, send, "Jane Example") },
		func() error { return click(250, 215) },
		func() error { return typeSlowly(ctx, send, "jane@example.com") },
		func() error { return click(250, 295) }, // opens the dropdown
		func() error { pause(800 * time.Millisecond); return nil },
		func() error { return key("ArrowDown", "ArrowDown", 40, "") },
		func() error { return key("ArrowDown", "ArrowDown", 40, "") },
		func() error { return key("Enter", "Enter", 13, "\r") },
		func() error { return click(250, 375) },
		func() error { return typeSlowly(ctx, send, "4111 1111 1111 1111") },
		func() error { return click(250, 500) },
		func() error { return typeSlowly(ctx, send, "My parcel never came.") },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// byteMeter samples byte counters every 100 ms, from start until stop.
type byteMeter struct {
	counters []func() int64
	stop     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	samples []byteSample // guarded by mu
}

type byteSample struct {
	at time.Time
	n  []int64
}

func startByteMeter(counters ...func() int64) *byteMeter {
	m := &byteMeter{counters: counters, stop: make(chan struct{})}
	m.sample()
	m.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	})
	return m
}

func (m *byteMeter) sample() {
	s := byteSample{at: time.Now()}
	for _, c := range m.counters {
		s.n = append(s.n, c())
	}
	m.mu.Lock()
	m.samples = append(m.samples, s)
	m.mu.Unlock()
}

// Stop takes a last sample and stops sampling.
func (m *byteMeter) Stop() {
	close(m.stop)
	m.wg.Wait()
	m.sample()
}

// rates returns counter i's average and peak (over any 1 s) rate in
// kbit/s between from and to.
func (m *byteMeter) rates(i int, from, to time.Time) (avg, peak float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var in []byteSample
	for _, s := range m.samples {
		if !s.at.Before(from) && !s.at.After(to) {
			in = append(in, s)
		}
	}
	if len(in) < 2 {
		return 0, 0
	}
	kbps := func(a, b byteSample) float64 {
		return float64(b.n[i]-a.n[i]) * 8 / 1000 / b.at.Sub(a.at).Seconds()
	}
	avg = kbps(in[0], in[len(in)-1])
	for j, a := range in {
		for _, b := range in[j+1:] {
			if b.at.Sub(a.at) >= time.Second {
				peak = max(peak, kbps(a, b))
				break
			}
		}
	}
	return avg, peak
}

// supportIdle is how long the workload's viewers watch a still page after it.
const supportIdle = 20 * time.Second

// measureSupport runs the support workload through send and navigate while
// meter counts, then idles. It returns when the active part ended (1 s
// after the last input, so that its frames count in it) and when the idle
// part did.
func measureSupport(b *testing.B, ctx context.Context, url string, send func(context.Context, input.Event) error, navigate func(context.Context, string) error) (start, activeEnd, idleEnd time.Time) {
	b.Helper()
	start = time.Now()
	if err := supportWorkload(ctx, url, send, navigate); err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second)
	activeEnd = time.Now()
	time.Sleep(supportIdle)
	return start, activeEnd, time.Now()
}

// BenchmarkSupportBandwidth: a customer's support workload (supportWorkload:
// load a form, scroll, type, open a dropdown, type again) and then 20 s of
// nothing, once through Tandem with a customer and an agent watching, once
// through the JPEG-over-WebSocket baseline, one after the other. Reported:
// each viewer's average and peak (any 1 s) kbit/s over the active part, its
// average over the idle 20 s, and the baseline's active average over
// Tandem's (how many Tandem viewers fit in one baseline viewer's bandwidth).
// Bytes are the video's payload as each Go viewer received it: RTP payload
// for Tandem, WebSocket message payload (the JPEGs) for the baseline; no
// headers on either side. Medians over the iterations.
func BenchmarkSupportBandwidth(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	results := map[string][]float64{}
	add := func(unit string, v float64) { results[unit] = append(results[unit], v) }

	s := startBenchServer(b)
	for range b.N {
		relay := startBaselineRelay(b, ctx, s.page.URL+"/blank")
		base := dialBaseline(b, ctx, relay)
		m := startByteMeter(base.bytes.Load)
		start, activeEnd, idleEnd := measureSupport(b, ctx, s.page.URL+"/support",
			func(ctx context.Context, ev input.Event) error { return base.send(ctx, relayMessage{Event: ev}) },
			func(ctx context.Context, url string) error { return base.send(ctx, relayMessage{Navigate: url}) })
		m.Stop()
		relay.tab.Close()
		if base.pictures() == 0 {
			b.Fatal("the baseline viewer decoded no picture")
		}
		baseAvg, basePeak := m.rates(0, start, activeEnd)
		baseIdle, _ := m.rates(0, activeEnd, idleEnd)
		add("kbps-active-baseline", baseAvg)
		add("kbps-peak-baseline", basePeak)
		add("kbps-idle-baseline", baseIdle)

		id, cust, custJar, _ := s.customerSession(b, ctx, "/blank")
		agent := s.addAgent(b, ctx, id, cust, custJar)
		m = startByteMeter(cust.VideoBytes, agent.VideoBytes)
		start, activeEnd, idleEnd = measureSupport(b, ctx, s.page.URL+"/support", cust.Send,
			func(ctx context.Context, url string) error {
				return cust.SendMessage(ctx, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateGo, URL: url})
			})
		m.Stop()
		if n := latestN(agent); n < 2 {
			b.Fatalf("the agent decoded %d pictures", n)
		}
		s.end(b, id)
		for i, role := range []string{"customer", "agent"} {
			avg, peak := m.rates(i, start, activeEnd)
			idle, _ := m.rates(i, activeEnd, idleEnd)
			add("kbps-active-"+role, avg)
			add("kbps-peak-"+role, peak)
			add("kbps-idle-"+role, idle)
			if avg > 0 {
				add("x-bandwidth-baseline/"+role, baseAvg/avg)
			}
		}
	}
	b.StopTimer()
	for unit, v := range results {
		slices.Sort(v)
		b.ReportMetric(v[len(v)/2], unit)
	}
}

// BenchmarkSessionStart: from POST /api/v1/sessions to the customer's first
// decoded picture (the customer joins with the PIN and dials as soon as the
// session exists), with a warm browser waiting (warm) and with none, so
// that the session starts its Chromium (cold). p50 and p95 over b.N starts;
// each session is ended before the next, and a warm start waits, outside
// the measure, for the pool to have a browser ready again.
func BenchmarkSessionStart(b *testing.B) {
	for _, c := range []struct {
		name string
		warm string
	}{{"warm", "1"}, {"cold", "-1"}} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			s := startBenchServer(b, "--warm", c.warm)
			var lat, created, joined, dialled []time.Duration
			for range b.N {
				if c.name == "warm" {
					s.waitWarm(b, ctx)
				}
				time.Sleep(500 * time.Millisecond) // the previous browser's end settles
				id, cust, _, steps := s.timedCustomerSession(b, ctx, "/still")
				lat = append(lat, steps.firstFrame)
				created = append(created, steps.created)
				joined = append(joined, steps.joined)
				dialled = append(dialled, steps.dialled)
				s.end(b, id)
				_ = cust.Close()
			}
			b.StopTimer()
			b.ReportMetric(ms(percentile(lat, 50)), "ms-p50-first-frame")
			b.ReportMetric(ms(percentile(lat, 95)), "ms-p95-first-frame")
			// Where the time goes, each since the create call.
			b.ReportMetric(ms(percentile(created, 50)), "ms-p50-created")
			b.ReportMetric(ms(percentile(joined, 50)), "ms-p50-joined")
			b.ReportMetric(ms(percentile(dialled, 50)), "ms-p50-connected")
		})
	}
}

// waitWarm waits until serve's pool has a warm browser.
func (s *benchServer) waitWarm(b *testing.B, ctx context.Context) {
	b.Helper()
	for s.metrics(b)["tandem_browsers_warm"] < 1 {
		select {
		case <-ctx.Done():
			b.Fatal("no warm browser")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
