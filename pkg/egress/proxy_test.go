package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// canary is a loopback server that must never be reached: it counts every
// connection, not only every request.
type canary struct {
	*httptest.Server
	hits atomic.Int64
}

func newCanary(t *testing.T, tlsToo bool) *canary {
	c := &canary{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "canary")
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.hits.Add(1)
		}
	}
	if tlsToo {
		c.StartTLS()
	} else {
		c.Start()
	}
	t.Cleanup(c.Close)
	return c
}

func (c *canary) port() string {
	return c.Listener.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]
}

// startProxy runs a proxy for the test; dial, when set, replaces its dialer.
func startProxy(t *testing.T, cfg Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Proxy {
	t.Helper()
	p, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if dial != nil {
		p.dial = dial
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return p
}

// client goes through the proxy and follows no redirect.
func client(t *testing.T, p *Proxy) *http.Client {
	u, _ := url.Parse(p.URL())
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test servers
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connect sends a raw CONNECT and returns the status and the connection.
func connect(t *testing.T, p *Proxy, hostport string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", hostport, err)
	}
	return resp.StatusCode, c, br
}

func TestProxyHTTP(t *testing.T) {
	canary := newCanary(t, false)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		default:
			fmt.Fprintf(w, "site %s", r.Host)
		}
	}))
	t.Cleanup(site.Close)
	p := startProxy(t, Config{Allow: []string{site.URL}}, nil)
	c := client(t, p)

	if code, body := get(t, c, site.URL+"/page?secret=1"); code != 200 || !strings.HasPrefix(body, "site 127.0.0.1:") {
		t.Fatalf("GET allowed site = %d %q, want 200 from the site", code, body)
	}
	port := canary.port()
	for _, u := range []string{
		canary.URL + "/",
		"http://2130706433:" + port + "/",
		"http://0177.0.0.1:" + port + "/",
		"http://0x7f.1:" + port + "/",
		"http://127.1:" + port + "/",
		"http://127.0.0.1.:" + port + "/",
		"http://LOCALHOST:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://[::ffff:7f00:1]:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://0.0.0.0:" + port + "/",
		"http://0:" + port + "/",
	} {
		if code, body := get(t, c, u); code != http.StatusForbidden {
			t.Errorf("GET %s = %d %q, want 403", u, code, body)
		}
	}
	// The proxy does not follow a redirect: the browser does, and its next
	// request is checked on its own.
	redir := site.URL + "/redirect?to=" + url.QueryEscape(canary.URL+"/")
	if code, _ := get(t, c, redir); code != http.StatusFound {
		t.Errorf("GET redirect = %d, want 302 passed through", code)
	}
	follow := *c
	follow.CheckRedirect = nil
	if code, _ := get(t, &follow, redir); code != http.StatusForbidden {
		t.Errorf("GET redirect, followed = %d, want 403 at the loopback hop", code)
	}
	if n := canary.hits.Load(); n != 0 {
		t.Fatalf("canary reached %d times, want 0", n)
	}
	if s := p.Stats(); s.Refused < 13 || s.Allowed < 2 {
		t.Errorf("Stats = %+v, want ≥13 refused and ≥2 allowed", s)
	}
	// Not a proxy request at all.
	resp, err := http.Get(p.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET origin-form = %d, want 400", resp.StatusCode)
	}
}

func TestProxyConnect(t *testing.T) {
	canary := newCanary(t, true)
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secure site") }))
	t.Cleanup(site.Close)
	p := startProxy(t, Config{Allow: []string{site.URL}}, nil)
	c := client(t, p)
	if code, body := get(t, c, site.URL+"/"); code != 200 || body != "secure site" {
		t.Fatalf("GET https allowed = %d %q, want 200", code, body)
	}
	port := canary.port()
	for _, hp := range []string{
		"127.0.0.1:" + port, "2130706433:" + port, "0x7f.1:" + port, "127.1:" + port, "localhost:" + port,
		"[::ffff:127.0.0.1]:" + port, "[::1]:" + port, "127.0.0.1", "169.254.169.254:80",
	} {
		if code, _, _ := connect(t, p, hp); code != http.StatusForbidden {
			t.Errorf("CONNECT %s = %d, want 403", hp, code)
		}
	}
	// An IPv6 literal without brackets is no authority: net/http refuses it
	// before the proxy sees it.
	if code, _, _ := connect(t, p, "::1:"+port); code != http.StatusBadRequest && code != http.StatusForbidden {
		t.Errorf("CONNECT ::1:%s = %d, want 400 or 403", port, code)
	}
	if code, body := get(t, c, canary.URL+"/"); code == 200 {
		t.Errorf("GET https canary = %d %q, want refused", code, body)
	}
	if n := canary.hits.Load(); n != 0 {
		t.Fatalf("canary reached %d times, want 0", n)
	}
}

