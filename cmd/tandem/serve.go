package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// serveConfig is everything `tandem serve` takes; `tandem gateway` and
// `tandem worker` take their parts of it (the flag groups below).
type serveConfig struct {
	Addr           string
	Data           string
	BaseURL        string
	Demo           bool
	DemoPassword   string
	DemoAPIKey     string
	EgressAllow    listFlag
	NATSURL        string
	NATSCreds      string
	NATSTLSCA      string
	NATSTLSCert    string
	NATSTLSKey     string
	NATSReplicas   int
	SyncAlways     bool
	LogLevel       string
	PprofAddr      string
	LogFormat      string
	Chromium       string
	BrowserUser    string
	Warm           int
	BrowserMemory  int
	MotionFPS      int
	BrowserCgroup  string
	MaxSessions    int
	MaxCPUPressure float64
	MaxTabs        int
	MaxRestarts    int
	WorkerID       string
	DrainTimeout   time.Duration
	MetricsAddr    string
	AdminToken     string
	TrustedProxies listFlag
	TLSCert        string
	TLSKey         string
	ACMEDomains    listFlag
	ACMEEmail      string
	ACMEDirectory  string

	// Media network (mediaFlags, iceServerFlags; docs/media-network.md).
	UDPPort        int
	ICETCPPort     int
	PublicIPs      listFlag
	ICELoopback    string
	ICEDenyPrivate bool
	STUN           listFlag
	TURN           listFlag
	TURNSecret     string
	TURNTTL        time.Duration

	maskFaults *mask.Faults    // tests: faults injected into the worker's mask path
	drain      <-chan struct{} // closed on the first SIGTERM: drain the worker, then stop (main.go)
}

// The flag groups: what every command has (logs, NATS), the gateway's and
// the worker's. serve has them all, plus the embedded NATS server's.

func logFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "console", "console or json")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "listen address of Go's profiler (/debug/pprof/), e.g. 127.0.0.1:6060; never a public address; empty: off")
}

func natsFlags(fs *flag.FlagSet, cfg *serveConfig, embedded bool) {
	if embedded {
		fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS cluster URLs, comma-separated; empty: run an embedded NATS server")
		fs.StringVar(&cfg.Data, "data", "./data", "data directory (embedded NATS JetStream store)")
		fs.BoolVar(&cfg.SyncAlways, "nats-sync-always", false, "embedded NATS: fsync every JetStream write")
	} else {
		fs.StringVar(&cfg.NATSURL, "nats-url", "", "NATS cluster URLs, comma-separated, e.g. nats://n1:4222,nats://n2:4222 (required)")
	}
	fs.StringVar(&cfg.NATSCreds, "nats-creds", "", "NATS credentials file (JWT and NKey) for --nats-url")
	fs.StringVar(&cfg.NATSTLSCA, "nats-tls-ca", "", "PEM CA file to verify the NATS servers (TLS on)")
	fs.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", "", "PEM client certificate for NATS (mutual TLS); with --nats-tls-key")
	fs.StringVar(&cfg.NATSTLSKey, "nats-tls-key", "", "the PEM private key of --nats-tls-cert")
}

// stateFlags are those of the processes that keep Tandem's state (serve
// and gateway).
func stateFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.IntVar(&cfg.NATSReplicas, "nats-replicas", 0, "JetStream replicas of Tandem's state (0: 3 when the cluster has 3 or more servers, else 1)")
}

func gatewayFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cfg.BaseURL, "base-url", "", "public URL of this service for links; empty: from each request")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo company, agent, API key and serve the demo shop at /demo/")
	fs.StringVar(&cfg.DemoPassword, "demo-password", "", "password of agent@demo.test (with --demo); empty: generate and print")
	fs.StringVar(&cfg.DemoAPIKey, "demo-api-key", "", "API key of the demo company (with --demo); empty: generate and print")
	fs.Var(&cfg.TrustedProxies, "trusted-proxy", "comma-separated IPs or CIDRs of the load balancers in front: from them the client's address is read from X-Forwarded-For (failure budgets, audit); empty: the connection's address")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "operator token for /api/v1/admin/... and tandem admin (at least 16 characters); empty: those routes are off")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; with --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.Var(&cfg.ACMEDomains, "acme-domain", "comma-separated host names to get certificates for from an ACME CA (TLS-ALPN-01 on --addr, which must be reachable on port 443)")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact address for the ACME account (with --acme-domain)")
	fs.StringVar(&cfg.ACMEDirectory, "acme-directory", "", "ACME directory URL; empty: Let's Encrypt")
}

func workerFlags(fs *flag.FlagSet, cfg *serveConfig, standalone bool) {
	fs.Var(&cfg.EgressAllow, "egress-allow", "comma-separated origins or CIDRs the hosted browser may reach although loopback or private (e.g. http://10.0.0.5:8080,192.168.0.0/16; 127.0.0.0/8 for local development)")
	fs.StringVar(&cfg.Chromium, "chromium", "", "Chromium binary; empty: Debian's headless shell or chromium")
	fs.StringVar(&cfg.BrowserUser, "browser-user", "", "unprivileged user that runs Chromium when Tandem runs as root")
	fs.IntVar(&cfg.Warm, "warm", 0, "browsers kept started and ready (0: 1, negative: none)")
	fs.IntVar(&cfg.BrowserMemory, "browser-memory", 0, "MiB of memory a session's browser may use before it is killed (0: 2048, negative: no limit)")
	fs.IntVar(&cfg.MotionFPS, "motion-fps", 0, "while a page moves and its capture delivers fewer frames a second than this, held back by the capture, capture it at 3/4 size until it is still (0 or negative: never, the default; 15 is the frame rate it was measured with, docs/density.md)")
	fs.StringVar(&cfg.BrowserCgroup, "browser-cgroup", "auto", "auto: each browser in a cgroup v2 of its own where Tandem may create one (the kernel then enforces --browser-memory if the memory controller is there); off: never")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", 0, "sessions this worker hosts at once (0: 4)")
	fs.IntVar(&cfg.MaxTabs, "max-tabs", 0, "tabs a session's browser may have open; a page's tab beyond them is closed (0: 5)")
	fs.IntVar(&cfg.MaxRestarts, "max-restarts", 0, "times a session's dead browser is replaced within 10 minutes before the session ends (0: 3, negative: never)")
	fs.Float64Var(&cfg.MaxCPUPressure, "max-cpu-pressure", 0, "refuse new sessions while tasks waited for a CPU more than this percent of the last 10 s (Linux PSI; 0: no check)")
	mediaFlags(fs, cfg)
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 15*time.Minute, "on SIGTERM, wait this long for the live sessions to finish (no new ones start), then end them")
	if standalone {
		fs.StringVar(&cfg.ICELoopback, "ice-loopback", "false", "offer loopback ICE candidates (viewers on this machine only): true or false")
		fs.StringVar(&cfg.WorkerID, "worker-id", "", "this worker's id in NATS subjects and logs, 1 to 64 of [A-Za-z0-9_-]; empty: random")
		fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:9090", "listen address of /metrics, /healthz and /readyz; empty: none")
	} else {
		fs.StringVar(&cfg.ICELoopback, "ice-loopback", "auto", "offer loopback ICE candidates: true, false, or auto (when --addr is loopback)")
	}
}

// mediaFlags are the WebRTC network settings of a worker
// (docs/media-network.md).
func mediaFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.IntVar(&cfg.UDPPort, "udp-port", 0, "single UDP port for all WebRTC media (0: ephemeral ports)")
	fs.IntVar(&cfg.ICETCPPort, "ice-tcp-port", 0, "single TCP port for WebRTC media over TCP (ICE-TCP, passive candidates) for viewers without UDP (0: off)")
	fs.Var(&cfg.PublicIPs, "public-ip", "comma-separated public IPs to advertise for media, UDP and TCP (NAT 1:1)")
	fs.BoolVar(&cfg.ICEDenyPrivate, "ice-deny-private", false, "refuse viewers' ICE candidates on private, CGNAT and ULA addresses too (no viewer reaches this worker through a LAN)")
}

