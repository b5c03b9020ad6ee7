// Tandem's highlight tracker. It runs in the same isolated world as the
// mask and block scripts, in every document of the hosted tab, where page
// scripts can neither see nor change it; the worker asks only the top
// document's. pick finds the element at a viewport point (through open
// shadow roots and same-origin frames; a cross-origin frame is the frame
// element itself; in masked content, the outermost masked element) and
// remembers it under the worker's id; rects measures every remembered
// element in page coordinates of the top document. The page is never
// changed: viewers draw the boxes. See docs/annotations.md.
(() => {
  'use strict';
  if (globalThis.__tandemAnnotate) return;
  const json = JSON.stringify;
  const MAX_DEPTH = 8;
  const LIMIT = 1e7;

  // The elements picked, by the worker's id. The worker lists the ids it
  // still shows with every rects call; the others are forgotten.
  const picked = new Map();

  // The DOM walking helpers of the mask script, in this world before this
  // one; without it nothing is highlighted (pick answers none).
  const M = globalThis.__tandemMask || {};
  const childDoc = (fr) => M.childDoc(fr);
  const contentOrigin = (fr) => M.contentOrigin(fr);

  function isFrame(el) {
    return el.tagName === 'IFRAME' || el.tagName === 'FRAME';
  }

  // deepest returns the element at (x, y) of doc's viewport, through open
  // shadow roots and same-origin frames, or null for nothing but the
  // document's root (html, body).
  function deepest(doc, x, y, depth) {
    let el = doc.elementFromPoint(x, y);
    while (el && el.shadowRoot) {
      const inner = el.shadowRoot.elementFromPoint(x, y);
      if (!inner || inner === el) break;
      el = inner;
    }
    if (!el) return null;
    if (isFrame(el)) {
      const child = childDoc(el);
      if (child && child.documentElement && depth < MAX_DEPTH) {
        const o = contentOrigin(el);
        const inner = deepest(child, x - o.x, y - o.y, depth + 1);
        if (inner) return inner;
      }
      return el; // cross-origin, or its own root: the frame itself
    }
    if (el === doc.documentElement || el === doc.body) return null;
    return el;
  }

  // shown returns what a highlight of el shows: the outermost masked
  // element holding it when el is masked content (the mask script, in this
  // world before this one, knows the company's rules), so that a box never
  // tells more of masked content than the painted area does.
  function shown(el) {
    const m = globalThis.__tandemMask;
    if (!m || typeof m.maskedRoot !== 'function') return null; // cannot tell: nothing
    return m.maskedRoot(el) || el;
  }

  function visible(el) {
    if (typeof el.checkVisibility !== 'function') return true;
    return el.checkVisibility({ checkVisibilityCSS: true, visibilityProperty: true });
  }

  function round(v) {
    return Math.round(v * 100) / 100;
  }

  // pageRect returns el's border box in page CSS pixels of the top
  // document, or null when it is gone (out of the document, its frame gone
  // or navigated away), hidden, or has no size.
  function pageRect(el) {
    if (!el.isConnected || !visible(el)) return null;
    const r = el.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) return null;
    let x = r.left;
    let y = r.top;
    let doc = el.ownerDocument;
    for (let depth = 0; doc !== document; depth++) {
      const win = doc.defaultView;
      if (!win || depth >= MAX_DEPTH) return null;
      let fr = null;
      try {
        fr = win.frameElement;
      } catch (_) {
        return null;
      }
      if (!fr || !fr.isConnected || fr.contentDocument !== doc) return null;
      const o = contentOrigin(fr);
      x += o.x;
      y += o.y;
      doc = fr.ownerDocument;
    }
    const out = [round(x + window.scrollX), round(y + window.scrollY), round(r.width), round(r.height)];
    return out.every((v) => Number.isFinite(v) && Math.abs(v) <= LIMIT) ? out : null;
  }

  Object.defineProperty(globalThis, '__tandemAnnotate', {
    value: Object.freeze({
      // pick remembers the element at (x, y) of the viewport under id and
      // answers {"rect":[x,y,w,h]} in page pixels, or {"none":true}.
      pick(id, x, y) {
        try {
          const hit = deepest(document, x, y, 0);
          const el = hit && shown(hit);
          const r = el && pageRect(el);
          if (!r) return json({ none: true });
          picked.set(String(id), el);
          return json({ rect: r });
        } catch (e) {
          return json({ none: true, error: String((e && e.message) || e).slice(0, 80) });
        }
      },
      // rects answers {"<id>":[x,y,w,h] or null (gone), ...} for ids, and
      // forgets every element not listed.
      rects(ids) {
        const want = new Set(ids.map(String));
        for (const id of picked.keys()) {
          if (!want.has(id)) picked.delete(id);
        }
        const out = {};
        for (const id of want) {
          const el = picked.get(id);
          let r = null;
          try {
            r = el ? pageRect(el) : null;
          } catch (_) {
            r = null;
          }
          if (!r) picked.delete(id);
          out[id] = r;
        }
        return json(out);
      },
    }),
  });
})();
