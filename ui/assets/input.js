// Input capture of the live remote tab: the visitor's pointer, touch, wheel,
// keyboard, IME and paste on the <video>, turned into input events of
// docs/protocol.md in remote viewport pixels (pkg/input.Event on the wire).
//
// A RemoteInput only captures and converts; the Viewer owns the
// DataChannels and tells it where to send and whether the tab is live.

const MOVE_INTERVAL_MS = 16; // pointer moves at about 60 Hz
const WHEEL_INTERVAL_MS = 16;
const DOUBLE_CLICK_MS = 500;
const DOUBLE_CLICK_SLOP = 6; // CSS px between the clicks of a double click
const TAP_SLOP = 10; // CSS px a finger may move and still tap
const MAX_TOUCHES = 5; // input.MaxTouches: fingers sent at once
const MAX_TOUCH_ID = 31; // input.MaxTouchID
const TOUCH_FOCUS_MS = 800;
const VIEWPORT_DEBOUNCE_MS = 250;
const MAX_TEXT_BYTES = 4000; // below input.MaxTextLen (4096)
const MAX_KEY_BYTES = 32;
const MAX_WHEEL = 10000;
const LINE_PX = 40; // one wheel line (deltaMode 1) in CSS px

const BUTTONS = ['left', 'middle', 'right']; // by PointerEvent.button
const BUTTON_BITS = { left: 1, right: 2, middle: 4 }; // PointerEvent.buttons bits

const encoder = new TextEncoder();

/** modsOf returns the modifier bits of docs/protocol.md: 1 Alt, 2 Ctrl, 4 Meta, 8 Shift. */
export function modsOf(e) {
  return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
}

/**
 * contentBox returns where object-fit: contain draws a vw×vh video inside the
 * element rectangle rect: the letterboxed content's left, top, width, height
 * (client CSS px) and its scale. It returns null before the video has a size.
 */
export function contentBox(rect, vw, vh) {
  if (!vw || !vh || !rect.width || !rect.height) return null;
  const scale = Math.min(rect.width / vw, rect.height / vh);
  const width = vw * scale;
  const height = vh * scale;
  return {
    left: rect.left + (rect.width - width) / 2,
    top: rect.top + (rect.height - height) / 2,
    width,
    height,
    scale,
  };
}

/**
 * toRemote maps a client point into the remote viewport (vw×vh px). Points in
 * the letterbox bars give null, unless clamp is set (a drag that left the
 * content still needs its button released somewhere).
 */
