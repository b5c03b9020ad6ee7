package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/pkg/testshop"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// One browser pool per package: Chromium is heavy on two cores.
var testPool *browserpool.Pool

func TestMain(m *testing.M) {
	var err error
	testPool, err = browserpool.New(browserpool.Config{Warm: -1}, zap.NewNop())
	if err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "browser pool:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "SKIP: no Chromium:", err)
		os.Exit(0)
	}
	os.Exit(leakcheck.Run(closePoolAfter{m}))
}

// closePoolAfter closes the package's browser pool after the tests, before
// the goroutine check.
type closePoolAfter struct{ m *testing.M }

func (c closePoolAfter) Run() int {
	defer testPool.Close() //nolint:errcheck
	return c.m.Run()
}

// colourPage is red until it is clicked, then blue; a text field records keys.
const colourPage = `<!doctype html><html><head><style>
html,body{margin:0;height:100%;background:#f00}
body.clicked{background:#00f}
input{position:absolute;left:10px;top:10px;width:200px}
</style></head><body>
<input id="t" aria-label="text">
<script>
document.body.addEventListener('mousedown', e => { if (e.target === document.body) document.body.classList.add('clicked') });
document.getElementById('t').addEventListener('input', e => fetch('/typed?v=' + encodeURIComponent(e.target.value)));
</script></body></html>`

type harness struct {
	nc     *nats.Conn
	w      *Worker
	page   *httptest.Server
	typed  chan string
	events chan Event
	buys   chan string // the shop's buy endpoint: how each purchase came (blocking_test.go)
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessRTC(t, cfg, rtc.Config{Loopback: true})
}

// newHarnessRTC is newHarness with the worker's WebRTC settings rc.
func newHarnessRTC(t *testing.T, cfg Config, rc rtc.Config) *harness {
	t.Helper()
	return newHarnessPool(t, cfg, rc, testPool)
}

// newHarnessPool is newHarnessRTC with the browsers of pool.
func newHarnessPool(t *testing.T, cfg Config, rc rtc.Config, pool *browserpool.Pool) *harness {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bus.Start(ctx, bus.Config{Dir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	api, err := rtc.NewAPI(rc, log)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(cfg, b.Conn(), pool, api, log)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{nc: b.Conn(), w: w, typed: make(chan string, 64), events: make(chan Event, 64)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, colourPage) })
	mux.HandleFunc("/mask", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, maskPage) })
	mux.HandleFunc("/typed", func(w http.ResponseWriter, r *http.Request) {
		select {
		case h.typed <- r.URL.Query().Get("v"):
		default:
		}
	})
	shop := testshop.New()
	h.buys = shop.Buys
	shop.Routes(mux)
	controlRoutes(mux)
	annotateRoutes(mux)
	keysRoutes(mux)
	uploadRoutes(mux)
	cursorRoutes(mux)
	tabRoutes(mux)
	downloadRoutes(mux)
	recoverRoutes(mux)
	pauseRoutes(mux)
	h.page = httptest.NewServer(mux)
	sub, err := b.Conn().Subscribe(SubjectEventsAll, func(m *nats.Msg) {
		var ev Event
		if json.Unmarshal(m.Data, &ev) == nil {
			h.events <- ev
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready")
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = sub.Unsubscribe()
		h.page.Close()
		_ = api.Close()
		_ = b.Close()
	})
	return h
}

func (h *harness) lease(t *testing.T, company, id string) LeaseReply {
	t.Helper()
	return h.leaseWith(t, LeaseRequest{Company: company, SessionID: id})
}

