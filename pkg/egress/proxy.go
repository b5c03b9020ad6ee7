package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Config says what the proxy lets through and how long it waits.
type Config struct {
	// Allow lists the exceptions: origins (scheme://host[:port], the port
	// defaulting to the scheme's) that may be reached whatever they resolve
	// to, and CIDRs or single addresses that may be reached although they
	// are internal. An origin rule matches by host and port: a CONNECT
	// tunnel does not show its scheme.
	Allow       []string
	Addr        string        // listen address; "" means 127.0.0.1:0 (a random loopback port)
	DialTimeout time.Duration // limit on connecting to a destination; 0 means 10s
	IdleTimeout time.Duration // a tunnel with no byte either way for this long is closed, and a forwarded request waits this long at most for its response headers; 0 means 5m
	MaxConns    int           // tunnels and forwarded requests at once; 0 means 256; beyond it the proxy answers 503
	Resolver    Resolver      // nil means a net.Resolver of the proxy's own
}

const (
	defaultDialTimeout = 10 * time.Second
	defaultIdleTimeout = 5 * time.Minute
	defaultMaxConns    = 256
)

// Stats counts what the proxy did since it started.
type Stats struct {
	Allowed uint64 // requests and tunnels let through
	Refused uint64 // requests and tunnels refused by the check
	Busy    uint64 // refused because MaxConns were open
	Open    int    // tunnels and requests open now
}

// Proxy is the hosted browsers' only way out: a forward HTTP proxy for plain
// HTTP requests (absolute URI) and CONNECT tunnels (https, ws, wss). Every
// request and tunnel is checked on its own (a redirect is a new request of
// the browser, so each hop is checked); the proxy never follows redirects.
// It resolves names itself, once per request, and dials only the addresses
// it checked.
//
// New listens; Run serves until its context ends; Close stops serving,
// closes every open tunnel and waits for their goroutines. Methods are safe
// for concurrent use.
type Proxy struct {
	cfg     Config
	checker *Checker
	log     *zap.Logger
	ln      net.Listener
	srv     *http.Server
	rp      *httputil.ReverseProxy
	tr      *http.Transport
	slots   chan struct{} // one per open tunnel or request
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	allowed, refusedN, busy atomic.Uint64
	logLimit                *rate.Limiter // refusal log lines: a page can ask for thousands
	unlogged                atomic.Uint64 // refusals not logged since the last line

	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // hijacked client conns; guarded by mu
	closed  bool                  // guarded by mu
	wg      sync.WaitGroup        // handlers under way; Add under mu while !closed

	closeOnce sync.Once
	closeErr  error
}

// New parses cfg.Allow and listens on cfg.Addr. The caller runs Run (or
// calls Close).
func New(cfg Config, log *zap.Logger) (*Proxy, error) {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DialTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxConns < 0 {
		return nil, errors.New("egress: negative timeout or limit")
	}
	checker, err := NewChecker(cfg.Allow, cfg.Resolver)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("egress: listen: %w", err)
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	p := &Proxy{
		cfg:      cfg,
		checker:  checker,
		log:      log.Named("egress"),
		ln:       ln,
		slots:    make(chan struct{}, cfg.MaxConns),
		dial:     d.DialContext,
		tunnels:  make(map[net.Conn]struct{}),
		logLimit: rate.NewLimiter(rate.Every(100*time.Millisecond), 20),
	}
	p.tr = &http.Transport{
		Proxy:                 nil, // never the environment's proxy
		DialContext:           p.dialChecked,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.IdleTimeout,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = pr.Out.URL.Host
			pr.Out.Header.Del("Proxy-Authorization")
		},
		Transport: p.tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Debug("forward failed", zap.String("dest", origin(r)), zap.Error(err))
			http.Error(w, "tandem egress: destination unreachable", http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(p.log),
	}
	p.log.Info("egress proxy listening", zap.String("addr", ln.Addr().String()), zap.Int("allow_rules", len(checker.rules)))
	return p, nil
}

// Addr is the proxy's listen address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy for Chromium's --proxy-server: http://host:port.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Checker is the proxy's checker, for refusing a start URL early.
func (p *Proxy) Checker() *Checker { return p.checker }

// Run serves until ctx ends, then closes the proxy. It returns nil after a
// close, or the error that stopped serving.
func (p *Proxy) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stop()
	err := p.srv.Serve(p.ln)
	cerr := p.Close() // waits for the handlers
	if errors.Is(err, http.ErrServerClosed) {
		return cerr
	}
	return fmt.Errorf("egress proxy: %w", err)
}

// Close stops the proxy: the listener, idle and active requests, every
// tunnel; it waits for the tunnel goroutines. It is idempotent.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		for c := range p.tunnels {
			_ = c.Close()
		}
		p.mu.Unlock()
		err := p.srv.Close() // the listener and every connection not hijacked
		_ = p.ln.Close()     // when Run never ran
		p.wg.Wait()
		p.tr.CloseIdleConnections()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		p.closeErr = err
	})
	return p.closeErr
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Allowed: p.allowed.Load(), Refused: p.refusedN.Load(), Busy: p.busy.Load(), Open: len(p.slots)}
}

var (
	descRequests = prometheus.NewDesc("tandem_egress_requests_total", "Hosted browsers' requests and tunnels seen by the egress proxy, by outcome.", []string{"outcome"}, nil)
	descOpen     = prometheus.NewDesc("tandem_egress_open", "Tunnels and requests the egress proxy has open.", nil, nil)
)

