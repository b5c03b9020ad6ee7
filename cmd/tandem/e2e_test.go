package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
)

// TANDEM_E2E_SHOTS=dir writes screenshots of the viewers into dir.
func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Stop()
	os.Exit(code)
}

// togglePage turns from red to blue and back on every press on its body; a
// text field reports what is typed into it.
const togglePage = `<!doctype html><html><head><meta charset="utf-8"><style>
html,body{margin:0;height:100%;background:#f00}
body.blue{background:#00f}
input{position:absolute;left:20px;top:20px;width:300px;font-size:20px}
</style></head><body>
<input id="t" aria-label="text">
<script>
document.body.addEventListener('mousedown', e => { if (e.target === document.body) document.body.classList.toggle('blue') });
document.getElementById('t').addEventListener('input', e => fetch('/typed?v=' + encodeURIComponent(e.target.value)));
</script></body></html>`

// videoColourJS reads the colour at a point of the viewer's decoded video,
// in remote viewport fractions.
const videoColourJS = `(() => {
  const v = document.querySelector('video');
  if (!v || !v.videoWidth) return 'none';
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(c.width * 0.6 | 0, c.height * 0.6 | 0, 1, 1).data;
  if (d[0] > 170 && d[1] < 90 && d[2] < 90) return 'red';
  if (d[2] > 170 && d[0] < 90 && d[1] < 90) return 'blue';
  return 'other ' + d[0] + ',' + d[1] + ',' + d[2];
})()`

// videoPointJS returns page coordinates of a point of the remote viewport
// given in fractions (fx, fy) of it, through the video's letterboxing.
const videoPointJS = `((fx, fy) => {
  const v = document.querySelector('video');
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const w = v.videoWidth * s, h = v.videoHeight * s;
  return [r.left + (r.width - w) / 2 + fx * w, r.top + (r.height - h) / 2 + fy * h];
})(%v, %v)`

// remotePointJS is the same for a point in remote viewport pixels.
const remotePointJS = `((x, y) => {
  const v = document.querySelector('video');
  const r = v.getBoundingClientRect();
  const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
  const w = v.videoWidth * s, h = v.videoHeight * s;
  return [r.left + (r.width - w) / 2 + x * s, r.top + (r.height - h) / 2 + y * s];
})(%v, %v)`

// clickTimedJS clicks is measured in the page: it waits for the first video
// frame (requestVideoFrameCallback) whose colour differs from before.
const waitChangeJS = `new Promise((resolve, reject) => {
  const v = document.querySelector('video');
  const before = %q;
  const t0 = performance.now();
  const c = document.createElement('canvas');
  const check = () => {
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d'); g.drawImage(v, 0, 0);
    const d = g.getImageData(c.width * 0.6 | 0, c.height * 0.6 | 0, 1, 1).data;
    const now = (d[0] > 170 && d[2] < 90) ? 'red' : (d[2] > 170 && d[0] < 90) ? 'blue' : 'other';
    if (now !== before && now !== 'other') return resolve(performance.now() - t0);
    if (performance.now() - t0 > 10000) return reject(new Error('no change'));
    v.requestVideoFrameCallback(check);
  };
  window.__tandemClickAt = t0;
  v.requestVideoFrameCallback(check);
})`

type server struct {
	URL    string
	typed  chan string
	cancel context.CancelFunc
	done   chan error
}

const (
	e2ePassword = "e2e-password-1"
	e2eKey      = "tdm_e2e_key_0123456789abcdefghijklmnop"
)

// startServe runs `tandem serve --demo` in-process on a random port, with a
// test page server beside it.
func startServe(t *testing.T) (*server, *httptest.Server) {
	t.Helper()
	return startServePage(t, togglePage)
}

// startServePage is startServe with html as the test page.
func startServePage(t *testing.T, html string) (*server, *httptest.Server) {
	t.Helper()
	s := &server{typed: make(chan string, 64), done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, html) })
	mux.HandleFunc("/typed", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.typed <- r.URL.Query().Get("v"):
		default:
		}
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	serveFor(t, s, nil)
	return s, page
}