// iceServerFlags name the STUN and TURN servers: the gateway hands them to
// viewers (TURN with credentials minted from the secret), a worker uses
// the STUN servers itself. With turn false, only --stun.
func iceServerFlags(fs *flag.FlagSet, cfg *serveConfig, turn bool) {
	fs.Var(&cfg.STUN, "stun", "comma-separated stun: URLs for viewers and the worker (e.g. stun:stun.example.com:3478)")
	if !turn {
		return
	}
	fs.Var(&cfg.TURN, "turn", "comma-separated turn:/turns: URLs for viewers, with credentials minted from --turn-secret (e.g. turn:turn.example.com:3478?transport=udp)")
	fs.StringVar(&cfg.TURNSecret, "turn-secret", "", "the TURN server's shared secret (coturn static-auth-secret); prefer the variable")
	fs.DurationVar(&cfg.TURNTTL, "turn-ttl", rtc.DefaultTURNTTL, "lifetime of a viewer's TURN credentials (1m to 168h)")
}

// rtcConfig is the rtc.Config of the media flags; loopback says whether
// loopback ICE is on.
func (c serveConfig) rtcConfig(loopback bool) rtc.Config {
	return rtc.Config{UDPPort: c.UDPPort, ICETCPPort: c.ICETCPPort, PublicIPs: c.PublicIPs,
		STUN: c.STUN, TURN: c.TURN, TURNSecret: c.TURNSecret, TURNTTL: c.TURNTTL,
		DenyPrivatePeers: c.ICEDenyPrivate, Loopback: loopback}
}

// validateMedia checks the media and ICE server flags, naming the flag at
// fault.
func (c serveConfig) validateMedia() error {
	switch c.ICELoopback {
	case "auto", "true", "false":
	default:
		return fmt.Errorf("%w: --ice-loopback must be true, false or auto", errUsage)
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("%w: --udp-port %d out of range", errUsage, c.UDPPort)
	}
	if c.ICETCPPort < 0 || c.ICETCPPort > 65535 {
		return fmt.Errorf("%w: --ice-tcp-port %d out of range", errUsage, c.ICETCPPort)
	}
	for _, ip := range c.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("%w: --public-ip %q is not an IP address", errUsage, ip)
		}
	}
	for _, u := range c.STUN {
		if err := (rtc.Config{STUN: []string{u}}).Validate(); err != nil {
			return fmt.Errorf("%w: --stun %q is not a stun: or stuns: URL", errUsage, u)
		}
	}
	for _, u := range c.TURN {
		if err := (rtc.Config{TURN: []string{u}, TURNSecret: "x"}).Validate(); err != nil {
			return fmt.Errorf("%w: --turn %q is not a turn: or turns: URL", errUsage, u)
		}
	}
	switch {
	case len(c.TURN) > 0 && c.TURNSecret == "":
		return fmt.Errorf("%w: --turn needs --turn-secret (TANDEM_TURN_SECRET)", errUsage)
	case len(c.TURN) == 0 && c.TURNSecret != "":
		return fmt.Errorf("%w: --turn-secret needs --turn", errUsage)
	case c.TURNTTL != 0 && (c.TURNTTL < time.Minute || c.TURNTTL > 7*24*time.Hour): // 0: the default
		return fmt.Errorf("%w: --turn-ttl must be 1m to 168h", errUsage)
	}
	// The rest of rtc.Config's rules (loopback mode is IPv4 only).
	loopback := c.ICELoopback == "true" || (c.ICELoopback == "auto" && isLoopbackAddr(c.Addr))
	if err := c.rtcConfig(loopback).Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	gatewayFlags(fs, cfg)
	natsFlags(fs, cfg, true)
	stateFlags(fs, cfg)
	logFlags(fs, cfg)
	workerFlags(fs, cfg, false)
	iceServerFlags(fs, cfg, true)
	return fs
}

func gatewayCmdFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	gatewayFlags(fs, cfg)
	natsFlags(fs, cfg, false)
	stateFlags(fs, cfg)
	logFlags(fs, cfg)
	iceServerFlags(fs, cfg, true)
	cfg.ICELoopback = "false" // the gateway has no media of its own
	return fs
}

func workerCmdFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	natsFlags(fs, cfg, false)
	logFlags(fs, cfg)
	workerFlags(fs, cfg, true)
	iceServerFlags(fs, cfg, false)
	return fs
}

// validateGateway checks the gateway's flags.
func (c serveConfig) validateGateway() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, c.Addr, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		return fmt.Errorf("%w: --admin-token must have at least %d characters", errUsage, minAdminToken)
	}
	if c.DemoPassword != "" && len(c.DemoPassword) < 8 {
		return fmt.Errorf("%w: --demo-password must have at least 8 characters", errUsage)
	}
	if _, err := trustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	return c.validateTLS()
}

// validateWorker checks the worker's flags.
func (c serveConfig) validateWorker() error {
	if err := c.validateMedia(); err != nil {
		return err
	}
	switch c.BrowserCgroup {
	case "", "auto", "off":
	default:
		return fmt.Errorf("%w: --browser-cgroup must be auto or off", errUsage)
	}
	if c.MaxTabs < 0 {
		return fmt.Errorf("%w: --max-tabs must not be negative", errUsage)
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("%w: --max-sessions must not be negative", errUsage)
	}
	if c.MaxCPUPressure < 0 || c.MaxCPUPressure > 100 {
		return fmt.Errorf("%w: --max-cpu-pressure must be 0 to 100", errUsage)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("%w: --drain-timeout must not be negative", errUsage)
	}
	if c.WorkerID != "" && !bus.ValidToken(c.WorkerID) {
		return fmt.Errorf("%w: --worker-id %q must be 1 to 64 of [A-Za-z0-9_-]", errUsage, c.WorkerID)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("%w: --metrics-addr %q: %v", errUsage, c.MetricsAddr, err)
		}
	}
	if _, err := egress.NewChecker(c.EgressAllow, nil); err != nil {
		return fmt.Errorf("%w: --egress-allow: %v", errUsage, err)
	}
	return nil
}

// validateNATS checks the NATS flags; external says an external cluster
// is required.
func (c serveConfig) validateNATS(external bool) error {
	switch {
	case external && c.NATSURL == "":
		return fmt.Errorf("%w: --nats-url is required (the NATS cluster's URLs)", errUsage)
	case !external && c.Data == "":
		return fmt.Errorf("%w: --data must not be empty", errUsage)
	case c.NATSURL == "" && (c.NATSCreds != "" || c.NATSTLSCA != "" || c.NATSTLSCert != ""):
		return fmt.Errorf("%w: --nats-creds and --nats-tls-* apply to --nats-url", errUsage)
	case (c.NATSTLSCert == "") != (c.NATSTLSKey == ""):
		return fmt.Errorf("%w: --nats-tls-cert and --nats-tls-key go together", errUsage)
	case c.NATSReplicas < 0 || c.NATSReplicas > 5:
		return fmt.Errorf("%w: --nats-replicas must be 0 to 5", errUsage)
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
			return fmt.Errorf("%w: --nats-url %q is not a nats://, tls://, ws:// or wss:// URL", errUsage, redactURL(u))
		}
	}
	for _, f := range []struct{ flag, path string }{{"--nats-creds", c.NATSCreds}, {"--nats-tls-ca", c.NATSTLSCA},
		{"--nats-tls-cert", c.NATSTLSCert}, {"--nats-tls-key", c.NATSTLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, f.flag, err)
		}
	}
	return nil
}

// trustedProxies parses --trusted-proxy: IPs or CIDRs.
func trustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("%w: --trusted-proxy %q is not an IP address or CIDR", errUsage, v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// redactURL hides a password in a URL for messages.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(not a URL)"
}

