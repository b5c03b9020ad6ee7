package browserpool

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// stallAfter is how long the screencast may send nothing before the
// watchdog restarts it. Chromium sometimes stops sending frames for good
// after a navigation (a CI run saw the capture, and with it the page's
// animation frames, stop for ten minutes after a page load); a restart
// brings them back, and costs a still page one frame.
const stallAfter = 3 * time.Second

// watchdog restarts a screencast that has sent nothing for stallAfter,
// until the lease ends.
func (l *Lease) watchdog() {
	tick := time.NewTicker(stallAfter / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.bctx.Done():
			return
		case now := <-tick.C:
			if l.overMemory(now) {
				return
			}
			last := time.Unix(0, l.lastFrame.Load())
			if now.Sub(last) < stallAfter || l.testHoldWatchdog.Load() {
				continue
			}
			l.mu.Lock()
			casting := l.casting
			l.mu.Unlock()
			if !casting {
				continue
			}
			// A restart's own frame proves it worked; until then, the
			// next one waits another stallAfter.
			l.lastFrame.Store(now.UnixNano())
			ctx, cancel := context.WithTimeout(l.bctx, stallAfter)
			err := l.Recapture(ctx)
			cancel()
			if err != nil {
				if l.bctx.Err() == nil {
					l.log.Debug("restart a silent screencast", zap.Error(err))
				}
				continue
			}
			l.restarts.Add(1)
		}
	}
}

// memoryEvery is how often the watchdog reads the browser's memory.
const memoryEvery = 2 * time.Second

// overMemory kills the browser when its processes use more memory than
// the limit, and reports whether it did. Done then says ErrMemoryLimit.
func (l *Lease) overMemory(now time.Time) bool {
	if l.maxMemory <= 0 || now.Sub(time.Unix(0, l.memoryAt.Load())) < memoryEvery {
		return false
	}
	l.memoryAt.Store(now.UnixNano())
	u := l.Usage()
	if u.Memory <= l.maxMemory {
		return false
	}
	err := fmt.Errorf("%w: %d MiB of %d", ErrMemoryLimit, u.Memory>>20, l.maxMemory>>20)
	if l.finish(err) {
		l.log.Warn("browser killed: over its memory limit", zap.Int64("pss_bytes", u.Memory), zap.Int64("limit_bytes", l.maxMemory))
	}
	if pgid := l.PID(); pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if l.cg != nil {
		l.cg.kill()
	}
	return true
}

// Restarts is how many times the watchdog restarted a silent screencast.
func (l *Lease) Restarts() int64 { return l.restarts.Load() }
