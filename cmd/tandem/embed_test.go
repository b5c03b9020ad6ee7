package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// shopSite is a company's own website on another origin, with Tandem's one
// line in its pages /en and /ja.
func shopSite(t *testing.T, tandem string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for _, lang := range []string{"en", "ja"} {
		mux.HandleFunc("/"+lang, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html lang="`+lang+`"><head><meta charset="utf-8"><title>Shop</title>`+
				`<link rel="icon" href="data:,">`+
				`<script src="`+tandem+`/embed.js" data-company="demo" async></script></head>`+
				`<body><h1>Shop</h1></body></html>`)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// helpButtonJS reads the embed's button, or null.
const helpButtonJS = `(() => {
  const b = document.querySelector('[data-tandem-help]')?.shadowRoot?.querySelector('button');
  if (!b) return null;
  const r = b.getBoundingClientRect();
  return {text: b.textContent, name: b.getAttribute('aria-label'), lang: b.lang, x: r.left + r.width / 2, y: r.top + r.height / 2,
    w: r.width, h: r.height, inView: r.right <= innerWidth && r.bottom <= innerHeight};
})()`

type helpButton struct {
	Text, Name, Lang string
	X, Y, W, H       float64
	InView           bool
}

// TestEmbedScript puts the one-line embed on two sites of other origins:
// the site the company allows gets a help button (in the page's language)
// that opens the company's PIN entry in a new tab, which leads to the
// customer view; the other site gets nothing.
func TestEmbedScript(t *testing.T) {
	s, _ := startServe(t)
	allowed, other := shopSite(t, s.URL), shopSite(t, s.URL)

	// The demo company's admin allows the first site.
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar}
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/api/v1/auth/login", `{"email":"agent@demo.test","password":"` + e2ePassword + `"}`},
		{"PATCH", "/api/v1/company", `{"allowed_origins":["` + allowed.URL + `"]}`},
	} {
		req, _ := http.NewRequest(step.method, s.URL+step.path, strings.NewReader(step.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s = %d %s", step.method, step.path, resp.StatusCode, b)
		}
	}

	// Not allowed: the check fails in the browser (no CORS header) and no
	// button appears.
	elsewhere, errs := browsertest.NewTab(t, 1024, 700, false)
	errs.Allow("CORS policy")
	errs.Allow("Failed to load resource")
	browsertest.Run(t, elsewhere, "open the other site", chromedp.Navigate(other.URL+"/en"))
	browsertest.WaitJS(t, elsewhere, "embed refused", `document.querySelector('script[data-company]').dataset.tandemEmbed === 'refused'`)
	if b := browsertest.Eval[*helpButton](t, elsewhere, helpButtonJS); b != nil {
		t.Fatalf("a site the company does not allow got the button: %+v", b)
	}

	// Allowed: the button, in the page's language, in view, big enough to tap.
	tab, _ := browsertest.NewTab(t, 1024, 700, false)
	browsertest.Run(t, tab, "open the Japanese page", chromedp.Navigate(allowed.URL+"/ja"))
	browsertest.WaitJS(t, tab, "embed ready", `document.querySelector('script[data-company]').dataset.tandemEmbed === 'ready'`)
	if b := browsertest.Eval[*helpButton](t, tab, helpButtonJS); b == nil || b.Text != "ヘルプ" || b.Lang != "ja" || !strings.Contains(b.Name, "PIN") {
		t.Errorf("Japanese button = %+v", b)
	}
	browsertest.Run(t, tab, "open the English page", chromedp.Navigate(allowed.URL+"/en"))
	browsertest.WaitJS(t, tab, "embed ready", `document.querySelector('script[data-company]')?.dataset.tandemEmbed === 'ready'`)
	b := browsertest.Eval[*helpButton](t, tab, helpButtonJS)
	if b == nil || b.Text != "Help" || !strings.HasPrefix(b.Name, "Help") || !b.InView || b.W < 44 || b.H < 44 {
		t.Fatalf("English button = %+v, want 'Help', named for what it does, in view, at least 44 px", b)
	}
	// Keyboard: the button takes the focus with Tab.
	browsertest.Run(t, tab, "tab to it", chromedp.KeyEvent("\t"))
	if got := browsertest.Eval[string](t, tab, `document.activeElement?.dataset.tandemHelp + ':' + document.activeElement?.shadowRoot?.activeElement?.textContent`); got != "demo:Help" {
		t.Errorf("after Tab the focus is on %q, want the help button", got)
	}

	// A click opens the company's PIN entry in a new tab; the PIN leads to
	// the customer view (the cookie is first-party there).
	sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+allowed.URL+`/en"}`)
	browsertest.Run(t, tab, "click help", chromedp.MouseClickXY(b.X, b.Y))
	popup := waitTab(t, tab, s.URL+"/join/demo")
	browsertest.WaitJS(t, popup, "join page", `document.getElementById('join-card').dataset.ready === 'true'`)
	browsertest.Fill(t, popup, "#pin", sess["pin"].(string))
	browsertest.Run(t, popup, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, popup, "customer view", `location.pathname === "/s/`+sess["id"].(string)+`" && document.body.dataset.consent === 'asking'`)
}

// waitTab finds the tab that the page in ctx opened at a URL starting with
// prefix and returns a context attached to it.
func waitTab(t *testing.T, ctx context.Context, prefix string) context.Context {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		targets, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range targets {
			if ti.Type == "page" && strings.HasPrefix(ti.URL, prefix) {
				tctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(ti.TargetID))
				t.Cleanup(cancel)
				return tctx
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tab opened at %s", prefix)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