func (c serveConfig) validate() error {
	if err := c.validateNATS(false); err != nil {
		return err
	}
	if err := c.validateGateway(); err != nil {
		return err
	}
	return c.validateWorker()
}

// startCommand parses flags, validates them and builds the logger: the
// common start of serve, gateway and worker.
func startCommand(fs *flag.FlagSet, cfg *serveConfig, args []string, validate func() error, stderr io.Writer) (*zap.Logger, error) {
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	if err := validate(); err != nil {
		return nil, err
	}
	if cfg.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.PprofAddr); err != nil {
			return nil, fmt.Errorf("%w: --pprof-addr %q: %v", errUsage, cfg.PprofAddr, err)
		}
	}
	return newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
}

// withPprof runs run with Go's profiler served on --pprof-addr, when set,
// for as long as run runs.
func withPprof(ctx context.Context, cfg serveConfig, log *zap.Logger, run func(context.Context) error) error {
	if cfg.PprofAddr == "" {
		return run(ctx)
	}
	ln, err := net.Listen("tcp", cfg.PprofAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("pprof"))}
	log.Info("profiler listening", zap.String("addr", ln.Addr().String()))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer cancel() // run is over: so is the profiler
		return run(gctx)
	})
	serveHTTP(gctx, g, srv, ln)
	return g.Wait()
}

// commandSetup gives a command's flag set, filling cfg, and the check of
// the values it read.
type commandSetup func(cfg *serveConfig) (*flag.FlagSet, func() error)

// The setups of serve, gateway and worker (compose_test.go runs the compose
// files' command lines through them too).
func serveSetup(cfg *serveConfig) (*flag.FlagSet, func() error) {
	// A closure, not the method value cfg.validate, which would copy cfg
	// before the flags are read.
	return serveFlags(cfg), func() error { return cfg.validate() }
}

func gatewaySetup(cfg *serveConfig) (*flag.FlagSet, func() error) {
	return gatewayCmdFlags(cfg), func() error {
		if err := cfg.validateNATS(true); err != nil {
			return err
		}
		if err := cfg.validateMedia(); err != nil {
			return err
		}
		return cfg.validateGateway()
	}
}

func workerSetup(cfg *serveConfig) (*flag.FlagSet, func() error) {
	return workerCmdFlags(cfg), func() error {
		if err := cfg.validateNATS(true); err != nil {
			return err
		}
		return cfg.validateWorker()
	}
}

// configure reads a command's flags and TANDEM_* variables, checks them and
// builds the logger: all that serve, gateway and worker do before they start.
func configure(setup commandSetup, args []string, stderr io.Writer) (serveConfig, *zap.Logger, error) {
	var cfg serveConfig
	fs, validate := setup(&cfg)
	log, err := startCommand(fs, &cfg, args, validate, stderr)
	return cfg, log, err
}

