package canary

import (
	"fmt"
	"strings"
)

// formBarFraction is the height of the form page's sticky bar, in
// fractions of the viewport (its CSS says 10vh).
const formBarFraction = 0.1

// commonCSS: the canary (magenta and black squares of 8 px, 48×32 px), the
// "beat" bars that keep unmasked pixels moving in every cell (so that a
// viewer can tell a live picture from a held one), and a track that slides
// its content back and forth across its box. The other colours are greys,
// blues and greens only: no colour of these pages, and no blend of two of
// them, is magenta-like in the video's chroma. A page asked for with
// ?hide=1 paints its canaries white instead (--magenta), for tests that
// prove the rest of the page has no magenta.
const commonCSS = `
:root{--magenta:#f0f}
:root.hide{--magenta:#fff}
.canary{width:48px;height:32px;flex:none;
  background:var(--magenta) conic-gradient(#000 25%,var(--magenta) 0 50%,#000 0 75%,var(--magenta) 0) 0 0/16px 16px}
.secret-input{width:120px;height:36px;box-sizing:border-box;border:0;padding:0 6px;color:#000;font:bold 15px sans-serif;
  background:var(--magenta) conic-gradient(#000 25%,var(--magenta) 0 50%,#000 0 75%,var(--magenta) 0) 0 0/16px 16px}
.beat{position:absolute;left:10px;top:28px;width:40px;height:6px;background:#1a7f5a;
  animation:beat 1.1s linear infinite alternate}
@keyframes beat{to{transform:translateX(300%)}}
.track{position:absolute;left:0;top:0;right:var(--w,48px);bottom:var(--h,32px)}
.slider{width:100%;height:100%;animation:slide 1.7s ease-in-out infinite alternate}
@keyframes slide{from{transform:translate(0,0)}to{transform:translate(100%,100%)}}
`

// commonJS: canary.report(name) tells the site what happened to this page;
// canary.top() makes the page obey the test's orders (/cmd) and its own
// schedule (?zoom_at, zoom, navigate_at, next).
const commonJS = `
const canary = (() => {
  const params = new URLSearchParams(location.search);
  const page = document.documentElement.dataset.page;
  const phase = params.get('phase') || '';
  const zoomOf = () => parseFloat(document.body.style.zoom) || 1;
  function report(name, extra) {
    const q = new URLSearchParams({ name, page, phase, origin: location.origin,
      w: innerWidth, h: innerHeight, zoom: zoomOf(), ...extra });
    fetch('/event?' + q, { keepalive: true }).catch(() => {});
  }
  function zoom(f) {
    document.body.style.zoom = String(f);
    report('zoom');
  }
  function go(url) {
    report('navigate');
    location.href = url;
  }
  function nextPhase() {
    return 'cases?phase=' + ((parseInt(phase, 10) || 1) + 1);
  }
  function top() {
    addEventListener('resize', () => report('resize'));
    let seq = {{SEQ}}, busy = false;
    setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const r = await fetch('/cmd?after=' + seq);
        for (const c of await r.json()) {
          seq = Math.max(seq, c.seq);
          if (c.do === 'zoom') zoom(c.zoom);
          else if (c.do === 'navigate') go(c.url);
        }
      } catch (_) { /* the site is closing */ }
      busy = false;
    }, 200);
    const zoomAt = Number(params.get('zoom_at')), navAt = Number(params.get('navigate_at'));
    if (zoomAt > 0) setTimeout(() => zoom(Number(params.get('zoom')) || 1.5), zoomAt);
    if (navAt > 0) setTimeout(() => go(params.get('next') || nextPhase()), navAt);
  }
  requestAnimationFrame(() => report('load'));
  return { report, top, phase, zoomOf };
})();
`

