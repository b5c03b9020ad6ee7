package worker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
)

// Crash recovery (docs/recovery.md). When the session's browser dies (its
// process exits, its pipe breaks, or the tab's renderer crashes) and the
// session did not close it, recover leases a fresh browser with the same
// options, at the session's size and device, reopens the page the tab
// showed, and swaps it in. The viewers keep their peers, the encoders and
// their tracks stay; only the loops that use the browser are stopped and
// started again on the new one. The masker starts over with a fresh
// tracker, so the agents get no picture of the new browser before its own
// world reported. A session whose browser dies too often ends as
// ReasonBrowserFailed.

// EventBrowserRestarted is a dead browser replaced by a fresh one (Reason
// RestartCrashed or RestartLost; URL the page reopened, without its query).
const EventBrowserRestarted = "browser_restarted"

// Why a browser was restarted.
const (
	RestartCrashed = "crashed" // the tab's renderer crashed
	RestartLost    = "lost"    // the browser's process exited or its pipe broke
)

// States of a browser notice, {"type":"browser","state":…}: the viewers'
// picture stops while the browser restarts, and comes back when restored.
const (
	BrowserRestarting = "restarting"
	BrowserRestored   = "restored"
)

const (
	// restartWindow is the window in which at most Config.MaxRestarts
	// restarts are tried.
	restartWindow = 10 * time.Minute
	// restartPause spaces two attempts of one recovery.
	restartPause = time.Second
)

// browserLoops are the session's loops that use its browser, under a
// context of their own: recover stops them, swaps the browser and starts
// them again, while the encoders and the viewers' peers stay.
type browserLoops struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once every loop returned
	err    error         // the first loop's error; set before done closes
}

// startLoops starts the browser's loops on the current lease; restored
// says it is a fresh one after a crash (captureLoop tells the viewers when
// its first frame comes). stop ends them.
func (s *session) startLoops(ctx context.Context, restored bool) *browserLoops {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	b := &browserLoops{cancel: cancel, done: make(chan struct{})}
	g.Go(func() error { return s.captureLoop(gctx, restored) })
	g.Go(func() error { return s.mask.run(gctx) })
	g.Go(func() error { return s.inputLoop(gctx) })
	g.Go(func() error { return s.annot.track(gctx) })
	g.Go(func() error { return s.navLoop(gctx) })
	g.Go(func() error { return s.fileLoop(gctx) })
	g.Go(func() error { return s.downloadLoop(gctx) })
	g.Go(func() error { return s.cursorLoop(gctx) })
	g.Go(func() error { return s.pauseLoop(gctx) })
	go func() {
		b.err = g.Wait()
		close(b.done)
	}()
	return b
}

// stop ends the loops and waits for them.
func (b *browserLoops) stop() error {
	b.cancel()
	<-b.done
	return b.err
}

// restarts counts a session's browser restarts (owned by run).
type restarts struct {
	max int
	at  []time.Time // the attempts within restartWindow
}

// allow records an attempt at now and reports whether it is within the
// limit.
func (r *restarts) allow(now time.Time) bool {
	kept := r.at[:0]
	for _, t := range r.at {
		if now.Sub(t) < restartWindow {
			kept = append(kept, t)
		}
	}
	r.at = kept
	if len(r.at) >= r.max {
		return false
	}
	r.at = append(r.at, now)
	return true
}

// recover replaces the session's dead browser (on run's goroutine): it
// stops the loops, tells the viewers, closes the dead browser (on a
// goroutine that closeParts waits for), leases a fresh one and starts the
// loops on it. It returns the running loops; if
// the browser is not replaced (too many restarts, restarts off, or the
// session ended meanwhile) the session is ended and it returns the loops
// for run to stop.
func (s *session) recover(ctx context.Context, loops *browserLoops, budget *restarts) *browserLoops {
	old := s.lease()
	why := RestartLost
	if errors.Is(old.Err(), browserpool.ErrPageCrashed) {
		why = RestartCrashed
	}
	if errors.Is(old.Err(), browserpool.ErrMemoryLimit) {
		// The page would take as much again: the session ends instead.
		s.log.Warn("browser killed over its memory limit", zap.Error(old.Err()))
		s.end(ReasonMemoryLimit)
		return loops
	}
	if budget.max < 0 {
		s.log.Warn("browser lost", zap.Error(old.Err()))
		s.end(ReasonBrowserLost)
		return loops
	}
	if !budget.allow(time.Now()) {
		return s.giveUp(loops, budget)
	}
	began := time.Now()
	s.log.Warn("browser died; restarting it", zap.String("reason", why), zap.Error(old.Err()))
	if err := loops.stop(); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("session part failed", zap.Error(err))
	}
	n := browserNotice(BrowserRestarting, why)
	s.tellRoles(n, n)
	w, h, d := old.View()
	target := s.reopenURL()
	// Killing and removing the dead browser waits for the kernel and the
	// disk, not the CPU: the new one need not wait for it.
	s.closing.Go(func() {
		if err := old.Close(); err != nil {
			s.log.Warn("close the dead browser", zap.Error(err))
		}
	})

	// The session may end while the new browser starts.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-s.ended:
			cancel()
		case <-stopWatch:
		}
	}()
	for {
		l, err := s.relaunch(rctx, target, w, h, d)
		if err == nil {
			s.swap(l)
			break
		}
		if rctx.Err() != nil {
			s.end(ReasonShutdown) // the first reason wins: an end asked for meanwhile stays
			return loops
		}
		s.log.Warn("restart the browser", zap.Error(err))
		target = s.req.StartURL // the last page may be what kills it
		select {
		case <-time.After(restartPause):
		case <-rctx.Done():
			s.end(ReasonShutdown)
			return loops
		}
		if !budget.allow(time.Now()) {
			return s.giveUp(loops, budget)
		}
	}
	s.w.restarted.Add(1)
	s.log.Info("browser restarted", zap.String("reason", why), zap.Duration("took", time.Since(began)))
	s.w.publishEvent(Event{Type: EventBrowserRestarted, Company: s.req.Company, SessionID: s.req.SessionID,
		Reason: why, URL: urlpolicy.Shown(target)})
	return s.startLoops(ctx, true)
}