func serveCommand(ctx context.Context, args []string, drain <-chan struct{}, stdout, stderr io.Writer) error {
	cfg, log, err := configure(serveSetup, args, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	cfg.drain = drain
	return withPprof(ctx, cfg, log, func(ctx context.Context) error { return serve(ctx, cfg, log, stdout, nil) })
}

func gatewayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, log, err := configure(gatewaySetup, args, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	return withPprof(ctx, cfg, log, func(ctx context.Context) error { return runGateway(ctx, cfg, log, stdout, nil) })
}

func workerCommand(ctx context.Context, args []string, drain <-chan struct{}, stdout, stderr io.Writer) error {
	cfg, log, err := configure(workerSetup, args, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	cfg.drain = drain
	return withPprof(ctx, cfg, log, func(ctx context.Context) error { return runWorker(ctx, cfg, log, stdout, nil) })
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

// startBus connects to NATS as cfg says: the external cluster of
// --nats-url, or an embedded server storing under --data.
func startBus(ctx context.Context, cfg serveConfig, name string, log *zap.Logger) (*bus.Bus, error) {
	bc := bus.Config{URLs: cfg.NATSURL, Name: name, CredsFile: cfg.NATSCreds}
	if cfg.NATSURL == "" {
		bc.Dir, bc.SyncAlways = filepath.Join(cfg.Data, "nats"), cfg.SyncAlways
	}
	if cfg.NATSTLSCA != "" {
		bc.Options = append(bc.Options, nats.RootCAs(cfg.NATSTLSCA))
	}
	if cfg.NATSTLSCert != "" {
		bc.Options = append(bc.Options, nats.ClientCert(cfg.NATSTLSCert, cfg.NATSTLSKey))
	}
	b, err := bus.Start(ctx, bc, log)
	if err != nil {
		return nil, fmt.Errorf("start NATS: %w", err)
	}
	return b, nil
}

// openState opens the tenant store and the audit log with the replicas of
// --nats-replicas (or what the cluster allows). A cluster that has just
// started may not have elected its JetStream leaders yet: it retries for
// a minute.
func openState(ctx context.Context, cfg serveConfig, b *bus.Bus, log *zap.Logger) (*tenant.Store, *audit.Log, error) {
	replicas := cfg.NATSReplicas
	if replicas == 0 {
		replicas = b.Replicas()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		store, err := tenant.Open(ctx, b.JetStream(), tenant.Config{Replicas: replicas}, log)
		if err == nil {
			var auditLog *audit.Log
			if auditLog, err = audit.Open(ctx, b.JetStream(), audit.Config{Replicas: replicas}, log); err == nil {
				log.Info("state opened", zap.Int("replicas", replicas))
				return store, auditLog, nil
			}
		}
		log.Warn("open state in JetStream; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("open state (replicas %d): %w", replicas, err)
		case <-time.After(time.Second):
		}
	}
}

// gatewayParts is a gateway ready to run: its HTTP listener and server.
type gatewayParts struct {
	gw     *gateway.Gateway
	srv    *http.Server
	ln     net.Listener
	addr   string // the listener's address
	scheme string
	creds  demoCreds
}

// newGateway opens the state, listens on --addr and builds the gateway.
// reg gets the gateway's metrics (and the caller's).
func newGateway(ctx context.Context, cfg serveConfig, b *bus.Bus, reg *prometheus.Registry, log *zap.Logger) (*gatewayParts, error) {
	store, auditLog, err := openState(ctx, cfg, b, log)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	p := &gatewayParts{ln: ln, addr: ln.Addr().String(), scheme: "http"}
	if tlsCfg != nil {
		p.ln, p.scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	if cfg.Demo {
		if p.creds, err = seedDemo(ctx, store, cfg.DemoPassword, cfg.DemoAPIKey); err != nil {
			ln.Close()
			return nil, fmt.Errorf("seed demo: %w", err)
		}
	}
	extra := map[string]http.Handler{}
	if cfg.Demo {
		extra["/demo/"] = demo.Handler()
	}
	// Cookies are Secure when this process or a proxy in front of it
	// (an https base URL) terminates TLS.
	secure := tlsCfg != nil || strings.HasPrefix(cfg.BaseURL, "https://")
	proxies, _ := trustedProxies(cfg.TrustedProxies) // validated
	p.gw = gateway.New(gateway.Config{TrustedProxies: proxies, BaseURL: cfg.BaseURL, Pages: ui.Handler(), Extra: extra, Audit: auditLog,
		AdminToken: cfg.AdminToken, SecureCookie: secure, ICEServers: cfg.rtcConfig(false).ViewerICEServers}, store, b.Conn(), reg, log)
	p.srv = &http.Server{Handler: p.gw.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("http"))}
	return p, nil
}

// announce logs that the gateway is up, prints where to go, and hands
// the listen address to ready when it is not nil.
func (p *gatewayParts) announce(log *zap.Logger, msg string, stdout io.Writer, demo bool, ready chan<- string) {
	log.Info(msg, zap.String("addr", p.addr))
	printWelcome(stdout, p.scheme+"://"+p.addr, demo, p.creds)
	if ready != nil {
		ready <- p.addr
	}
}

// run serves HTTP and the gateway's NATS side until ctx ends.
func (p *gatewayParts) run(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return p.gw.Run(ctx) })
	serveHTTP(ctx, g, p.srv, p.ln)
}

// serveHTTP serves srv on ln in g until ctx ends, then shuts it down,
// giving requests under way 5 s.
func serveHTTP(ctx context.Context, g *errgroup.Group, srv *http.Server, ln net.Listener) {
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http on %s: %w", ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
}

// workerParts is a worker ready to run, with its egress proxy, browser
// pool and WebRTC API; close releases them (after the worker stopped).
type workerParts struct {
	wk    *worker.Worker
	px    *egress.Proxy
	close func()
}

// newWorker builds the worker's parts. allow adds to --egress-allow;
// loopback says whether media offers loopback candidates.
func newWorker(cfg serveConfig, b *bus.Bus, allow []string, loopback bool, log *zap.Logger) (*workerParts, error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	// Every request of the hosted browsers leaves through the egress proxy
	// (SECURITY.md P6). It is closed after the pool, so no browser
	// outlives it.
	px, err := egress.New(egress.Config{Allow: append(append([]string(nil), cfg.EgressAllow...), allow...)}, log)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	closers = append(closers, px.Close)
	pool, err := browserpool.New(browserpool.Config{Chromium: cfg.Chromium, User: cfg.BrowserUser, Warm: cfg.Warm,
		ProxyServer: px.URL(), EgressCheck: px.Checker().CheckURL, MaxMemory: int64(cfg.BrowserMemory) << 20, Cgroup: cfg.BrowserCgroup,
		MotionFPS: cfg.MotionFPS}, log)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("browser pool: %w", err)
	}
	closers = append(closers, pool.Close)
	api, err := rtc.NewAPI(cfg.rtcConfig(loopback), log)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	closers = append(closers, api.Close)
	wk, err := worker.New(worker.Config{ID: cfg.WorkerID, MaxSessions: cfg.MaxSessions, MaxCPUPressure: cfg.MaxCPUPressure,
		MaxTabs: cfg.MaxTabs, MaxRestarts: cfg.MaxRestarts, MaskFaults: cfg.maskFaults}, b.Conn(), pool, api, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &workerParts{wk: wk, px: px, close: closeAll}, nil
}

// run runs the worker and its proxy until ctx ends. On cfg.drain it
// drains: no new sessions, and stop (through stop) once the live ones
// finished or --drain-timeout passed.
func (p *workerParts) run(ctx context.Context, g *errgroup.Group, cfg serveConfig, stop context.CancelFunc, log *zap.Logger) {
	g.Go(func() error { return p.px.Run(ctx) })
	g.Go(func() error { return p.wk.Run(ctx) })
	if cfg.drain == nil {
		return
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-cfg.drain:
		}
		p.wk.Drain()
		log.Info("SIGTERM: draining; a second signal stops at once", zap.Int("sessions", p.wk.Sessions()), zap.Duration("timeout", cfg.DrainTimeout))
		dctx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
		defer cancel()
		if err := p.wk.WaitIdle(dctx); err != nil && ctx.Err() == nil {
			log.Warn("drain timed out: ending the sessions left", zap.Int("sessions", p.wk.Sessions()))
		} else if err == nil {
			log.Info("drained: no session left")
		}
		stop()
		return nil
	})
}

func newRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// serve runs gateway, worker and embedded NATS until ctx ends. When ready is
// not nil it receives the HTTP address once everything listens.
func serve(ctx context.Context, cfg serveConfig, log *zap.Logger, stdout io.Writer, ready chan<- string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, err := startBus(ctx, cfg, "tandem-serve", log)
	if err != nil {
		return err
	}
	defer b.Close() //nolint:errcheck
	reg := newRegistry()
	gp, err := newGateway(ctx, cfg, b, reg, log)
	if err != nil {
		return err
	}
	defer gp.ln.Close()
	var allow []string
	if cfg.Demo {
		allow = demoOrigins(gp.addr, cfg.BaseURL)
	}
	loopback := cfg.ICELoopback == "true" || (cfg.ICELoopback == "auto" && isLoopbackAddr(gp.addr))
	wp, err := newWorker(cfg, b, allow, loopback, log)
	if err != nil {
		return err
	}
	defer wp.close()
	reg.MustRegister(wp.wk, wp.px)

	g, gctx := errgroup.WithContext(ctx)
	wp.run(gctx, g, cfg, cancel, log)
	gp.run(gctx, g)
	select {
	case <-wp.wk.Ready():
	case <-gctx.Done():
		return g.Wait()
	}
	gp.announce(log, "tandem is up", stdout, cfg.Demo, ready)
	return g.Wait()
}

