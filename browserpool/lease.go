package browserpool

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// Limits of the clean-up in Close.
const (
	killLimit   = 5 * time.Second
	removeLimit = 5 * time.Second
)

// Lease is one Chromium process group with one tab, leased to one session.
// Frames come out of Frames, input goes in through Dispatch, and the owner
// calls Close exactly when the session ends (also after Done is closed: Close
// is what kills the processes and removes the profile).
//
// All methods are safe for concurrent use.
type Lease struct {
	log       *zap.Logger
	pool      *Pool // nil in unit tests
	quality   int
	maxMemory int64 // bytes of PSS; 0: no limit

	// Set while the browser starts, read-only once start returns.
	dir         string       // per-browser root: profile/, home/, tmp/
	lock        *os.File     // holds dir's lock for the lease's life (sweep.go)
	cg          *leaseCgroup // the browser's cgroup; nil without one (cgroup.go)
	userDataDir string
	cmd         *exec.Cmd
	bctx        context.Context // the chromedp session handle, not a request context
	abort       context.CancelFunc
	bcancel     context.CancelFunc
	allocCancel context.CancelFunc
	lost        <-chan struct{}
	detached    <-chan struct{}
	pid         atomic.Int64

	// The screencast: the listener (chromedp's reader goroutine) is the only
	// producer of frames and acks.
	frames chan media.Capture
	seq    atomic.Uint64
	// The screencast's restarts (cast) and the newest frame (watchdog).
	restarting atomic.Bool  // a restart is under way: its frames are Restarted
	awaitFirst atomic.Bool  // the next frame is the first of a restart
	lastFrame  atomic.Int64 // unix nanoseconds of the newest frame
	restarts   atomic.Int64 // restarts by the watchdog
	memoryAt   atomic.Int64 // unix nanoseconds of the watchdog's last memory reading
	// Tests: testDropAcks leaves frames unacknowledged (Chromium then
	// sends no more); testHoldWatchdog keeps the watchdog still.
	testDropAcks     atomic.Bool
	testHoldWatchdog atomic.Bool

	ackMu   sync.Mutex
	acks    []ack // frames to acknowledge; guarded by ackMu
	ackWake chan struct{}

	crashed   chan struct{}
	crashOnce sync.Once

	viewSem chan struct{} // serializes SetViewport's CDP calls

	motion   motionState   // the capture's size while the page moves (motion.go)
	viewSize atomic.Uint64 // width<<32 | height of the viewport at the last cast

	// Send (dispatch.go): one Input command at a time until it is
	// written; inputSent is closed by inputWritten when it is.
	inputMu   sync.Mutex
	inputSent atomic.Pointer[chan struct{}]

	world worldState // the isolated world script (world.go)
	tabs  tabState   // the browser's tabs (tabs.go)

	downloads downloadState // the page's downloads (downloads.go)

	guard   *RequestGuard // set by begin, before any event (guard.go)
	nav     *NavGuard     // set by begin, before any event (guard.go)
	guardOn atomic.Bool

	locWake  chan struct{}    // cap 1: the top document navigated (location.go)
	choosers chan FileChooser // the page's file choosers (files.go)

	mu      sync.Mutex
	width   int    // guarded by mu
	height  int    // guarded by mu
	casting bool   // screencast started; guarded by mu
	paused  bool   // PauseCapture: no screencast until resumed; guarded by mu
	device  Device // emulated; guarded by mu
	err     error  // why done is closed; guarded by mu

	done      chan struct{}
	doneOnce  sync.Once
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // monitor and ackLoop
}