// leaseWith asks for a session of r, on the harness's page, joinable for a minute.
func (h *harness) leaseWith(t *testing.T, r LeaseRequest) LeaseReply {
	t.Helper()
	if r.StartURL == "" {
		r.StartURL = h.page.URL
	} else if strings.HasPrefix(r.StartURL, "/") {
		r.StartURL = h.page.URL + r.StartURL
	}
	r.JoinBy = time.Now().Add(time.Minute)
	req, _ := json.Marshal(r)
	m, err := h.nc.Request(SubjectLease, req, 30*time.Second)
	if err != nil {
		t.Fatalf("lease request: %v", err)
	}
	var rep LeaseReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// join connects a Go viewer of role to the session through signaling,
// offering the m-lines the role's page offers (docs/screenshare.md).
func (h *harness) join(ctx context.Context, t *testing.T, company, session, role string) *botviewer.Viewer {
	t.Helper()
	return h.joinWith(ctx, t, company, session, role, botviewer.Options{ShareScreen: role == RoleCustomer, SeeScreen: role == RoleAgent})
}

// joinWith is join with the m-lines of opts.
func (h *harness) joinWith(ctx context.Context, t *testing.T, company, session, role string, opts botviewer.Options) *botviewer.Viewer {
	t.Helper()
	pipe := botviewer.NewPipe()
	relay := signaling.NewRelay(h.nc, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	bctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = relay.Bridge(bctx, pipe.Conn(), signaling.Viewer{Company: company, Session: session, ID: "v_" + role + fmt.Sprint(time.Now().UnixNano()), Role: role, Name: role})
	}()
	v, err := botviewer.DialWith(ctx, pipe.Signaler(), opts)
	if err != nil {
		cancel()
		pipe.Close()
		<-done
		t.Fatalf("dial as %s: %v", role, err)
	}
	t.Cleanup(func() {
		_ = v.Close()
		cancel()
		pipe.Close()
		<-done
	})
	return v
}

func centre(p botviewer.Picture) (byte, byte, byte) {
	return botviewer.Pixel(p.Image, p.Width/2, p.Height/2)
}

func TestSessionStreamsAndTakesInput(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.lease(t, "acme", "s_stream"); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_stream", RoleCustomer)
	agent := h.join(ctx, t, "acme", "s_stream", RoleAgent)
	h.gate(t, Gate{Company: "acme", SessionID: "s_stream", Consented: true}, "")

	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		p, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) })
		if err != nil {
			t.Fatalf("%s never saw the red page: %v (last %dx%d)", name, err, p.Width, p.Height)
		}
		if p.Width != 1280 || p.Height != 720 {
			t.Errorf("%s picture %dx%d, want 1280x720", name, p.Width, p.Height)
		}
	}

	// A click through the customer's channel turns the page blue for both.
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
			t.Fatalf("%s never saw the page turn blue: %v", name, err)
		}
	}

	// Typing: a click in the field, keys and composed Japanese text.
	grantControl(ctx, t, customer, agent)
	if err := agent.Click(ctx, 50, 20); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []input.Event{
		{Kind: input.KindKey, Action: input.ActionDown, Key: "h", Code: "KeyH", KeyCode: 72, Text: "h"},
		{Kind: input.KindKey, Action: input.ActionUp, Key: "h", Code: "KeyH", KeyCode: 72},
		{Kind: input.KindText, Text: "日本"},
	} {
		if err := agent.Send(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	waitTyped(ctx, t, h.typed, "h日本")

	// The metrics count what happened.
	got := gather(t, h.w)
	for name, min := range map[string]float64{
		"tandem_worker_sessions":                1,
		"tandem_frames_captured_total":          2,
		`tandem_frames_encoded_total{customer}`: 2,
		`tandem_frames_encoded_total{agent}`:    2,
		`tandem_key_frames_total{customer}`:     1,
		`tandem_viewers{customer}`:              1,
		`tandem_video_bytes_total{agent}`:       1000,
		// Tandem's own time was measured on both paths, for both roles:
		// the customer's click, the agent's click and keys, and frames.
		`tandem_server_seconds{input}{customer}_count`: 2,
		`tandem_server_seconds{input}{agent}_count`:    4,
		`tandem_server_seconds{frame}{customer}_count`: 2,
		`tandem_server_seconds{frame}{agent}_count`:    2,
		// The session's own browser: some CPU, and the memory of a Chromium.
		`tandem_session_browser_cpu_seconds_total{acme}{s_stream}`: 0.01,
		`tandem_session_browser_memory_bytes{acme}{s_stream}`:      20 << 20,
	} {
		if got[name] < min {
			t.Errorf("metric %s = %v, want at least %v", name, got[name], min)
		}
	}
	if n := got[`tandem_browser_start_seconds{warm}_count`] + got[`tandem_browser_start_seconds{cold}_count`]; n < 1 {
		t.Errorf("the start-time histogram counts %v starts, want the session's browser", n)
	}
}

// gather scrapes the worker's collector into name{label} → value.
func gather(t *testing.T, w *Worker) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(w)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func waitTyped(ctx context.Context, t *testing.T, typed <-chan string, want string) {
	t.Helper()
	for {
		select {
		case v := <-typed:
			if v == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the page never had %q typed", want)
		}
	}
}

func TestCustomerViewportResizesTab(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.lease(t, "acme", "s_resize"); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_resize", RoleCustomer)
	agent := h.join(ctx, t, "acme", "s_resize", RoleAgent)
	h.gate(t, Gate{Company: "acme", SessionID: "s_resize", Consented: true}, "")
	if err := agent.Send(ctx, input.Event{Kind: input.KindViewport, Width: 400, Height: 300}); err != nil {
		t.Fatal(err)
	}
	if err := customer.Send(ctx, input.Event{Kind: input.KindViewport, Width: 641, Height: 481}); err != nil {
		t.Fatal(err)
	}
	// The agent's request is ignored; the customer's is clamped to even
	// sizes. (A frame or two at the old aspect may come while Chromium
	// resizes.)
	sawAgentSize := false
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool {
		sawAgentSize = sawAgentSize || (p.Width == 400 && p.Height == 300)
		return p.Width == 640 && p.Height == 480
	}); err != nil {
		t.Fatalf("never a 640x480 picture after the customer asked for 641x481: %v", err)
	}
	if sawAgentSize {
		t.Error("the agent's viewport request resized the tab")
	}
	// Every viewer is told the size, also one that joins after the resize.
	late := h.join(ctx, t, "acme", "s_resize", RoleAgent)
	for _, v := range []*botviewer.Viewer{customer, agent, late} {
		waitFor(ctx, t, "the viewport notice", func() bool {
			return strings.Contains(strings.Join(v.Notices(), ""), `"type":"viewport","width":640,"height":480`)
		})
	}
}

