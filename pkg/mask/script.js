// Tandem's mask script. It runs in an isolated world of every document of
// the hosted tab, where page scripts can neither see nor change it, finds the
// elements the agent must not see and reports their rectangles to the worker
// through a CDP binding that exists only in this world. The worker paints
// them over in the agent's copy of each frame (pkg/mask). See
// docs/masking.md for the whole design; the rules that matter here:
//
// - A report is made synchronously, in the same task as the change that
//   caused it (mutation, scroll, resize, focus, input, load, font, animation
//   event), so that it is sent before the page paints the change.
// - While any animation runs, every animation frame is measured.
// - The worker pulls a fresh measurement (flush) whenever it holds a frame
//   newer than the newest report; a change nobody announced is caught then.
//   Pulled reports travel the binding too, so every report reaches the
//   worker in the order the page made it.
// - Rectangles are in document coordinates (client rect + the root scroll
//   at measurement) so that root scrolling needs no new report; elements
//   under position fixed or sticky are marked "bound": valid only at the
//   scroll where they were measured.
// - Same-origin child documents are measured from the top document; a
//   cross-origin frame is reported as opaque (masked whole) by its parent.
// - Any error is reported: the worker then holds the agent's picture.
(() => {
  'use strict';
  if (globalThis.__tandemMask) return;
  const CONFIG = __TANDEM_MASK_CONFIG__;
  const send = globalThis[CONFIG.binding];
  // Keep our own references: nothing here may depend on page prototypes
  // (the isolated world has its own, but be explicit about what is used).
  const now = () => Date.now();
  const json = JSON.stringify;

  let topLevel = true;
  try {
    topLevel = window === window.top;
  } catch (_) {
    topLevel = false;
  }
  let sameOriginParent = false;
  if (!topLevel) {
    try {
      sameOriginParent = !!window.parent.document;
    } catch (_) {
      sameOriginParent = false;
    }
  }
  // A same-origin child is measured by its parent's instance of this
  // script; it only exposes flush for completeness.
  const reporter = topLevel || !sameOriginParent;

  const BUILTIN = [
    'input[type=password i]',
    'input[autocomplete~=cc-number i]', 'input[autocomplete~=cc-csc i]', 'input[autocomplete~=cc-exp i]',
    'input[autocomplete~=cc-exp-month i]', 'input[autocomplete~=cc-exp-year i]',
    'input[autocomplete~=one-time-code i]', 'input[autocomplete~=new-password i]',
    'input[autocomplete~=current-password i]',
    '[data-tandem-mask]',
  ].join(',');
  const PRIVATE_FIELDS = 'input:not([type=hidden i]),textarea,select,[contenteditable]:not([contenteditable=false i]),[data-tandem-private]';
  const SUBTREE = '[data-tandem-mask],[data-tandem-private]';

  function globToRegExp(glob) {
    const esc = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
    return new RegExp('^' + esc + '$');
  }
  function compile(rules) {
    return (rules || []).map((r) => ({ selector: r.selector, urls: (r.urls || []).map(globToRegExp) }));
  }
  // scoped returns, for rules, the function that lists the selectors of
  // those that apply in a document (the blocking script uses it too).
  function scoped(rules) {
    const compiled = compile(rules);
    return (doc) => {
      const href = String(doc.location && doc.location.href);
      return compiled.filter((r) => inScope(r, href)).map((r) => r.selector);
    };
  }
  const maskRules = compile(CONFIG.mask);
  const unmaskRules = compile(CONFIG.unmask);
  const privateByDefault = !!CONFIG.private;

  function inScope(rule, href) {
    return rule.urls.length === 0 || rule.urls.some((re) => re.test(href));
  }
  // selectors returns the mask and unmask selectors that apply in doc.
  function selectors(doc) {
    const href = String(doc.location && doc.location.href);
    const mask = [BUILTIN];
    for (const r of maskRules) if (inScope(r, href)) mask.push(r.selector);
    if (privateByDefault) mask.push(PRIVATE_FIELDS);
    const unmask = ['[data-tandem-unmask]'];
    for (const r of unmaskRules) if (inScope(r, href)) unmask.push(r.selector);
    return { mask: mask.join(','), builtin: [BUILTIN].concat(maskRules.filter((r) => inScope(r, href)).map((r) => r.selector)).join(','), unmask: unmask.join(',') };
  }

  const docId = Math.random().toString(36).slice(2) + now().toString(36);
  let seq = 0;
  let lastKey = '';
  let dead = false;
  let animating = false;

  // ---- observation ----

  const observed = new WeakSet();
  const mo = new MutationObserver(() => report());
  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => report()) : null;
  const EVENTS = ['scroll', 'focusin', 'focusout', 'input', 'change', 'load', 'transitionrun', 'transitionstart',
    'transitionend', 'transitioncancel', 'animationstart', 'animationiteration', 'animationend', 'animationcancel',
    'toggle', 'pointerover', 'pointerout', 'keydown', 'keyup', 'mousedown', 'mouseup', 'click', 'resize'];

  function observeRoot(root) {
    if (!root || observed.has(root)) return;
    observed.add(root);
    mo.observe(root, { subtree: true, childList: true, attributes: true, characterData: true });
    for (const type of EVENTS) root.addEventListener(type, onEvent, { capture: true, passive: true });
  }
  function observeDoc(doc) {
    if (!doc || observed.has(doc)) return;
    observeRoot(doc);
    const win = doc.defaultView;
    if (win) {
      for (const type of ['resize', 'scroll', 'pagehide', 'pageshow']) win.addEventListener(type, onEvent, { capture: true, passive: true });
      if (win.visualViewport) {
        win.visualViewport.addEventListener('resize', onEvent, { passive: true });
        win.visualViewport.addEventListener('scroll', onEvent, { passive: true });
      }
    }
    if (doc.fonts && doc.fonts.addEventListener) {
      doc.fonts.addEventListener('loadingdone', onEvent);
      doc.fonts.addEventListener('loading', onEvent);
    }
    watchSize(doc);
  }
  // The root element does not exist at document start: watch its size
  // once it does.
  const sized = new WeakSet();
  function watchSize(doc) {
    const root = doc.documentElement;
    if (!ro || !root || sized.has(root)) return;
    sized.add(root);
    ro.observe(root);
  }
  function onEvent(ev) {
    if (ev && ev.type === 'pagehide' && ev.target === document) dead = true;
    if (ev && ev.type === 'pageshow' && ev.target === document) dead = false;
    report();
    if (ev && /^(animation|transition)/.test(ev.type)) startFrames();
  }

  // While animations run, measure in every animation frame: they move
  // things without mutations.
  function startFrames() {
    if (animating) return;
    animating = true;
    requestAnimationFrame(frame);
  }
  function frame() {
    report();
    if (runningAnimations()) requestAnimationFrame(frame);
    else animating = false;
  }
  function runningAnimations() {
    try {
      return document.getAnimations().some((a) => a.playState === 'running' || a.playState === 'pending');
    } catch (_) {
      return true; // cannot tell: keep measuring
    }
  }

  // ---- measurement ----

  function round(v) {
    return Math.round(v * 10) / 10;
  }

  // Is el (or anything it hangs from, up to its document) fixed or sticky?
  function boundTo(el, cache) {
    const chain = [];
    let bound = false;
    for (let n = el; n; ) {
      if (cache.has(n)) {
        bound = cache.get(n);
        break;
      }
      chain.push(n);
      const st = n.ownerDocument.defaultView.getComputedStyle(n);
      if (st.position === 'fixed' || st.position === 'sticky') {
        bound = true;
        break;
      }
      n = n.parentElement || (n.getRootNode && n.getRootNode().host) || null;
    }
    for (const n of chain) cache.set(n, bound);
    return bound;
  }

  // shadowRoots returns the open shadow roots under root, recursively.
  function shadowRoots(root, out) {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) {
        out.push(el.shadowRoot);
        shadowRoots(el.shadowRoot, out);
      }
    }
    return out;
  }

  // measure returns the report of this document as of now.
  function measure() {
    const rects = [];
    const opaque = [];
    let focus = false;
    const sx = window.scrollX;
    const sy = window.scrollY;
    const ctx = { rects, opaque, sx, sy, cache: new Map() };
    walkDoc(document, 0, 0, false, ctx, 0);
    focus = focusMasked(document, 0);
    // The scroll reported is the visual viewport's total offset: what the
    // frame's metadata must match. Rectangles stay in layout coordinates.
    const vv = window.visualViewport;
    return {
      v: 1,
      doc: docId,
      seq: ++seq,
      t: now(),
      w: window.innerWidth,
      h: window.innerHeight,
      sx: round(sx + (vv ? vv.offsetLeft : 0)),
      sy: round(sy + (vv ? vv.offsetTop : 0)),
      scale: vv ? vv.scale : 1,
      r: rects,
      o: opaque,
      f: focus ? 1 : 0,
      a: animating ? 1 : 0,
      org: String(location.origin).slice(0, 200),
    };
  }

  function push(ctx, r, bound) {
    if (!(r.width > 0 && r.height > 0)) return;
    ctx.rects.push([round(r.left + ctx.sx), round(r.top + ctx.sy), round(r.width), round(r.height), bound ? 1 : 0]);
  }

  // walkDoc measures doc, whose viewport sits at (ox, oy) in the top
  // viewport; bound says the frame holding doc is itself fixed or sticky.
  function walkDoc(doc, ox, oy, bound, ctx, depth) {
    if (depth > 8) throw new Error('frames nested too deep');
    observeDoc(doc);
    const sel = selectors(doc);
    const roots = [doc].concat(shadowRoots(doc, []));
    for (const root of roots) {
      if (root !== doc) observeRoot(root);
      for (const el of root.querySelectorAll(sel.mask)) {
        // Unmask marks exempt only what private-by-default masked.
        if (!el.matches(sel.builtin) && el.closest(sel.unmask)) continue;
        const b = bound || boundTo(el, ctx.cache);
        const r = el.getBoundingClientRect();
        push(ctx, shift(r, ox, oy), b);
        if (el.matches(SUBTREE)) {
          // Content can overflow its box: take the range of its contents too.
          const range = doc.createRange();
          range.selectNodeContents(el);
          push(ctx, shift(range.getBoundingClientRect(), ox, oy), b);
          for (const inner of el.querySelectorAll('iframe,frame,object,embed')) {
            push(ctx, shift(inner.getBoundingClientRect(), ox, oy), b);
          }
        }
      }
      for (const fr of root.querySelectorAll('iframe,frame')) {
        walkFrame(fr, ox, oy, bound || boundTo(fr, ctx.cache), ctx, depth);
      }
      // Plugins and embedded documents cannot be seen into: masked whole.
      for (const el of root.querySelectorAll('object,embed')) {
        const r = shift(el.getBoundingClientRect(), ox, oy);
        if (r.width > 0 && r.height > 0) ctx.opaque.push([round(r.left + ctx.sx), round(r.top + ctx.sy), round(r.width), round(r.height), bound || boundTo(el, ctx.cache) ? 1 : 0, '']);
      }
    }
  }

  function shift(r, ox, oy) {
    return { left: r.left + ox, top: r.top + oy, width: r.width, height: r.height };
  }

  // up goes to the parent element, through shadow hosts and out of
  // same-origin frames to their element.
  function up(n) {
    if (n.parentElement) return n.parentElement;
    const root = n.getRootNode && n.getRootNode();
    if (root && root.host) return root.host;
    try {
      const fe = n.ownerDocument && n.ownerDocument.defaultView && n.ownerDocument.defaultView.frameElement;
      if (fe) return fe;
    } catch (_) {
      // A cross-origin parent: nothing above is known here.
    }
    return null;
  }

  // maskedRoot returns the outermost masked element that is el or holds
  // it, or null when el is not masked content.
  function maskedRoot(el) {
    let out = null;
    for (let n = el, depth = 0; n && depth < 256; n = up(n), depth++) {
      if (n.nodeType !== 1) continue;
      const sel = selectors(n.ownerDocument);
      try {
        if (n.matches(sel.mask) && (n.matches(sel.builtin) || !n.closest(sel.unmask))) out = n;
      } catch (_) {
        out = n; // a selector this engine rejects: assume the worst
      }
    }
    return out;
  }

  // childDoc returns a frame's document, or null when it is cross-origin.
  function childDoc(fr) {
    try {
      return fr.contentDocument;
    } catch (_) {
      return null;
    }
  }

  // contentOrigin is where a frame's viewport sits in its parent's (inside
  // its border and padding), and whether the frame is transformed (then
  // offsets from it are wrong).
  function contentOrigin(fr) {
    const r = fr.getBoundingClientRect();
    const cs = fr.ownerDocument.defaultView.getComputedStyle(fr);
    return {
      x: r.left + fr.clientLeft + parseFloat(cs.paddingLeft || '0'),
      y: r.top + fr.clientTop + parseFloat(cs.paddingTop || '0'),
      transformed: Math.abs(r.width - fr.offsetWidth) > 1 || Math.abs(r.height - fr.offsetHeight) > 1,
    };
  }

  // walkFrame descends into a same-origin frame, or reports it opaque.
  function walkFrame(fr, ox, oy, bound, ctx, depth) {
    const r = fr.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) return;
    const child = childDoc(fr);
    // The frame's content box inside its border and padding.
    const o = contentOrigin(fr);
    const left = o.x + ox;
    const top = o.y + oy;
    const transformed = o.transformed;
    if (!child || !child.documentElement || transformed) {
      // Cross-origin (or transformed: our offsets would be wrong): the
      // worker masks it whole unless that frame reports for itself.
      // The content box lets the worker place the frame's own report in
      // it; a transformed frame is never tagged, so stays masked whole.
      const tag = transformed ? '' : tagOf(fr);
      ctx.opaque.push([round(r.left + ox + ctx.sx), round(r.top + oy + ctx.sy), round(r.width), round(r.height), bound ? 1 : 0, tag,
        round(left + ctx.sx), round(top + ctx.sy), round(fr.clientWidth), round(fr.clientHeight)]);
      return;
    }
    walkDoc(child, left, top, bound, ctx, depth + 1);
  }

  // Frames tagged by the worker (through CDP) with their frame id, so that a
  // cross-origin frame's own report can be placed.
  const tags = new WeakMap();
  function tagOf(fr) {
    return tags.get(fr) || '';
  }

  // focusMasked says whether keyboard focus is in a masked element.
  function focusMasked(doc, depth) {
    let el = doc.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (!el || depth > 8) return false;
    if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
      const child = childDoc(el);
      // A frame we cannot look into may hold anything: fail closed.
      return child ? focusMasked(child, depth + 1) : true;
    }
    const sel = selectors(el.ownerDocument);
    const masked = el.closest(sel.mask);
    if (!masked) return false;
    return !!(masked.matches(sel.builtin) || el.closest(sel.builtin) || !el.closest(sel.unmask));
  }

  // selectionMasked says whether the selection of doc (or of a same-origin
  // child) touches masked content.
  function selectionMasked(doc, depth) {
    if (depth > 8) return true;
    const win = doc.defaultView;
    const sel = win && win.getSelection();
    if (sel && sel.rangeCount > 0 && !sel.isCollapsed) {
      const s = selectors(doc);
      for (let i = 0; i < sel.rangeCount; i++) {
        const range = sel.getRangeAt(i);
        for (const el of doc.querySelectorAll(s.mask)) {
          if (range.intersectsNode(el) && (el.matches(s.builtin) || !el.closest(s.unmask))) return true;
        }
      }
    }
    for (const fr of doc.querySelectorAll('iframe,frame')) {
      const child = childDoc(fr);
      if (child && selectionMasked(child, depth + 1)) return true;
    }
    return false;
  }

  function clearSelections(doc, depth) {
    if (depth > 8) return;
    const sel = doc.defaultView && doc.defaultView.getSelection();
    if (sel) sel.removeAllRanges();
    for (const fr of doc.querySelectorAll('iframe,frame')) {
      const child = childDoc(fr);
      if (child) clearSelections(child, depth + 1);
    }
  }

  // ---- reporting ----

  function safeMeasure() {
    try {
      return measure();
    } catch (e) {
      return { v: 1, doc: docId, seq: ++seq, t: now(), err: String((e && e.message) || e).slice(0, 200) };
    }
  }

  // report sends a measurement when anything in it changed.
  function report() {
    if (!reporter || dead || typeof send !== 'function') return;
    const rep = safeMeasure();
    const key = json([rep.w, rep.h, rep.sx, rep.sy, rep.scale, rep.r, rep.o, rep.f, rep.err]);
    if (key === lastKey && !rep.err) return;
    lastKey = key;
    send(json(rep));
  }

  Object.defineProperty(globalThis, '__tandemMask', {
    value: Object.freeze({
      // flush measures now, sends the report like any other and returns
      // it; the worker calls it. The report must travel the binding: an
      // answer to the worker's call could overtake reports sent before it,
      // and the worker would take a history with a gap for a whole one.
      flush() {
        const rep = safeMeasure();
        if (!rep.err) {
          lastKey = json([rep.w, rep.h, rep.sx, rep.sy, rep.scale, rep.r, rep.o, rep.f, rep.err]);
        }
        const out = json(rep);
        if (reporter && typeof send === 'function') send(out);
        if (runningAnimations()) startFrames();
        return out;
      },
      // tag records a cross-origin frame's CDP frame id on its element.
      tag(el, id) {
        tags.set(el, String(id));
        report();
      },
      scoped,
      // Walking the DOM, for the block and highlight scripts of this world:
      // up (parent through shadow hosts and same-origin frames), childDoc
      // (a frame's document, null cross-origin), contentOrigin (a frame's
      // viewport in its parent's).
      up,
      childDoc,
      contentOrigin,
      // frameTag returns the frame id tagged on a frame element, or ''
      // (the blocking guard asks a tagged frame in turn).
      frameTag(el) {
        return tagOf(el);
      },
      // guard answers, before an agent's event is dispatched, whether it
      // must be refused: a key while the focus or the selection is in
      // masked content (typing, pasting, copying). Before a mouse press it
      // clears a selection of masked content, so that it cannot be dragged
      // out, and allows the press.
      guard(kind) {
        try {
          if (kind === 'down') {
            if (selectionMasked(document, 0)) clearSelections(document, 0);
            return false;
          }
          return focusMasked(document, 0) || selectionMasked(document, 0);
        } catch (_) {
          return true;
        }
      },
      // maskedRoot returns the outermost masked element holding el (or el),
      // or null: the highlight tracker shows no more of masked content
      // than the painted area.
      maskedRoot(el) {
        return maskedRoot(el);
      },
      // poke is a change in a same-origin child document.
      poke() {
        report();
      },
    }),
  });

  if (!reporter) {
    // A same-origin child is measured by the top document's instance: tell
    // it at once when something here changes.
    const poke = () => {
      try {
        window.top.__tandemMask.poke();
      } catch (_) {
        // Not reachable: the worker's flush before each frame still sees it.
      }
    };
    const mo2 = new MutationObserver(poke);
    mo2.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    for (const type of EVENTS) document.addEventListener(type, poke, { capture: true, passive: true });
    return;
  }
  // At document start there may be no root element yet; observing the
  // document itself sees the parser insert everything.
  observeDoc(document);
  document.addEventListener('DOMContentLoaded', () => {
    watchSize(document);
    report();
  }, { capture: true });
  report();
  if (runningAnimations()) startFrames();
})();
