package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Config selects and tunes the NATS connection. The zero value starts an
// embedded server on 127.0.0.1 with a random port, storing JetStream data in
// ./data.
type Config struct {
	// URLs of an external NATS cluster, comma-separated; "" starts an
	// embedded server instead.
	URLs string
	// Dir is the embedded server's JetStream store directory; "" means
	// "./data". The server keeps its files under Dir/jetstream.
	Dir string
	// Host is the embedded server's listen address; "" means 127.0.0.1.
	Host string
	// Port is the embedded server's client port; 0 means a random free
	// port, -1 means no listener at all (only this process can connect, and
	// ClientURL returns "").
	Port int
	// SyncAlways makes the embedded server fsync every JetStream write
	// (sync_interval "always"); otherwise it syncs every two minutes and
	// relies on the OS to flush.
	SyncAlways bool
	// Name is the client connection's name, shown in server monitoring; ""
	// means "tandem".
	Name string
	// CredsFile is a NATS credentials file for an external cluster; ""
	// means none.
	CredsFile string
	// Options are applied last to the client connection (TLS, user and
	// password, ...). A ClosedHandler set here still runs; Close waits for
	// it.
	Options []nats.Option
	// ReadyTimeout bounds how long Start waits for the embedded server to
	// accept connections; 0 means 10s. Start also honours its ctx.
	ReadyTimeout time.Duration
}