// testEgressAllow lets the hosted browser reach the tests' own pages, which
// are httptest servers on loopback; the egress proxy stays on, so every
// end-to-end test goes through it.
const testEgressAllow = "127.0.0.1/32"

// serveFor runs serve in-process for s, with faults injected into the
// worker's mask path (nil: none), until the test ends.
func serveFor(t *testing.T, s *server, faults *mask.Faults) {
	t.Helper()
	serveWith(t, s, func(c *serveConfig) {
		c.maskFaults = faults
		c.EgressAllow = listFlag{testEgressAllow}
	})
}

// serveWith runs `serve --demo` in-process for s, with the settings edit
// makes, until the test ends.
func serveWith(t *testing.T, s *server, edit func(*serveConfig)) {
	t.Helper()
	data, err := os.MkdirTemp("", "tandem-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	cfg := serveConfig{Addr: "127.0.0.1:0", Data: data, Demo: true, DemoPassword: e2ePassword, DemoAPIKey: e2eKey,
		LogLevel: "warn", ICELoopback: "auto"}
	edit(&cfg)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ready := make(chan string, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { s.done <- serve(ctx, cfg, log, io.Discard, ready) }()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
}

func (s *server) api(t *testing.T, method, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

func waitColour(t *testing.T, ctx context.Context, who, want string) {
	t.Helper()
	browsertest.WaitJS(t, ctx, who+" sees "+want, fmt.Sprintf("%s === %q", videoColourJS, want))
}

func clickAt(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	xy := browsertest.Eval[[]float64](t, ctx, js)
	browsertest.Run(t, ctx, "click the video", chromedp.MouseClickXY(xy[0], xy[1]))
}

// clickAndTime clicks on the page's body through the video and returns how
// long the viewer's decoded video took to show the new colour.
func clickAndTime(t *testing.T, ctx context.Context, before string) time.Duration {
	t.Helper()
	xy := browsertest.Eval[[]float64](t, ctx, fmt.Sprintf(videoPointJS, 0.6, 0.6))
	type res struct {
		ms  float64
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(waitChangeJS, before), chromedp.EvalAwaitPromise))
		ch <- res{ms, err}
	}()
	time.Sleep(30 * time.Millisecond) // the watcher is installed
	browsertest.Run(t, ctx, "click", chromedp.MouseClickXY(xy[0], xy[1]))
	r := <-ch
	if r.err != nil {
		t.Fatalf("video never changed after the click: %v", r.err)
	}
	return time.Duration(r.ms * float64(time.Millisecond))
}

// noPictureJS watches the viewer's video for %d ms and answers "none" if no
// RTP packet, no decoded frame and no picture size arrived, or what did.
const noPictureJS = `new Promise(async (resolve) => {
  const end = performance.now() + %d;
  while (performance.now() < end) {
    const v = document.querySelector('.viewer-video');
    let packets = 0, frames = 0;
    const stats = await window.tandemViewer.pc.getStats();
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') { packets += r.packetsReceived || 0; frames += r.framesDecoded || 0; }
    });
    if (v.videoWidth > 0 || packets > 0 || frames > 0) return resolve('picture ' + v.videoWidth + 'x' + v.videoHeight + ', ' + packets + ' packets, ' + frames + ' frames');
    await new Promise((r) => setTimeout(r, 200));
  }
  resolve('none');
})`

