package ui

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// auditJS checks the page as it is shown now, and returns one line per
// problem:
//   - the document's language is the one chosen;
//   - every control a person can reach (links, buttons, fields, anything
//     with a role or a tab stop) that is shown has an accessible name;
//   - no id is used twice;
//   - every image has alternative text (or is hidden from assistive
//     technology);
//   - shown text has a contrast of at least 4.5:1 against what is behind
//     it (3:1 for large text), WCAG 2.1 AA, computed from the styles;
//   - every control that takes the focus shows it (an outline or a box
//     shadow while focused).
const auditJS = `((lang) => {
  const out = [];
  const shown = (el) => {
    if (el.closest('[hidden], [aria-hidden="true"]')) return false;
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && parseFloat(cs.opacity) > 0;
  };
  const what = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  if (document.documentElement.lang !== lang) out.push('html lang ' + document.documentElement.lang + ', want ' + lang);

  const name = (el) => {
    const by = el.getAttribute('aria-labelledby');
    if (by) return by.split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' ').trim();
    const aria = el.getAttribute('aria-label');
    if (aria && aria.trim()) return aria.trim();
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(' ').trim();
    if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type)) return el.value;
    const text = (el.innerText || el.textContent || '').trim();
    if (text) return text;
    const img = el.querySelector('img[alt]');
    if (img && img.alt.trim()) return img.alt.trim();
    return (el.getAttribute('title') || el.getAttribute('placeholder') || '').trim();
  };
  const controls = document.querySelectorAll('a[href], button, input:not([type="hidden"]), select, textarea, [role="button"], [role="tab"], [role="switch"], [role="checkbox"], [tabindex]:not([tabindex="-1"]), video[tabindex]');
  for (const el of controls) {
    if (!shown(el)) continue;
    if (!name(el)) out.push('no accessible name: ' + what(el));
  }

  const ids = new Map();
  for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) out.push('id used ' + n + ' times: ' + id);

  for (const img of document.querySelectorAll('img')) {
    if (shown(img) && !img.hasAttribute('alt')) out.push('image without alt: ' + what(img));
  }

  const rgba = (s) => {
    const m = s.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  // The colour behind el: its own and its ancestors' backgrounds, blended;
  // null when an image or a gradient is behind it (not computed).
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.backgroundImage && cs.backgroundImage !== 'none') return null;
      if (e.tagName === 'VIDEO' || e.tagName === 'CANVAS') return null;
      const c = rgba(cs.backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let c = { r: 255, g: 255, b: 255, a: 1 };
    for (const l of layers.reverse()) c = over(l, c);
    return c;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || seen.has(el) || !n.textContent.trim() || !shown(el)) continue;
    seen.add(el);
    const cs = getComputedStyle(el);
    // What is disabled needs no contrast (WCAG 1.4.3's exception).
    if (el.closest(':disabled, [aria-disabled="true"]')) continue;
    const bg = behind(el);
    const fg0 = rgba(cs.color);
    if (!bg || !fg0) continue;
    const fg = over({ ...fg0, a: fg0.a * parseFloat(cs.opacity) }, bg);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(cs.fontWeight, 10) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push('contrast ' + ratio.toFixed(2) + ': ' + what(el) + ' "' + n.textContent.trim().slice(0, 30) + '"');
  }

  const focusable = [...controls].filter((el) => shown(el) && !el.disabled && el.tabIndex >= 0);
  const before = document.activeElement;
  for (const el of focusable) {
    el.focus({ preventScroll: true });
    if (document.activeElement !== el) continue;
    // :focus-visible follows the keyboard; the rules are written for it.
    const cs = getComputedStyle(el);
    let ok = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none';
    // A focus ring drawn by the nearest wrapper (a label around a file input, a stage around the video).
    for (let p = el.parentElement; !ok && p && p !== document.body; p = p.parentElement) {
      const ps = getComputedStyle(p);
      ok = (ps.outlineStyle !== 'none' && parseFloat(ps.outlineWidth) > 0 && p.matches(':focus-within'));
      if (p.classList.contains('viewer')) break;
    }
    if (!ok) out.push('no visible focus: ' + what(el));
  }
  before?.focus?.({ preventScroll: true });
  return out.join('\n');
})`

