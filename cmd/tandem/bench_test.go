package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The latency harness: the real `tandem serve` binary in its own process,
// so that its CPU can be read apart from the viewers'; Go viewers
// (pkg/botviewer) join over the real WebSocket and WebRTC, decode the VP8
// video and click through the DataChannel.

// animatedPage keeps Chromium producing frames: a box moving across a
// 720p page, as a busy page would.
const animatedPage = `<!doctype html><html><head><style>
html,body{margin:0;height:100%;background:#eee;font:24px sans-serif}
#box{position:absolute;top:200px;width:300px;height:300px;background:#09c;animation:move 2s linear infinite alternate}
@keyframes move{from{left:0}to{left:900px}}
</style></head><body><p>Tandem benchmark page テスト</p><div id="box"></div></body></html>`

// scrollingForm is a long checkout-like form with masked fields all along
// it, scrolled up and down by script every frame, with rows of card fields
// added as it goes: the mask's hardest ordinary page.
const scrollingForm = `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;font:18px sans-serif;background:#fafafa}
header{position:sticky;top:0;background:#234;color:#fff;padding:12px}
label{display:block;margin:24px 40px 4px}
input{display:block;margin:0 40px;width:400px;height:32px;font-size:18px}
</style></head><body><header>Checkout — お支払い</header><main id="f"></main><script>
const f = document.getElementById('f');
function row(i) {
  const l = document.createElement('label'); l.textContent = 'Field ' + i;
  const kinds = ['text', 'password', 'cc-number', 'email', 'cc-csc'];
  const k = kinds[i % kinds.length];
  const inp = document.createElement('input');
  if (k === 'password') inp.type = 'password'; else if (k.startsWith('cc-')) inp.autocomplete = k;
  inp.value = 'value ' + i;
  f.append(l, inp);
}
for (let i = 0; i < 60; i++) row(i);
let dir = 1, n = 60;
function step() {
  window.scrollBy(0, 12 * dir);
  if (window.scrollY + innerHeight >= document.body.scrollHeight - 2) dir = -1;
  if (window.scrollY <= 0) dir = 1;
  if (Math.random() < 0.05 && n < 400) row(n++);
  requestAnimationFrame(step);
}
requestAnimationFrame(step);
</script></body></html>`

// benchMux serves the benchmarks' pages.
func benchMux() *http.ServeMux {
	mux := http.NewServeMux()
	page := func(path, html string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, html) })
	}
	page("/still", togglePage)
	page("/busy", busyTogglePage)
	page("/animated", animatedPage)
	page("/form", scrollingForm)
	page("/blank", blankPage)
	page("/support", supportForm)
	page("/density", densityPage)
	mux.HandleFunc("/typed", func(http.ResponseWriter, *http.Request) {})
	return mux
}

type benchServer struct {
	url  string
	cmd  *exec.Cmd
	page *httptest.Server
}

const benchKey = "tdm_bench_key_0123456789abcdefghijklmnop"

