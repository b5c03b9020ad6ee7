package browserpool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
)

// Tabs (docs/tabs.md). A page's window.open and target=_blank links open
// new tabs in the hosted browser, as they would in the customer's own.
// The lease follows every page target of its browser; one tab is active:
// it alone is captured, gets the input and the viewport, and runs the
// world the masker reads. A new tab becomes active when it opens, as a
// browser brings it to the front. The company's guards do not depend on
// which tab is active: they pause requests in the browser's own session.

// DefaultMaxTabs is how many tabs a lease keeps open when LeaseOptions
// names no limit.
const DefaultMaxTabs = 5

// Errors of the tab calls.
var (
	// ErrNoTab is returned for a tab id the lease does not have.
	ErrNoTab = errors.New("browserpool: no such tab")
	// ErrFirstTab is returned when a caller closes the session's first
	// tab: the session lives as long as it does.
	ErrFirstTab = errors.New("browserpool: the first tab cannot be closed")
)

// tabAttachTimeout bounds attaching to a new tab and preparing it.
const tabAttachTimeout = 15 * time.Second

// Tab is one tab for the viewers' tab strip.
type Tab struct {
	ID     string // "1", "2", …: in the order the tabs opened, never reused
	URL    string
	Title  string
	Active bool
}

// tab is one page target of the lease's browser.
type tab struct {
	id     string
	target string // CDP target id, also its main frame's id
	opener string // the opener's target id, "" for none
	ctx    context.Context
	cancel context.CancelFunc // nil for the first tab: its context is the browser's
	ready  chan struct{}      // closed once attached and prepared (or failed)
	err    error              // why it could not be prepared; set before ready closes

	// The world's context in the tab's top document, kept while the tab
	// is in the background, for when it becomes active.
	wctx atomic.Int64
	wuid atomic.Value // string

	url, title string // guarded by tabState.mu
}

// tabState is the lease's tabs.
type tabState struct {
	mu     sync.Mutex
	list   []*tab // guarded by mu: in opening order, the first tab first
	next   int    // guarded by mu: the last id given
	max    int    // set by begin
	closed bool   // guarded by mu: the lease is closing

	// sw is held for writing while the active tab changes, and for
	// reading while an event of the active tab is handled: an event is
	// handled whole as the active tab's, or not at all.
	sw  sync.RWMutex
	act *tab // guarded by sw

	refused func() // LeaseOptions.TabRefused; set by begin
	wg      sync.WaitGroup
}

// first returns the session's own tab; it exists from attach on.
func (l *Lease) firstTab() *tab {
	l.tabs.mu.Lock()
	defer l.tabs.mu.Unlock()
	return l.tabs.list[0]
}

// active returns the active tab.
func (l *Lease) active() *tab {
	l.tabs.sw.RLock()
	defer l.tabs.sw.RUnlock()
	return l.tabs.act
}

// addFirstTab records the browser's own tab (attach calls it).
func (l *Lease) addFirstTab(ctx context.Context, targetID string) *tab {
	t := &tab{target: targetID, ctx: ctx, ready: make(chan struct{})}
	close(t.ready)
	l.tabs.mu.Lock()
	l.tabs.next++
	t.id = strconv.Itoa(l.tabs.next)
	l.tabs.list = []*tab{t}
	l.tabs.mu.Unlock()
	l.tabs.sw.Lock()
	l.tabs.act = t
	l.tabs.sw.Unlock()
	return t
}

// isPage says whether id is one of the tabs' targets.
func (l *Lease) isPage(id string) bool { return l.tabByTarget(id) != nil }

func (l *Lease) tabByTarget(id string) *tab {
	return l.findTab(func(t *tab) bool { return t.target == id })
}

func (l *Lease) tabByID(id string) *tab {
	return l.findTab(func(t *tab) bool { return t.id == id })
}