// TestEndToEnd is the walking skeleton as a person uses it: an integration
// creates a session over REST, the customer joins with the PIN through the
// real join page in a real browser and is asked to agree; an agent who logs
// in through the console and opens the session meanwhile gets no picture
// at all; the customer starts sharing, both see the remote tab in the video
// and operate it through the video.
func TestEndToEnd(t *testing.T) {
	s, page := startServe(t)
	created := time.Now()
	sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+page.URL+`/"}`)
	id, pin := sess["id"].(string), sess["pin"].(string)

	// The customer joins through the join page and is asked to agree; their
	// own tab already plays behind the question.
	cust, _ := browsertest.NewTab(t, 1280, 800, false)
	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", pin)
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "customer view", `location.pathname === "/s/`+id+`"`)
	browsertest.WaitJS(t, cust, "consent screen", `document.body.dataset.consent === 'asking' && !document.getElementById('consent').hidden`)
	browsertest.WaitJS(t, cust, "customer's own tab", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, cust, "customer", "red")
	browsertest.Shot(t, cust, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-customer-consent")
	t.Logf("create → first red frame at the customer: %v", time.Since(created).Round(time.Millisecond))

	// The agent logs in through the console and opens the session before
	// the customer agreed: the console says it waits, and the agent's
	// connected video gets not a single packet.
	agent, _ := browsertest.NewTab(t, 1280, 900, false)
	agentOpens(t, s, agent, sess["agent_url"].(string))
	browsertest.WaitJS(t, agent, "the customer arrived", `document.getElementById('arrival-text').textContent.includes('Chrome on Linux')`)
	browsertest.WaitJS(t, agent, "waiting for the consent", `document.getElementById('arrival-status').textContent.startsWith('Waiting for the customer to agree') &&
		window.tandemViewer?.pc?.connectionState === 'connected'`)
	// The customer's screen names the agent who opened the session.
	browsertest.WaitJS(t, cust, "the agent is named", `[...document.querySelectorAll('#consent-people li')].some(li => li.textContent.startsWith('Demo Agent'))`)
	if got := browsertest.Eval[string](t, agent, fmt.Sprintf(noPictureJS, 3000)); got != "none" {
		t.Fatalf("the agent's video got a %s before the customer agreed", got)
	}
	if got := browsertest.Eval[string](t, agent, "document.querySelector('.viewer-stage').dataset.state"); got == "live" {
		t.Fatalf("the agent's view is live before the customer agreed")
	}
	waitColour(t, cust, "customer", "red") // while the customer's own video plays on

	// The customer starts sharing: the agent sees the tab.
	browsertest.Run(t, cust, "start sharing", chromedp.Click("#consent-start"))
	browsertest.WaitJS(t, cust, "sharing", `document.body.dataset.consent === 'sharing' && document.getElementById('consent').hidden`)
	browsertest.WaitJS(t, agent, "agent live", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, agent, "agent", "red")

	// The customer clicks through the video: the remote page turns blue for both.
	var lat []time.Duration
	lat = append(lat, clickAndTime(t, cust, "red"))
	waitColour(t, cust, "customer", "blue")
	waitColour(t, agent, "agent", "blue")
	browsertest.Shot(t, agent, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-agent-live")
	browsertest.Shot(t, cust, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-customer-live")

	// The customer types into the remote field; the keys go without
	// waiting for Chromium's answers and must land in order.
	clickAt(t, cust, fmt.Sprintf(remotePointJS, 60, 35))
	browsertest.Type(t, cust, "tandem2026order42qwerty")
	waitTyped(t, s.typed, "tandem2026order42qwerty")

	// The agent is viewing: its click stays in the console, with a note;
	// its pointer shows on the customer's view, named.
	clickAt(t, agent, fmt.Sprintf(videoPointJS, 0.6, 0.6))
	browsertest.WaitJS(t, agent, "the viewing note", `(() => { const n = document.querySelector('.viewer-note'); return !n.hidden && n.textContent.startsWith('You are viewing'); })()`)
	xy := browsertest.Eval[[]float64](t, agent, fmt.Sprintf(videoPointJS, 0.3, 0.3))
	browsertest.Run(t, agent, "move the pointer", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, xy[0], xy[1], chromedp.ButtonNone))
	browsertest.WaitJS(t, cust, "the agent's pointer", `document.querySelector('.viewer-pointer[data-role="agent"]')?.textContent.startsWith('Demo Agent')`)

	// The agent asks for control and the customer allows it; the agent's
	// click turns the page red for both.
	browsertest.Run(t, agent, "request control", chromedp.Click(".viewer-control-button"))
	browsertest.WaitJS(t, cust, "the customer is asked", `document.querySelector('.viewer-ask')?.checkVisibility() && document.querySelector('.viewer-ask-text').textContent.startsWith('Demo Agent')`)
	browsertest.Run(t, cust, "allow", chromedp.Click(".viewer-ask-allow"))
	browsertest.WaitJS(t, agent, "the agent controls", `document.querySelector('.viewer').dataset.control === 'controlling'`)
	browsertest.WaitJS(t, cust, "the customer sees who controls", `document.querySelector('.viewer-control-text').textContent.includes('can control this tab')`)
	waitColour(t, cust, "customer", "blue") // the viewing click changed nothing
	lat = append(lat, clickAndTime(t, agent, "blue"))
	waitColour(t, cust, "customer", "red")

	// The customer takes control back with the key; the agent is viewing again.
	browsertest.Run(t, cust, "Alt+Shift+C", chromedp.KeyEvent("C", chromedp.KeyModifiers(chromedp.ModifierAlt, chromedp.ModifierShift)))
	browsertest.WaitJS(t, agent, "the agent views again", `document.querySelector('.viewer').dataset.control === 'viewing'`)
	browsertest.WaitJS(t, cust, "the bar is gone", `!document.querySelector('.viewer-control').checkVisibility()`)

	// More customer clicks for a latency figure (logged, not asserted).
	colour := "red"
	for range 8 {
		lat = append(lat, clickAndTime(t, cust, colour))
		colour = map[string]string{"red": "blue", "blue": "red"}[colour]
		waitColour(t, agent, "agent", colour)
	}
	slices.Sort(lat)
	t.Logf("click → visible in the viewer's video: median %v over %d clicks (min %v, max %v)",
		lat[len(lat)/2].Round(time.Millisecond), len(lat), lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))

	// Ending the session shows the end in both viewers.
	ended := s.api(t, "DELETE", "/api/v1/sessions/"+id, "")
	if ended["state"] != "ended" {
		t.Fatalf("DELETE answered %v", ended)
	}
	for who, ctx := range map[string]context.Context{"customer": cust, "agent": agent} {
		browsertest.WaitJS(t, ctx, who+" sees the end", `document.querySelector('.viewer-stage')?.dataset.state === 'ended'`)
	}
	got := s.api(t, "GET", "/api/v1/sessions/"+id, "")
	if got["state"] != "ended" || got["end_reason"] != "agent_ended" || got["consent_at"] == nil {
		t.Errorf("session after end = %v", got)
	}
	waitAudit(t, s, id)
}