// startBenchServer starts `tandem serve` with no warm browser (extra
// flags are added after the harness's own, and win over them).
func startBenchServer(b *testing.B, extra ...string) *benchServer {
	b.Helper()
	bin := os.Getenv("TANDEM_BENCH_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "tandem")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			b.Fatalf("build tandem: %v\n%s", err, out)
		}
	}
	addr := freeAddr(b)
	data, err := os.MkdirTemp("", "tandem-bench-")
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"serve", "--demo", "--addr", addr, "--data", data, "--demo-password", "bench-password",
		"--demo-api-key", benchKey, "--warm", "-1", "--log-level", "warn", "--egress-allow", testEgressAllow}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard // the viewers report what goes wrong
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &benchServer{url: "http://" + addr, cmd: cmd}
	b.Cleanup(func() {
		// SIGINT stops at once; SIGTERM would drain, waiting for the
		// sessions the benchmark left.
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		os.RemoveAll(data)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := http.Get(s.url + "/readyz"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("tandem serve never became ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.page = httptest.NewServer(benchMux())
	b.Cleanup(s.page.Close)
	return s
}

// session creates a session for path of the page server and joins it as
// the customer and as the agent, both Go viewers. It returns them and how
// long it took from the create call to the customer's first decoded picture.
func (s *benchServer) session(b *testing.B, ctx context.Context, path string) (cust, agent *botviewer.Viewer, firstFrame time.Duration) {
	b.Helper()
	sess, cust, custJar, firstFrame := s.customerSession(b, ctx, path)
	agent = s.addAgent(b, ctx, sess, cust, custJar)
	return cust, agent, firstFrame
}

// customerSession creates a session for path of the page server and joins
// it as the customer. It returns the session's id, the customer's viewer
// and cookies, and how long it took from the create call to the customer's
// first decoded picture.
func (s *benchServer) customerSession(b *testing.B, ctx context.Context, path string) (id string, cust *botviewer.Viewer, custJar http.CookieJar, firstFrame time.Duration) {
	b.Helper()
	id, cust, custJar, steps := s.timedCustomerSession(b, ctx, path)
	return id, cust, custJar, steps.firstFrame
}

// startSteps are the times of a session's start, each since the create
// call: the create answered, the customer's join answered, the customer's
// peer connected (its dial returned), its first picture decoded.
type startSteps struct{ created, joined, dialled, firstFrame time.Duration }

// timedCustomerSession is customerSession, with the time of each step.
func (s *benchServer) timedCustomerSession(b *testing.B, ctx context.Context, path string) (id string, cust *botviewer.Viewer, custJar http.CookieJar, steps startSteps) {
	b.Helper()
	t0 := time.Now()
	var sess struct{ ID, PIN string }
	s.post(b, nil, "/api/v1/sessions", `{"start_url":"`+s.page.URL+path+`"}`, benchKey, &sess)
	steps.created = time.Since(t0)
	var joined map[string]string
	custJar, _ = cookiejar.New(nil)
	s.post(b, custJar, "/api/v1/join", `{"company":"demo","pin":"`+sess.PIN+`"}`, "", &joined)
	steps.joined = time.Since(t0)
	cust = s.dial(b, ctx, custJar, sess.ID, "customer")
	steps.dialled = time.Since(t0)
	p, err := cust.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	steps.firstFrame = p.At.Sub(t0)
	return sess.ID, cust, custJar, steps
}

// addAgent lets the agent in (the customer's consent), joins the session
// as the agent, and has the customer grant it control.
func (s *benchServer) addAgent(b *testing.B, ctx context.Context, id string, cust *botviewer.Viewer, custJar http.CookieJar) (agent *botviewer.Viewer) {
	b.Helper()
	// The agent sees the tab only once the customer agreed.
	s.post(b, custJar, "/api/v1/sessions/"+id+"/consent", "", "", nil)
	agentJar, _ := cookiejar.New(nil)
	s.post(b, agentJar, "/api/v1/auth/login", `{"email":"agent@demo.test","password":"bench-password"}`, "", nil)
	agent = s.dial(b, ctx, agentJar, id, "agent")
	// The agent asks for control and the customer grants it.
	if err := agent.Control(ctx, protocol.ControlRequest); err != nil {
		b.Fatal(err)
	}
	waitNotice(b, ctx, cust, `"state":"requested"`)
	if err := cust.Control(ctx, protocol.ControlGrant); err != nil {
		b.Fatal(err)
	}
	waitNotice(b, ctx, agent, `"controller":"agent"`)
	return agent
}

// waitNotice waits for a worker notice containing want.
func waitNotice(b *testing.B, ctx context.Context, v *botviewer.Viewer, want string) {
	b.Helper()
	for {
		for _, n := range v.Notices() {
			if strings.Contains(n, want) {
				return
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("no notice %s; got %q", want, v.Notices())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *benchServer) post(b testing.TB, jar http.CookieJar, path, body, key string, out any) {
	b.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		b.Fatalf("POST %s = %d %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *benchServer) dial(b testing.TB, ctx context.Context, jar http.CookieJar, id, role string) *botviewer.Viewer {
	b.Helper()
	u, _ := url.Parse(s.url)
	hdr := http.Header{"Origin": {s.url}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/api/v1/sessions/"+id+"/ws?role="+role, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		b.Fatalf("websocket as %s: %v", role, err)
	}
	ws.SetReadLimit(protocol.MaxSignalBytes)
	sig := botviewer.WebSocket{C: ws}
	if hello, err := sig.Recv(ctx); err != nil || hello.Type != protocol.TypeHello {
		b.Fatalf("hello = %+v, %v", hello, err)
	}
	v, err := botviewer.Dial(ctx, sig)
	if err != nil {
		b.Fatalf("dial as %s: %v", role, err)
	}
	b.Cleanup(func() {
		_ = v.Close()
		_ = ws.CloseNow()
	})
	return v
}

// cpuTicks is the user+system CPU of a process and of its live descendants
// (Chromium runs as children of serve), in clock ticks.
func cpuTicks(pid int) (self, children uint64) {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	ticks := map[int]uint64{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		pp, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		parent[p], ticks[p] = pp, ut+st
	}
	for p, t := range ticks {
		if p == pid {
			self = t
			continue
		}
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				children += t
				break
			}
		}
	}
	return self, children
}

func centreColour(p botviewer.Picture) string { return imageColour(p.Image) }

// busyTogglePage is togglePage with a green box sliding for ever along
// the top of the page, away from where the benchmarks click and look: a
// carousel or a spinner elsewhere on a page keeps Chromium, the encoders
// and the viewers busy while the click is measured.
const busyTogglePage = `<!doctype html><html><head><meta charset="utf-8"><style>
html,body{margin:0;height:100%;background:#f00}
body.blue{background:#00f}
input{position:absolute;left:20px;top:20px;width:300px;font-size:20px}
#slide{position:absolute;left:0;top:80px;width:200px;height:200px;background:#0a0;animation:slide 1s linear infinite alternate}
@keyframes slide{from{left:0}to{left:600px}}
</style></head><body>
<input id="t" aria-label="text"><div id="slide"></div>
<script>
document.body.addEventListener('mousedown', e => { if (e.target === document.body) document.body.classList.toggle('blue') });
</script></body></html>`

// BenchmarkClickToVisible: on a still page (idle) and on one with an
// animation elsewhere (busy), b.N clicks each, one after the other:
//
//   - floor: CDP input straight to a Chromium started as Tandem starts it,
//     until the screencast frame showing the new colour is read (no Tandem);
//   - baseline: a Go viewer of a JPEG-over-WebSocket relay of the same
//     screencast clicks through its socket, until it decoded the new colour;
//   - customer, agent: Go viewers of the real tandem binary click through
//     the DataChannel, until their decoded WebRTC video shows the new colour.
//
// Each is reported as p50 and p95, with Tandem's overhead above the floor
// (customer p50 minus floor p50). Only one of the three runs at a time;
// each starts with warmupClicks that are not measured.
func BenchmarkClickToVisible(b *testing.B) {
	for _, page := range []struct{ name, path string }{{"idle", "/still"}, {"busy", "/busy"}} {
		b.Run(page.name, func(b *testing.B) { benchClickToVisible(b, page.path) })
	}
}

func benchClickToVisible(b *testing.B, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pages := benchPages(b)
	lat := map[string][]time.Duration{}
	// The previous run's tandem and browsers may still be exiting: the
	// floor, measured first, would pay for it.
	time.Sleep(2 * time.Second)

	floor := openDirectTab(b, ctx, pages.URL+path, nil)
	lat["floor"] = clickLatencies(b, ctx, b.N, floor.click, floor.waitColour)
	floor.Close()

	relay := startBaselineRelay(b, ctx, pages.URL+path)
	base := dialBaseline(b, ctx, relay)
	lat["baseline"] = clickLatencies(b, ctx, b.N, base.click, base.waitColour)
	relay.tab.Close()

	s := startBenchServer(b)
	cust, agent, _ := s.session(b, ctx, path)
	for _, v := range []*botviewer.Viewer{cust, agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return centreColour(p) == "red" }); err != nil {
			b.Fatal(err)
		}
	}
	colour := "red"
	for i := range warmupClicks + b.N {
		for _, who := range []string{"customer", "agent"} {
			v, other := cust, agent
			if who == "agent" {
				v, other = agent, cust
			}
			want := map[string]string{"red": "blue", "blue": "red"}[colour]
			isWant := func(p botviewer.Picture) bool { return centreColour(p) == want }
			t0 := time.Now()
			if err := v.Click(ctx, 768, 432); err != nil {
				b.Fatal(err)
			}
			p, err := v.WaitPicture(ctx, isWant)
			if err != nil {
				b.Fatal(err)
			}
			colour = want
			// the other viewer catches up before the next click
			q, err := other.WaitPicture(ctx, isWant)
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			if i < warmupClicks {
				continue
			}
			lat[who] = append(lat[who], p.At.Sub(t0))
			if who == "customer" {
				// The same change, seen by the agent through the mask.
				lat["agent-behind-customer"] = append(lat["agent-behind-customer"], q.At.Sub(p.At))
			}
		}
	}
	b.StopTimer()
	for who, l := range lat {
		b.ReportMetric(ms(percentile(l, 50)), "ms-p50-"+who)
		b.ReportMetric(ms(percentile(l, 95)), "ms-p95-"+who)
	}
	b.ReportMetric(ms(percentile(lat["customer"], 50)-percentile(lat["floor"], 50)), "ms-p50-overhead")
	// Tandem's own part, as the worker measured it (tandem_server_seconds).
	m := s.metrics(b)
	in := histogramQuantile(m, "tandem_server_seconds", `path="input",role="customer"`, 0.5)
	for _, role := range []string{"customer", "agent"} {
		frame := histogramQuantile(m, "tandem_server_seconds", `path="frame",role="`+role+`"`, 0.5)
		b.ReportMetric(frame*1000, "ms-p50-server-frame-"+role)
		if role == "customer" {
			b.ReportMetric((in+frame)*1000, "ms-p50-server")
		}
	}
	b.ReportMetric(in*1000, "ms-p50-server-input")
}

// histogramQuantile estimates the q-quantile of the scraped histogram name
// with labels (as written, without le), interpolating inside the bucket
// that holds it like Prometheus's histogram_quantile.
func histogramQuantile(m map[string]float64, name, labels string, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + "_bucket{" + labels + `,le="`
	for k, n := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
			if err == nil {
				bs = append(bs, bucket{le, n})
			}
		}
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0
	}
	rank := q * bs[len(bs)-1].n
	lo, below := 0.0, 0.0
	for _, bk := range bs {
		if bk.n >= rank {
			if math.IsInf(bk.le, 1) {
				return lo
			}
			return lo + (bk.le-lo)*(rank-below)/(bk.n-below)
		}
		lo, below = bk.le, bk.n
	}
	return lo
}

// percentile returns the p-th percentile of l (nearest rank), sorting l.
func percentile(l []time.Duration, p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)*p/100, len(l)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchPages serves the benchmarks' pages to a Chromium with no Tandem.
func benchPages(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(benchMux())
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkPointer: the agent moves its pointer 60 times a second (as a
// browser viewer sends it) for 2 s per iteration; how often the customer
// is shown it (notices a second, issue 5 wants 20 or more), and how long
// a lone move takes to be shown (p50, p95).
func BenchmarkPointer(b *testing.B) {
	s := startBenchServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cust, agent, _ := s.session(b, ctx, "/still")
	isPointerAt := func(x float64) func(string) bool {
		want := fmt.Sprintf(`"x":%v,`, x)
		return func(n string) bool { return strings.Contains(n, `"type":"pointer"`) && strings.Contains(n, want) }
	}
	move := func(x float64) {
		if err := agent.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: x, Y: 300}); err != nil {
			b.Fatal(err)
		}
	}
	var lat []time.Duration
	var rate []float64
	x := 1.0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := len(cust.Notices())
		t0 := time.Now()
		tick := time.NewTicker(16 * time.Millisecond)
		for time.Since(t0) < 2*time.Second {
			<-tick.C
			x++
			move(x)
		}
		tick.Stop()
		if _, _, err := cust.WaitNotice(ctx, from, isPointerAt(x)); err != nil {
			b.Fatalf("the last position never reached the customer: %v", err)
		}
		n := 0
		for _, m := range cust.Notices()[from:] {
			if strings.Contains(m, `"type":"pointer"`) {
				n++
			}
		}
		rate = append(rate, float64(n)/time.Since(t0).Seconds())
		for range 20 {
			time.Sleep(60 * time.Millisecond)
			x++
			from := len(cust.Notices())
			t1 := time.Now()
			move(x)
			if _, _, err := cust.WaitNotice(ctx, from, isPointerAt(x)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t1))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(rate)
	b.ReportMetric(rate[len(rate)/2], "pointer/s-customer")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50-pointer")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "ms-p95-pointer")
}

// BenchmarkSessionCPU: one session on an animated 720p page with a customer
// and an agent watching, for 10 s per iteration; CPU of Tandem's process
// and of its Chromium, the frame rate each viewer decoded, and of the
// frames Chromium produced (screencast frames the worker received), the
// share each role's encoder sent and the share each viewer decoded.
func BenchmarkSessionCPU(b *testing.B) {
	// With TANDEM_BENCH_PROFILE set, the first window is also profiled
	// (tandem's CPU, --pprof-addr) into that file.
	profile := os.Getenv("TANDEM_BENCH_PROFILE")
	var extra []string
	pprofAddr := ""
	if profile != "" {
		pprofAddr = freeAddr(b)
		extra = []string{"--pprof-addr", pprofAddr}
	}
	s := startBenchServer(b, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cust, agent, _ := s.session(b, ctx, "/animated")
	time.Sleep(2 * time.Second) // past the start
	hz := 100.0                 // USER_HZ on Linux
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		const window = 10 * time.Second
		profiled := make(chan error, 1)
		if profile != "" && i == 0 {
			go func() { profiled <- fetchProfile(pprofAddr, window, profile) }()
		} else {
			profiled <- nil
		}
		self0, kids0 := cpuTicks(s.cmd.Process.Pid)
		m0 := s.metrics(b)
		c0, a0 := latestN(cust), latestN(agent)
		time.Sleep(window)
		if err := <-profiled; err != nil {
			b.Fatalf("profile: %v", err)
		}
		self1, kids1 := cpuTicks(s.cmd.Process.Pid)
		m1 := s.metrics(b)
		c1, a1 := latestN(cust), latestN(agent)
		secs := window.Seconds()
		b.ReportMetric(float64(self1-self0)/hz/secs*100, "%cpu-tandem")
		b.ReportMetric(float64(kids1-kids0)/hz/secs*100, "%cpu-chromium")
		b.ReportMetric(float64(c1-c0)/secs, "fps-customer")
		b.ReportMetric(float64(a1-a0)/secs, "fps-agent")
		captured := m1["tandem_frames_captured_total"] - m0["tandem_frames_captured_total"]
		if captured == 0 {
			b.Fatal("Chromium produced no frame")
		}
		b.ReportMetric(captured/secs, "fps-captured")
		for _, role := range []string{"customer", "agent"} {
			enc := `tandem_frames_encoded_total{role="` + role + `"}`
			b.ReportMetric(100*(m1[enc]-m0[enc])/captured, "%encoded-"+role)
		}
		b.ReportMetric(100*float64(c1-c0)/captured, "%displayed-customer")
		b.ReportMetric(100*float64(a1-a0)/captured, "%displayed-agent")
	}
}

// fetchProfile saves a CPU profile of d from the profiler at addr to file.
func fetchProfile(addr string, d time.Duration, file string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET profile: %s", resp.Status)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, raw, 0o644)
}

// BenchmarkMaskScrolling: a session on a form page that scrolls all the
// time with masked fields all along it, watched by a customer and an agent,
// for 10 s per iteration: the share of captured frames the mask held back
// from the agent (the agent saw the previous safe frame instead), the mask's
// own time per frame, and the frame rate each viewer decoded.
func BenchmarkMaskScrolling(b *testing.B) {
	s := startBenchServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cust, agent, _ := s.session(b, ctx, "/form")
	time.Sleep(3 * time.Second) // past the start
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		const window = 10 * time.Second
		m0 := s.metrics(b)
		c0, a0 := latestN(cust), latestN(agent)
		time.Sleep(window)
		m1 := s.metrics(b)
		c1, a1 := latestN(cust), latestN(agent)
		frames := m1["tandem_mask_frames_total"] - m0["tandem_mask_frames_total"]
		if frames == 0 {
			b.Fatal("no frame went through the mask")
		}
		b.ReportMetric(100*(m1["tandem_mask_held_total"]-m0["tandem_mask_held_total"])/frames, "%frames-held")
		b.ReportMetric(1000*(m1["tandem_mask_seconds_total"]-m0["tandem_mask_seconds_total"])/frames, "ms-mask/frame")
		b.ReportMetric(m1["tandem_mask_pauses_total"]-m0["tandem_mask_pauses_total"], "pauses")
		b.ReportMetric(float64(c1-c0)/window.Seconds(), "fps-customer")
		b.ReportMetric(float64(a1-a0)/window.Seconds(), "fps-agent")
	}
}

// metrics reads serve's metrics (scrape).
func (s *benchServer) metrics(b *testing.B) map[string]float64 {
	b.Helper()
	return scrape(b, s.url+"/metrics")
}

// scrape reads a /metrics page: unlabelled metrics by name, labelled ones
// as written (`tandem_frames_encoded_total{role="agent"}`).
func scrape(b testing.TB, u string) map[string]float64 {
	b.Helper()
	r, err := http.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	out := map[string]float64{}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// end ends a session, as an integrator does.
func (s *benchServer) end(b *testing.B, id string) {
	b.Helper()
	req, _ := http.NewRequest("DELETE", s.url+"/api/v1/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+benchKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("DELETE session = %d", resp.StatusCode)
	}
}

func latestN(v *botviewer.Viewer) int {
	p, _ := v.WaitPicture(context.Background(), func(botviewer.Picture) bool { return true })
	return p.N
}