func newLease(cfg Config, log *zap.Logger) *Lease {
	return &Lease{
		log:       log,
		quality:   cfg.JPEGQuality,
		maxMemory: cfg.MaxMemory,
		frames:    make(chan media.Capture, 1),
		ackWake:   make(chan struct{}, 1),
		choosers:  make(chan FileChooser, fileChoosers),
		locWake:   make(chan struct{}, 1),
		crashed:   make(chan struct{}),
		viewSem:   make(chan struct{}, 1),
		motion:    motionState{minFPS: float64(cfg.MotionFPS), wake: make(chan struct{}, 1)},
		width:     cfg.Width,
		height:    cfg.Height,
		done:      make(chan struct{}),
		closing:   make(chan struct{}),
		world:     worldState{events: make(chan WorldEvent, worldEvents)},
		downloads: downloadState{out: make(chan Download, downloadQueue)},
	}
}

// Frames returns the screencast frames. The channel holds at most one frame
// and the latest wins: an unread frame is replaced by a newer one (Seq shows
// the gap). Chromium sends frames only when the page changes. The channel is
// never closed; select on Done as well.
func (l *Lease) Frames() <-chan media.Capture { return l.frames }

// Done is closed when the browser died or the lease was closed; Err says
// which.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err returns why Done is closed (ErrLeaseClosed, or one wrapping
// ErrBrowserLost or ErrPageCrashed), or nil while the lease is live.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// PID returns the browser's main process id, which is also its process
// group id; 0 if it never started.
func (l *Lease) PID() int { return int(l.pid.Load()) }

// Viewport returns the current viewport in CSS pixels.
func (l *Lease) Viewport() (w, h int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.width, l.height
}

// finish records why the lease is done and closes Done; only the first call
// counts. It reports whether this call did it.
func (l *Lease) finish(err error) bool {
	first := false
	l.doneOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.done)
		first = true
	})
	return first
}

// Close kills the browser's whole process group, waits for it and for the
// lease's goroutines, and removes the profile directory. It is idempotent and
// safe on a lease whose start failed half way.
func (l *Lease) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.shutdown() })
	return l.closeErr
}

func (l *Lease) shutdown() error {
	close(l.closing)
	l.finish(ErrLeaseClosed)
	l.stopWorld()
	l.closeTabs()
	// The group is ours while any member lives (the kernel keeps its id);
	// kill it before chromedp's own, gentler clean-up runs.
	pgid := l.PID()
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // ESRCH: already gone
	}
	if l.cg != nil {
		l.cg.kill() // also what left the group
	}
	for _, cancel := range []context.CancelFunc{l.abort, l.bcancel, l.allocCancel} {
		if cancel != nil {
			cancel() // bcancel and allocCancel wait for the process to be reaped
		}
	}
	l.wg.Wait()
	l.tabs.wg.Wait()
	var errs []error
	if pgid > 0 || l.userDataDir != "" {
		if err := killBrowserProcs(pgid, l.userDataDir, killLimit); err != nil {
			errs = append(errs, err)
		}
	}
	if l.cg != nil {
		if err := l.cg.remove(killLimit); err != nil {
			errs = append(errs, err)
		}
	}
	if l.dir != "" {
		if err := removeAllRetry(l.dir, removeLimit); err != nil {
			errs = append(errs, err)
		}
	}
	if l.lock != nil {
		_ = l.lock.Close()
	}
	if l.pool != nil {
		l.pool.release(l)
	}
	if pgid > 0 {
		l.log.Info("browser closed")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close browser: %w", err)
	}
	return nil
}

// goWatch starts the lease's goroutines; Close stops and waits for them.
func (l *Lease) goWatch() {
	l.wg.Go(l.monitor)
	l.wg.Go(l.ackLoop)
	l.wg.Go(l.watchdog)
	l.wg.Go(l.motionLoop)
}

// monitor closes Done when the browser dies before the lease is closed.
func (l *Lease) monitor() {
	var err error
	select {
	case <-l.closing:
		return
	case <-l.lost:
		err = ErrBrowserLost
	case <-l.crashed:
		err = ErrPageCrashed
	case <-l.detached:
		err = fmt.Errorf("%w: tab detached", ErrBrowserLost)
	}
	err = l.deathReason(err)
	if l.finish(err) {
		l.log.Warn("browser lost", zap.Error(err))
		if l.pool != nil {
			l.pool.browserLost(l)
		}
	}
}