// findTab returns the first tab that matches, or nil.
func (l *Lease) findTab(match func(*tab) bool) *tab {
	l.tabs.mu.Lock()
	defer l.tabs.mu.Unlock()
	for _, t := range l.tabs.list {
		if match(t) {
			return t
		}
	}
	return nil
}

// Tabs returns the open tabs in the order they opened.
func (l *Lease) Tabs() []Tab {
	act := l.active()
	l.tabs.mu.Lock()
	defer l.tabs.mu.Unlock()
	out := make([]Tab, 0, len(l.tabs.list))
	for _, t := range l.tabs.list {
		out = append(out, Tab{ID: t.id, URL: t.url, Title: t.title, Active: t == act})
	}
	return out
}

// refreshTabs reads the tabs' titles and URLs from the browser: a title
// set by the page's markup or script is not always announced.
func (l *Lease) refreshTabs(ctx context.Context) {
	res, err := chromedp.CallBrowser(ctx, target.GetTargets, target.GetTargetsParams{})
	if err != nil {
		return
	}
	l.tabs.mu.Lock()
	defer l.tabs.mu.Unlock()
	for _, i := range res.TargetInfos {
		for _, t := range l.tabs.list {
			if t.target == string(i.TargetID) {
				t.url, t.title = i.URL, i.Title
			}
		}
	}
}

// watchTabs follows the browser's targets and guards; begin calls it.
func (l *Lease) watchTabs(ctx context.Context, o LeaseOptions) error {
	l.tabs.max = o.MaxTabs
	if l.tabs.max <= 0 {
		l.tabs.max = DefaultMaxTabs
	}
	l.tabs.refused = o.TabRefused
	if err := chromedp.ListenBrowser(l.bctx, l.onBrowserEvent); err != nil {
		return fmt.Errorf("follow tabs: %w", err)
	}
	if _, err := chromedp.CallBrowser(ctx, target.SetDiscoverTargets, target.SetDiscoverTargetsParams{Discover: true}); err != nil {
		return fmt.Errorf("follow tabs: %w", err)
	}
	return nil
}

// onBrowserEvent runs on chromedp's browser reader for the browser's own
// events: paused requests, downloads and the targets. No blocking, no CDP calls.
func (l *Lease) onBrowserEvent(ev any) {
	switch ev := ev.(type) {
	case *fetch.EventRequestPaused:
		l.onRequestPaused(ev)
	case *browser.EventDownloadWillBegin, *browser.EventDownloadProgress:
		l.onDownload(ev)
	case *target.EventTargetCreated:
		if i := ev.TargetInfo; i != nil && i.Type == "page" {
			l.onTabCreated(i)
		}
	case *target.EventTargetInfoChanged:
		if i := ev.TargetInfo; i != nil && i.Type == "page" {
			if t := l.tabByTarget(string(i.TargetID)); t != nil {
				l.tabs.mu.Lock()
				changed := t.url != i.URL || t.title != i.Title
				t.url, t.title = i.URL, i.Title
				l.tabs.mu.Unlock()
				if changed {
					l.locationChanged()
				}
			}
		}
	case *target.EventTargetDestroyed:
		if t := l.tabByTarget(string(ev.TargetID)); t != nil && t.cancel != nil {
			l.goTab(func() { l.removeTab(t) })
		}
	}
}

// goTab runs f on a goroutine that Close waits for, unless the lease is
// closing.
func (l *Lease) goTab(f func()) {
	l.tabs.mu.Lock()
	defer l.tabs.mu.Unlock()
	if l.tabs.closed {
		return
	}
	l.tabs.wg.Go(f)
}

