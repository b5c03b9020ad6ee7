package browserpool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Warm refill timing.
const (
	staggerGap    = 500 * time.Millisecond // between two warm starts, so they do not pile onto the cores
	minRetryPause = time.Second            // after a failed warm start, doubling
	maxRetryPause = 30 * time.Second
)

// Pool launches headless Chromium browsers, keeps Config.Warm of them started
// and unleased, and leases them to sessions. New starts one refill goroutine;
// Close stops it and closes every browser the pool still owns, leased or not.
type Pool struct {
	cfg  Config
	spec launchSpec
	log  *zap.Logger
	cg   *cgroupHost // nil: no cgroups, the process group holds each browser (cgroup.go)

	wake chan struct{} // cap 1: ask the refill loop to look again
	quit chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu           sync.Mutex
	closed       bool                // guarded by mu
	warm         []*Lease            // started, unleased; guarded by mu
	dead         []*Lease            // warm browsers that died, to be closed; guarded by mu
	live         map[*Lease]struct{} // leased, not yet closed; guarded by mu
	warmStarts   uint64              // guarded by mu
	coldStarts   uint64              // guarded by mu
	failedStarts uint64              // guarded by mu
	lastStart    time.Duration       // guarded by mu
	startTimes   StartTimes          // guarded by mu

	closeOnce sync.Once
	closeErr  error
}

// LeaseOptions says how to prepare a leased browser.
type LeaseOptions struct {
	StartURL string // opened before Lease returns; "" leaves about:blank
	Width    int    // viewport; 0 means Config.Width; clamped by input.ClampViewport
	Height   int    // viewport; 0 means Config.Height
	// World, when set, runs in an isolated world of every document of the
	// tab from before the start URL loads (world.go).
	World *World
	// Guard, when set, can fail the tab's requests to some URLs
	// (GuardRequests; guard.go). Cross-origin frames are guarded from when
	// they are attached, which needs World.
	Guard *RequestGuard
	// Nav, when set, checks every document the tab loads, the start URL
	// included, against the company's URL policy (guard.go).
	Nav *NavGuard
	// MaxTabs is how many tabs the session may have open (tabs.go); 0
	// means DefaultMaxTabs. A tab beyond it is closed as it opens, and
	// TabRefused (when set) is called, on its own goroutine.
	MaxTabs    int
	TabRefused func()
	// Downloads lets the page download files, into the browser's folder,
	// for the owner to take from Lease.Downloads (downloads.go); without
	// it they are denied, and still reported there.
	Downloads bool
}

// StartBuckets are the upper bounds, in seconds, of StartTimes' buckets.
var StartBuckets = [...]float64{0.25, 0.5, 1, 2, 4, 8, 16}

// StartTimes is a histogram of browser start times, by kind.
type StartTimes struct {
	// Counts[kind][i] counts the starts of at most StartBuckets[i]
	// seconds (not cumulative); the last is those over every bound.
	// kind 0 is warm, 1 cold.
	Counts [2][len(StartBuckets) + 1]uint64
	Sum    [2]time.Duration
}

func (h *StartTimes) add(warm bool, d time.Duration) {
	k := 1
	if warm {
		k = 0
	}
	i := 0
	for i < len(StartBuckets) && d.Seconds() > StartBuckets[i] {
		i++
	}
	h.Counts[k][i]++
	h.Sum[k] += d
}

// PoolStats is a snapshot of the pool for metrics.
type PoolStats struct {
	Warm         int           // started, unleased browsers ready now
	Leased       int           // leases not yet closed
	WarmStarts   uint64        // browsers started ahead of demand
	ColdStarts   uint64        // browsers started because no warm one was ready
	FailedStarts uint64        // starts that failed
	LastStart    time.Duration // how long the latest successful start took
	StartTimes   StartTimes    // how long successful starts took, warm and cold
	// MemoryLimit is what enforces Config.MaxMemory: "cgroup" (the
	// kernel's memory.max, the watchdog as a second guard) or "watchdog"
	// (PSS read every 2 s). Placement is what holds a browser's
	// processes: "cgroup" or "process-group".
	MemoryLimit string
	Placement   string
	// Width and Height are the viewport of a lease that asks for none.
	Width, Height int
}