export function toRemote(box, vw, vh, clientX, clientY, clamp) {
  let x = ((clientX - box.left) / box.width) * vw;
  let y = ((clientY - box.top) / box.height) * vh;
  if (clamp) {
    x = Math.min(Math.max(x, 0), vw - 1);
    y = Math.min(Math.max(y, 0), vh - 1);
  } else if (!(x >= 0 && y >= 0 && x < vw && y < vh)) {
    return null;
  }
  return { x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
}

/** splitText cuts s into pieces of at most max UTF-8 bytes, never inside a character. */
export function splitText(s, max = MAX_TEXT_BYTES) {
  const out = [];
  let cur = '';
  let bytes = 0;
  for (const ch of s) {
    const n = encoder.encode(ch).length;
    if (bytes + n > max && cur) {
      out.push(cur);
      cur = '';
      bytes = 0;
    }
    cur += ch;
    bytes += n;
  }
  if (cur) out.push(cur);
  return out;
}

function clip(s) {
  s = String(s || '');
  while (encoder.encode(s).length > MAX_KEY_BYTES) s = s.slice(0, -1);
  return s;
}

/** keyText is the text a key press types, or undefined for a key that types nothing. */
export function keyText(e) {
  const altGraph = typeof e.getModifierState === 'function' && e.getModifierState('AltGraph');
  if ((e.ctrlKey || e.metaKey) && !altGraph) return undefined;
  if (e.key === 'Enter') return '\r';
  if ([...e.key].length === 1) return e.key;
  return undefined;
}

function clampDelta(v) {
  return Math.round(Math.min(Math.max(v, -MAX_WHEEL), MAX_WHEEL));
}

/** isMobile says whether the visitor is on a phone or tablet: a touch screen as the main pointer. */
export function isMobile() {
  const coarse = typeof matchMedia === 'function' && matchMedia('(pointer: coarse)').matches;
  return coarse && (navigator.maxTouchPoints || 0) > 0;
}

/**
 * sendsTouch says whether a viewer sends its fingers as touch events: the
 * customer on a phone or tablet, whose remote tab then emulates one (the
 * worker makes it so from the customer's viewport). Everyone else's finger
 * is a mouse: a tap clicks, a drag scrolls with the wheel (docs/mobile.md).
 */
export function sendsTouch(role) {
  return role === 'customer' && isMobile();
}

/**
 * RemoteInput listens on the viewer's elements until signal aborts.
 *
 *   video, stage, ime, keyboardBtn  the viewer's elements
 *   role                            'customer' sends its viewport size
 *   live()                          whether input may go out now
 *   mayOperate()                    whether clicks, keys, wheel and text may go out
 *                                   (an agent without control sends pointer moves only)
 *   onHeldBack(clientX, clientY)    told when the visitor tried one of those and mayOperate said no
 *   sendInput(msg), sendPointer(msg) the "input" and "pointer" channels; false when closed
 */
export class RemoteInput {
  constructor({ video, stage, ime, keyboardBtn, role, live, mayOperate, onHeldBack, sendInput, sendPointer, signal }) {
    this.video = video;
    this.stage = stage;
    this.ime = ime;
    this.keyboardBtn = keyboardBtn;
    this.role = role;
    this.live = live;
    this.mayOperate = mayOperate || (() => true);
    this.onHeldBack = onHeldBack || (() => {});
    this.sendInput = sendInput;
    this.sendPointer = sendPointer;
    this.signal = signal;

    this.held = new Map(); // button name -> click count of its down
    this.keys = new Map(); // code -> key event fields, for keys held down
    this.lastClick = null;
    this.lastPoint = null;
    this.pendingMove = null;
    this.moveTimer = 0;
    this.lastMoveAt = 0;
    this.wheel = null;
    this.wheelTimer = 0;
    this.gesture = null;
    this.touches = new Set();
    this.fingers = new Map(); // pointerId -> { id, x, y }: the touch sequence sent (sendsTouch)
    this.touchMoveTimer = 0;
    this.touchMoved = false;
    this.lastTouchMoveAt = 0;
    this.lastTouchAt = -Infinity;
    this.escapeArmed = false;
    this.composing = false;
    this.lastViewport = null;
    this.viewportTimer = 0;
    this.bindEvents();
    signal.addEventListener('abort', () => {
      clearTimeout(this.touchMoveTimer);
      clearTimeout(this.moveTimer);
      clearTimeout(this.wheelTimer);
      clearTimeout(this.viewportTimer);
    });
  }

  /** reset forgets held buttons, keys and queued events (the connection is gone). */
  reset() {
    clearTimeout(this.moveTimer);
    clearTimeout(this.wheelTimer);
    this.moveTimer = 0;
    this.wheelTimer = 0;
    this.pendingMove = null;
    this.wheel = null;
    this.held.clear();
    this.keys.clear();
    this.clearFingers();
    this.lastViewport = null;
  }

  /**
   * forget drops the buttons and keys held without sending their release:
   * the worker released them itself (a control handover).
   */
  forget() {
    this.held.clear();
    this.keys.clear();
    this.clearFingers(); // it cancelled the touch sequence too
  }

  // heldBack says whether an operation must stay here (mayOperate said no),
  // and tells the page where the visitor tried it.
  heldBack(x, y) {
    if (this.mayOperate()) return false;
    this.onHeldBack(x, y);
    return true;
  }

  /** scheduleViewport sends the stage size after resizing settles (customer only). */
  scheduleViewport() {
    if (this.role !== 'customer') return;
    clearTimeout(this.viewportTimer);
    this.viewportTimer = setTimeout(() => this.sendViewport(false), VIEWPORT_DEBOUNCE_MS);
  }

  box() {
    return contentBox(this.video.getBoundingClientRect(), this.video.videoWidth, this.video.videoHeight);
  }

  point(e, clamp) {
    const box = this.box();
    if (!box) return null;
    return toRemote(box, this.video.videoWidth, this.video.videoHeight, e.clientX, e.clientY, clamp);
  }

  clickCount(button, e) {
    const last = this.lastClick;
    const again =
      last &&
      last.button === button &&
      e.timeStamp - last.time < DOUBLE_CLICK_MS &&
      Math.hypot(e.clientX - last.x, e.clientY - last.y) <= (e.pointerType === 'touch' ? TAP_SLOP * 2 : DOUBLE_CLICK_SLOP);
    const n = again ? Math.min(last.n + 1, 3) : 1;
    this.lastClick = { button, time: e.timeStamp, x: e.clientX, y: e.clientY, n };
    return n;
  }

  sendButton(action, button, e, p) {
    let clicks;
    if (action === 'down') {
      clicks = this.clickCount(button, e);
      this.held.set(button, clicks);
    } else {
      if (!this.held.has(button)) return;
      clicks = this.held.get(button);
      this.held.delete(button);
    }
    this.flushMove();
    this.sendInput({ type: 'mouse', action, x: p.x, y: p.y, button, buttons: e.buttons & 7, clicks, mods: modsOf(e) });
  }

  releaseAll() {
    const last = this.lastPoint || { x: 0, y: 0 };
    for (const [button, clicks] of this.held) {
      this.sendInput({ type: 'mouse', action: 'up', x: last.x, y: last.y, button, buttons: 0, clicks, mods: 0 });
    }
    this.held.clear();
    for (const k of this.keys.values()) this.sendInput({ ...k, action: 'up', mods: 0 });
    this.keys.clear();
    if (this.fingers.size) this.sendInput({ type: 'touch', action: 'cancel' });
    this.clearFingers();
  }

  // ---- touch events (sendsTouch) ----

  clearFingers() {
    clearTimeout(this.touchMoveTimer);
    this.touchMoveTimer = 0;
    this.touchMoved = false;
    this.fingers.clear();
  }

  // touchPoints are the fingers down, as docs/protocol.md's touches.
  touchPoints() {
    return [...this.fingers.values()].map(({ id, x, y }) => ({ id, x, y }));
  }

  // flushTouchMove sends the fingers' moves since the last one, all fingers
  // in one event (a pinch moves two).
  flushTouchMove() {
    clearTimeout(this.touchMoveTimer);
    this.touchMoveTimer = 0;
    if (!this.touchMoved || !this.fingers.size) return;
    this.touchMoved = false;
    this.lastTouchMoveAt = performance.now();
    this.sendInput({ type: 'touch', action: 'move', touches: this.touchPoints() });
  }

  // A finger down starts a touch sequence, or joins the one going on (a
  // second finger pinches). Chromium in the remote tab makes of them what
  // a phone would: a tap clicks, a drag scrolls, two fingers zoom.
  onFingerDown(e) {
    if (this.fingers.has(e.pointerId) || this.fingers.size >= MAX_TOUCHES) return;
    const p = this.point(e, false);
    if (!p || this.heldBack(e.clientX, e.clientY)) return;
    const used = new Set([...this.fingers.values()].map((f) => f.id));
    let id = 0;
    while (used.has(id) && id < MAX_TOUCH_ID) id++;
    this.flushTouchMove();
    this.fingers.set(e.pointerId, { id, x: p.x, y: p.y });
    this.lastPoint = p;
    this.sendInput({ type: 'touch', action: 'start', touches: this.touchPoints() });
  }

  onFingerMove(e) {
    const f = this.fingers.get(e.pointerId);
    if (!f) return;
    const p = this.point(e, true);
    if (!p || (p.x === f.x && p.y === f.y)) return;
    f.x = p.x;
    f.y = p.y;
    this.touchMoved = true;
    if (this.touchMoveTimer) return;
    const wait = Math.max(0, this.lastTouchMoveAt + MOVE_INTERVAL_MS - performance.now());
    this.touchMoveTimer = setTimeout(() => this.flushTouchMove(), wait);
  }

  onFingerUp(e) {
    const f = this.fingers.get(e.pointerId);
    if (!f) return;
    const p = this.point(e, true);
    if (p && (p.x !== f.x || p.y !== f.y)) {
      f.x = p.x;
      f.y = p.y;
      this.touchMoved = true;
    }
    this.flushTouchMove();
    this.fingers.delete(e.pointerId);
    this.sendInput({ type: 'touch', action: 'end', touches: this.touchPoints() });
  }

  // The local browser took the fingers away (a system gesture): the
  // remote sequence ends without a tap.
  onFingerCancel(e) {
    if (!this.fingers.has(e.pointerId)) return;
    this.clearFingers();
    this.sendInput({ type: 'touch', action: 'cancel' });
  }

  flushMove() {
    clearTimeout(this.moveTimer);
    this.moveTimer = 0;
    if (!this.pendingMove) return;
    this.sendPointer(this.pendingMove);
    this.pendingMove = null;
    this.lastMoveAt = performance.now();
  }

  queueMove(p, e) {
    this.pendingMove = { type: 'mouse', action: 'move', x: p.x, y: p.y, buttons: e.buttons & 7, mods: modsOf(e) };
    if (this.moveTimer) return;
    const wait = Math.max(0, this.lastMoveAt + MOVE_INTERVAL_MS - performance.now());
    this.moveTimer = setTimeout(() => this.flushMove(), wait);
  }

  queueWheel(p, dx, dy, mods) {
    const w = this.wheel || { dx: 0, dy: 0 };
    this.wheel = { x: p.x, y: p.y, dx: w.dx + dx, dy: w.dy + dy, mods };
    if (this.wheelTimer) return;
    this.wheelTimer = setTimeout(() => {
      this.wheelTimer = 0;
      const ev = this.wheel;
      this.wheel = null;
      if (!ev) return;
      const dxr = clampDelta(ev.dx);
      const dyr = clampDelta(ev.dy);
      if (dxr || dyr) this.sendInput({ type: 'wheel', x: ev.x, y: ev.y, dx: dxr, dy: dyr, mods: ev.mods });
    }, WHEEL_INTERVAL_MS);
  }

  sendText(text, paste) {
    const clean = text.replace(/\r\n?/g, '\n');
    for (const piece of splitText(clean)) this.sendInput(paste ? { type: 'text', text: piece, paste: true } : { type: 'text', text: piece });
  }

  sendKey(action, e) {
    const id = e.code || e.key;
    if (action === 'down') {
      const msg = {
        type: 'key',
        action,
        key: clip(e.key),
        code: clip(e.code),
        keyCode: e.keyCode > 0 && e.keyCode < 256 ? e.keyCode : 0,
        mods: modsOf(e),
      };
      this.keys.set(id, { type: 'key', key: msg.key, code: msg.code, keyCode: msg.keyCode });
      const text = keyText(e);
      if (text) msg.text = text;
      this.sendInput(msg);
      return;
    }
    const held = this.keys.get(id);
    if (!held) return;
    this.keys.delete(id);
    this.sendInput({ ...held, action: 'up', mods: modsOf(e) });
  }

  // tapKey sends a press and release that the local keyboard reported only as
  // an input event (mobile keyboards).
  tapKey(key, code, keyCode, text) {
    const down = { type: 'key', action: 'down', key, code, keyCode, mods: 0 };
    if (text) down.text = text;
    this.sendInput(down);
    this.sendInput({ type: 'key', action: 'up', key, code, keyCode, mods: 0 });
  }

  sendViewport(force) {
    if (this.role !== 'customer') return;
    const r = this.stage.getBoundingClientRect();
    const width = Math.round(r.width);
    const height = Math.round(r.height);
    if (!width || !height) return;
    // A phone or tablet: the remote tab emulates one (touch, mobile
    // viewport and user agent, the pixel ratio, capped by the worker).
    const mobile = isMobile();
    const dpr = Math.round((window.devicePixelRatio || 1) * 100) / 100;
    const last = this.lastViewport;
    if (!force && last && last.width === width && last.height === height && last.mobile === mobile && last.dpr === dpr) return;
    const msg = mobile ? { type: 'viewport', width, height, mobile, dpr } : { type: 'viewport', width, height, dpr };
    if (this.sendInput(msg)) this.lastViewport = { width, height, mobile, dpr };
  }

  focusKeyboard() {
    if (document.activeElement !== this.ime) this.ime.focus({ preventScroll: true });
  }

  placeIme(e) {
    const r = this.stage.getBoundingClientRect();
    this.ime.style.left = `${Math.round(Math.min(Math.max(e.clientX - r.left, 0), r.width - 8))}px`;
    this.ime.style.top = `${Math.round(Math.min(Math.max(e.clientY - r.top, 0), r.height - 8))}px`;
  }

  // ---- local events ----

  bindEvents() {
    const opts = { signal: this.signal };
    const active = { signal: this.signal, passive: false };
    const v = this.video;
    v.addEventListener('pointerdown', (e) => this.onPointerDown(e), active);
    v.addEventListener('pointermove', (e) => this.onPointerMove(e), opts);
    v.addEventListener('pointerup', (e) => this.onPointerUp(e), opts);
    v.addEventListener('pointercancel', (e) => this.onPointerCancel(e), opts);
    v.addEventListener('lostpointercapture', (e) => this.onPointerCancel(e), opts);
    v.addEventListener('mousedown', (e) => e.preventDefault(), active); // no autoscroll, no drag
    v.addEventListener('contextmenu', (e) => e.preventDefault(), active);
    v.addEventListener('dragstart', (e) => e.preventDefault(), active);
    v.addEventListener('wheel', (e) => this.onWheel(e), active);
    v.addEventListener('focus', () => {
      // A tap must not pop up the phone's keyboard; the keyboard button does.
      if (performance.now() - this.lastTouchAt > TOUCH_FOCUS_MS) this.focusKeyboard();
    }, opts);

    this.stage.addEventListener('keydown', (e) => this.onKeyDown(e), active);
    this.stage.addEventListener('keyup', (e) => this.onKeyUp(e), active);
    this.stage.addEventListener('paste', (e) => this.onPaste(e), active);
    this.stage.addEventListener('focusout', () => {
      // Focus went elsewhere: release what the remote still holds.
      queueMicrotask(() => {
        if (!this.stage.contains(document.activeElement)) {
          for (const k of this.keys.values()) this.sendInput({ ...k, action: 'up', mods: 0 });
          this.keys.clear();
          this.escapeArmed = false;
        }
      });
    }, opts);

    const ime = this.ime;
    ime.addEventListener('compositionstart', () => {
      this.composing = true;
      this.stage.classList.add('is-composing');
    }, opts);
    ime.addEventListener('compositionend', (e) => {
      this.composing = false;
      this.stage.classList.remove('is-composing');
      if (e.data && !this.heldBack()) this.sendText(e.data);
      ime.value = '';
    }, opts);
    ime.addEventListener('input', (e) => this.onImeInput(e), opts);

    this.keyboardBtn.addEventListener('click', () => this.focusKeyboard(), opts);
  }

  onPointerDown(e) {
    if (!this.live()) return;
    if (e.pointerType === 'touch') {
      this.lastTouchAt = performance.now();
      if (sendsTouch(this.role)) this.onFingerDown(e);
      else this.onTouchDown(e);
      return;
    }
    e.preventDefault();
    this.focusKeyboard();
    const p = this.point(e, false);
    if (!p) return;
    const button = BUTTONS[e.button];
    if (!button || this.heldBack(e.clientX, e.clientY)) return;
    this.placeIme(e);
    this.lastPoint = p;
    this.video.setPointerCapture?.(e.pointerId);
    this.sendButton('down', button, e, p);
  }

  onPointerMove(e) {
    if (!this.live()) return;
    if (e.pointerType === 'touch') {
      if (this.fingers.has(e.pointerId)) this.onFingerMove(e);
      else this.onTouchMove(e);
      return;
    }
    if (e.button >= 0) {
      // A second button pressed or released while another one is held.
      const button = BUTTONS[e.button];
      const p = this.point(e, true);
      if (button && p && (this.held.has(button) || !this.heldBack(e.clientX, e.clientY))) this.sendButton(e.buttons & BUTTON_BITS[button] ? 'down' : 'up', button, e, p);
      return;
    }
    const p = this.point(e, this.held.size > 0);
    if (!p) return;
    this.lastPoint = p;
    this.queueMove(p, e);
  }

  onPointerUp(e) {
    if (e.pointerType === 'touch') {
      if (this.fingers.has(e.pointerId)) this.onFingerUp(e);
      else this.onTouchUp(e);
      return;
    }
    const button = BUTTONS[e.button];
    const p = this.point(e, true);
    if (!button || !p) return;
    this.lastPoint = p;
    this.sendButton('up', button, e, p);
  }

  onPointerCancel(e) {
    if (e.pointerType === 'touch') {
      this.touches.delete(e.pointerId);
      this.gesture = null;
      if (e.type === 'pointercancel') this.onFingerCancel(e);
      return;
    }
    if (e.type === 'lostpointercapture' && this.held.size === 0) return;
    const last = this.lastPoint || { x: 0, y: 0 };
    for (const [button, clicks] of this.held) {
      this.sendInput({ type: 'mouse', action: 'up', x: last.x, y: last.y, button, buttons: 0, clicks, mods: modsOf(e) });
    }
    this.held.clear();
  }

  // Without sendsTouch, a finger taps (a left click) or drags (scrolls the
  // remote page, the content following the finger). Two fingers do
  // nothing remote.
  onTouchDown(e) {
    this.touches.add(e.pointerId);
    if (this.touches.size > 1) {
      this.gesture = null;
      return;
    }
    const p = this.point(e, false);
    if (!p) return;
    this.gesture = { id: e.pointerId, x0: e.clientX, y0: e.clientY, x: e.clientX, y: e.clientY, p, scrolling: false };
  }

  onTouchMove(e) {
    const g = this.gesture;
    if (!g || g.id !== e.pointerId) return;
    if (!g.scrolling && Math.hypot(e.clientX - g.x0, e.clientY - g.y0) > TAP_SLOP) {
      if (this.heldBack(e.clientX, e.clientY)) {
        this.gesture = null;
        return;
      }
      g.scrolling = true;
    }
    if (!g.scrolling) return;
    const box = this.box();
    if (box) this.queueWheel(g.p, (g.x - e.clientX) / box.scale, (g.y - e.clientY) / box.scale, 0);
    g.x = e.clientX;
    g.y = e.clientY;
  }

  onTouchUp(e) {
    this.touches.delete(e.pointerId);
    const g = this.gesture;
    if (!g || g.id !== e.pointerId) return;
    this.gesture = null;
    if (g.scrolling || !this.live() || this.heldBack(e.clientX, e.clientY)) return;
    const clicks = this.clickCount('left', e);
    const { x, y } = g.p;
    this.lastPoint = g.p;
    this.sendInput({ type: 'mouse', action: 'down', x, y, button: 'left', buttons: 1, clicks, mods: 0 });
    this.sendInput({ type: 'mouse', action: 'up', x, y, button: 'left', buttons: 0, clicks, mods: 0 });
  }

  onWheel(e) {
    e.preventDefault();
    if (!this.live()) return;
    const p = this.point(e, false);
    const box = this.box();
    if (!p || !box || this.heldBack(e.clientX, e.clientY)) return;
    const unit = e.deltaMode === 1 ? LINE_PX : e.deltaMode === 2 ? this.video.videoHeight : 1;
    this.queueWheel(p, (e.deltaX * unit) / box.scale, (e.deltaY * unit) / box.scale, modsOf(e));
  }

  onKeyDown(e) {
    if (!this.live() || e.target instanceof HTMLButtonElement) return;
    if (e.isComposing || this.composing || e.keyCode === 229) return; // the IME owns it
    if (this.escapeArmed && e.key === 'Tab') {
      // Esc then Tab leaves the remote tab, as in code editors.
      this.escapeArmed = false;
      if (e.shiftKey) {
        this.video.tabIndex = -1; // else Shift+Tab lands on the video and comes back
        setTimeout(() => {
          this.video.tabIndex = this.live() ? 0 : -1;
        }, 0);
      }
      return;
    }
    this.escapeArmed = e.key === 'Escape' && !modsOf(e);
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'v') return; // the paste event carries the text
    e.preventDefault();
    if (this.heldBack()) return;
    this.sendKey('down', e);
  }

  onKeyUp(e) {
    if (!this.keys.has(e.code || e.key)) return;
    e.preventDefault();
    this.sendKey('up', e);
  }

  onPaste(e) {
    if (!this.live()) return;
    e.preventDefault();
    const text = e.clipboardData ? e.clipboardData.getData('text/plain') : '';
    if (text && !this.heldBack()) this.sendText(text, true);
  }

  onImeInput(e) {
    if (e.isComposing || this.composing) return;
    if (this.heldBack()) {
      this.ime.value = '';
      return;
    }
    switch (e.inputType) {
      case 'insertText':
      case 'insertReplacementText':
        if (e.data) this.sendText(e.data);
        break;
      case 'deleteContentBackward':
        this.tapKey('Backspace', 'Backspace', 8);
        break;
      case 'deleteContentForward':
        this.tapKey('Delete', 'Delete', 46);
        break;
      case 'insertLineBreak':
      case 'insertParagraph':
        this.tapKey('Enter', 'Enter', 13, '\r');
        break;
      default:
        break;
    }
    this.ime.value = '';
  }
}
