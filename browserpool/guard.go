package browserpool

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// RequestGuard is the third layer of blocking (docs/blocking.md): while it
// is on (GuardRequests), the tab's requests whose URL matches one of
// Patterns fail before they leave the browser. Patterns use CDP's
// wildcards: * any run of characters, ? one character.
type RequestGuard struct {
	Patterns []string
	// Blocked is called (on its own goroutine) with each failed request's
	// URL, without its query and fragment.
	Blocked func(url string)
}

// guardAnswerTimeout bounds the answer to one paused request.
const guardAnswerTimeout = 5 * time.Second

// GuardRequests turns the lease's request guard on or off; without
// LeaseOptions.Guard it does nothing.
func (l *Lease) GuardRequests(on bool) { l.guardOn.Store(on) }

// enableGuard makes the session (the tab's, or a child frame's) pause the
// requests that match the guard's patterns.
func (l *Lease) enableGuard(ctx context.Context, g *RequestGuard) error {
	if g == nil || len(g.Patterns) == 0 {
		return nil
	}
	pats := make([]*fetch.RequestPattern, 0, len(g.Patterns))
	for _, p := range g.Patterns {
		pats = append(pats, &fetch.RequestPattern{URLPattern: p, RequestStage: fetch.RequestStageRequest})
	}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: pats}); err != nil {
		return fmt.Errorf("request guard: %w", err)
	}
	return nil
}

// onGuardEvent answers a paused request of session: it fails while the
// guard is on, and goes on otherwise. It runs on chromedp's event
// goroutine, so the answer is sent from another.
func (l *Lease) onGuardEvent(session context.Context, g *RequestGuard, ev *fetch.EventRequestPaused) {
	if g == nil {
		return
	}
	block := l.guardOn.Load()
	go func() {
		ctx, cancel := context.WithTimeout(session, guardAnswerTimeout)
		defer cancel()
		if block {
			_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
			if g.Blocked != nil && ev.Request != nil {
				g.Blocked(stripQuery(ev.Request.URL))
			}
			return
		}
		_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}()
}

// stripQuery drops a URL's query and fragment (audit details never carry
// them).
func stripQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
