package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/demo"
	"github.com/tandem-cobrowse/tandem/pkg/egress"
	"github.com/tandem-cobrowse/tandem/pkg/gateway"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
	"github.com/tandem-cobrowse/tandem/ui"
)

// serveConfig is everything `tandem serve` takes.
type serveConfig struct {
	Addr           string
	Data           string
	BaseURL        string
	Demo           bool
	DemoPassword   string
	DemoAPIKey     string
	EgressAllow    listFlag
	NATSURL        string
	SyncAlways     bool
	LogLevel       string
	LogFormat      string
	Chromium       string
	BrowserUser    string
	Warm           int
	BrowserMemory  int
	BrowserCgroup  string
	MaxSessions    int
	MaxCPUPressure float64
	MaxTabs        int
	MaxRestarts    int
	UDPPort        int
	PublicIPs      listFlag
	ICELoopback    string
	AdminToken     string
	TLSCert        string
	TLSKey         string
	ACMEDomains    listFlag
	ACMEEmail      string
	ACMEDirectory  string

	maskFaults *mask.Faults // tests: faults injected into the worker's mask path
}

func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cfg.Data, "data", "./data", "data directory (embedded NATS JetStream store)")
	fs.StringVar(&cfg.BaseURL, "base-url", "", "public URL of this service for links; empty: from each request")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo company, agent, API key and serve the demo shop at /demo/")
	fs.StringVar(&cfg.DemoPassword, "demo-password", "", "password of agent@demo.test (with --demo); empty: generate and print")
	fs.StringVar(&cfg.DemoAPIKey, "demo-api-key", "", "API key of the demo company (with --demo); empty: generate and print")
	fs.Var(&cfg.EgressAllow, "egress-allow", "comma-separated origins or CIDRs the hosted browser may reach although loopback or private (e.g. http://10.0.0.5:8080,192.168.0.0/16; 127.0.0.0/8 for local development)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS cluster URLs; empty: run an embedded NATS server")
	fs.BoolVar(&cfg.SyncAlways, "nats-sync-always", false, "embedded NATS: fsync every JetStream write")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "console", "console or json")
	fs.StringVar(&cfg.Chromium, "chromium", "", "Chromium binary; empty: Debian's headless shell or chromium")
	fs.StringVar(&cfg.BrowserUser, "browser-user", "", "unprivileged user that runs Chromium when Tandem runs as root")
	fs.IntVar(&cfg.Warm, "warm", 0, "browsers kept started and ready (0: 1, negative: none)")
	fs.IntVar(&cfg.BrowserMemory, "browser-memory", 0, "MiB of memory a session's browser may use before it is killed (0: 2048, negative: no limit)")
	fs.StringVar(&cfg.BrowserCgroup, "browser-cgroup", "auto", "auto: each browser in a cgroup v2 of its own where Tandem may create one (the kernel then enforces --browser-memory if the memory controller is there); off: never")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", 0, "sessions this worker hosts at once (0: 4)")
	fs.IntVar(&cfg.MaxTabs, "max-tabs", 0, "tabs a session's browser may have open; a page's tab beyond them is closed (0: 5)")
	fs.IntVar(&cfg.MaxRestarts, "max-restarts", 0, "times a session's dead browser is replaced within 10 minutes before the session ends (0: 3, negative: never)")
	fs.Float64Var(&cfg.MaxCPUPressure, "max-cpu-pressure", 0, "refuse new sessions while tasks waited for a CPU more than this percent of the last 10 s (Linux PSI; 0: no check)")
	fs.IntVar(&cfg.UDPPort, "udp-port", 0, "single UDP port for all WebRTC media (0: ephemeral ports)")
	fs.Var(&cfg.PublicIPs, "public-ip", "comma-separated public IPs to advertise for media (NAT 1:1)")
	fs.StringVar(&cfg.ICELoopback, "ice-loopback", "auto", "offer loopback ICE candidates: true, false, or auto (when --addr is loopback)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "operator token for /api/v1/admin/... and tandem admin (at least 16 characters); empty: those routes are off")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; with --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.Var(&cfg.ACMEDomains, "acme-domain", "comma-separated host names to get certificates for from an ACME CA (TLS-ALPN-01 on --addr, which must be reachable on port 443)")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact address for the ACME account (with --acme-domain)")
	fs.StringVar(&cfg.ACMEDirectory, "acme-directory", "", "ACME directory URL; empty: Let's Encrypt")
	return fs
}

func (c serveConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, c.Addr, err)
	}
	if c.Data == "" {
		return fmt.Errorf("%w: --data must not be empty", errUsage)
	}
	switch c.ICELoopback {
	case "auto", "true", "false":
	default:
		return fmt.Errorf("%w: --ice-loopback must be true, false or auto", errUsage)
	}
	switch c.BrowserCgroup {
	case "", "auto", "off":
	default:
		return fmt.Errorf("%w: --browser-cgroup must be auto or off", errUsage)
	}
	if c.MaxTabs < 0 {
		return fmt.Errorf("%w: --max-tabs must not be negative", errUsage)
	}
	if c.MaxCPUPressure < 0 || c.MaxCPUPressure > 100 {
		return fmt.Errorf("%w: --max-cpu-pressure must be 0 to 100", errUsage)
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("%w: --udp-port %d out of range", errUsage, c.UDPPort)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		return fmt.Errorf("%w: --admin-token must have at least %d characters", errUsage, minAdminToken)
	}
	if _, err := egress.NewChecker(c.EgressAllow, nil); err != nil {
		return fmt.Errorf("%w: --egress-allow: %v", errUsage, err)
	}
	if c.DemoPassword != "" && len(c.DemoPassword) < 8 {
		return fmt.Errorf("%w: --demo-password must have at least 8 characters", errUsage)
	}
	return c.validateTLS()
}

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	if err := parseFlags(serveFlags(&cfg), args, stderr); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	return serve(ctx, cfg, log, stdout, nil)
}