// A name that resolves to a public address at the check and to loopback a
// moment later (DNS rebinding) never reaches loopback: the proxy dials the
// address it checked, and checks every request anew.
func TestProxyDialsCheckedAddress(t *testing.T) {
	canary := newCanary(t, false)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "public") }))
	t.Cleanup(site.Close)
	res := newStub(map[string][]string{"rebind.test": {"93.184.216.34", "127.0.0.1"}})
	var (
		mu     sync.Mutex
		dialed []string
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial of a name: %q", addr)
		}
		if ap.Addr() == netip.MustParseAddr("93.184.216.34") {
			addr = site.Listener.Addr().String() // the "public" server
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	p := startProxy(t, Config{Resolver: res}, dial)
	c := client(t, p)
	u := "http://rebind.test:" + canary.port() + "/"
	if code, body := get(t, c, u); code != 200 || body != "public" {
		t.Fatalf("first GET %s = %d %q, want 200 from the public address", u, code, body)
	}
	if code, _ := get(t, c, u); code != http.StatusForbidden {
		t.Errorf("second GET %s (now loopback) = %d, want 403", u, code)
	}
	if code, _, _ := connect(t, p, "rebind.test:"+canary.port()); code != http.StatusForbidden {
		t.Errorf("CONNECT after rebinding = %d, want 403", code)
	}
	if n := canary.hits.Load(); n != 0 {
		t.Fatalf("canary reached %d times, want 0", n)
	}
	if n := res.count("rebind.test"); n != 3 {
		t.Errorf("lookups = %d, want 3 (one per request, none at dial)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "93.184.216.34:" + canary.port()
	if len(dialed) != 1 || dialed[0] != want {
		t.Fatalf("dialed %q, want only %q", dialed, want)
	}
}

func TestProxyLimitsAndClose(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { echo.Close() }) // runs first
	wg.Go(func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); io.Copy(c, c) })
		}
	})
	p := startProxy(t, Config{Allow: []string{"127.0.0.1/32"}, MaxConns: 1, IdleTimeout: time.Hour}, nil)
	code, tunnel, br := connect(t, p, echo.Addr().String())
	if code != 200 {
		t.Fatalf("CONNECT echo = %d, want 200", code)
	}
	fmt.Fprint(tunnel, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through tunnel = %q, %v", line, err)
	}
	if code, _, _ := connect(t, p, echo.Addr().String()); code != http.StatusServiceUnavailable {
		t.Errorf("second CONNECT with MaxConns 1 = %d, want 503", code)
	}
	if s := p.Stats(); s.Busy != 1 || s.Open != 1 {
		t.Errorf("Stats = %+v, want Busy 1, Open 1", s)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	tunnel.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("tunnel still open after Close")
		}
	}
	if s := p.Stats(); s.Open != 0 {
		t.Errorf("Stats after Close = %+v, want Open 0", s)
	}
}

func TestProxyIdleTunnelCloses(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c
		}
	}()
	p := startProxy(t, Config{Allow: []string{"127.0.0.1/32"}, IdleTimeout: 100 * time.Millisecond}, nil)
	code, tunnel, br := connect(t, p, silent.Addr().String())
	if code != 200 {
		t.Fatalf("CONNECT = %d, want 200", code)
	}
	up := <-accepted
	defer up.Close()
	tunnel.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle tunnel still open after 10s with IdleTimeout 100ms")
	}
	if err == nil {
		t.Fatal("idle tunnel carried a byte nobody sent")
	}
}

func TestNewRefusesBadAllow(t *testing.T) {
	if _, err := New(Config{Allow: []string{"localhost"}}, zaptest.NewLogger(t)); err == nil {
		t.Fatal(`New(Allow: "localhost") = nil error, want one`)
	}
}
