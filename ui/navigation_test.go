package ui

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

func isNavigate(action string) func(received) bool {
	return func(r received) bool { return r.Navigate != nil && r.Navigate.Action == action }
}

// navState reads the address bar: its text | read-only | back, forward,
// reload enabled.
const navStateJS = `(() => {
  const f = document.querySelector('.viewer-nav');
  const b = (n) => f.querySelector('[data-nav="' + n + '"]').disabled ? '-' : n;
  return [f.querySelector('.viewer-nav-url').value, f.querySelector('.viewer-nav-url').readOnly, b('back'), b('forward'), b('reload')].join('|');
})()`

// TestAddressBar: the customer's address bar shows where the tab is and
// sends what is typed and the buttons; an agent's is read-only until it
// controls the tab.
func TestAddressBar(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	from := w.count()
	send(t, w, 1, map[string]any{"type": "location", "url": "https://shop.example/cart?x=1", "back": true, "forward": false})
	waitJS(t, ctx, "location", `document.querySelector('.viewer-nav-url').value === 'https://shop.example/cart?x=1'`)
	if got := eval[string](t, ctx, navStateJS); got != "https://shop.example/cart?x=1|false|back|-|reload" {
		t.Errorf("address bar = %q", got)
	}

	browsertest.Fill(t, ctx, ".viewer-nav-url", "")
	run(t, ctx, "select the address", chromedp.Evaluate[chromedp.Void](`document.querySelector('.viewer-nav-url').select()`))
	browsertest.Fill(t, ctx, ".viewer-nav-url", "example.com/a b")
	browsertest.PressKey(t, ctx, browsertest.KeyEnter)
	if n := w.waitEvent(t, &from, "go", isNavigate("go")).Navigate; n.URL != "example.com/a b" {
		t.Errorf("go url = %q", n.URL)
	}
	// Keys typed in the address bar never reach the tab.
	for _, r := range w.eventsSince(0) {
		if r.Event.Kind != "" && r.Event.Kind != "viewport" && r.Event.Kind != "mouse" {
			t.Errorf("the address bar sent %+v to the tab", r.Event)
		}
	}
	run(t, ctx, "back", chromedp.Click(`.viewer-nav [data-nav="back"]`))
	w.waitEvent(t, &from, "back", isNavigate("back"))
	run(t, ctx, "reload", chromedp.Click(`.viewer-nav [data-nav="reload"]`))
	w.waitEvent(t, &from, "reload", isNavigate("reload"))
	// A refused address is told in the page's words.
	send(t, w, 1, map[string]any{"type": "refused", "reason": "bad_url", "message": "worker text"})
	waitJS(t, ctx, "bad_url toast", `document.querySelector('.viewer-toast').textContent === 'That is not a web address (http or https).'`)
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese", `document.querySelector('.viewer-nav [data-nav="back"]').getAttribute('aria-label') === '戻る'`)
	w.checkClean(t)
}

// TestAgentAddressBar: the agent's bar shows where the tab is (the worker
// leaves out the query) and is read-only until the agent controls the tab.
func TestAgentAddressBar(t *testing.T) {
	srv2 := newFakeServer(t)
	w2 := srv2.worker
	w2.setFrame(encodeFrame(t, srv2, nil, 1280, 720), 1280, 720)
	actx := agentLive(t, srv2, "s_nav")
	send(t, w2, 1, map[string]any{"type": "location", "url": "https://shop.example/cart", "back": true, "forward": true})
	waitJS(t, actx, "agent location", `document.querySelector('.viewer-nav-url').value === 'https://shop.example/cart'`)
	if got := eval[string](t, actx, navStateJS); got != "https://shop.example/cart|true|-|-|-" {
		t.Errorf("viewing agent's address bar = %q", got)
	}
	send(t, w2, 1, map[string]any{"type": "control", "controller": "agent", "viewer_id": "v_test", "name": "Aiko Tanaka"})
	waitJS(t, actx, "in control", `document.querySelector('.viewer').dataset.control === 'controlling'`)
	if got := eval[string](t, actx, navStateJS); got != "https://shop.example/cart|false|back|forward|reload" {
		t.Errorf("controlling agent's address bar = %q", got)
	}
	afrom := w2.count()
	run(t, actx, "forward", chromedp.Click(`.viewer-nav [data-nav="forward"]`))
	w2.waitEvent(t, &afrom, "forward", isNavigate("forward"))
	shot(t, actx, "agent-address-bar-desktop")
	w2.checkClean(t)
}