// New validates cfg, finds the Chromium binary and the browser user, and
// starts the refill goroutine, which starts warm browsers one at a time.
// Close stops it.
func New(cfg Config, log *zap.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	binary, err := findChromium(cfg.Chromium)
	if err != nil {
		return nil, err
	}
	cfg.Chromium = binary
	u, err := resolveUser(cfg.User)
	if err != nil {
		return nil, err
	}
	if err := checkTempDir(cfg.TempDir, u); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var (
		cg       *cgroupHost
		cgReason = "off (Config.Cgroup)"
	)
	if cfg.Cgroup != "off" {
		cg, cgReason = machineCgroup()
		if cg != nil {
			cgReason = cg.reason
		}
	}
	sweep(cfg.TempDir, cg, log.Named("browserpool"))
	flags, disable, err := parseExtraFlags(cfg.ExtraFlags)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg: cfg,
		spec: launchSpec{
			binary:        binary,
			headlessShell: isHeadlessShell(binary),
			user:          u,
			flags:         flags,
			disabled:      strings.Join(append([]string{baseDisabledFeatures}, disable...), ","),
		},
		log:  log.Named("browserpool"),
		cg:   cg,
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		live: make(map[*Lease]struct{}),
	}
	fields := []zap.Field{zap.String("chromium", binary), zap.Int("warm", cfg.Warm)}
	if u != nil {
		fields = append(fields, zap.String("browser_user", u.name))
	}
	fields = append(fields, zap.String("memory_limit", cg.MemoryLimit()), zap.String("placement", cg.Placement()))
	if cg != nil {
		fields = append(fields, zap.String("cgroup", cg.base))
	}
	if cgReason != "" {
		fields = append(fields, zap.String("cgroup_note", cgReason))
	}
	p.log.Info("browser pool ready", fields...)
	ctx, cancel := withQuit(context.Background(), p.quit)
	p.wg.Go(func() {
		defer cancel()
		p.refillLoop(ctx)
	})
	p.wakeRefill()
	return p, nil
}