// deathReason is ErrMemoryLimit when the kernel killed the browser at
// its cgroup's memory.max (the browser then dies as if killed, or its tab
// as if crashed), else err.
func (l *Lease) deathReason(err error) error {
	if l.cg == nil || !l.cg.oomKilled() {
		return err
	}
	return fmt.Errorf("%w: the kernel killed it at its cgroup's memory.max of %d MiB (%v)", ErrMemoryLimit, l.maxMemory>>20, err)
}

// onEvent runs on chromedp's reader goroutine for every event of the
// active tab t (onTabEvent): it must not block and must not call CDP.
// Frames are handed over, their acks queued for ackLoop.
func (l *Lease) onEvent(t *tab, ev any) {
	switch ev := ev.(type) {
	case *page.EventScreencastFrame:
		now := time.Now()
		if !l.testDropAcks.Load() {
			l.queueAck(t, ev.SessionID)
		}
		// ev.Data is already base64-decoded into a slice of its own.
		c := media.Capture{JPEG: ev.Data, Received: now, Seq: l.seq.Add(1)}
		// A frame of a (re)start: from when the restart began until the
		// first frame after StartScreencast answered (that frame can come
		// before the answer, or after it).
		c.Meta.Restarted = l.restarting.Load() || l.awaitFirst.Swap(false)
		l.lastFrame.Store(now.UnixNano())
		if m := ev.Metadata; m != nil {
			size := l.viewSize.Load()
			c.Meta = media.Meta{
				Restarted:       c.Meta.Restarted,
				FullWidth:       int(size >> 32),
				FullHeight:      int(size & 0xffffffff),
				OffsetTop:       m.OffsetTop,
				PageScaleFactor: m.PageScaleFactor,
				DeviceWidth:     m.DeviceWidth,
				DeviceHeight:    m.DeviceHeight,
				ScrollOffsetX:   m.ScrollOffsetX,
				ScrollOffsetY:   m.ScrollOffsetY,
			}
			if ts := m.Timestamp.Float64(); ts > 0 {
				c.Meta.Timestamp = time.UnixMicro(int64(ts * 1e6))
			}
		}
		l.motion.frame(now, c.Meta.Timestamp)
		l.offer(c)
	case *page.EventFileChooserOpened:
		l.onFileChooser(ev)
	case *inspector.EventTargetCrashed:
		l.crashOnce.Do(func() { close(l.crashed) })
	case *page.EventFrameNavigated, *page.EventNavigatedWithinDocument:
		l.onLocationEvent(t, ev)
		l.onWorldEvent(ev)
	default:
		l.onWorldEvent(ev)
	}
}

// offer puts c into Frames, replacing an unread older frame. There is one
// producer, so the loop runs at most twice.
func (l *Lease) offer(c media.Capture) {
	for {
		select {
		case l.frames <- c:
			return
		default:
		}
		select {
		case <-l.frames: // stale: the consumer has not taken it
		default:
		}
	}
}

// queueAck records a frame of t to acknowledge without blocking.
func (l *Lease) queueAck(t *tab, id int64) {
	l.ackMu.Lock()
	l.acks = append(l.acks, ack{t, id})
	l.ackMu.Unlock()
	select {
	case l.ackWake <- struct{}{}:
	default:
	}
}

// ackLoop acknowledges every frame as soon as it is received, off the reader
// goroutine: Chromium sends the next frame only after the ack.
func (l *Lease) ackLoop() {
	ctx := l.bctx
	var ids []ack
	for {
		select {
		case <-l.ackWake:
		case <-ctx.Done():
			return
		}
		l.ackMu.Lock()
		ids, l.acks = l.acks, ids[:0]
		l.ackMu.Unlock()
		for _, a := range ids {
			_, err := chromedp.Call(a.t.ctx, page.ScreencastFrameAck, page.ScreencastFrameAckParams{SessionID: a.id})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if ce := l.log.Check(zapcore.DebugLevel, "ack screencast frame"); ce != nil {
					ce.Write(zap.Error(err))
				}
			}
		}
	}
}

