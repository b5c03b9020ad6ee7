package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/tenant"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// Config sets up a Gateway.
type Config struct {
	BaseURL      string                  // absolute URL of this service in links (join_url, ...); "" → from each request
	SecureCookie bool                    // mark cookies Secure (set when serving TLS)
	LeaseTimeout time.Duration           // waiting for a worker to start a session; 0 → 25s
	QueueWait    time.Duration           // waiting for a worker with a free place (placement.go); 0 → 5s
	Pages        http.Handler            // the embedded pages (ui.Handler); nil → none
	Extra        map[string]http.Handler // more handlers by path prefix, e.g. "/demo/"
	AdminToken   string                  // operator token for /api/v1/admin/...; "" → those routes answer 404
	Audit        *audit.Log              // where audit events go; nil → none are recorded (tests of other parts)
	// TrustedProxies are the load balancers in front of the gateway: from
	// them, the client's address is taken from X-Forwarded-For (failure
	// budgets and the audit trail's network); nil → the connection's.
	TrustedProxies []netip.Prefix
	// ICEServers returns the STUN/TURN servers, with credentials minted for
	// the viewer, that go into a viewer's hello (rtc.Config.ViewerICEServers);
	// nil → none (host candidates only).
	ICEServers func(viewerID string, now time.Time) []protocol.ICEServer
}

const (
	maxBody        = 64 << 10
	agentCookie    = "tandem_agent"
	customerCookie = "tandem_customer"
	workerAlive    = 3 * worker.StatusInterval
)

// Gateway serves HTTP for one Tandem cluster.
type Gateway struct {
	cfg     Config
	store   *tenant.Store
	nc      *nats.Conn
	relay   *signaling.Relay
	log     *zap.Logger
	echo    *echo.Echo
	limiter *limiter
	reg     *prometheus.Registry

	mu      sync.Mutex
	workers map[string]*workerState // guarded by mu; last heartbeat of each worker (placement.go)
	bridges bridgeSet               // viewers bridged by this gateway, by worker

	quotaMu sync.Mutex // held while a session is counted against its company's quota and created

	pinAudits chan struct{} // a place for each failed-PIN record being written after its answer (recordPINFailed)
}

// pinAuditsPending bounds the failed-PIN records being written at once.
const pinAuditsPending = 256

// New builds a Gateway. reg receives the gateway's metrics and is served at /metrics.
func New(cfg Config, store *tenant.Store, nc *nats.Conn, reg *prometheus.Registry, log *zap.Logger) *Gateway {
	if cfg.LeaseTimeout == 0 {
		cfg.LeaseTimeout = 25 * time.Second
	}
	if cfg.QueueWait == 0 {
		cfg.QueueWait = 5 * time.Second
	}
	log = log.Named("gateway")
	g := &Gateway{
		cfg:     cfg,
		store:   store,
		nc:      nc,
		relay:   signaling.NewRelay(nc, log),
		log:     log,
		limiter: newLimiter(),
		reg:     reg,
		workers: make(map[string]*workerState),

		pinAudits: make(chan struct{}, pinAuditsPending),
	}
	g.echo = g.routes()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_gateway_workers", Help: "Workers this gateway heard from within the heartbeat limit."},
			func() float64 { return float64(g.liveWorkers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_gateway_free_places", Help: "New sessions the live workers said they would take, in total."},
			func() float64 { return float64(g.freePlaces()) }),
	)
	return g
}

// Handler serves every HTTP route.
func (g *Gateway) Handler() http.Handler { return g.echo }