// casesPage is the grid of cases. The grid is fixed to the viewport with
// fractional tracks, so each cell stays the same fraction of the picture
// when the viewport is resized or the body zoomed; cells clip their content
// and keep their canaries 10 px inside, away from the neighbours' regions.
// Every canary that is in the markup shows from the first paint.
var casesPage = `<!doctype html><html lang="en" data-page="cases" class="{{HIDE}}"><head><meta charset="utf-8">
<title>Tandem canary cases</title><style>
{{COMMON_CSS}}
html,body{margin:0;height:100%;overflow:hidden;background:#fff;color:#123;font:13px/1.3 sans-serif}
#grid{position:fixed;inset:0;display:grid;grid-template-columns:repeat(4,1fr);grid-template-rows:repeat(3,1fr)}
.cell{position:relative;overflow:hidden;border:1px solid #9ab;contain:paint}
.cell h2{margin:0;padding:6px 10px 0;font-size:12px;font-weight:600;color:#345;white-space:nowrap}
.box{position:absolute;left:10px;right:10px;top:44px;bottom:10px}
.flash{position:absolute}
#flashy{position:absolute;display:none}
#flashy.on{display:block}
.scroller{overflow:auto;background:#f4f7fa}
.row{display:flex;align-items:center;gap:8px;height:22px;padding:0 6px;border-bottom:1px solid #d5dde5}
.row.tall{height:40px}
.sticky{position:sticky;top:0;display:flex;align-items:center;gap:8px;height:40px;padding:0 6px;background:#dde8f0;z-index:1}
.spin{display:flex;align-items:center;gap:8px;width:150px;margin:24px auto 0;padding:6px;background:#e3eef7;
  animation:spin 2.3s ease-in-out infinite alternate}
@keyframes spin{from{transform:rotate(-14deg) scale(.8)}to{transform:rotate(14deg) scale(1.15)}}
iframe{display:block;width:100%;height:100%;border:0}
#big{position:absolute;left:0;bottom:0;width:60px;height:30px;background:#2e8b57;animation:beat 1.9s linear infinite alternate}
</style></head><body>
<div id="grid">
<div class="cell" id="move"><h2>a · moving block</h2><div class="beat"></div>
  <div class="box"><div class="track"><div class="slider"><div class="canary" data-tandem-mask></div></div></div></div></div>
<div class="cell" id="flash-insert"><h2>b · inserted for one frame</h2><div class="beat"></div>
  <div class="box" id="flash-box"></div></div>
<div class="cell" id="flash-class"><h2>b · shown for one frame</h2><div class="beat"></div>
  <div class="box" id="flashy-box"><div class="canary" id="flashy" data-tandem-mask></div></div></div>
<div class="cell" id="scroll-rows"><h2>c · rows added while scrolling</h2><div class="beat"></div>
  <div class="box scroller" id="rows"></div></div>
<div class="cell" id="sticky"><h2>d · sticky header</h2><div class="beat"></div>
  <div class="box scroller" id="sticky-scroll"><div class="sticky"><div class="canary" data-tandem-mask></div>Account</div>
  ` + plainRows(30) + `</div></div>
<div class="cell" id="transformed"><h2>d · transformed header</h2><div class="beat"></div>
  <div class="box"><div class="spin"><div class="canary" data-tandem-mask></div>Card on file</div></div></div>
<div class="cell" id="iframe-same"><h2>e · same-origin frame</h2><div class="beat"></div>
  <div class="box"><iframe src="/frame{{HIDEQ}}" title="same-origin frame"></iframe></div></div>
<div class="cell" id="iframe-cross"><h2>e · cross-origin frame</h2><div class="beat"></div>
  <div class="box"><iframe src="{{OTHER}}/frame{{HIDEQ}}" title="cross-origin frame"></iframe></div></div>
<div class="cell" id="shadow"><h2>f · open shadow root</h2><div class="beat"></div>
  <div class="box" id="shadow-host"><template shadowrootmode="open"><style>{{COMMON_CSS}}</style>
    <div class="track"><div class="slider"><div class="canary" data-tandem-mask></div></div></div></template></div></div>
<div class="cell" id="password"><h2>g · password field</h2><div class="beat"></div>
  <div class="box"><div class="track" style="--w:120px;--h:36px"><div class="slider">
    <input type="password" class="secret-input" value="hunter2hunter2" aria-label="password"></div></div></div></div>
<div class="cell" id="cc-number"><h2>g · card number field</h2><div class="beat"></div>
  <div class="box"><div class="track" style="--w:120px;--h:36px"><div class="slider">
    <input autocomplete="cc-number" class="secret-input" value="4111111111111111" aria-label="card number"></div></div></div></div>
<div class="cell" id="info"><h2>Tandem canary page</h2><div class="beat"></div>
  <div class="box"><p id="status"></p><div id="big"></div></div></div>
</div>
<script>
{{COMMON_JS}}
canary.top();
(() => {
  // A fixed pseudo-random sequence: the same positions on every run.
  let seed = 7;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor((seed / 2147483648) * Math.max(1, n)); };
  const place = (el, box) => {
    el.style.left = rand(box.clientWidth - 48) + 'px';
    el.style.top = rand(box.clientHeight - 32) + 'px';
  };
  const flashBox = document.getElementById('flash-box');
  const flashyBox = document.getElementById('flashy-box');
  const flashy = document.getElementById('flashy');
  const rows = document.getElementById('rows');
  const sticky = document.getElementById('sticky-scroll');
  const status = document.getElementById('status');
  let rowN = 0;
  const addRow = () => {
    const d = document.createElement('div');
    d.className = 'row';
    rowN++;
    if (rowN % 3 === 0) {
      d.classList.add('tall');
      const c = document.createElement('div');
      c.className = 'canary';
      c.setAttribute('data-tandem-mask', '');
      d.append(c);
    }
    d.append('Order ' + rowN);
    rows.append(d);
    if (rows.children.length > 120) rows.firstElementChild.remove();
  };
  for (let i = 0; i < 30; i++) addRow();
  let n = 0, inserted = null, shown = false, dir = 1;
  const tick = () => {
    n++;
    // b: a canary inserted every 8 frames and removed on the next one;
    // another made visible (display) for one frame, each time elsewhere.
    if (inserted) {
      inserted.remove();
      inserted = null;
    } else if (n % 8 === 0) {
      inserted = document.createElement('div');
      inserted.className = 'canary flash';
      inserted.setAttribute('data-tandem-mask', '');
      place(inserted, flashBox);
      flashBox.append(inserted);
    }
    if (shown) {
      flashy.classList.remove('on');
      shown = false;
    } else if (n % 8 === 4) {
      place(flashy, flashyBox);
      flashy.classList.add('on');
      shown = true;
    }
    // c: the rows scroll on every frame and grow at the bottom.
    rows.scrollTop += 5;
    if (rows.scrollTop + rows.clientHeight >= rows.scrollHeight - 1) rows.scrollTop = 0;
    if (n % 6 === 0) addRow();
    // d: the sticky header's container scrolls up and down.
    sticky.scrollTop += 3 * dir;
    if (sticky.scrollTop + sticky.clientHeight >= sticky.scrollHeight - 1) dir = -1;
    else if (sticky.scrollTop <= 0) dir = 1;
    status.textContent = 'phase ' + canary.phase + ' · ' + innerWidth + '×' + innerHeight + ' · zoom ' + canary.zoomOf() + ' · frame ' + n;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
</script></body></html>`