// Validate reports settings that cannot work together.
func (c Config) Validate() error {
	if c.Port < -1 || c.Port > 65535 {
		return fmt.Errorf("bus: port %d out of range (-1 to 65535)", c.Port)
	}
	if c.ReadyTimeout < 0 {
		return fmt.Errorf("bus: negative ready timeout %s", c.ReadyTimeout)
	}
	if c.URLs == "" {
		if c.CredsFile != "" {
			return errors.New("bus: a credentials file needs external URLs")
		}
		return nil
	}
	if c.Dir != "" || c.Host != "" || c.Port != 0 || c.SyncAlways {
		return errors.New("bus: Dir, Host, Port and SyncAlways apply only to the embedded server, but URLs is set")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = "./data"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Name == "" {
		c.Name = "tandem"
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	return c
}

// Bus is a live NATS connection with JetStream, and the embedded server
// behind it if there is one.
type Bus struct {
	log    *zap.Logger
	srv    *server.Server // nil when connected to an external cluster
	listen bool           // srv has a client listener
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed when nc has closed

	closeOnce sync.Once
	closeErr  error
}

// Start connects to NATS as cfg says. With cfg.URLs empty it first starts an
// embedded server with JetStream in cfg.Dir and connects to it in-process.
// With external URLs it retries, logging each failure, until it connects and
// JetStream answers or ctx ends; once connected the client reconnects on its
// own for as long as the Bus lives. On error nothing is left running.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Bus{log: log.Named("bus"), closed: make(chan struct{})}
	var err error
	if cfg.URLs == "" {
		err = b.startEmbedded(ctx, cfg, log)
	} else {
		err = b.connectExternal(ctx, cfg)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// startEmbedded starts the server, connects to it in-process and checks that
// JetStream answers.
func (b *Bus) startEmbedded(ctx context.Context, cfg Config, log *zap.Logger) error {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return fmt.Errorf("bus: store dir %q: %w", cfg.Dir, err)
	}
	opts := &server.Options{
		ServerName: "tandem-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true, // signals belong to cmd/tandem
	}
	switch cfg.Port {
	case 0:
		opts.Port = server.RANDOM_PORT
	case -1:
		opts.Port = 0
		opts.DontListen = true
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bus: configure embedded server: %w", err)
	}
	slog := log.Named("nats-server")
	srv.SetLoggerV2(serverLogger{slog}, slog.Core().Enabled(zap.DebugLevel), false, false)
	b.srv, b.listen = srv, !opts.DontListen
	srv.Start()

	wait := cfg.ReadyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		return fmt.Errorf("bus: embedded server not ready within %s (is %s taken?)", wait,
			net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: start embedded server: %w", err)
	}
	if err := b.connect(ctx, srv.ClientURL(), cfg, nats.InProcessServer(srv)); err != nil {
		return err
	}
	b.log.Info("embedded NATS started", zap.String("url", b.ClientURL()), zap.String("dir", dir),
		zap.Bool("sync_always", cfg.SyncAlways))
	return nil
}

// connectExternal dials cfg.URLs until it succeeds or ctx ends.
func (b *Bus) connectExternal(ctx context.Context, cfg Config) error {
	var extra []nats.Option
	if cfg.CredsFile != "" {
		extra = append(extra, nats.UserCredentials(cfg.CredsFile))
	}
	backoff := 250 * time.Millisecond
	for {
		err := b.connect(ctx, cfg.URLs, cfg, extra...)
		if err == nil {
			b.log.Info("connected to NATS", zap.String("url", b.nc.ConnectedUrlRedacted()))
			return nil
		}
		b.log.Warn("connect to NATS failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return fmt.Errorf("bus: connect to %s: %w (last error: %w)", redactURLs(cfg.URLs), ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// connect opens one connection and checks JetStream. On failure it leaves no
// connection behind.
func (b *Bus) connect(ctx context.Context, url string, cfg Config, extra ...nats.Option) error {
	o := nats.GetDefaultOptions()
	o.Url = url
	if strings.Contains(url, ",") {
		o.Url = ""
		for _, u := range strings.Split(url, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.Servers = append(o.Servers, u)
			}
		}
	}
	o.Name = cfg.Name
	o.MaxReconnect = -1 // never give up while the Bus lives
	o.ReconnectWait = time.Second
	o.DisconnectedErrCB = func(_ *nats.Conn, err error) {
		if err != nil {
			b.log.Warn("NATS disconnected", zap.Error(err))
		}
	}
	o.ReconnectedCB = func(nc *nats.Conn) {
		b.log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
	}
	o.AsyncErrorCB = func(_ *nats.Conn, sub *nats.Subscription, err error) {
		subj := ""
		if sub != nil {
			subj = sub.Subject
		}
		b.log.Warn("NATS async error", zap.String("subject", subj), zap.Error(err))
	}
	for _, opt := range append(extra, cfg.Options...) {
		if err := opt(&o); err != nil {
			return fmt.Errorf("bus: connection option: %w", err)
		}
	}
	userClosed := o.ClosedCB
	done := make(chan struct{})
	o.ClosedCB = func(nc *nats.Conn) {
		if userClosed != nil {
			userClosed(nc)
		}
		close(done)
	}
	nc, err := o.Connect()
	if err != nil {
		return fmt.Errorf("bus: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		nc.Close()
		<-done
		return fmt.Errorf("bus: JetStream unavailable: %w", err)
	}
	b.nc, b.js, b.closed = nc, js, done
	return nil
}

// Conn returns the NATS connection. It stays owned by the Bus: callers must
// not close or drain it.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream context on Conn.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// ClientURL is where other processes and tests can connect: the embedded
// server's listen URL (nats://127.0.0.1:<port>), "" for an embedded server
// without a listener, or the external server currently connected to (with
// credentials redacted).
func (b *Bus) ClientURL() string {
	if b.srv != nil {
		if !b.listen {
			return ""
		}
		return b.srv.ClientURL()
	}
	return b.nc.ConnectedUrlRedacted()
}

// Replicas is the JetStream replica count Tandem's state should have on
// this connection: 1 for the embedded server or a server outside a
// cluster; for a cluster, 3 when it has 3 or more servers (else their
// number), counting the servers this client knows (its URLs and those the
// cluster advertised). A cluster that advertises no URLs looks smaller than
// it is: set the replicas by hand there (--nats-replicas).
func (b *Bus) Replicas() int {
	if b.srv != nil || b.nc.ConnectedClusterName() == "" {
		return 1
	}
	return min(3, max(1, len(b.nc.Servers())))
}

// Close drains the connection (waiting up to the client's drain timeout for
// in-flight messages), shuts the embedded server down and waits for it. It
// is idempotent; later calls return the first call's result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.nc != nil {
			if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				b.closeErr = fmt.Errorf("bus: drain: %w", err)
				b.nc.Close()
			}
			<-b.closed
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			b.log.Info("embedded NATS stopped")
		}
	})
	return b.closeErr
}

// redactURLs drops user information from comma-separated URLs for messages.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				scheme = p[:s+3]
			}
			p = scheme + "redacted@" + p[at+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