// ack is a screencast frame of a tab to acknowledge.
type ack struct {
	t  *tab
	id int64
}

// callCtx returns a context for one CDP call: it carries the chromedp session
// of the active tab and ends with ctx.
func (l *Lease) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancel(l.active().ctx)
	stop := context.AfterFunc(ctx, cancel)
	return cctx, func() { stop(); cancel() }
}

// callErr wraps a failed CDP call with the most useful reason: the caller's
// context, the lease's end, or the call's own error.
func (l *Lease) callErr(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	select {
	case <-l.done:
		return fmt.Errorf("%s: %w", what, l.Err())
	default:
	}
	return fmt.Errorf("%s: %w", what, err)
}

// live returns the lease's end reason if it is done.
func (l *Lease) live(what string) error {
	select {
	case <-l.done:
		return fmt.Errorf("%s: %w", what, l.Err())
	default:
		return nil
	}
}

// SetViewport resizes the viewport (clamped by input.ClampViewport) with
// device scale factor 1 and restarts the screencast at the new size. Frames
// of the old size may still arrive for a moment; their Meta says so.
func (l *Lease) SetViewport(ctx context.Context, w, h int) error {
	l.mu.Lock()
	d := l.device
	l.mu.Unlock()
	return l.SetView(ctx, w, h, d)
}

// SetView sizes the viewport as SetViewport does and emulates the device d
// (a phone's viewport, touch and user agent; its pixel ratio, capped). The
// screencast stays at w×h CSS pixels.
func (l *Lease) SetView(ctx context.Context, w, h int, d Device) error {
	const what = "set viewport"
	w, h = input.ClampViewport(w, h)
	d = d.Clamped()
	release, err := l.holdView(ctx, what)
	if err != nil {
		return err
	}
	defer release()

	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	if err := l.emulate(cctx, w, h, d, false); err != nil {
		return l.callErr(ctx, what, err)
	}
	l.mu.Lock()
	l.device = d
	l.mu.Unlock()
	return l.cast(ctx, cctx, w, h)
}

// View returns the viewport size and the emulated device.
func (l *Lease) View() (w, h int, d Device) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.width, l.height, l.device
}

// Recapture restarts the screencast: Chromium then sends a frame of the
// page as it is now, also when nothing on it changes. The masker uses it
// when the last frame it has can never be masked (its reports were lost).
func (l *Lease) Recapture(ctx context.Context) error {
	release, err := l.holdView(ctx, "recapture")
	if err != nil {
		return err
	}
	defer release()
	l.mu.Lock()
	w, h, casting := l.width, l.height, l.casting
	l.mu.Unlock()
	if !casting {
		return nil
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	return l.cast(ctx, cctx, w, h)
}

// PauseCapture stops (true) or restarts (false) the screencast, for a
// session nobody watches. Paused, Chromium neither reads the picture back
// nor encodes it, which is most of a moving page's cost
// (docs/density.md); only holding back the frames' acknowledgements saves
// just the JPEG. The page runs on, viewport changes and tab switches are
// kept for the resume, Recapture does nothing and the watchdog waits. The
// resume sends a frame of the page as it is then, like Recapture, also
// when nothing on it changes.
func (l *Lease) PauseCapture(ctx context.Context, pause bool) error {
	what := "resume capture"
	if pause {
		what = "pause capture"
	}
	release, err := l.holdView(ctx, what)
	if err != nil {
		return err
	}
	defer release()
	l.mu.Lock()
	if l.paused == pause {
		l.mu.Unlock()
		return nil
	}
	l.paused = pause
	w, h := l.width, l.height
	l.mu.Unlock()
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	return l.cast(ctx, cctx, w, h)
}

// CapturePaused reports whether PauseCapture paused the screencast.
func (l *Lease) CapturePaused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused
}

