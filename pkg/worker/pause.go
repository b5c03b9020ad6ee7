package worker

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Pausing the capture of a session nobody watches (docs/density.md). A
// session waits for its customer while they type the PIN, and viewers
// leave and come back; meanwhile a moving page would cost its screencast,
// most of a core, for no one. From PauseCaptureAfter after the last
// viewer's peer went, the browser's screencast stops; the page runs on.
// A viewer's peer starts it again, and Chromium sends the page as it is
// then. The encoders keep the last picture, so the joining viewer's key
// frame does not wait for it.

// defaultPauseCaptureAfter is Config.PauseCaptureAfter's default: long
// enough to ride out a viewer's reload.
const defaultPauseCaptureAfter = 2 * time.Second

// captureRetry spaces attempts when pausing or resuming failed.
const captureRetry = time.Second

// pauseAt says when the capture should pause: ok is false while someone
// watches, or when the worker never pauses.
func (s *session) pauseAt() (at time.Time, ok bool) {
	after := s.w.cfg.PauseCaptureAfter
	s.mu.Lock()
	defer s.mu.Unlock()
	if after < 0 || s.emptySince.IsZero() {
		return time.Time{}, false
	}
	return s.emptySince.Add(after), true
}

// wakePause tells pauseLoop that the viewers changed.
func (s *session) wakePause() {
	select {
	case s.pauseWake <- struct{}{}:
	default: // a wake-up is pending; it reads the new state
	}
}

// pauseLoop pauses and resumes the current browser's capture as the
// viewers come and go, until ctx ends. It runs with the browser's loops,
// so a restored browser is paused again if nobody watches.
func (s *session) pauseLoop(ctx context.Context) error {
	l := s.lease()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		at, ok := s.pauseAt()
		pause := ok && !now.Before(at)
		timer.Stop()
		if pause != l.CapturePaused() {
			if err := l.PauseCapture(ctx, pause); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// The browser may be dying; recovery takes over then.
				s.log.Debug("pause or resume the capture", zap.Bool("pause", pause), zap.Error(err))
				timer.Reset(captureRetry)
			} else if pause {
				s.log.Info("capture paused: nobody watches")
			} else {
				s.log.Info("capture resumed")
			}
		}
		if ok && !pause {
			timer.Reset(at.Sub(now))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.pauseWake:
		case <-timer.C:
		}
	}
}
