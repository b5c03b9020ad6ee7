package worker

import (
	"bytes"
	"html/template"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
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
