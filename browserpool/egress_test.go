package browserpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/egress"
)

// hostilePage aims every way a page has of making a request at the loopback
// servers CANARY (not allowed) and MIRROR (allowed: the same attempts must
// reach it, which proves they are real), then reports what it saw.
const hostilePage = `<!doctype html><title>hostile</title><body><script>
const canary = 'CANARY', mirror = 'MIRROR', udp = UDPPORT;
const cport = canary.split(':').pop();
const settle = (p) => Promise.race([p, new Promise(r => setTimeout(r, 8000))]).catch(() => {});
const img = (u) => settle(new Promise(r => { const i = new Image(); i.onload = i.onerror = r; i.src = u; document.body.append(i); }));
const frame = (u) => settle(new Promise(r => { const f = document.createElement('iframe'); f.onload = r; f.src = u; document.body.append(f); }));
const xhr = (u) => settle(new Promise(r => { const x = new XMLHttpRequest(); x.onloadend = r; x.open('GET', u); x.send(); }));
const ws = (u) => settle(new Promise(r => { const s = new WebSocket(u); s.onopen = () => { s.close(); r(); }; s.onerror = s.onclose = r; }));
const es = (u) => settle(new Promise(r => { const s = new EventSource(u); s.onopen = s.onerror = () => { s.close(); r(); }; }));
const all = (base) => [
  img(base + '/img'), frame(base + '/frame'), xhr(base + '/xhr'),
  settle(fetch(base + '/fetch', {mode: 'no-cors'})),
  settle(fetch(base + '/keepalive', {mode: 'no-cors', method: 'POST', keepalive: true, body: 'x'})),
  ws(base.replace('http', 'ws') + '/ws'), es(base + '/events'),
  img('/redirect?to=' + encodeURIComponent(base + '/redirected-img')),
  frame('/redirect?to=' + encodeURIComponent('/redirect?to=' + encodeURIComponent(base + '/redirected-frame'))),
  settle(fetch('/redirect?to=' + encodeURIComponent(base + '/redirected-fetch'), {mode: 'no-cors'})),
];
const encoded = ['http://2130706433:', 'http://0x7f.0.0.1:', 'http://0177.0.0.1:', 'http://[::ffff:127.0.0.1]:',
  'http://127.1:', 'http://localhost:', 'http://sub.localhost:', 'http://[::1]:', 'http://0.0.0.0:'].map(h => h + cport);
async function webrtc() {
  const cands = [];
  try {
    const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:127.0.0.1:' + udp},
      {urls: 'turn:127.0.0.1:' + udp + '?transport=udp', username: 'u', credential: 'p'},
      {urls: 'turn:127.0.0.1:' + cport + '?transport=tcp', username: 'u', credential: 'p'}]});
    pc.createDataChannel('x');
    const done = new Promise(r => { pc.onicecandidate = e => e.candidate ? cands.push(e.candidate.candidate) : r(); });
    await pc.setLocalDescription(await pc.createOffer());
    await settle(done);
    pc.close();
  } catch (e) { cands.push('error ' + e); }
  return cands;
}
(async () => {
  await Promise.all([...all(mirror), ...all(canary), ...encoded.flatMap(b => [img(b + '/enc'), settle(fetch(b + '/enc', {mode: 'no-cors'})), ws(b.replace('http', 'ws') + '/enc')])]);
  const cands = await webrtc();
  await fetch('/report?v=' + encodeURIComponent('candidates ' + JSON.stringify(cands)));
  await fetch('/report?v=done');
})();
</script></body>`

// countingServer is a loopback server that counts the connections it gets
// and records the paths asked for.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	paths map[string]bool // guarded by mu
}

func (s *countingServer) asked(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	s := &countingServer{paths: map[string]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths[r.URL.Path] = true
		s.mu.Unlock()
		w.Header().Set("Content-Type", "image/gif")
		io.WriteString(w, "GIF89a")
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// startEgress runs an egress proxy for the test.
func startEgress(t *testing.T, allow ...string) *egress.Proxy {
	t.Helper()
	px, err := egress.New(egress.Config{Allow: allow}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- px.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("egress Run: %v", err)
		}
	})
	return px
}