// waitAudit waits for the session's audit trail to hold the customer's and
// the agent's joins (reported by the worker), exactly one consent and
// exactly one end.
func waitAudit(t *testing.T, s *server, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var seen []string
		count := map[string]int{}
		events, _ := s.api(t, "GET", "/api/v1/sessions/"+id+"/audit", "")["events"].([]any)
		for _, e := range events {
			ev, _ := e.(map[string]any)
			typ, actor := fmt.Sprint(ev["type"]), fmt.Sprint(ev["actor"])
			seen = append(seen, actor+" "+typ)
			if typ == "agent.joined" && !strings.HasPrefix(actor, "agent:a_") {
				t.Errorf("agent.joined by %q, want the agent's id", actor)
			}
			count[typ]++
		}
		if count["customer.joined"] >= 1 && count["agent.joined"] >= 1 && count["consent.given"] == 1 && count["session.ended"] == 1 {
			return
		}
		if count["session.ended"] > 1 || count["consent.given"] > 1 || time.Now().After(deadline) {
			t.Fatalf("audit trail = %v; want customer.joined, agent.joined, one consent.given and one session.ended", seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitTyped(t *testing.T, typed <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	var last string
	for {
		select {
		case last = <-typed:
			if last == want {
				return
			}
		case <-deadline:
			t.Fatalf("the remote field has %q, want %q", last, want)
		}
	}
}

// agentOpens signs the demo agent in through the console in tab agent and
// opens the session's agent URL there.
func agentOpens(t *testing.T, s *server, agent context.Context, agentURL string) {
	t.Helper()
	browsertest.Run(t, agent, "open console", chromedp.Navigate(s.URL+"/agent/"))
	browsertest.Fill(t, agent, "#login-email", "agent@demo.test")
	browsertest.Fill(t, agent, "#login-password", e2ePassword)
	browsertest.Run(t, agent, "log in", chromedp.Click(`#login-form button[type="submit"]`))
	browsertest.WaitJS(t, agent, "console", `!document.getElementById('console').hidden`)
	browsertest.Run(t, agent, "open the session", chromedp.Navigate(agentURL))
}
