package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/auth"
	"github.com/tandem-cobrowse/tandem/pkg/bus"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
)

// Config sets up a Worker.
type Config struct {
	ID          string        // worker id in NATS subjects; "" → "w_" + random
	MaxSessions int           // sessions hosted at once; 0 → 4
	BitrateKbps int           // target bitrate of each role's stream; 0 → 1500
	IdleTimeout time.Duration // end a session nobody watched this long; 0 → 5m
	MaxDuration time.Duration // end any session after this long; 0 → 4h
	LeaveGrace  time.Duration // after the last customer left, wait this long for a rejoin; 0 → 30s
	// PauseCaptureAfter stops the screencast of a session nobody watched
	// this long, until a viewer comes (pause.go); 0 → 2s, negative → never.
	PauseCaptureAfter time.Duration
	StartTimeout      time.Duration // leasing and opening the start URL; 0 → 20s
	MaxTabs           int           // tabs a session's browser may have open; 0 → browserpool.DefaultMaxTabs
	// MinMemory is the memory (MemAvailable) below which the worker takes
	// no new session; 0 → 256 MiB, negative → no check (pressure.go).
	MinMemory int64
	// MaxCPUPressure, when above 0, is the share (percent) of the last
	// 10 s that tasks waited for a CPU above which the worker takes no new
	// session (Linux PSI); 0 → no check.
	MaxCPUPressure float64
	// MaxRestarts is how many times a session's dead browser is replaced
	// within 10 minutes before the session ends as browser_failed; 0 → 3;
	// negative: never, a dead browser ends the session as browser_lost.
	MaxRestarts int
	MaskFaults  *mask.Faults // tests: faults injected into the mask path; nil in production
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.ID != "" && !bus.ValidToken(c.ID) {
		return fmt.Errorf("worker: id %q must be 1 to 64 of [A-Za-z0-9_-]", c.ID)
	}
	if c.MaxCPUPressure < 0 || c.MaxCPUPressure > 100 {
		return errors.New("worker: MaxCPUPressure must be 0 to 100")
	}
	if c.MaxSessions < 0 || c.MaxTabs < 0 || c.BitrateKbps < 0 || c.IdleTimeout < 0 || c.MaxDuration < 0 || c.LeaveGrace < 0 {
		return errors.New("worker: negative setting")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ID == "" {
		c.ID = "w_" + auth.NewID("")
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 4
	}
	switch {
	case c.MinMemory == 0:
		c.MinMemory = defaultMinMemory
	case c.MinMemory < 0:
		c.MinMemory = 0
	}
	if c.BitrateKbps == 0 {
		c.BitrateKbps = 1500
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 4 * time.Hour
	}
	if c.LeaveGrace == 0 {
		c.LeaveGrace = 30 * time.Second
	}
	if c.PauseCaptureAfter == 0 {
		c.PauseCaptureAfter = defaultPauseCaptureAfter
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 20 * time.Second
	}
	if c.MaxRestarts == 0 {
		c.MaxRestarts = 3
	}
	return c
}

// browsers is what the worker needs of browserpool.Pool.
type browsers interface {
	Lease(ctx context.Context, o browserpool.LeaseOptions) (*browserpool.Lease, error)
	Stats() browserpool.PoolStats
}

// Worker hosts sessions. Build it with New and serve with Run.
type Worker struct {
	cfg  Config
	nc   *nats.Conn
	pool browsers
	rtc  *rtc.API
	log  *zap.Logger

	mu       sync.Mutex
	sessions map[string]*session // guarded by mu; key company/session
	reserved int                 // guarded by mu; leases being started
	draining bool                // guarded by mu
	done     totals              // guarded by mu; counters of ended sessions
	wg       sync.WaitGroup      // session goroutines
	ready    chan struct{}       // closed once Run listens

	stopped       atomic.Bool   // Run returned: the last status says so
	restarted     atomic.Uint64 // sessions' dead browsers replaced (recovery.go)
	restartFailed atomic.Uint64 // sessions ended because their browser kept dying

	serverTime *prometheus.HistogramVec // Tandem's own time on the media and input paths (metrics.go)
	encoders   *media.EncoderPool       // set by Run before it takes sessions; nil without a default size
}

// New builds a Worker. It starts nothing until Run.
func New(cfg Config, nc *nats.Conn, pool *browserpool.Pool, api *rtc.API, log *zap.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Worker{
		cfg:      cfg,
		nc:       nc,
		pool:     pool,
		rtc:      api,
		log:      log.Named("worker").With(zap.String("worker_id", cfg.ID)),
		sessions: make(map[string]*session),
		ready:    make(chan struct{}),

		serverTime: newServerTime(),
	}, nil
}

// ID is the worker's id in NATS subjects.
func (w *Worker) ID() string { return w.cfg.ID }

// Run serves lease, end and gate requests until ctx ends, then ends every hosted
// session and returns once all of them have stopped.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Encoders for the next session's two roles, started ahead at the
	// default viewport: starting one takes 70–250 ms, which the customer's
	// first picture waited for (docs/encoder.md).
	st := w.pool.Stats()
	if st.Width > 0 && st.Height > 0 {
		enc, err := media.NewEncoderPool(media.EncoderConfig{Width: st.Width, Height: st.Height, BitrateKbps: w.cfg.BitrateKbps}, len(roles), w.log)
		if err != nil {
			return fmt.Errorf("encoder pool: %w", err)
		}
		w.encoders = enc
		defer enc.Close() // after the sessions ended: deferred first, run last
	}
	onLease := func(m *nats.Msg) {
		// Starting a browser takes a second: never on the NATS goroutine.
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.handleLease(ctx, m)
		}()
	}
	// Gateways ask this worker by name once its status reached them; the
	// queue group serves those that have heard no status yet.
	leases, err := w.nc.QueueSubscribe(SubjectLease, QueueWorkers, onLease)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", SubjectLease, err)
	}
	defer leases.Unsubscribe() //nolint:errcheck // the connection may be closing
	direct, err := w.nc.Subscribe(LeaseSubject(w.cfg.ID), onLease)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", LeaseSubject(w.cfg.ID), err)
	}
	defer direct.Unsubscribe() //nolint:errcheck
	ends, err := w.nc.Subscribe(EndSubject(w.cfg.ID), w.handleEnd)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", EndSubject(w.cfg.ID), err)
	}
	defer ends.Unsubscribe() //nolint:errcheck
	gates, err := w.nc.Subscribe(GateSubject(w.cfg.ID), w.handleGate)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", GateSubject(w.cfg.ID), err)
	}
	defer gates.Unsubscribe() //nolint:errcheck
	if err := w.nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("register with NATS: %w", err)
	}
	close(w.ready)
	w.log.Info("worker ready", zap.Int("max_sessions", w.cfg.MaxSessions))

	tick := time.NewTicker(StatusInterval)
	defer tick.Stop()
	w.publishStatus()
	for {
		select {
		case <-ctx.Done():
			w.log.Info("worker stopping")
			_ = leases.Unsubscribe()
			_ = direct.Unsubscribe()
			w.endAll(ReasonShutdown)
			w.wg.Wait()
			w.stopped.Store(true)
			w.publishStatus()
			_ = w.nc.FlushTimeout(2 * time.Second) // the gateways forget this worker at once
			return nil
		case <-tick.C:
			w.publishStatus()
		}
	}
}