// onTabCreated takes a new page target: a tab of its own, unless the
// session has as many as it may; then the target is closed at once.
func (l *Lease) onTabCreated(i *target.Info) {
	id := string(i.TargetID)
	l.tabs.mu.Lock()
	if l.tabs.closed || len(l.tabs.list) == 0 {
		l.tabs.mu.Unlock()
		return
	}
	for _, t := range l.tabs.list {
		if t.target == id {
			l.tabs.mu.Unlock()
			return
		}
	}
	if len(l.tabs.list) >= l.tabs.max {
		l.tabs.wg.Go(func() { l.refuseTab(id) })
		l.tabs.mu.Unlock()
		return
	}
	l.tabs.next++
	t := &tab{id: strconv.Itoa(l.tabs.next), target: id, opener: string(i.OpenerID), url: i.URL, title: i.Title, ready: make(chan struct{})}
	t.ctx, t.cancel = chromedp.NewContext(l.bctx, chromedp.WithTargetID(i.TargetID),
		chromedp.WithListener(func(ev any) { l.onTabEvent(t, ev) }))
	l.tabs.list = append(l.tabs.list, t)
	l.tabs.wg.Go(func() { l.openTab(t) })
	l.tabs.mu.Unlock()
	l.locationChanged()
}

// refuseTab closes a tab beyond the limit.
func (l *Lease) refuseTab(id string) {
	ctx, cancel := context.WithTimeout(l.bctx, tabAttachTimeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, target.CloseTarget, target.CloseTargetParams{TargetID: target.ID(id)}); err != nil {
		l.log.Debug("close a tab beyond the limit", zap.Error(err))
	}
	l.log.Info("tab refused: the session has as many tabs as it may", zap.Int("max_tabs", l.tabs.max))
	if f := l.tabs.refused; f != nil {
		f()
	}
}

// openTab attaches to a new tab, prepares it as the first tab was, and
// brings it to the front.
func (l *Lease) openTab(t *tab) {
	ctx, cancel := context.WithTimeout(t.ctx, tabAttachTimeout)
	defer cancel()
	err := l.prepareTab(ctx, t)
	t.err = err
	close(t.ready)
	if err != nil {
		if l.bctx.Err() == nil {
			l.log.Warn("open a new tab", zap.String("tab", t.id), zap.Error(err))
		}
		l.removeTab(t)
		return
	}
	if err := l.SwitchTab(ctx, t.id); err != nil && l.bctx.Err() == nil {
		l.log.Debug("bring a new tab to the front", zap.String("tab", t.id), zap.Error(err))
	}
}

// prepareTab attaches to t and installs what every tab has: file chooser
// interception and the world.
func (l *Lease) prepareTab(ctx context.Context, t *tab) error {
	// The first use attaches; the listener is in from the start.
	if err := chromedp.Listen(t.ctx, func(any) {}); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if err := l.interceptFileChoosers(ctx); err != nil {
		return err
	}
	if cfg := l.world.cfg.Load(); cfg != nil {
		if err := addWorld(ctx, cfg.w); err != nil {
			return err
		}
	}
	return nil
}

// onTabEvent runs on t's CDP reader for each of its events: no blocking,
// no CDP calls. The world's context is followed in every tab; the rest
// only matters for the active one.
func (l *Lease) onTabEvent(t *tab, ev any) {
	l.tabs.sw.RLock()
	defer l.tabs.sw.RUnlock()
	active := l.tabs.act == t
	switch ev := ev.(type) {
	case *runtime.EventExecutionContextCreated, *runtime.EventExecutionContextDestroyed, *runtime.EventExecutionContextsCleared:
		l.trackWorld(t, ev, active)
	case *inspector.EventTargetCrashed:
		if t.cancel != nil { // a popup's crash closes that tab, not the session
			l.goTab(func() { l.removeTab(t) })
			return
		}
		// The first tab's crash ends the lease also while a popup is in
		// front: the session lives as long as that tab does.
		l.crashOnce.Do(func() { close(l.crashed) })
		return
	case *page.EventFrameNavigated:
		if ev.Frame != nil && ev.Frame.ParentID == "" {
			l.tabs.mu.Lock()
			t.url = ev.Frame.URL
			l.tabs.mu.Unlock()
			l.locationChanged()
		}
	}
	if active {
		l.onEvent(t, ev)
	}
}

