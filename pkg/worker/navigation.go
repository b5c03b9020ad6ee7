package worker

import (
	"bytes"
	"context"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// The company's URL policy (docs/navigation.md): every document the tab
// loads, the start page, a link, a redirect hop or a frame, is checked
// against the allow and deny lists before it leaves the browser. A refused
// one shows the block page instead and is published, for the audit trail.

// EventNavBlocked is a document the URL policy refused (Event.URL without
// its query; Reason "top" or "frame"; Selector the deny rule, or "" when
// the URL is on no allow pattern).
const EventNavBlocked = "navigation_blocked"

// blockPage is shown instead of a refused document, in both languages: the
// tab has no language of its own, and the customer and the agent may read
// different ones.
var blockPage = template.Must(template.New("block").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Page not available · このページは開けません</title>
<style>
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f3f5fa;color:#161a2e;
font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,"Hiragino Sans","Noto Sans JP",sans-serif}
main{max-width:560px;margin:24px;padding:32px;background:#fff;border:1px solid #dfe3ee;border-radius:14px}
h1{font-size:1.35rem;margin:0 0 8px}p{margin:0 0 12px;color:#4f5671}
code{word-break:break-all;color:#161a2e}hr{border:0;border-top:1px solid #dfe3ee;margin:20px 0}
button{font:inherit;font-weight:600;padding:8px 18px;border-radius:9px;border:1px solid #dfe3ee;background:#fff;cursor:pointer}
</style></head><body><main id="tandem-blocked">
<h1>This page is not available in this session</h1>
<p>The company you are talking to does not allow <code>{{.}}</code> in shared sessions.</p>
<hr lang="ja">
<h1 lang="ja">このページはこのセッションでは開けません</h1>
<p lang="ja">ご利用中の会社の設定により、共有セッションでは <code>{{.}}</code> を開けません。</p>
<button type="button" onclick="history.back()">Back · 戻る</button>
</main></body></html>`))

// navGuard is the lease's navigation guard for the session's URL policy.
func (s *session) navGuard() *browserpool.NavGuard {
	pol := s.req.URLs
	return &browserpool.NavGuard{
		Allowed: func(u string) (bool, string) {
			v := pol.Check(u)
			return v.OK, v.Rule
		},
		Page: func(u string) []byte {
			var b bytes.Buffer
			shown := urlpolicy.Shown(u)
			if shown == "" {
				shown = "this page"
			}
			_ = blockPage.Execute(&b, shown)
			return b.Bytes()
		},
		Blocked: s.navBlocked,
	}
}

// navBlocked publishes a refused document (on the lease's goroutine).
func (s *session) navBlocked(u, rule string, top bool) {
	where := "frame"
	if top {
		where = "top"
	}
	s.log.Info("navigation blocked by the URL policy", zap.String("url", urlpolicy.Shown(u)), zap.String("rule", rule), zap.String("where", where))
	s.w.publishEvent(Event{Type: EventNavBlocked, Company: s.req.Company, SessionID: s.req.SessionID,
		URL: urlpolicy.Shown(u), Selector: rule, Reason: where})
}

// Navigation from the viewers' address bar: the customer always, an agent
// while it controls (checked in the input order, like its events); every
// navigation passes the URL policy above. The tab's location goes to every
// viewer in location notices, to agents without its query and fragment.

// RefusedBadURL is the refusal of an address that is not an http(s) URL.
const RefusedBadURL = "bad_url"

// RefusedTabLimit tells the viewers that the page opened a tab beyond the
// session's limit, and that the browser closed it.
const RefusedTabLimit = "tab_limit"

// RefusedShortcut is the refusal of a key that would reach the hosted
// browser's own features (input.Event.BrowserShortcut).
const RefusedShortcut = "browser_shortcut"

// navQueue is how many navigations may wait for the one loading.
const navQueue = 4

// navTimeout bounds one navigation's CDP calls.
const navTimeout = 30 * time.Second

// takeNavigate gates a viewer's navigation and queues it in the input
// order (on pion's goroutine).
func (s *session) takeNavigate(v signaling.Viewer, n *protocol.Navigate) {
	s.enqueue(v, input.Event{Kind: input.KindKey}, queuedInput{role: v.Role, viewerID: v.ID, nav: n})
}

// queueNavigate hands a navigation to navLoop, unless an agent does not
// control the tab (on inputLoop's goroutine).
func (s *session) queueNavigate(in queuedInput) {
	if in.role == RoleAgent && !s.inControl(in.viewerID) {
		s.refuseNoControl(in)
		return
	}
	select {
	case s.navs <- in:
	default:
		s.droppedInput.Add(1) // navigations queued faster than pages load
	}
}

// navLoop navigates, and tells the viewers where the tab is, until ctx
// ends. CDP calls wait for the browser, so they run here and not in the
// input loop; none waits for a page to load. The location is read after
// each command and each navigation event of the top document (the hosted
// browser has no back-forward cache, so every history step is one), and
// again a little later: the browser may send the event before its history
// says where it is.
func (s *session) navLoop(ctx context.Context) error {
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	var again []time.Duration
	read := func() {
		s.refreshLocation(ctx)
		again = []time.Duration{250 * time.Millisecond, time.Second}
		soon.Reset(again[0])
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case in := <-s.navs:
			s.navigate(ctx, in)
			read()
		case <-s.lease().LocationChanged():
			read()
		case <-soon.C:
			s.refreshLocation(ctx)
			if again = again[1:]; len(again) > 0 {
				soon.Reset(again[0])
			}
		}
	}
}

func (s *session) navigate(ctx context.Context, in queuedInput) {
	ctx, cancel := context.WithTimeout(ctx, navTimeout)
	defer cancel()
	var err error
	switch n := in.nav; n.Action {
	case protocol.NavigateGo:
		u, ok := typedURL(n.URL)
		if !ok {
			v := signaling.Viewer{ID: in.viewerID, Role: in.role}
			if msg := s.refusal(v, input.Event{Kind: input.KindKey}, RefusedBadURL); msg != nil {
				s.notify(in.viewerID, msg)
			}
			return
		}
		err = s.lease().Open(ctx, u)
	case protocol.NavigateBack:
		err = s.lease().GoHistory(ctx, -1)
	case protocol.NavigateForward:
		err = s.lease().GoHistory(ctx, 1)
	case protocol.NavigateReload:
		err = s.lease().Reload(ctx)
	case protocol.NavigateTab:
		err = s.lease().SwitchTab(ctx, n.Tab)
	case protocol.NavigateClose:
		err = s.lease().CloseTab(ctx, n.Tab)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("navigate", zap.String("action", in.nav.Action), zap.Error(err)) // a block page or a slow page: the location tells
	}
}

// typedURL makes an address bar's text a URL: https:// when it names no
// scheme; only http and https, with a host and no user information.
func typedURL(text string) (string, bool) {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "://") {
		text = "https://" + text
	}
	u, err := url.Parse(text)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	return u.String(), true
}

// refreshLocation asks the tab where it is and tells the viewers when that
// changed.
func (s *session) refreshLocation(ctx context.Context) {
	loc, err := s.lease().Location(ctx)
	if err != nil {
		return
	}
	s.mu.Lock()
	changed := !loc.Equal(s.loc)
	if changed {
		s.loc = loc
		s.locVer++
	}
	s.mu.Unlock()
	if changed {
		s.mask.notify()
	}
}

// locationNoticeLocked is the location notice for customers and for agents
// (nil before the tab has one). s.mu is held.
func (s *session) locationNoticeLocked() (ver int64, customer, agent []byte) {
	if s.loc.URL == "" {
		return 0, nil, nil
	}
	n := protocol.LocationNotice{Type: protocol.TypeLocation, URL: s.loc.URL, Back: s.loc.Back, Forward: s.loc.Forward}
	for _, t := range s.loc.Tabs {
		n.Tabs = append(n.Tabs, protocol.TabNotice{ID: t.ID, Title: t.Title, URL: t.URL, Active: t.Active})
	}
	customer = protocol.Encode(n)
	n.URL = shownURL(s.loc.URL)
	n.Tabs = slices.Clone(n.Tabs)
	for i, t := range s.loc.Tabs {
		n.Tabs[i].URL = shownURL(t.URL)
		n.Tabs[i].Title = shownTitle(t.Title, t.URL)
	}
	return s.locVer, customer, protocol.Encode(n)
}

// shownURL is u as agents see it: without its query and fragment.
// about:blank and the like carry nothing to hide.
func shownURL(u string) string {
	if s := urlpolicy.Shown(u); s != "" {
		return s
	}
	if strings.HasPrefix(u, "http:") || strings.HasPrefix(u, "https:") || strings.HasPrefix(u, "data:") {
		return "" // unparsable, or a data: URL: nothing of it is shown
	}
	return u
}

// shownTitle is a tab's title as agents see it: a page without a title of
// its own is named by its URL, query and all; such a title, or any that
// carries the URL's query or fragment, becomes the URL without them.
func shownTitle(title, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if (u.RawQuery != "" && strings.Contains(title, u.RawQuery)) || (u.Fragment != "" && strings.Contains(title, u.Fragment)) {
		return strings.TrimPrefix(strings.TrimPrefix(shownURL(raw), u.Scheme+":"), "//")
	}
	return title
}

// tabRefused tells everyone that a page opened a tab beyond the session's
// limit (on the lease's goroutine).
func (s *session) tabRefused() {
	n := protocol.Notice{Type: "refused", Reason: RefusedTabLimit, Message: refusalMessages[RefusedTabLimit]}
	s.tellRoles(n, n)
}