// Ready is closed once Run takes lease requests.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Drain makes the worker refuse new sessions; the live ones go on.
func (w *Worker) Drain() {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	w.log.Info("worker draining: no new sessions")
	w.publishStatus()
}

// Draining reports whether Drain was called.
func (w *Worker) Draining() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.draining
}

// Sessions is the number of sessions hosted now.
func (w *Worker) Sessions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// WaitIdle returns nil once the worker hosts no session and starts none,
// or ctx's error when ctx ends first. With Drain it is the end of a
// scale-in: the live sessions finished.
func (w *Worker) WaitIdle(ctx context.Context) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		w.mu.Lock()
		busy := len(w.sessions) + w.reserved
		w.mu.Unlock()
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// status is the worker's heartbeat now.
func (w *Worker) status() Status {
	why := w.pressure() // reads /proc: outside the lock
	mem, _ := memAvailable()
	warm := w.pool.Stats().Warm
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{WorkerID: w.cfg.ID, Sessions: len(w.sessions), MaxSessions: w.cfg.MaxSessions, Warm: warm,
		MemAvailable: mem, Draining: w.draining, Stopped: w.stopped.Load(), At: time.Now()}
	if !w.draining && !st.Stopped && why == "" {
		st.Free = max(0, w.cfg.MaxSessions-len(w.sessions)-w.reserved)
	}
	return st
}