// withQuit returns a context that also ends when quit is closed.
func withQuit(ctx context.Context, quit <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Lease returns a browser for one session: a warm one if ready, else one
// started now (bounded by ctx and Config.StartTimeout). Before it returns, the
// viewport is set, the screencast runs and o.StartURL is loaded. ctx bounds
// only the preparation, not the lease's life. The caller closes the lease.
//
// Errors wrap ErrPoolClosed, ErrURLNotAllowed, ErrStartTimeout, ctx's error,
// or the failure to load o.StartURL (the browser is then destroyed).
func (p *Pool) Lease(ctx context.Context, o LeaseOptions) (*Lease, error) {
	if o.StartURL != "" {
		if err := p.checkURL(ctx, o.StartURL); err != nil {
			return nil, fmt.Errorf("lease browser: %w", err)
		}
	}
	w, h := o.Width, o.Height
	if w == 0 {
		w = p.cfg.Width
	}
	if h == 0 {
		h = p.cfg.Height
	}
	w, h = input.ClampViewport(w, h)

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	l := p.takeWarmLocked()
	p.wg.Add(1) // Close waits for this call
	p.mu.Unlock()
	defer p.wg.Done()
	// Replace the browser taken only once this one is ready: two starts at
	// once would slow a cold start down.
	defer p.wakeRefill()

	ctx, cancel := withQuit(ctx, p.quit)
	defer cancel()
	if l == nil {
		var err error
		if l, err = p.start(ctx, false); err != nil {
			return nil, fmt.Errorf("lease browser: %w", err)
		}
	}
	if err := l.begin(ctx, w, h, o); err != nil {
		if cerr := l.Close(); cerr != nil {
			p.log.Warn("close browser after failed lease", zap.Error(cerr))
		}
		return nil, fmt.Errorf("lease browser: %w", err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = l.Close() // Close of the pool is under way; this browser is ours to end
		return nil, ErrPoolClosed
	}
	p.live[l] = struct{}{}
	p.mu.Unlock()
	return l, nil
}

// begin prepares a started browser for its session.
func (l *Lease) begin(ctx context.Context, w, h int, o LeaseOptions) error {
	l.guard, l.nav = o.Guard, o.Nav
	cctx, cancel := l.callCtx(ctx)
	err := l.watchTabs(cctx, o)
	if err == nil {
		err = l.setDownloads(cctx, o.Downloads)
	}
	if err == nil {
		err = l.enableFetch(cctx)
	}
	if err == nil {
		err = l.interceptFileChoosers(cctx)
	}
	cancel()
	if err != nil {
		return err
	}
	if o.World != nil {
		if err := l.installWorld(ctx, o.World); err != nil {
			return err
		}
	}
	if err := l.SetViewport(ctx, w, h); err != nil {
		return err
	}
	if o.StartURL != "" {
		return l.Navigate(ctx, o.StartURL)
	}
	return nil
}

// checkURL is checkURL, then Config.EgressCheck for URLs that leave the
// browser (not data: or about:blank).
func (p *Pool) checkURL(ctx context.Context, raw string) error {
	if err := checkURL(raw); err != nil {
		return err
	}
	if p.cfg.EgressCheck == nil || !strings.HasPrefix(strings.ToLower(raw), "http") {
		return nil
	}
	if err := p.cfg.EgressCheck(ctx, raw); err != nil {
		return fmt.Errorf("%w: %w", ErrURLNotAllowed, err)
	}
	return nil
}

// takeWarmLocked removes and returns the oldest live warm browser, or nil.
func (p *Pool) takeWarmLocked() *Lease {
	for len(p.warm) > 0 {
		l := p.warm[0]
		p.warm = p.warm[1:]
		select {
		case <-l.Done():
			p.dead = append(p.dead, l)
		default:
			return l
		}
	}
	return nil
}

// wakeRefill asks the refill loop to look at the pool again.
func (p *Pool) wakeRefill() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// browserLost is called by a lease's monitor when its browser died. A warm
// browser is moved aside for the refill loop to close and replace.
func (p *Pool) browserLost(l *Lease) {
	p.mu.Lock()
	for i, w := range p.warm {
		if w == l {
			p.warm = append(p.warm[:i], p.warm[i+1:]...)
			p.dead = append(p.dead, l)
			break
		}
	}
	p.mu.Unlock()
	p.wakeRefill()
}

// release forgets a closed lease.
func (p *Pool) release(l *Lease) {
	p.mu.Lock()
	delete(p.live, l)
	p.mu.Unlock()
}

// refillLoop keeps Config.Warm browsers started, one start at a time.
func (p *Pool) refillLoop(ctx context.Context) {
	pause := time.Duration(0)
	for {
		p.closeDead()
		p.mu.Lock()
		want := !p.closed && len(p.warm) < p.cfg.Warm
		p.mu.Unlock()
		if !want {
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		l, err := p.start(ctx, true)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			pause = min(max(2*pause, minRetryPause), maxRetryPause)
			p.log.Warn("start warm browser", zap.Error(err), zap.Duration("retry_in", pause))
			if !sleepCtx(ctx, pause) {
				return
			}
			continue
		}
		pause = 0
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = l.Close()
			return
		}
		p.warm = append(p.warm, l)
		p.mu.Unlock()
		select {
		case <-l.Done(): // died before it was added: browserLost did not see it
			p.browserLost(l)
		default:
		}
		if !sleepCtx(ctx, staggerGap) {
			return
		}
	}
}

// closeDead closes the warm browsers that died.
func (p *Pool) closeDead() {
	p.mu.Lock()
	dead := p.dead
	p.dead = nil
	p.mu.Unlock()
	for _, l := range dead {
		if err := l.Close(); err != nil {
			p.log.Warn("close dead warm browser", zap.Error(err))
		}
	}
}

// sleepCtx waits for d or ctx; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats returns a snapshot of the pool.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{
		Warm:         len(p.warm),
		Leased:       len(p.live),
		WarmStarts:   p.warmStarts,
		ColdStarts:   p.coldStarts,
		FailedStarts: p.failedStarts,
		LastStart:    p.lastStart,
		StartTimes:   p.startTimes,
		MemoryLimit:  p.cg.MemoryLimit(),
		Placement:    p.cg.Placement(),
		Width:        p.cfg.Width,
		Height:       p.cfg.Height,
	}
}

// Close stops the refill goroutine, waits for Lease calls under way, and
// closes every browser the pool owns: warm ones and live leases alike. It is
// idempotent; later Lease calls return ErrPoolClosed.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.quit)
		p.wg.Wait()

		p.mu.Lock()
		all := append(p.warm, p.dead...)
		for l := range p.live {
			all = append(all, l)
		}
		p.warm, p.dead = nil, nil
		p.mu.Unlock()
		var errs []error
		for _, l := range all {
			if err := l.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		p.closeErr = errors.Join(errs...)
		p.log.Info("browser pool closed", zap.Int("browsers_closed", len(all)))
	})
	return p.closeErr
}