// TestEgressKeepsHostedPagesOffLoopback is SECURITY.md P6's test: a hostile
// page from an allowed origin aims img, fetch, XHR, WebSocket, EventSource,
// iframes, redirect chains, encoded IPs and WebRTC at a loopback canary that
// is not allowed: the canary sees no connection, no UDP packet. The same
// attempts at an allowed mirror arrive.
func TestEgressKeepsHostedPagesOffLoopback(t *testing.T) {
	needPool(t)
	canary, mirror := newCountingServer(t), newCountingServer(t)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	var packets atomic.Int64
	udpDone := make(chan struct{})
	go func() {
		defer close(udpDone)
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			packets.Add(1)
		}
	}()
	t.Cleanup(func() { udp.Close(); <-udpDone })

	page := strings.NewReplacer("CANARY", canary.URL, "MIRROR", mirror.URL,
		"UDPPORT", fmt.Sprint(udp.LocalAddr().(*net.UDPAddr).Port)).Replace(hostilePage)
	site := newRedirectingReporter(t, page)
	px := startEgress(t, site.URL, mirror.URL)

	pool, err := New(Config{Warm: -1, TempDir: testTempDir, ProxyServer: px.URL()}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pool.Close(); err != nil {
			t.Errorf("pool Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := pool.Lease(ctx, LeaseOptions{StartURL: site.URL + "/"})
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })

	main := cmdline(l.PID())
	for _, want := range []string{"--proxy-server=" + px.URL(), "--proxy-bypass-list=<-loopback>",
		"--force-webrtc-ip-handling-policy=disable_non_proxied_udp"} {
		if !slices.Contains(main, want) {
			t.Errorf("browser command line lacks %s: %q", want, main)
		}
	}
	if slices.Contains(main, "--no-sandbox") {
		t.Errorf("browser runs with --no-sandbox: %q", main)
	}

	var cands string
	timer := time.NewTimer(90 * time.Second)
	defer timer.Stop()
wait:
	for {
		select {
		case v := <-site.values:
			if c, ok := strings.CutPrefix(v, "candidates "); ok {
				cands = c
			}
			if v == "done" {
				break wait
			}
		case <-l.Done():
			t.Fatalf("lease done: %v", l.Err())
		case <-timer.C:
			t.Fatal("the hostile page never finished")
		}
	}
	t.Logf("ICE candidates: %s; mirror connections %d; proxy %+v", cands, mirror.conns.Load(), px.Stats())
	if n := canary.conns.Load(); n != 0 {
		t.Errorf("canary got %d connections, want 0", n)
	}
	if n := packets.Load(); n != 0 {
		t.Errorf("UDP canary got %d packets, want 0", n)
	}
	for _, leak := range []string{"127.0.0.1", " 10.", " 192.168.", " 172."} {
		if strings.Contains(cands, leak) {
			t.Errorf("WebRTC shows a local address (%s): %s", strings.TrimSpace(leak), cands)
		}
	}
	// Every way of asking worked toward the allowed mirror: the same
	// attempts at the canary were real ones.
	for _, path := range []string{"/img", "/frame", "/xhr", "/fetch", "/keepalive", "/ws", "/events",
		"/redirected-img", "/redirected-frame", "/redirected-fetch"} {
		if !mirror.asked(path) {
			t.Errorf("allowed mirror never got %s: the attempt at the canary proves nothing", path)
		}
	}
	if s := px.Stats(); s.Refused == 0 {
		t.Errorf("proxy refused nothing: %+v", s)
	}

	// The address bar (Navigate, Open) to the canary: the proxy answers
	// with its refusal page, the canary sees nothing.
	if err := l.Navigate(ctx, canary.URL+"/address-bar"); err != nil {
		t.Logf("Navigate to the canary: %v", err)
	}
	title, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil || !strings.Contains(title, "tandem egress") {
		t.Errorf("page after Navigate to the canary shows %q, %v; want the proxy's refusal", title, err)
	}
	if n := canary.conns.Load(); n != 0 {
		t.Errorf("canary got %d connections after Navigate, want 0", n)
	}
}

// newRedirectingReporter is newReporter that also answers /redirect?to=URL
// with a 302 to URL.
func newRedirectingReporter(t *testing.T, page string) *reporter {
	t.Helper()
	return reporterWith(t, page, func(mux *http.ServeMux) {
		mux.HandleFunc("/redirect", func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, req.URL.Query().Get("to"), http.StatusFound)
		})
	})
}

// A start URL (or an address-bar URL) pointing at loopback in any spelling
// is refused by Config.EgressCheck before any browser starts or loads it.
func TestEgressCheckRefusesStartURL(t *testing.T) {
	needPool(t)
	canary := newCountingServer(t)
	site := newCountingServer(t)
	px := startEgress(t, site.URL)
	pool, err := New(Config{Warm: -1, TempDir: testTempDir, ProxyServer: px.URL(), EgressCheck: px.Checker().CheckURL}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	port := canary.URL[strings.LastIndexByte(canary.URL, ':')+1:]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, u := range []string{canary.URL + "/", "http://2130706433:" + port + "/", "http://0x7f.0.0.1:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/", "http://127.1:" + port + "/", "http://localhost:" + port + "/",
		"http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "chrome://version", "view-source:" + site.URL,
		"javascript:alert(1)", "devtools://devtools/bundled/inspector.html"} {
		l, err := pool.Lease(ctx, LeaseOptions{StartURL: u})
		if err == nil {
			l.Close()
			t.Errorf("Lease(StartURL %q) = nil error, want ErrURLNotAllowed", u)
			continue
		}
		if !errors.Is(err, ErrURLNotAllowed) {
			t.Errorf("Lease(StartURL %q) = %v, want ErrURLNotAllowed", u, err)
		}
	}
	if s := pool.Stats(); s.ColdStarts+s.FailedStarts != 0 {
		t.Errorf("refused start URLs started browsers: %+v", s)
	}
	// An allowed start URL works, and the address bar checks too.
	l, err := pool.Lease(ctx, LeaseOptions{StartURL: site.URL + "/"})
	if err != nil {
		t.Fatalf("Lease(allowed %s): %v", site.URL, err)
	}
	defer l.Close()
	if err := l.Navigate(ctx, "http://2130706433:"+port+"/"); !errors.Is(err, ErrURLNotAllowed) {
		t.Errorf("Navigate to the canary = %v, want ErrURLNotAllowed", err)
	}
	if err := l.Open(ctx, canary.URL+"/"); !errors.Is(err, ErrURLNotAllowed) {
		t.Errorf("Open the canary = %v, want ErrURLNotAllowed", err)
	}
	if n := canary.conns.Load(); n != 0 {
		t.Errorf("canary got %d connections, want 0", n)
	}
}