// Describe implements prometheus.Collector.
func (p *Proxy) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descOpen
}

// Collect implements prometheus.Collector.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	s := p.Stats()
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Allowed), "allowed")
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Refused), "refused")
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Busy), "busy")
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(s.Open))
}

// ServeHTTP handles one request of a browser: CONNECT opens a tunnel, an
// absolute http:// request is forwarded; anything else is refused.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		http.Error(w, "tandem egress: closing", http.StatusServiceUnavailable)
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		p.busy.Add(1)
		http.Error(w, "tandem egress: too many connections", http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if !r.URL.IsAbs() || !strings.EqualFold(r.URL.Scheme, "http") || r.URL.Host == "" {
		http.Error(w, "tandem egress: only absolute http:// requests and CONNECT", http.StatusBadRequest)
		return
	}
	host, port, err := splitHostPort(r.URL.Host, 80)
	if err != nil {
		p.refuse(w, "http", r.URL.Host, err)
		return
	}
	t, err := p.check(r.Context(), host, port)
	if err != nil {
		p.refuse(w, "http", r.URL.Host, err)
		return
	}
	p.allowed.Add(1)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
}

// check runs the checker with the dial timeout on the name lookup.
func (p *Proxy) check(ctx context.Context, host string, port uint16) (target, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	return p.checker.check(ctx, host, port)
}

// targetKey carries a request's checked target to dialChecked.
type targetKey struct{}

// dialChecked is the forwarding transport's dialer: it dials only the
// addresses its request's check produced, never the name again. A
// connection kept alive for reuse is reused only for the same host and
// port, whose every request is checked anew.
func (p *Proxy) dialChecked(ctx context.Context, network, _ string) (net.Conn, error) {
	t, ok := ctx.Value(targetKey{}).(target)
	if !ok || len(t.addrs) == 0 {
		return nil, errors.New("egress: dial without a checked destination")
	}
	return p.dialTarget(ctx, t)
}

// dialTarget tries the checked addresses in order.
func (p *Proxy) dialTarget(ctx context.Context, t target) (net.Conn, error) {
	var errs []error
	for _, a := range t.dialAddrs() {
		c, err := p.dial(ctx, "tcp", a)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// connect checks a CONNECT request's host:port, dials it and splices the two
// connections until either side closes or both are idle for IdleTimeout.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := splitHostPort(r.Host, 0)
	if err != nil {
		p.refuse(w, "connect", r.Host, err)
		return
	}
	t, err := p.check(r.Context(), host, port)
	if err != nil {
		p.refuse(w, "connect", r.Host, err)
		return
	}
	p.allowed.Add(1)
	up, err := p.dialTarget(r.Context(), t)
	if err != nil {
		p.log.Debug("connect failed", zap.String("dest", t.host), zap.Error(err))
		http.Error(w, "tandem egress: destination unreachable", http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "tandem egress: cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, brw, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	if !p.track(down) {
		_ = up.Close()
		_ = down.Close()
		return
	}
	defer p.untrack(down)
	defer up.Close()
	defer down.Close()
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	p.splice(down, brw.Reader, up)
}

// track remembers a hijacked connection for Close; false once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.tunnels[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.tunnels, c)
	p.mu.Unlock()
}

// splice copies both ways; it returns when either way ends or nothing
// moved for IdleTimeout.
func (p *Proxy) splice(down net.Conn, downBuf *bufio.Reader, up net.Conn) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	cp := func(dst net.Conn, src net.Conn, r io.Reader) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Now().Add(p.cfg.IdleTimeout))
			n, err := r.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < p.cfg.IdleTimeout {
					continue // the other way is busy
				}
				return
			}
		}
	}
	go cp(up, down, downBuf)
	go cp(down, up, up)
	<-done
	_ = down.Close()
	_ = up.Close()
	<-done
}

// refuse answers 403 and counts and logs the refusal, naming only the
// scheme and host, never a path or query.
func (p *Proxy) refuse(w http.ResponseWriter, kind, hostport string, err error) {
	p.refusedN.Add(1)
	reason := err.Error()
	var re *RefusedError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	if !p.logLimit.Allow() {
		p.unlogged.Add(1)
	} else {
		p.log.Info("egress refused", zap.String("kind", kind), zap.String("dest", hostport), zap.String("reason", reason),
			zap.Uint64("not_logged_before", p.unlogged.Swap(0)))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "tandem egress: this address is not reachable from the hosted browser", http.StatusForbidden)
}

// origin is scheme://host:port of a request, for logs.
func origin(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	return r.URL.Scheme + "://" + r.URL.Host
}

// splitHostPort splits host:port keeping an IPv6 literal's brackets (so
// that ParseHost sees it as a browser wrote it). A missing port is def, or
// an error when def is 0.
func splitHostPort(hostport string, def uint16) (string, uint16, error) {
	host, portStr := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, portStr = hostport[:i], hostport[i+1:]
	}
	if portStr == "" {
		if def == 0 {
			return "", 0, refused(hostport, "no port")
		}
		return host, def, nil
	}
	n, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || n == 0 {
		return "", 0, refused(hostport, "bad port")
	}
	return host, uint16(n), nil
}