// SwitchTab makes the tab id the active one: its picture is captured at
// the viewport and device of the session, and input goes to it. The
// world's context becomes the tab's, so masking waits for its reports.
func (l *Lease) SwitchTab(ctx context.Context, id string) error {
	const what = "switch tab"
	t := l.tabByID(id)
	if t == nil {
		return fmt.Errorf("%s: %w", what, ErrNoTab)
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if t.err != nil {
		return fmt.Errorf("%s: %w", what, ErrNoTab)
	}
	release, err := l.holdView(ctx, what)
	if err != nil {
		return err
	}
	defer release()
	old := l.active()
	if old == t {
		return nil
	}
	// The old tab stops sending pictures; it may be gone already.
	octx, ocancel := context.WithCancel(old.ctx)
	stop := context.AfterFunc(ctx, ocancel)
	_, _ = chromedp.Call(octx, page.StopScreencast, cdp.Empty{})
	stop()
	ocancel()

	l.tabs.sw.Lock()
	l.tabs.act = t
	l.activateWorld(t)
	l.tabs.sw.Unlock()
	l.dropChildren()

	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	// The tab's own cross-origin frames attach again, now as the active
	// tab's: auto-attach reports the ones already there when turned on.
	if l.world.cfg.Load() != nil {
		yes := true
		if _, err := chromedp.Call(cctx, target.SetAutoAttach, target.SetAutoAttachParams{AutoAttach: false, Flatten: &yes}); err != nil {
			return l.callErr(ctx, what, err)
		}
		if _, err := chromedp.Call(cctx, target.SetAutoAttach, target.SetAutoAttachParams{AutoAttach: true, Flatten: &yes}); err != nil {
			return l.callErr(ctx, what, err)
		}
	}
	l.mu.Lock()
	w, h, d := l.width, l.height, l.device
	l.mu.Unlock()
	if err := l.emulate(cctx, w, h, d, true); err != nil {
		return l.callErr(ctx, what, err)
	}
	err = l.cast(ctx, cctx, w, h)
	l.locationChanged()
	return err
}

// CloseTab closes the tab id; the session's first tab stays (ErrFirstTab).
// When the active tab closes, its opener becomes active, or the first tab.
func (l *Lease) CloseTab(ctx context.Context, id string) error {
	const what = "close tab"
	t := l.tabByID(id)
	if t == nil {
		return fmt.Errorf("%s: %w", what, ErrNoTab)
	}
	if t.cancel == nil {
		return fmt.Errorf("%s: %w", what, ErrFirstTab)
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	if _, err := chromedp.CallBrowser(cctx, target.CloseTarget, target.CloseTargetParams{TargetID: target.ID(t.target)}); err != nil {
		return l.callErr(ctx, what, err)
	}
	l.removeTab(t)
	return nil
}

// removeTab forgets a closed or failed tab; when it was active, its opener
// (or the first tab) becomes active.
func (l *Lease) removeTab(t *tab) {
	l.tabs.mu.Lock()
	i := -1
	for j, x := range l.tabs.list {
		if x == t {
			i = j
		}
	}
	if i < 0 {
		l.tabs.mu.Unlock()
		return
	}
	l.tabs.list = append(l.tabs.list[:i:i], l.tabs.list[i+1:]...)
	next := l.tabs.list[0]
	for _, x := range l.tabs.list {
		if x.target == t.opener {
			next = x
		}
	}
	l.tabs.mu.Unlock()
	t.cancel()
	l.locationChanged()
	if l.active() != t {
		return
	}
	ctx, cancel := context.WithTimeout(l.bctx, tabAttachTimeout)
	defer cancel()
	if err := l.SwitchTab(ctx, next.id); err != nil && l.bctx.Err() == nil {
		l.log.Warn("bring a tab to the front after its neighbour closed", zap.Error(err))
	}
}

// closeTabs starts no more tab goroutines; Close calls it, and waits for
// the ones running once the browser is gone.
func (l *Lease) closeTabs() {
	l.tabs.mu.Lock()
	l.tabs.closed = true
	l.tabs.mu.Unlock()
}