func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.handleError
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit("64K"))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:      "0",
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "no-referrer",
		// Sent on HTTPS requests only (echo checks the request's TLS, or
		// X-Forwarded-Proto from a proxy in front). Other hosts of the
		// company's domain are none of ours.
		HSTSMaxAge:            63072000,
		HSTSExcludeSubdomains: true,
	}))

	e.GET("/healthz", g.healthz)
	e.GET("/readyz", g.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{})))

	api := e.Group("/api/v1")
	api.POST("/auth/login", g.login)
	api.POST("/auth/logout", g.logout)
	api.GET("/auth/me", g.me, g.requireAgent)
	api.POST("/sessions", g.createSession, g.requireCaller)
	api.GET("/sessions", g.listSessions, g.requireCaller)
	api.GET("/sessions/:id", g.getSession, g.requireCaller)
	api.DELETE("/sessions/:id", g.endSession, g.requireCaller)
	api.GET("/sessions/:id/ws", g.signal)
	api.GET("/sessions/:id/audit", g.sessionAudit, g.requireCaller)
	api.GET("/sessions/:id/consent", g.consentView)
	api.POST("/sessions/:id/consent", g.giveConsent)
	api.POST("/sessions/:id/admit", g.admit, g.requireAgent)
	api.POST("/join", g.join)
	api.GET("/companies/:slug", g.publicCompany)
	api.GET("/companies/:slug/embed", g.companyEmbed)
	g.manageRoutes(api)
	api.Any("/*", g.noRoute)

	for prefix, h := range g.cfg.Extra {
		e.Any(strings.TrimSuffix(prefix, "/")+"/*", echo.WrapHandler(h))
		e.Any(strings.TrimSuffix(prefix, "/"), echo.WrapHandler(h))
	}
	if g.cfg.Pages != nil {
		e.Any("/*", echo.WrapHandler(g.cfg.Pages))
	}
	return e
}

// noRoute answers API paths that no route took: 405 when the path exists
// with another method, 404 otherwise, both as JSON.
func (g *Gateway) noRoute(c echo.Context) error {
	path := c.Request().URL.Path
	for _, r := range g.echo.Routes() {
		if r.Method != echo.RouteNotFound && !strings.HasSuffix(r.Path, "*") && pathMatches(r.Path, path) {
			return errorf(http.StatusMethodNotAllowed, "method_not_allowed", "this route does not take "+c.Request().Method)
		}
	}
	return errorf(http.StatusNotFound, "not_found", "no such route")
}

// pathMatches says whether path fits an echo route pattern with :params.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], ":") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// Run consumes worker heartbeats and session events until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	status, err := g.nc.Subscribe(worker.SubjectStatusAll, func(m *nats.Msg) {
		var st worker.Status
		if json.Unmarshal(m.Data, &st) == nil && st.WorkerID != "" {
			g.noteStatus(st)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe worker status: %w", err)
	}
	defer status.Unsubscribe() //nolint:errcheck
	defer g.settle()
	var watching sync.WaitGroup
	defer watching.Wait()
	watching.Go(func() { g.watchWorkers(ctx) })
	// Room for bursts: each event can become an audit record.
	events := make(chan worker.Event, 1024)
	// One gateway of the cluster records each event.
	sub, err := g.nc.QueueSubscribe(worker.SubjectEventsAll, "gateways", func(m *nats.Msg) {
		var ev worker.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		select {
		case events <- ev:
		default:
			g.log.Warn("session event dropped", zap.String("session_id", ev.SessionID))
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe session events: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			g.handleEvent(ctx, ev)
		}
	}
}

func (g *Gateway) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) readyz(c echo.Context) error {
	if !g.nc.IsConnected() {
		return errorf(http.StatusServiceUnavailable, "not_ready", "not connected to NATS")
	}
	if g.liveWorkers() == 0 {
		return errorf(http.StatusServiceUnavailable, "not_ready", "no worker is registered")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// decodeJSON reads one JSON object from the body into v, refusing unknown
// fields, wrong types and trailing data.
func decodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "the request body is too large")
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "invalid_json", "the request body is empty")
		case errors.As(err, &ute):
			return errorf(http.StatusBadRequest, "invalid_json", fmt.Sprintf("field %q has the wrong type", ute.Field))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return errorf(http.StatusBadRequest, "invalid_json", strings.TrimPrefix(err.Error(), "json: "))
		}
		return errorf(http.StatusBadRequest, "invalid_json", "the request body is not valid JSON")
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid_json", "one JSON object expected")
	}
	return nil
}

// baseURL is where links in answers point.
func (g *Gateway) baseURL(c echo.Context) string {
	if g.cfg.BaseURL != "" {
		return strings.TrimSuffix(g.cfg.BaseURL, "/")
	}
	return c.Scheme() + "://" + c.Request().Host
}

func (g *Gateway) setCookie(c echo.Context, name, value string, expires time.Time) {
	ck := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   g.cfg.SecureCookie,
		SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		ck.MaxAge = -1
	} else if !expires.IsZero() {
		ck.Expires = expires
	}
	c.SetCookie(ck)
}