func TestEndRequestEndsSessionAndFreesBrowser(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep := h.lease(t, "acme", "s_end")
	if rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	v := h.join(ctx, t, "acme", "s_end", RoleCustomer)
	b, _ := json.Marshal(EndRequest{Company: "acme", SessionID: "s_end", Reason: ReasonAgentEnded})
	if _, err := h.nc.Request(EndSubject(rep.WorkerID), b, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	reason, err := v.WaitEnded(ctx)
	if err != nil || reason != ReasonAgentEnded {
		t.Fatalf("viewer ended = %q, %v; want %q", reason, err, ReasonAgentEnded)
	}
	// The viewer's join and leave are published (for the audit trail) before
	// the session's end.
	var joined, left bool
	for {
		select {
		case ev := <-h.events:
			if ev.SessionID != "s_end" {
				continue
			}
			switch ev.Type {
			case EventViewerJoined:
				joined = ev.Company == "acme" && ev.Role == RoleCustomer && strings.HasPrefix(ev.ViewerID, "v_customer") && ev.Name == RoleCustomer
			case EventViewerLeft:
				left = joined && ev.Role == RoleCustomer && strings.HasPrefix(ev.ViewerID, "v_customer")
			}
			if ev.Type == "ended" {
				if !joined || !left {
					t.Errorf("before the end: viewer joined %v, left %v; want both, in that order", joined, left)
				}
				if ev.Reason != ReasonAgentEnded || ev.Company != "acme" {
					t.Errorf("ended event = %+v", ev)
				}
				if n := h.w.Sessions(); n != 0 {
					t.Errorf("worker still hosts %d sessions", n)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no ended event")
		}
	}
}

func TestLeaseRefusals(t *testing.T) {
	h := newHarness(t, Config{MaxSessions: 1})
	if rep := h.lease(t, "acme", "s_one"); rep.Error != "" {
		t.Fatalf("first lease = %+v", rep)
	}
	if rep := h.lease(t, "acme", "s_two"); rep.Error != "no_capacity" {
		t.Errorf("lease beyond capacity = %+v, want no_capacity", rep)
	}
	if rep := h.lease(t, "acme", "s_one"); rep.Error == "" {
		t.Errorf("second lease of a hosted session = %+v, want an error", rep)
	}
	m, err := h.nc.Request(SubjectLease, []byte(`{"company":"a b","session_id":"x"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep LeaseReply
	_ = json.Unmarshal(m.Data, &rep)
	if rep.Error != "invalid_request" {
		t.Errorf("lease with a bad company = %+v, want invalid_request", rep)
	}
	h.w.Drain()
	if rep := h.lease(t, "acme", "s_three"); rep.Error != "no_capacity" || !strings.Contains(rep.Message, "draining") {
		t.Errorf("lease of a draining worker = %+v, want no_capacity because it drains", rep)
	}
}

// A start page the pool refuses (a scheme here; the egress check in serve)
// is answered url_not_allowed, and the worker goes on hosting sessions.
func TestLeaseRefusesStartPage(t *testing.T) {
	h := newHarness(t, Config{})
	for i, u := range []string{"file:///etc/passwd", "chrome://version", "view-source:http://example.com/"} {
		rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: fmt.Sprintf("s_bad%d", i), StartURL: u})
		if rep.Error != "url_not_allowed" {
			t.Errorf("lease at %s = %+v, want url_not_allowed", u, rep)
		}
	}
	if rep := h.lease(t, "acme", "s_good"); rep.Error != "" {
		t.Fatalf("lease after refused start pages = %+v, want a session", rep)
	}
}

func TestCompanyLimitsEndSessions(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_short", MaxDuration: 2 * time.Second}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	v := h.join(ctx, t, "acme", "s_short", RoleCustomer)
	reason, err := v.WaitEnded(ctx)
	if err != nil || reason != ReasonMaxLength {
		t.Fatalf("viewer ended = %q, %v; want %q from the company's 2 s limit", reason, err, ReasonMaxLength)
	}
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_neg", IdleTimeout: -time.Second}); rep.Error != "invalid_request" {
		t.Errorf("lease with a negative idle timeout = %+v, want invalid_request", rep)
	}
}