func (w *Worker) publishStatus() {
	st := w.status()
	b, _ := json.Marshal(st)
	if err := w.nc.Publish(fmt.Sprintf(subjectStatusFmt, w.cfg.ID), b); err != nil {
		w.log.Warn("publish status", zap.Error(err))
	}
}

func reply(m *nats.Msg, r LeaseReply) {
	b, _ := json.Marshal(r)
	_ = m.Respond(b) // the requester may have given up; nothing to do then
}

func (w *Worker) handleLease(ctx context.Context, m *nats.Msg) {
	var req LeaseRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply(m, LeaseReply{Error: "invalid_request", Message: "lease request is not JSON"})
		return
	}
	if err := req.validate(); err != nil {
		reply(m, LeaseReply{Error: "invalid_request", Message: err.Error()})
		return
	}
	key := req.Company + "/" + req.SessionID
	w.mu.Lock()
	switch {
	case w.draining:
		w.mu.Unlock()
		reply(m, LeaseReply{Error: "no_capacity", Message: "this worker is draining"})
		return
	case len(w.sessions)+w.reserved >= w.cfg.MaxSessions:
		w.mu.Unlock()
		reply(m, LeaseReply{Error: "no_capacity", Message: "this worker is full"})
		return
	case w.sessions[key] != nil:
		w.mu.Unlock()
		reply(m, LeaseReply{Error: "invalid_request", Message: "session already hosted"})
		return
	}
	if why := w.pressure(); why != "" {
		w.mu.Unlock()
		w.log.Warn("session refused", zap.String("why", why))
		reply(m, LeaseReply{Error: "no_capacity", Message: why})
		return
	}
	w.reserved++
	w.mu.Unlock()

	log := w.log.With(zap.String("company_id", req.Company), zap.String("session_id", req.SessionID))
	s, err := w.startSession(ctx, req, log)
	w.mu.Lock()
	w.reserved--
	if err == nil {
		w.sessions[key] = s
	}
	w.mu.Unlock()
	if errors.Is(err, browserpool.ErrURLNotAllowed) {
		// The egress check (or the scheme check) refused the start page:
		// nothing is wrong with the browser.
		log.Info("start page refused", zap.Error(err))
		reply(m, LeaseReply{Error: "url_not_allowed", Message: "the hosted browser may not open this start page"})
		return
	}
	if err != nil {
		log.Warn("session start failed", zap.Error(err))
		reply(m, LeaseReply{Error: "browser_failed", Message: "the browser for this session could not be started"})
		return
	}
	reply(m, LeaseReply{WorkerID: w.cfg.ID})
	w.publishStatus()

	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		reason := s.run(ctx)
		var final totals
		s.addTo(&final)
		w.mu.Lock()
		delete(w.sessions, key)
		w.done.captured += final.captured
		w.done.decodeErrors += final.decodeErrors
		w.done.droppedInput += final.droppedInput
		w.done.refusedInput += final.refusedInput
		for _, st := range final.roles {
			w.done.addRole(st)
		}
		w.done.addMask(final.mask)
		w.mu.Unlock()
		w.publishEvent(Event{Type: "ended", Company: req.Company, SessionID: req.SessionID, Reason: reason})
		w.publishStatus()
		log.Info("session ended", zap.String("reason", reason))
	}()
}

func (w *Worker) handleEnd(m *nats.Msg) {
	var req EndRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		w.log.Warn("bad end request")
		return
	}
	w.mu.Lock()
	s := w.sessions[req.Company+"/"+req.SessionID]
	w.mu.Unlock()
	if s != nil {
		s.end(req.Reason)
	}
	if m.Reply != "" {
		_ = m.Respond([]byte(`{}`))
	}
}

func (w *Worker) endAll(reason string) {
	w.mu.Lock()
	all := make([]*session, 0, len(w.sessions))
	for _, s := range w.sessions {
		all = append(all, s)
	}
	w.mu.Unlock()
	for _, s := range all {
		s.end(reason)
	}
}

func (w *Worker) publishEvent(ev Event) {
	ev.At = time.Now()
	b, _ := json.Marshal(ev)
	if err := w.nc.Publish(EventSubject(ev.Company, ev.SessionID), b); err != nil {
		w.log.Warn("publish session event", zap.Error(err), zap.String("session_id", ev.SessionID))
	}
}