// giveUp ends the session whose browser died more often than allowed.
func (s *session) giveUp(loops *browserLoops, budget *restarts) *browserLoops {
	s.log.Error("the session's browser keeps dying; ending the session", zap.Int("max_restarts", budget.max))
	s.w.restartFailed.Add(1)
	s.end(ReasonBrowserFailed)
	return loops
}

// reopenURL is the page to open in a fresh browser: where the active tab
// was, if that is an http(s) page, else the start URL.
func (s *session) reopenURL() string {
	s.mu.Lock()
	last := s.loc.URL
	s.mu.Unlock()
	if u, err := url.Parse(last); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return last
	}
	return s.req.StartURL
}

// relaunch leases a browser with the session's options, sizes it w×h as
// device d, and opens target.
func (s *session) relaunch(ctx context.Context, target string, w, h int, d browserpool.Device) (*browserpool.Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, s.w.cfg.StartTimeout)
	defer cancel()
	opts := s.opts
	opts.StartURL, opts.Width, opts.Height = "", w, h
	l, err := s.w.pool.Lease(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("lease a browser for session %s: %w", s.req.SessionID, err)
	}
	// The device before the page: sites choose a phone or a desktop
	// layout when they load.
	err = l.SetView(ctx, w, h, d)
	if err == nil {
		err = l.Navigate(ctx, target)
	}
	if err != nil {
		if cerr := l.Close(); cerr != nil {
			s.log.Warn("close a browser that could not reopen the page", zap.Error(cerr))
		}
		return nil, fmt.Errorf("reopen %s: %w", urlpolicy.Shown(target), err)
	}
	return l, nil
}

// swap makes l the session's browser, with the loops stopped: what the
// loops kept of the dead one is dropped. Input that came meanwhile is
// dropped too (the customer's last viewport excepted): it was meant for a
// page that is gone.
func (s *session) swap(l *browserpool.Lease) {
	s.browser.Store(l)
	s.mu.Lock()
	l.GuardRequests(s.control.controller != "") // an atomic store: the guard follows the controller
	s.mu.Unlock()
	s.mask.reset()
	s.held = held{} // nothing is pressed in the new browser
	var view *queuedInput
	for drained := false; !drained; {
		select {
		case in := <-s.inputs:
			switch {
			case in.notice != nil:
				s.notify(in.viewerID, in.notice)
			case in.releaseHeld:
				// Nothing is held in the new browser.
			case in.ev.Kind == input.KindViewport && in.role == RoleCustomer:
				view = &in
			default:
				s.droppedInput.Add(1)
			}
		case <-s.navs:
			s.droppedInput.Add(1)
		default:
			drained = true
		}
	}
	if view != nil {
		ctx, cancel := context.WithTimeout(context.Background(), navTimeout)
		s.resize(ctx, view.ev)
		cancel()
	}
	s.files.mu.Lock()
	open := s.files.chooser != nil
	s.files.chooser = nil
	s.files.ver++
	s.files.abortLocked()
	s.files.mu.Unlock()
	select {
	case <-s.files.done:
	default:
	}
	if open {
		s.setChooser(false, false)
	}
}

// browserNotice is the notice of the browser's state; reason says why it
// restarts.
func browserNotice(state, reason string) protocol.Notice {
	return protocol.Notice{Type: protocol.TypeBrowser, State: state, Reason: reason}
}

// restored tells the viewers that the fresh browser's picture is back,
// and asks the customers' encoder for a key frame of it (captureLoop, on
// its first frame; the masker asks the agents' on its first masked frame).
func (s *session) restored() {
	s.cust.RequestKeyFrame()
	n := browserNotice(BrowserRestored, "")
	s.tellRoles(n, n)
}
