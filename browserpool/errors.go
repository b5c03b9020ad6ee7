package browserpool

import "errors"

// Errors that callers act on. Check them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Config.Validate failure.
	ErrInvalidConfig = errors.New("browserpool: invalid config")
	// ErrForbiddenFlag is wrapped when Config.ExtraFlags holds a flag that
	// weakens the sandbox or site isolation, or one the pool owns.
	ErrForbiddenFlag = errors.New("browserpool: forbidden chromium flag")
	// ErrNoChromium means no usable Chromium binary was found.
	ErrNoChromium = errors.New("browserpool: no chromium binary")
	// ErrNoUser means Tandem runs as root and no unprivileged user to run
	// Chromium as was found.
	ErrNoUser = errors.New("browserpool: no unprivileged browser user")
	// ErrPoolClosed is returned by Lease after Close.
	ErrPoolClosed = errors.New("browserpool: pool closed")
	// ErrStartTimeout means a browser did not start within
	// Config.StartTimeout.
	ErrStartTimeout = errors.New("browserpool: browser start timed out")
	// ErrLeaseClosed is a lease's Err after its owner closed it.
	ErrLeaseClosed = errors.New("browserpool: lease closed")
	// ErrBrowserLost is a lease's Err when the browser process exited or the
	// CDP connection to it broke.
	ErrBrowserLost = errors.New("browserpool: browser lost")
	// ErrPageCrashed is a lease's Err when the tab's renderer crashed.
	ErrPageCrashed = errors.New("browserpool: page crashed")
	// ErrMemoryLimit is a lease's Err when its browser used more memory
	// than Config.MaxMemory and was killed.
	ErrMemoryLimit = errors.New("browserpool: browser over its memory limit")
	// ErrURLNotAllowed is returned for a navigation to a scheme other than
	// http, https, data or about:blank, or to a URL Config.EgressCheck
	// refuses.
	ErrURLNotAllowed = errors.New("browserpool: url not allowed")
)