// TestAuditFindsProblems: the audit itself, on a page with one of each
// problem, reports each.
func TestAuditFindsProblems(t *testing.T) {
	srv := newFakeServer(t)
	ctx, _ := newTab(t, 800, 600, false)
	run(t, ctx, "open blank page", chromedp.Navigate(srv.URL+"/test/blank"))
	run(t, ctx, "write the page", chromedp.Evaluate[chromedp.Void](`(() => {
		document.documentElement.lang = 'en';
		const style = document.createElement('style');
		style.textContent = 'button, a { outline: none !important; box-shadow: none !important; }';
		document.head.append(style);
		document.body.innerHTML = '<p style="color:#aaa;background:#fff">faint</p><button id="x"></button>' +
			'<span id="x">twice</span><img src="data:,"><a href="#">link</a>';
	})()`))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](auditJS+`('ja')`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"html lang en, want ja", "no accessible name: button#x", "id used 2 times: x", "image without alt", `contrast 2.32: p "faint"`, "no visible focus: a"} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit did not report %q; it said:\n%s", want, got)
		}
	}
}

// audit runs auditJS in the tab and fails the test with what it found.
func audit(t *testing.T, ctx context.Context, page, lang string) {
	t.Helper()
	// Focus as from the keyboard, so that :focus-visible rules apply.
	run(t, ctx, "keyboard modality", chromedp.KeyEvent("\t"))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](auditJS+`('`+lang+`')`))
	if err != nil {
		t.Fatalf("%s (%s): audit: %v", page, lang, err)
	}
	if got != "" {
		t.Errorf("%s (%s):\n%s", page, lang, got)
	}
}

// TestAccessibility audits each page in both languages: the join page, the
// customer's live view (with its tab strip and a question of the agent),
// the agent's sign-in, console and live session, and the admin page.
func TestAccessibility(t *testing.T) {
	srv := newFakeServer(t)
	ja := func(ctx context.Context) {
		t.Helper()
		run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
		waitJS(t, ctx, "Japanese", `document.documentElement.lang === 'ja'`)
	}

	ctx, _ := newTab(t, 1280, 800, false)
	run(t, ctx, "open join page", chromedp.Navigate(srv.URL+"/join/demo"))
	waitJS(t, ctx, "join form", `document.getElementById('company-name').textContent !== ''`)
	audit(t, ctx, "join", "en")
	ja(ctx)
	audit(t, ctx, "join", "ja")

	cctx := customerLive(t, srv)
	send(t, srv.worker, 1, map[string]any{"type": "location", "url": "https://shop.example/", "tabs": []map[string]any{
		{"id": "1", "title": "Shop", "url": "https://shop.example/", "active": false},
		{"id": "2", "title": "Pay", "url": "https://pay.example/", "active": true}}})
	send(t, srv.worker, 1, map[string]any{"type": "control", "state": "requested", "viewer_id": "v_a", "name": "Aiko Tanaka"})
	waitJS(t, cctx, "tab strip and question", `!document.querySelector('.viewer-tabs').hidden && !document.querySelector('.viewer-ask').hidden`)
	audit(t, cctx, "customer view", "en")
	ja(cctx)
	audit(t, cctx, "customer view", "ja")

	actx, _ := newTab(t, 1280, 800, false)
	run(t, actx, "open console", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, actx, "login form", `!document.getElementById('login').hidden && document.getElementById('loading').hidden`)
	audit(t, actx, "agent sign-in", "en")

	lctx := agentLive(t, srv, "s_a11y")
	audit(t, lctx, "agent live session", "en")
	ja(lctx)
	audit(t, lctx, "agent live session", "ja")
	run(t, lctx, "open the console", chromedp.Navigate(srv.URL+"/agent/"))
	waitJS(t, lctx, "console", `!document.getElementById('console').hidden`)
	audit(t, lctx, "agent console", "ja")
	run(t, lctx, "switch to English", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="en"]`)))
	waitJS(t, lctx, "English", `document.documentElement.lang === 'en'`)
	audit(t, lctx, "agent console", "en")

	srv.setAdmin("admin", nil)
	dctx, _ := newTab(t, 1280, 900, false)
	run(t, dctx, "open admin", chromedp.Navigate(srv.URL+"/admin/"))
	waitJS(t, dctx, "admin", `!document.getElementById('admin').hidden`)
	audit(t, dctx, "admin", "en")
	ja(dctx)
	audit(t, dctx, "admin", "ja")
}