func newLogger(level, format string, out io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("%w: --log-level %q", errUsage, level)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("%w: --log-format %q", errUsage, format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), lvl)), nil
}

// serve runs gateway, worker and embedded NATS until ctx ends. When ready is
// not nil it receives the HTTP address once everything listens.
func serve(ctx context.Context, cfg serveConfig, log *zap.Logger, stdout io.Writer, ready chan<- string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	b, err := bus.Start(ctx, bus.Config{URLs: cfg.NATSURL, Dir: filepath.Join(cfg.Data, "nats"), SyncAlways: cfg.SyncAlways, Name: "tandem-serve"}, log)
	if err != nil {
		return fmt.Errorf("start NATS: %w", err)
	}
	defer b.Close() //nolint:errcheck
	store, err := tenant.Open(ctx, b.JetStream(), tenant.Config{}, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	auditLog, err := audit.Open(ctx, b.JetStream(), audit.Config{}, log)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}

	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	var creds demoCreds
	if cfg.Demo {
		if creds, err = seedDemo(ctx, store, cfg.DemoPassword, cfg.DemoAPIKey); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
	}

	// Every request of the hosted browsers leaves through the egress proxy
	// (SECURITY.md P6). It is closed after the pool (defers run in
	// reverse), so no browser outlives it.
	allow := append([]string(nil), cfg.EgressAllow...)
	if cfg.Demo {
		allow = append(allow, demoOrigins(addr, cfg.BaseURL)...)
	}
	px, err := egress.New(egress.Config{Allow: allow}, log)
	if err != nil {
		return fmt.Errorf("egress proxy: %w", err)
	}
	defer px.Close() //nolint:errcheck
	pool, err := browserpool.New(browserpool.Config{Chromium: cfg.Chromium, User: cfg.BrowserUser, Warm: cfg.Warm,
		ProxyServer: px.URL(), EgressCheck: px.Checker().CheckURL, MaxMemory: int64(cfg.BrowserMemory) << 20, Cgroup: cfg.BrowserCgroup}, log)
	if err != nil {
		return fmt.Errorf("browser pool: %w", err)
	}
	defer pool.Close() //nolint:errcheck
	loopback := cfg.ICELoopback == "true" || (cfg.ICELoopback == "auto" && isLoopbackAddr(addr))
	api, err := rtc.NewAPI(rtc.Config{UDPPort: cfg.UDPPort, PublicIPs: cfg.PublicIPs, Loopback: loopback}, log)
	if err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	defer api.Close() //nolint:errcheck
	wk, err := worker.New(worker.Config{MaxSessions: cfg.MaxSessions, MaxCPUPressure: cfg.MaxCPUPressure,
		MaxTabs: cfg.MaxTabs, MaxRestarts: cfg.MaxRestarts, MaskFaults: cfg.maskFaults}, b.Conn(), pool, api, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), wk, px)
	extra := map[string]http.Handler{}
	if cfg.Demo {
		extra["/demo/"] = demo.Handler()
	}
	// Cookies are Secure when this process or a proxy in front of it
	// (an https base URL) terminates TLS.
	secure := tlsCfg != nil || strings.HasPrefix(cfg.BaseURL, "https://")
	gw := gateway.New(gateway.Config{BaseURL: cfg.BaseURL, Pages: ui.Handler(), Extra: extra, Audit: auditLog,
		AdminToken: cfg.AdminToken, SecureCookie: secure}, store, b.Conn(), reg, log)
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("http"))}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return px.Run(gctx) })
	g.Go(func() error { return wk.Run(gctx) })
	g.Go(func() error { return gw.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	select {
	case <-wk.Ready():
	case <-gctx.Done():
		return g.Wait()
	}
	log.Info("tandem is up", zap.String("addr", addr))
	printWelcome(stdout, scheme+"://"+addr, cfg.Demo, creds)
	if ready != nil {
		ready <- addr
	}
	return g.Wait()
}

// demoOrigins are the origins at which the hosted browser reaches the demo
// shop that this process serves (the agent console proposes
// <its own origin>/demo/): the listen address, the loopback names when it
// is loopback or all interfaces, every interface address when it is all
// interfaces, and --base-url.
func demoOrigins(addr, baseURL string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	hosts := []string{host}
	ip, _ := netip.ParseAddr(host)
	if host == "localhost" || ip.IsLoopback() || ip.IsUnspecified() {
		hosts = append(hosts, "localhost", "127.0.0.1", "::1")
	}
	if ip.IsUnspecified() {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
					hosts = append(hosts, p.Addr().String())
				}
			}
		}
	}
	var out []string
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil && a.IsUnspecified() {
			continue
		}
		out = append(out, "http://"+net.JoinHostPort(h, port))
	}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printWelcome(w io.Writer, base string, isDemo bool, c demoCreds) {
	fmt.Fprintf(w, "\nTandem is running at %s\n", base)
	fmt.Fprintf(w, "  agent console:  %s/agent/\n", base)
	if !isDemo {
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "  demo shop:      %s/demo/\n", base)
	fmt.Fprintf(w, "  customer join:  %s/join/%s\n\n", base, demoCompany)
	fmt.Fprintf(w, "  log in as       %s\n", demoEmail)
	fmt.Fprintf(w, "  password        %s\n", c.Password)
	fmt.Fprintf(w, "  demo API key    %s\n\n", c.APIKey)
}
