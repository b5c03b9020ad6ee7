package browserpool

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
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

	once sync.Once
	res  []*regexp.Regexp // Patterns compiled, by matches
}

// NavGuard is the company's URL policy for documents (docs/navigation.md):
// every document request of the tab, the top page's and every frame's,
// each hop of a redirect, is checked before it leaves the browser. A
// refused one never reaches its server: the browser gets Page instead.
type NavGuard struct {
	// Allowed says whether the tab may load url, and if not, which rule
	// refused it ("" when it is on no allow pattern).
	Allowed func(url string) (ok bool, rule string)
	// Page is the HTML shown instead of a refused document.
	Page func(url string) []byte
	// Blocked is told each refused document (on its own goroutine): its
	// URL, the rule, and whether it was the top page (not a frame).
	Blocked func(url, rule string, top bool)
}

// guardAnswerTimeout bounds the answer to one paused request.
const guardAnswerTimeout = 5 * time.Second

// GuardRequests turns the lease's request guard on or off; without
// LeaseOptions.Guard it does nothing.
func (l *Lease) GuardRequests(on bool) { l.guardOn.Store(on) }

// enableFetch makes the browser pause the requests the request guard and
// the navigation guard must see, in every tab and frame: those matching the
// guard's patterns, and every document. It is the browser's session that
// pauses them, not a tab's: a popup's first document and a cross-origin
// frame's are paused before the lease could attach to their targets
// (docs/tabs.md).
func (l *Lease) enableFetch(ctx context.Context) error {
	var pats []*fetch.RequestPattern
	if g := l.guard; g != nil {
		for _, p := range g.Patterns {
			pats = append(pats, &fetch.RequestPattern{URLPattern: p, RequestStage: fetch.RequestStageRequest})
		}
	}
	if l.nav != nil {
		pats = append(pats, &fetch.RequestPattern{URLPattern: "*", ResourceType: network.ResourceTypeDocument, RequestStage: fetch.RequestStageRequest})
	}
	if len(pats) == 0 {
		return nil
	}
	if _, err := chromedp.CallBrowser(ctx, fetch.Enable, fetch.EnableParams{Patterns: pats}); err != nil {
		return fmt.Errorf("request guard: %w", err)
	}
	return nil
}

// onRequestPaused answers a paused request: a document the navigation
// guard refuses gets the block page; a request the request guard matches
// fails while the guard is on; every other goes on. It runs on chromedp's
// event goroutine, so the answer is sent from another.
func (l *Lease) onRequestPaused(ev *fetch.EventRequestPaused) {
	if ev.Request == nil {
		return
	}
	url := ev.Request.URL
	top := ev.FrameID != "" && l.isTopFrame(string(ev.FrameID))
	go func() {
		ctx, cancel := context.WithTimeout(l.bctx, guardAnswerTimeout)
		defer cancel()
		if n := l.nav; n != nil && ev.ResourceType == network.ResourceTypeDocument {
			if ok, rule := n.Allowed(url); !ok {
				_, _ = chromedp.CallBrowser(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
					RequestID:    ev.RequestID,
					ResponseCode: 403,
					ResponseHeaders: []*fetch.HeaderEntry{
						{Name: "Content-Type", Value: "text/html; charset=utf-8"},
						{Name: "Cache-Control", Value: "no-store"},
					},
					Body: n.Page(url), // cdproto sends it base64-encoded
				})
				if n.Blocked != nil {
					n.Blocked(url, rule, top)
				}
				return
			}
		}
		if g := l.guard; g != nil && l.guardOn.Load() && g.matches(url) {
			_, _ = chromedp.CallBrowser(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
			if g.Blocked != nil {
				g.Blocked(stripQuery(url))
			}
			return
		}
		_, _ = chromedp.CallBrowser(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}()
}

// isTopFrame says whether frame is the main frame of one of the lease's
// tabs (a page target's id is its main frame's).
func (l *Lease) isTopFrame(frame string) bool { return l.isPage(frame) }

// matches says whether url matches one of the guard's patterns, with CDP's
// wildcards (* any run of characters, ? one character).
func (g *RequestGuard) matches(url string) bool {
	g.once.Do(func() {
		for _, p := range g.Patterns {
			var b strings.Builder
			b.WriteString("^")
			for _, r := range p {
				switch r {
				case '*':
					b.WriteString(".*")
				case '?':
					b.WriteString(".")
				default:
					b.WriteString(regexp.QuoteMeta(string(r)))
				}
			}
			b.WriteString("$")
			if re, err := regexp.Compile(b.String()); err == nil {
				g.res = append(g.res, re)
			}
		}
	})
	for _, re := range g.res {
		if re.MatchString(url) {
			return true
		}
	}
	return false
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