// holdView waits for the viewport and screencast to be free; release
// frees them.
func (l *Lease) holdView(ctx context.Context, what string) (release func(), err error) {
	if err := l.live(what); err != nil {
		return nil, err
	}
	select {
	case l.viewSem <- struct{}{}:
		return func() { <-l.viewSem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	case <-l.done:
		return nil, fmt.Errorf("%s: %w", what, l.Err())
	}
}

// cast (re)starts the screencast at w×h; the caller holds viewSem.
func (l *Lease) cast(ctx, cctx context.Context, w, h int) error {
	l.mu.Lock()
	casting, paused := l.casting, l.paused
	l.mu.Unlock()
	l.restarting.Store(true)
	l.lastFrame.Store(time.Now().UnixNano())
	l.viewSize.Store(uint64(w)<<32 | uint64(h))
	defer func() {
		l.awaitFirst.Store(true)
		l.restarting.Store(false)
	}()
	if casting {
		if _, err := chromedp.Call(cctx, page.StopScreencast, cdp.Empty{}); err != nil {
			return l.callErr(ctx, "stop screencast", err)
		}
	}
	if paused {
		// PauseCapture: the size is kept for the resume, which starts it.
		l.mu.Lock()
		l.width, l.height, l.casting = w, h, false
		l.mu.Unlock()
		return nil
	}
	quality := int64(l.quality)
	sendLast := true
	cw, ch := l.captureSize(w, h)
	_, err := chromedp.Call(cctx, page.StartScreencast, page.StartScreencastParams{
		Format:            page.StartScreencastFormatJpeg,
		Quality:           &quality,
		MaxWidth:          int64(cw),
		MaxHeight:         int64(ch),
		EveryNthFrame:     1,
		MaxFramesInFlight: 1, // halves swap-to-receive lag (MEASUREMENTS.md)
		// With one frame in flight, a frame composited while waiting for
		// the ack is dropped by default; on a page that then stays still
		// its final state would never be sent (a click's result went
		// missing in tests). Chromium keeps it and sends it on the ack.
		SendLastFrame: &sendLast,
	})
	if err != nil {
		return l.callErr(ctx, "start screencast", err)
	}
	l.mu.Lock()
	l.width, l.height, l.casting = w, h, true
	l.mu.Unlock()
	return nil
}

// checkURL allows http and https URLs with a host, data: URLs and
// about:blank. The egress check on every request is a separate layer.
func checkURL(raw string) error {
	if raw == "about:blank" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: unparsable", ErrURLNotAllowed)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%w: no host", ErrURLNotAllowed)
		}
		return nil
	case "data":
		return nil
	}
	return fmt.Errorf("%w: scheme %q", ErrURLNotAllowed, u.Scheme)
}

// Navigate opens url in the tab and waits for it to load or ctx to end. Only
// http(s), data: and about:blank are allowed, and only what
// Config.EgressCheck allows (ErrURLNotAllowed).
func (l *Lease) Navigate(ctx context.Context, url string) error {
	return l.load(ctx, "navigate", url, func(cctx context.Context) error { return chromedp.Do(cctx, chromedp.Navigate(url)) })
}

// load checks url and runs do, with the lease's call context, to load it.
func (l *Lease) load(ctx context.Context, what, url string, do func(context.Context) error) error {
	check := checkURL(url)
	if check == nil && l.pool != nil {
		check = l.pool.checkURL(ctx, url)
	}
	if check != nil {
		return fmt.Errorf("%s: %w", what, check)
	}
	if err := l.live(what); err != nil {
		return err
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	if err := do(cctx); err != nil {
		return l.callErr(ctx, what, err)
	}
	return nil
}