// tabsJS reads the tab strip: hidden | each tab as title:selected:closable.
const tabsJS = `(() => {
  const s = document.querySelector('.viewer-tabs');
  return [s.hidden, ...[...s.querySelectorAll('.viewer-tab')].map((el) => {
    const b = el.querySelector('[role="tab"]');
    return b.textContent + ':' + b.getAttribute('aria-selected') + ':' + !!el.querySelector('.viewer-tab-close');
  })].join('|');
})()`

// TestTabStrip: a second tab shows the strip; its titles are text; a
// click brings a tab to the front and the close button closes it (never
// the first tab); the arrow keys move along the strip; both languages.
func TestTabStrip(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	from := w.count()
	send(t, w, 1, map[string]any{"type": "location", "url": "https://shop.example/", "tabs": []map[string]any{
		{"id": "1", "title": "Shop", "url": "https://shop.example/", "active": true}}})
	waitJS(t, ctx, "location", `document.querySelector('.viewer-nav-url').value === 'https://shop.example/'`)
	if got := eval[string](t, ctx, tabsJS); got != "true|Shop:true:false" {
		t.Errorf("one tab: strip = %q, want it hidden", got)
	}
	evil := `<img src=x onerror="window.pwned=1">`
	send(t, w, 1, map[string]any{"type": "location", "url": "https://pay.example/3ds", "tabs": []map[string]any{
		{"id": "1", "title": "Shop", "url": "https://shop.example/", "active": false},
		{"id": "2", "title": evil, "url": "https://pay.example/3ds", "active": true},
		{"id": "x", "title": "not a tab id", "url": "https://bad.example/", "active": false}}})
	waitJS(t, ctx, "two tabs", `!document.querySelector('.viewer-tabs').hidden`)
	if got := eval[string](t, ctx, tabsJS); got != "false|Shop:false:false|"+evil+":true:true" {
		t.Errorf("two tabs: strip = %q", got)
	}
	if eval[bool](t, ctx, `window.pwned === 1`) {
		t.Error("a tab's title ran as markup")
	}
	run(t, ctx, "click the first tab", chromedp.Click(`.viewer-tab [data-tab="1"]`))
	if n := w.waitEvent(t, &from, "tab", isNavigate("tab")).Navigate; n.Tab != "1" {
		t.Errorf("tab = %+v", n)
	}
	run(t, ctx, "close the second", chromedp.Click(`.viewer-tab [data-close="2"]`))
	if n := w.waitEvent(t, &from, "close_tab", isNavigate("close_tab")).Navigate; n.Tab != "2" {
		t.Errorf("close_tab = %+v", n)
	}
	// The keyboard: the active tab is the one in the tab order; arrows move.
	run(t, ctx, "focus the active tab", chromedp.Evaluate[chromedp.Void](`document.querySelector(".viewer-tab [data-tab=\"2\"]").focus()`))
	browsertest.PressKey(t, ctx, [4]string{"ArrowLeft", "ArrowLeft", "37", ""})
	waitJS(t, ctx, "arrow moved", `document.activeElement && document.activeElement.dataset.tab === '1'`)
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	waitJS(t, ctx, "Japanese labels", `document.querySelector('.viewer-tabs').getAttribute('aria-label') === '共有ブラウザのタブ' &&
		document.querySelector('.viewer-tab-close').getAttribute('aria-label').startsWith('タブを閉じる')`)
	// A page that opened too many tabs is told in the page's words.
	send(t, w, 1, map[string]any{"type": "refused", "reason": "tab_limit", "message": "worker text"})
	waitJS(t, ctx, "tab limit toast", `document.querySelector('.viewer-toast').textContent.includes('新しいタブは閉じられました')`)
	shot(t, ctx, "tab-strip")
	w.checkClean(t)
}
