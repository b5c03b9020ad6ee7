package ui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// typePIN replaces the PIN field's text and submits the form.
func typePIN(t *testing.T, ctx context.Context, pin string) {
	t.Helper()
	run(t, ctx, "clear the PIN", chromedp.Evaluate[chromedp.Void](`document.getElementById('pin').value = ''`))
	browsertest.Fill(t, ctx, "#pin", pin)
	run(t, ctx, "submit PIN "+pin, chromedp.KeyEvent(kb.Enter))
}

func TestJoinPage(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open join page", chromedp.Navigate(srv.URL+"/join/demo"))
	waitJS(t, ctx, "company name", `document.getElementById('company-name').textContent === 'Demo Inc.'`)
	if lang := eval[string](t, ctx, "document.documentElement.lang"); lang != "en" {
		t.Errorf("lang = %q for an English browser, want en", lang)
	}
	if got := eval[string](t, ctx, "document.title"); got != "Join a session with Demo Inc." {
		t.Errorf("title = %q", got)
	}
	attrs := eval[map[string]string](t, ctx, `(() => { const p = document.getElementById('pin'); return {mode: p.inputMode, ac: p.autocomplete, label: p.labels[0].textContent}; })()`)
	if attrs["mode"] != "numeric" || attrs["ac"] != "one-time-code" || attrs["label"] != "PIN" {
		t.Errorf("PIN field = %v, want numeric one-time-code with a label", attrs)
	}
	shot(t, ctx, "join-desktop-en")

	errText := func() string {
		return eval[string](t, ctx, `(() => { const e = document.getElementById('pin-error'); return e.hidden ? '' : e.textContent; })()`)
	}

	// Client-side checks: nothing is posted.
	typePIN(t, ctx, "")
	waitJS(t, ctx, "missing PIN message", `!document.getElementById('pin-error').hidden`)
	if got := errText(); got != "Enter the PIN your agent gave you." {
		t.Errorf("empty PIN error = %q", got)
	}
	typePIN(t, ctx, "12 34")
	waitJS(t, ctx, "format message", `document.getElementById('pin-error').textContent.includes('6 to 10')`)
	if n := len(srv.calls("POST", "/api/v1/join")); n != 0 {
		t.Fatalf("%d join calls for invalid PINs, want 0", n)
	}
	if got := eval[string](t, ctx, "document.getElementById('pin').getAttribute('aria-invalid')"); got != "true" {
		t.Errorf("aria-invalid = %q after an error", got)
	}

	// A wrong PIN shows the server's message.
	typePIN(t, ctx, "000000")
	waitJS(t, ctx, "server message", `document.getElementById('pin-error').textContent === 'Server: that PIN is not valid'`)

	// Switch to Japanese: the page follows and asks the server in Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese page", `document.documentElement.lang === 'ja'`)
	if got := eval[string](t, ctx, "document.getElementById('join-title').textContent"); got != "サポートセッションに参加" {
		t.Errorf("Japanese title = %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('.lang-switch button[data-lang="ja"]').getAttribute('aria-pressed')`); got != "true" {
		t.Errorf("aria-pressed of 日本語 = %q", got)
	}
	typePIN(t, ctx, "000000")
	waitJS(t, ctx, "Japanese server message", `document.getElementById('pin-error').textContent === 'サーバー: PINが無効です'`)
	calls := srv.calls("POST", "/api/v1/join")
	if last := calls[len(calls)-1]; !strings.HasPrefix(last.AcceptLanguage, "ja") {
		t.Errorf("Accept-Language after the switch = %q, want ja first", last.AcceptLanguage)
	}

	// Too many tries.
	typePIN(t, ctx, "999999")
	waitJS(t, ctx, "rate limit message", `document.getElementById('pin-error').textContent.includes('30')`)
	if got := errText(); !strings.Contains(got, "試行回数が多すぎます") {
		t.Errorf("429 message = %q", got)
	}
	shot(t, ctx, "join-desktop-ja-error")

	// The choice is remembered.
	run(t, ctx, "reload", chromedp.Reload())
	waitJS(t, ctx, "Japanese after reload", `document.documentElement.lang === 'ja' && document.getElementById('company-name').textContent !== ''`)

	// The right PIN, typed with a space: the exact JSON, then the customer view.
	typePIN(t, ctx, "123 456")
	waitJS(t, ctx, "customer view", `location.pathname === '/s/s_joined'`)
	calls = srv.calls("POST", "/api/v1/join")
	last := calls[len(calls)-1]
	var body map[string]any
	if err := json.Unmarshal([]byte(last.Body), &body); err != nil {
		t.Fatalf("join body %q: %v", last.Body, err)
	}
	if len(body) != 2 || body["company"] != "demo" || body["pin"] != "123456" {
		t.Errorf("join body = %s, want exactly {company: demo, pin: 123456}", last.Body)
	}
	if !strings.HasPrefix(last.ContentType, "application/json") {
		t.Errorf("join Content-Type = %q", last.ContentType)
	}
	// The customer view starts connecting in Japanese.
	waitJS(t, ctx, "customer page in Japanese", `document.documentElement.lang === 'ja' && document.querySelector('.viewer')`)
}

func TestJoinUnknownCompany(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open join page", chromedp.Navigate(srv.URL+"/join/nobody"))
	waitJS(t, ctx, "unknown company", `!document.getElementById('unknown-company').hidden && document.getElementById('join-form').hidden`)
	if got := eval[string](t, ctx, "document.querySelector('#unknown-company h2').textContent"); got != "Unknown company" {
		t.Errorf("unknown company title = %q", got)
	}
}

// TestBrowserLanguage: with no saved choice, a Japanese browser gets Japanese.
func TestBrowserLanguage(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 390, 844, true)
	ua := eval[string](t, ctx, "navigator.userAgent")
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "ja-JP,ja"}); err != nil {
		t.Fatalf("emulate Japanese: %v", err)
	}
	run(t, ctx, "open join page", chromedp.Navigate(srv.URL+"/join/demo"))
	waitJS(t, ctx, "Japanese page", `document.documentElement.lang === 'ja' && document.getElementById('company-name').textContent === 'Demo Inc.'`)
	if got := eval[string](t, ctx, "document.getElementById('join-submit').textContent"); got != "参加する" {
		t.Errorf("submit button = %q", got)
	}
	if over := eval[bool](t, ctx, "document.documentElement.scrollWidth > window.innerWidth"); over {
		t.Errorf("the join page scrolls sideways on a phone")
	}
	shot(t, ctx, "join-phone-ja")
	run(t, ctx, "switch to English", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="en"]`)))
	waitJS(t, ctx, "English page", `document.documentElement.lang === 'en'`)
	shot(t, ctx, "join-phone-en")
}

func TestNotFoundPage(t *testing.T) {
	srv := newFakeServer(t)
	ctx, errs := newTab(t, 1280, 800, false)
	errs.Allow("status of 404")
	run(t, ctx, "open unknown page", chromedp.Navigate(srv.URL+"/nope"))
	waitJS(t, ctx, "404 page", `document.title === 'Tandem — Page not found' && !document.documentElement.classList.contains('i18n-pending')`)
}

// TestJoinBranding: the company's branding name, colour and logo show on its
// join page; the name is text, never markup; the text on the accent stays
// readable; an http: logo is not shown (the page's CSP allows https: only).
func TestJoinBranding(t *testing.T) {
	srv := newFakeServer(t)
	ctx, errs := newTab(t, 1280, 800, false)
	errs.Allow("logo.invalid") // the logo's host does not resolve here
	errs.Allow("ERR_NAME_NOT_RESOLVED")
	const evil = `<img src=x onerror="window.pwned=1">Shop`
	srv.setBranding(map[string]string{"name": evil, "colour": "#FFD700", "logo_url": "https://logo.invalid/l.png"})
	run(t, ctx, "open join page", chromedp.Navigate(srv.URL+"/join/demo"))
	waitJS(t, ctx, "branded page", `document.getElementById('join-card').dataset.ready === 'true'`)
	// The button's colours ease in (a CSS transition).
	waitJS(t, ctx, "button in the company's colour", `getComputedStyle(document.getElementById('join-submit')).backgroundColor === 'rgb(255, 215, 0)'`)
	got := eval[map[string]any](t, ctx, `(() => {
		const card = document.getElementById('join-card'), name = document.getElementById('company-name');
		const logo = document.getElementById('company-logo'), btn = document.getElementById('join-submit');
		return {
			name: name.textContent, children: name.children.length, imgs: document.querySelectorAll('img').length,
			accent: card.style.getPropertyValue('--accent'), branded: card.classList.contains('branded'),
			btnBg: getComputedStyle(btn).backgroundColor, btnFg: getComputedStyle(btn).color,
			logoSrc: logo.getAttribute('src'), logoAlt: logo.alt, pwned: window.pwned === 1, title: document.title,
		};
	})()`)
	if got["name"] != evil || got["children"] != float64(0) {
		t.Errorf("company name = %q with %v child elements, want the branding name as text", got["name"], got["children"])
	}
	if got["imgs"] != float64(2) { // the Tandem icon and the logo, no injected one
		t.Errorf("%v img elements, want 2", got["imgs"])
	}
	if got["title"] != "Join a session with "+evil {
		t.Errorf("title = %q", got["title"])
	}
	if got["accent"] != "#FFD700" || got["branded"] != true || got["btnBg"] != "rgb(255, 215, 0)" {
		t.Errorf("accent = %q, branded %v, button background %v; want the company's colour", got["accent"], got["branded"], got["btnBg"])
	}
	if got["btnFg"] != "rgb(17, 24, 39)" { // gold is light: dark text
		t.Errorf("text on gold = %v, want dark", got["btnFg"])
	}
	if got["logoSrc"] != "https://logo.invalid/l.png" || got["logoAlt"] != evil {
		t.Errorf("logo src %q alt %q", got["logoSrc"], got["logoAlt"])
	}
	if got["pwned"] == true {
		t.Error("the branding name ran as markup")
	}

	// A dark colour gets white text; no branding name falls back to the
	// company's; an http: logo stays hidden.
	srv.setBranding(map[string]string{"colour": "#1a237e", "logo_url": "http://logo.invalid/l.png"})
	run(t, ctx, "reload", chromedp.Reload())
	waitJS(t, ctx, "company name", `document.getElementById('company-name').textContent === 'Demo Inc.'`)
	waitJS(t, ctx, "button in dark blue", `getComputedStyle(document.getElementById('join-submit')).backgroundColor === 'rgb(26, 35, 126)'`)
	got = eval[map[string]any](t, ctx, `(() => {
		const logo = document.getElementById('company-logo');
		return {fg: getComputedStyle(document.getElementById('join-submit')).color, hidden: logo.hidden, src: logo.getAttribute('src')};
	})()`)
	if got["fg"] != "rgb(255, 255, 255)" {
		t.Errorf("text on dark blue = %v, want white", got["fg"])
	}
	if got["hidden"] != true || got["src"] != nil {
		t.Errorf("http: logo shown: hidden %v src %v", got["hidden"], got["src"])
	}
	shot(t, ctx, "join-branded")
}