// runGateway runs `tandem gateway`: HTTP, pages, API and the signaling
// relay against an external NATS cluster; no browsers.
func runGateway(ctx context.Context, cfg serveConfig, log *zap.Logger, stdout io.Writer, ready chan<- string) error {
	b, err := startBus(ctx, cfg, "tandem-gateway", log)
	if err != nil {
		return err
	}
	defer b.Close() //nolint:errcheck
	gp, err := newGateway(ctx, cfg, b, newRegistry(), log)
	if err != nil {
		return err
	}
	defer gp.ln.Close()
	g, gctx := errgroup.WithContext(ctx)
	gp.run(gctx, g)
	gp.announce(log, "tandem gateway is up", stdout, cfg.Demo, ready)
	return g.Wait()
}

// runWorker runs `tandem worker`: the browser pool and media against an
// external NATS cluster, with /metrics, /healthz and /readyz on
// --metrics-addr. ready gets that address ("" without one).
func runWorker(ctx context.Context, cfg serveConfig, log *zap.Logger, stdout io.Writer, ready chan<- string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, err := startBus(ctx, cfg, "tandem-worker", log)
	if err != nil {
		return err
	}
	defer b.Close() //nolint:errcheck
	wp, err := newWorker(cfg, b, nil, cfg.ICELoopback == "true", log)
	if err != nil {
		return err
	}
	defer wp.close()
	g, gctx := errgroup.WithContext(ctx)
	wp.run(gctx, g, cfg, cancel, log)
	metricsAddr := ""
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		metricsAddr = ln.Addr().String()
		srv := &http.Server{Handler: workerHTTP(wp.wk, b, newRegistry(wp.wk, wp.px)), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: zap.NewStdLog(log.Named("http"))}
		serveHTTP(gctx, g, srv, ln)
	}
	select {
	case <-wp.wk.Ready():
	case <-gctx.Done():
		return g.Wait()
	}
	log.Info("tandem worker is up", zap.String("worker_id", wp.wk.ID()), zap.String("metrics", metricsAddr))
	fmt.Fprintf(stdout, "Tandem worker %s is running; metrics at %s\n", wp.wk.ID(), metricsAddr)
	if ready != nil {
		ready <- metricsAddr
	}
	return g.Wait()
}

// workerHTTP serves a worker's /metrics, /healthz and /readyz (not ready
// while draining or away from NATS: a load balancer or orchestrator stops
// counting on it).
func workerHTTP(wk *worker.Worker, b *bus.Bus, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	answer := func(w http.ResponseWriter, status int, body map[string]string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !b.Conn().IsConnected():
			answer(w, http.StatusServiceUnavailable, map[string]string{"error": "not_ready", "message": "not connected to NATS"})
		case wk.Draining():
			answer(w, http.StatusServiceUnavailable, map[string]string{"error": "draining", "message": "this worker is draining: no new sessions"})
		default:
			answer(w, http.StatusOK, map[string]string{"status": "ready", "worker_id": wk.ID()})
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "a worker serves /metrics, /healthz and /readyz"})
	})
	return mux
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