// framePage is what the cases page's iframes show: a canary sliding
// across the frame.
const framePage = `<!doctype html><html lang="en" data-page="frame" class="{{HIDE}}"><head><meta charset="utf-8"><style>
{{COMMON_CSS}}
html,body{margin:0;height:100%;overflow:hidden;background:#eef6f0;color:#123;font:12px sans-serif}
.box{position:absolute;inset:14px 4px 4px 4px}
.beat{top:4px;left:4px}
</style></head><body><div class="beat"></div>
<div class="box"><div class="track"><div class="slider"><div class="canary" data-tandem-mask></div></div></div></div>
<script>{{COMMON_JS}}</script></body></html>`

// plainRows returns n rows of text without canaries.
func plainRows(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `<div class="row">Statement %d</div>`, i)
	}
	return b.String()
}

// formSections is how many groups of fields the form page has: about
// 110 px each, several thousand px in all.
const formSections = 48

// formPage is a checkout form, root-scrolling, with canary fields in every
// group and a sticky bar with a canary; its script scrolls the root up and
// down on every frame and inserts groups with canaries meanwhile.
func formPage() string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en" data-page="form" class="{{HIDE}}"><head><meta charset="utf-8">
<title>Tandem canary checkout</title><style>
{{COMMON_CSS}}
html{scroll-behavior:auto}
body{margin:0;background:#fff;color:#123;font:14px/1.3 sans-serif}
.bar{position:sticky;top:0;z-index:2;height:10vh;box-sizing:border-box;display:flex;align-items:center;gap:16px;
  padding:0 16px;background:#dde8f0;border-bottom:1px solid #9ab}
.bar .beat{top:auto;bottom:4px}
main{max-width:860px;margin:0 auto;padding:8px 16px 40px}
section{display:flex;flex-wrap:wrap;align-items:center;gap:10px 18px;padding:10px 0;border-bottom:1px solid #d5dde5}
section h3{flex-basis:100%;margin:0;font-size:13px;color:#345}
label{display:flex;align-items:center;gap:6px}
input.plain{width:140px;height:30px;border:1px solid #9ab;padding:0 6px;font:14px sans-serif}
section.inserted{background:#f4f7fa}
</style></head><body>
<header class="bar"><strong>Checkout</strong><div class="canary" data-tandem-mask></div><span id="pos"></span><div class="beat"></div></header>
<main id="form">
`)
	for i := 1; i <= formSections; i++ {
		fmt.Fprintf(&b, `<section><h3>Step %d</h3><label>Name <input class="plain" value="Customer %d"></label>`, i, i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `<label>Card <input autocomplete="cc-number" class="secret-input" value="41111111%08d"></label>`, i)
		case 1:
			b.WriteString(`<label>Password <input type="password" class="secret-input" value="hunter2hunter2"></label>`)
		case 2:
			b.WriteString(`<label>Note <div class="canary" data-tandem-mask></div></label>`)
		case 3:
			fmt.Fprintf(&b, `<label>Card <input autocomplete="cc-number" class="secret-input" value="55555555%08d"></label>`, i)
		}
		b.WriteString("</section>\n")
	}
	b.WriteString(`</main>
<script>
{{COMMON_JS}}
canary.top();
(() => {
  const form = document.getElementById('form');
  const pos = document.getElementById('pos');
  let n = 0, dir = 1, added = 0;
  const inserted = [];
  const tick = () => {
    n++;
    scrollBy(0, 9 * dir);
    const max = document.documentElement.scrollHeight - innerHeight;
    if (scrollY >= max - 1) dir = -1;
    else if (scrollY <= 0) dir = 1;
    // A group with a canary appears among the groups now on screen.
    if (n % 15 === 0) {
      const s = document.createElement('section');
      s.className = 'inserted';
      added++;
      s.innerHTML = '<h3>Added ' + added + '</h3><label>Saved card <div class="canary" data-tandem-mask></div></label>';
      const onScreen = [...form.children].filter((el) => {
        const r = el.getBoundingClientRect();
        return r.bottom > 0 && r.top < innerHeight;
      });
      const at = onScreen[n % Math.max(1, onScreen.length)] || form.lastElementChild;
      form.insertBefore(s, at);
      inserted.push(s);
      if (inserted.length > 40) inserted.shift().remove();
    }
    pos.textContent = 'scroll ' + Math.round(scrollY) + ' · frame ' + n;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  // Whether the page animates, for the tests' logs.
  setInterval(() => canary.report('tick', { frames: n, vis: document.visibilityState }), 2000);
})();
</script></body></html>`)
	return b.String()
}
