// Tandem's blocking guard. It runs in the same isolated world as the mask
// script (pkg/mask), in every document of the hosted tab, where page
// scripts can neither see nor change it. It answers the worker's questions
// before an agent's event is dispatched (layer 1: what is under the
// pointer, what has the focus, what Enter or an accesskey would activate)
// and, while the worker has it armed around the dispatch of an agent's
// event, cancels click, submit and activation keys on blocked targets
// (layer 2). See docs/blocking.md.
(() => {
  'use strict';
  if (globalThis.__tandemBlock) return;
  const CONFIG = __TANDEM_BLOCK_CONFIG__;
  const json = JSON.stringify;
  const BLOCK = '[data-tandem-block]';
  const ALLOW = '[data-tandem-allow]';

  // The mask script, in the same world before this one, scopes rules by
  // URL for both and lends its DOM walking helpers.
  const M = globalThis.__tandemMask;
  if (!M || typeof M.scoped !== 'function') return; // no guard: every check refuses
  const { scoped, up, childDoc, contentOrigin } = M;
  const blockIn = scoped(CONFIG.block);
  const allowIn = scoped(CONFIG.allow);
  const allowlist = !!CONFIG.allowlist;

  // rulesIn returns the selectors that apply in doc, the built-in first.
  function rulesIn(inDoc, builtin, doc) {
    return [builtin].concat(inDoc(doc));
  }
  // firstMatch returns the first of sels that el matches, or ''.
  function firstMatch(el, sels) {
    for (const s of sels) {
      try {
        if (el.matches(s)) return s;
      } catch (_) {
        // A selector this page's engine rejects matches nothing here.
      }
    }
    return '';
  }

  // blockedBy returns why the agent may not operate el: the selector that
  // blocks it, or one of its ancestors, or a control it is the label of;
  // "allowlist" when the company allows only some elements and el is not
  // one of them; '' when el may be operated.
  function blockedBy(el, depth) {
    if (!el || depth > 4) return '';
    for (let n = el; n; n = up(n)) {
      if (n.nodeType !== 1) continue;
      const s = firstMatch(n, rulesIn(blockIn, BLOCK, n.ownerDocument));
      if (s) return s;
      if (n.tagName === 'LABEL' && n.control && n.control !== el) {
        const c = blockedBy(n.control, depth + 1);
        if (c) return c;
      }
    }
    if (!allowlist) return '';
    for (let n = el; n; n = up(n)) {
      if (n.nodeType === 1 && firstMatch(n, rulesIn(allowIn, ALLOW, n.ownerDocument))) return '';
    }
    return 'allowlist';
  }

  // The frames the worker tagged (through the mask script) can be asked in
  // turn; any other frame we cannot look into is refused.
  function frameTag(el) {
    return M.frameTag(el) || '';
  }

  // hit returns the verdict on a pointer press at (x, y) of this document's
  // viewport: the element there, through open shadow roots and same-origin
  // frames; a cross-origin frame is handed back to the worker.
  function hit(doc, x, y, depth) {
    if (depth > 8) return { ok: false, selector: 'frames nested too deep', method: 'pointer' };
    let el = doc.elementFromPoint(x, y);
    while (el && el.shadowRoot) {
      const inner = el.shadowRoot.elementFromPoint(x, y);
      if (!inner || inner === el) break;
      el = inner;
    }
    if (!el) return { ok: true };
    const by = blockedBy(el, 0);
    if (by) return { ok: false, selector: by, method: 'pointer' };
    if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
      const o = contentOrigin(el);
      const child = childDoc(el);
      if (o.transformed) return { ok: false, selector: 'transformed frame', method: 'pointer' };
      if (child && child.documentElement) return hit(child, x - o.x, y - o.y, depth + 1);
      const tag = frameTag(el);
      if (!tag) return { ok: false, selector: 'frame', method: 'pointer' };
      return { frame: tag, x: x - o.x, y: y - o.y };
    }
    return { ok: true };
  }

  // deepFocus returns the focused element through shadow roots and
  // same-origin frames, or a cross-origin frame element.
  function deepFocus(doc, depth) {
    let el = doc.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (el && depth < 8 && (el.tagName === 'IFRAME' || el.tagName === 'FRAME')) {
      const child = childDoc(el);
      if (child) return deepFocus(child, depth + 1);
    }
    return el;
  }

  // defaultButton is the form's first submit button, the one Enter in a
  // field of the form activates (implicit submission).
  function defaultButton(form) {
    if (!form || !form.elements) return null;
    for (const el of form.elements) {
      const type = (el.getAttribute('type') || '').toLowerCase();
      if ((el.tagName === 'BUTTON' && (type === '' || type === 'submit')) ||
          (el.tagName === 'INPUT' && (type === 'submit' || type === 'image'))) return el;
    }
    return null;
  }

  // accessTargets returns the elements whose accesskey is key, in doc, its
  // open shadow roots and same-origin frames.
  function accessTargets(doc, key, out, depth) {
    if (depth > 8) return out;
    const roots = [doc];
    for (let i = 0; i < roots.length; i++) {
      for (const el of roots[i].querySelectorAll('*')) {
        if (el.shadowRoot) roots.push(el.shadowRoot);
        const ak = el.getAttribute('accesskey');
        if (ak && ak.split(/\s+/).some((k) => k.toLowerCase() === key)) out.push(el);
        if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
          const child = childDoc(el);
          if (child) accessTargets(child, key, out, depth + 1);
        }
      }
    }
    return out;
  }

  const MOVE_KEYS = new Set(['Tab', 'Escape', 'Shift', 'Control', 'Alt', 'Meta', 'CapsLock']);
  const ALT = 1, CTRL = 2, META = 4;

  // key returns the verdict on a key press (or composed text when key is
  // ''): refused when the focus is on a blocked element, when Enter would
  // submit a form whose default button (or the form) is blocked, and when
  // the key with Alt is the accesskey of a blocked element.
  function key(k, mods) {
    const el = deepFocus(document, 0);
    if (el && (el.tagName === 'IFRAME' || el.tagName === 'FRAME')) {
      const tag = frameTag(el);
      if (!tag) return { ok: false, selector: 'frame', method: 'key' };
      return { frame: tag };
    }
    if (mods & ALT && k.length === 1) {
      for (const t of accessTargets(document, k.toLowerCase(), [], 0)) {
        const by = blockedBy(t, 0);
        if (by) return { ok: false, selector: by, method: 'accesskey' };
      }
    }
    if (MOVE_KEYS.has(k) && !(mods & (ALT | CTRL | META))) return { ok: true };
    const target = el && el !== el.ownerDocument.body && el !== el.ownerDocument.documentElement ? el : null;
    if (target) {
      const by = blockedBy(target, 0);
      if (by) return { ok: false, selector: by, method: k === '' ? 'text' : 'key' };
    }
    if (k === 'Enter' && target && target.form) {
      const by = blockedBy(target.form, 0) === 'allowlist' ? '' : blockedBy(target.form, 0);
      if (by) return { ok: false, selector: by, method: 'implicit submission' };
      const b = defaultButton(target.form);
      const bb = b && blockedBy(b, 0);
      if (bb) return { ok: false, selector: bb, method: 'implicit submission' };
    }
    return { ok: true };
  }

  // ---- layer 2: the guard around an agent's dispatch ----

  let armed = false;
  let caught = [];
  const ACTIVATING = new Set(['Enter', ' ', 'Spacebar']);
  function guard(ev) {
    if (!armed) return;
    const path = ev.composedPath ? ev.composedPath() : [];
    const t = path.length > 0 ? path[0] : ev.target;
    if (!t || t.nodeType !== 1) return;
    let by = '';
    switch (ev.type) {
      case 'submit':
        by = blockedBy(ev.submitter || defaultButton(t), 0) || (blockedBy(t, 0) === 'allowlist' ? '' : blockedBy(t, 0));
        break;
      case 'keydown':
      case 'keypress':
      case 'keyup':
        if (!ACTIVATING.has(ev.key)) return;
        by = blockedBy(t, 0);
        if (!by && ev.key === 'Enter' && t.form) {
          const b = defaultButton(t.form);
          by = (b && blockedBy(b, 0)) || '';
        }
        break;
      default:
        by = blockedBy(t, 0);
    }
    if (!by) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    if (caught.length < 8) caught.push({ type: ev.type, selector: by });
  }
  const GUARDED = ['click', 'dblclick', 'auxclick', 'contextmenu', 'mousedown', 'mouseup', 'pointerdown', 'pointerup',
    'touchstart', 'touchend', 'submit', 'keydown', 'keypress', 'keyup', 'beforeinput', 'input', 'change'];
  // Registered at document start, before any page script: first in line.
  for (const type of GUARDED) window.addEventListener(type, guard, { capture: true });

  Object.defineProperty(globalThis, '__tandemBlock', {
    value: Object.freeze({
      // check answers the worker before an agent's event: kind "pointer"
      // (x, y in this document's viewport), "key" or "text".
      check(kind, x, y, k, mods) {
        try {
          if (kind === 'pointer') return json(hit(document, x, y, 0));
          return json(key(kind === 'text' ? '' : String(k), mods | 0));
        } catch (e) {
          return json({ ok: false, selector: 'error: ' + String((e && e.message) || e).slice(0, 80), method: kind });
        }
      },
      // arm starts cancelling activation of blocked elements; disarm stops
      // and returns what was cancelled meanwhile.
      arm() {
        armed = true;
        caught = [];
        return 'armed';
      },
      disarm() {
        armed = false;
        const out = json(caught);
        caught = [];
        return out;
      },
    }),
  });
})();
