// Annotations over the live remote tab (docs/annotations.md): the pen
// (strokes fade a few seconds after they end unless pinned), the laser
// pointer with its trail, element highlights (the worker finds the element
// and sends its box as it moves) and clear all. Everything is drawn on a
// canvas over the video, never into the page.
//
// Strokes, lasers and boxes are in page coordinates (remote viewport CSS px
// plus the document's scroll offset, which the worker tells in "scroll"
// notices), so they move with the content. While a tool other than
// "operate" is chosen, a transparent layer over the video takes the pointer
// for it; the wheel still scrolls the tab.
//
// The stage carries data-tool (operate, pen, laser, highlight) and
// data-pinned; the canvas data-strokes, data-highlights and data-lasers
// (what it draws now), for tests.

import { contentBox, toRemote } from './input.js';

export const TOOLS = ['operate', 'pen', 'laser', 'highlight'];

const FLUSH_MS = 50; // a stroke's points go out in batches this often
const LASER_EVERY_MS = 33; // laser positions at most 30 a second
const FADE_AFTER_MS = 3000; // an unpinned stroke starts fading this long after it ended
const FADE_MS = 1000;
const LASER_TRAIL_MS = 700;
const MIN_STEP = 2; // stage px between two points of a stroke
const MAX_BATCH = 64; // protocol.MaxStrokePoints
const MAX_STROKE = 4000; // protocol.MaxStrokeLen
const MAX_STROKES = 300; // drawn at once; the oldest go first
const STROKE_WIDTH = 4; // CSS px
const COLOURS = { agent: '#7c3aed', customer: '#0f766e' };
const LASER = '#ef4444';
export const HIGHLIGHT = '#f59e0b';
const HIGHLIGHT_PAD = 4; // CSS px around the element
const HIGHLIGHT_LINE = 3;

const finite = (n) => Number.isFinite(n);

/**
 * Annotations draws and makes annotations for one viewer.
 *
 *   stage, video      the viewer's stage and video
 *   canvas            the canvas over the video that it owns
 *   layer             the element over the video that takes the pointer for a tool
 *   role              'agent' or 'customer' (the colour of its own strokes)
 *   remote()          {width, height} of the remote viewport as last told, or null
 *   send(msg)         sends an annotate message; false when it could not
 *   onWheel(e)        a wheel over the layer (the viewer scrolls the tab)
 *   signal            aborts the listeners
 */
export class Annotations {
  constructor({ stage, video, canvas, layer, role, remote, send, onWheel, signal }) {
    Object.assign(this, { stage, video, canvas, layer, role, remote, send });
    this.tool = 'operate';
    this.pinned = false;
    this.scroll = { x: 0, y: 0 };
    this.strokes = new Map(); // id -> {points, role, pinned, endedAt, mine}
    this.highlights = new Map(); // id -> {rect: [x, y, w, h], role}
    this.lasers = new Map(); // viewer id ('' for our own) -> [{x, y, t}]
    this.seq = 0;
    this.drawing = null; // our stroke being drawn: {id, stroke, pending, last}
    this.flushTimer = 0;
    this.lastLaser = 0;
    this.laserTimer = 0;
    this.pendingLaser = null;
    this.frame = 0;
    const opts = { signal };
    layer.addEventListener('pointerdown', (e) => this.onDown(e), opts);
    layer.addEventListener('pointermove', (e) => this.onMove(e), opts);
    layer.addEventListener('pointerup', (e) => this.onUp(e), opts);
    layer.addEventListener('pointercancel', (e) => this.onUp(e), opts);
    layer.addEventListener('contextmenu', (e) => e.preventDefault(), { signal, passive: false });
    layer.addEventListener('wheel', (e) => onWheel(e), { signal, passive: false });
    signal.addEventListener('abort', () => {
      clearTimeout(this.flushTimer);
      clearTimeout(this.laserTimer);
      cancelAnimationFrame(this.frame);
    });
    this.setTool('operate');
  }

  /** setTool picks the pointer's tool: operate (the tab), pen, laser or highlight. */
  setTool(tool) {
    if (!TOOLS.includes(tool)) return;
    this.endStroke();
    this.tool = tool;
    this.stage.dataset.tool = tool;
    this.layer.hidden = tool === 'operate';
  }

  /** setPinned makes the strokes drawn from now on stay (true) or fade. */
  setPinned(on) {
    this.pinned = !!on;
    this.stage.dataset.pinned = String(this.pinned);
  }

  /** clearAll clears everyone's annotations, here and for the others. */
  clearAll() {
    this.endStroke();
    if (this.send({ type: 'annotate', action: 'clear' })) this.clearLocal();
  }

  /** reset forgets everything (the connection is gone; the worker tells again). */
  reset() {
    this.endStroke();
    this.clearLocal();
    this.scroll = { x: 0, y: 0 };
  }

  clearLocal() {
    this.strokes.clear();
    this.highlights.clear();
    this.lasers.clear();
    this.draw();
  }

  // ---- notices ----

  /** onNotice takes a "scroll" or "annotation" notice; false for other types. */
  onNotice(msg) {
    if (msg.type === 'scroll') {
      if (finite(msg.x) && finite(msg.y)) {
        this.scroll = { x: msg.x, y: msg.y };
        this.draw();
      }
      return true;
    }
    if (msg.type !== 'annotation') return false;
    const role = msg.role === 'agent' ? 'agent' : 'customer';
    switch (msg.action) {
      case 'stroke': {
        if (typeof msg.id !== 'string' || !Array.isArray(msg.points)) break;
        let s = this.strokes.get(msg.id);
        if (!s) {
          s = { points: [], role, pinned: false, endedAt: 0, mine: false };
          this.strokes.set(msg.id, s);
          this.trimStrokes();
        }
        for (const p of msg.points) {
          if (Array.isArray(p) && finite(p[0]) && finite(p[1]) && s.points.length < MAX_STROKE) s.points.push([p[0], p[1]]);
        }
        s.pinned = !!msg.pinned;
        if (msg.end && !s.endedAt) s.endedAt = performance.now();
        break;
      }
      case 'laser': {
        if (!finite(msg.x) || !finite(msg.y) || typeof msg.viewer_id !== 'string') break;
        this.trail(msg.viewer_id).push({ x: msg.x, y: msg.y, t: performance.now(), role });
        break;
      }
      case 'highlight': {
        const r = msg.rect;
        if (typeof msg.id !== 'string' || !Array.isArray(r) || r.length !== 4 || !r.every(finite) || r[2] < 0 || r[3] < 0) break;
        this.highlights.set(msg.id, { rect: r, role });
        break;
      }
      case 'remove':
        this.highlights.delete(msg.id);
        this.strokes.delete(msg.id);
        break;
      case 'clear':
        this.endStroke();
        this.strokes.clear();
        this.highlights.clear();
        this.lasers.clear();
        break;
      default:
        break; // a newer worker's action
    }
    this.draw();
    return true;
  }

  trail(id) {
    let tr = this.lasers.get(id);
    if (!tr) {
      tr = [];
      this.lasers.set(id, tr);
    }
    return tr;
  }

  trimStrokes() {
    for (const id of this.strokes.keys()) {
      if (this.strokes.size <= MAX_STROKES) break;
      this.strokes.delete(id);
    }
  }

  // ---- geometry ----

  // box is where the picture is drawn on the stage, in stage px, with the
  // remote viewport's size; null before there is a picture.
  box() {
    const r = this.remote();
    const vw = this.video.videoWidth || r?.width;
    const vh = this.video.videoHeight || r?.height;
    const stage = this.stage.getBoundingClientRect();
    const b = contentBox(this.video.getBoundingClientRect(), vw, vh);
    if (!b) return null;
    return { left: b.left - stage.left, top: b.top - stage.top, width: b.width, height: b.height, vw, vh, stage };
  }

  // toStage maps a page point to stage px.
  toStage(b, x, y) {
    return [b.left + ((x - this.scroll.x) * b.width) / b.vw, b.top + ((y - this.scroll.y) * b.height) / b.vh];
  }

  // pagePoint maps a pointer event to page coordinates (null off the picture).
  pagePoint(e) {
    const b = this.box();
    if (!b) return null;
    const p = toRemote({ left: b.left + b.stage.left, top: b.top + b.stage.top, width: b.width, height: b.height }, b.vw, b.vh, e.clientX, e.clientY, false);
    return p && { x: p.x + this.scroll.x, y: p.y + this.scroll.y, vx: p.x, vy: p.y };
  }

  // ---- the pointer, for a tool ----

  onDown(e) {
    e.preventDefault();
    const p = this.pagePoint(e);
    if (!p) return;
    this.layer.setPointerCapture?.(e.pointerId);
    if (this.tool === 'pen') {
      this.endStroke();
      const id = `s${++this.seq}`;
      const stroke = { points: [[p.x, p.y]], role: this.role, pinned: this.pinned, endedAt: 0, mine: true };
      this.strokes.set(id, stroke);
      this.trimStrokes();
      this.drawing = { id, stroke, pending: [[p.x, p.y]], last: [e.clientX, e.clientY] };
      this.scheduleFlush();
    } else if (this.tool === 'laser') {
      this.laserAt(p);
    }
    this.draw();
  }

  onMove(e) {
    if (this.tool === 'laser') {
      // A mouse points without a button; a finger while it touches.
      if (e.pointerType === 'touch' && !e.buttons) return;
      const p = this.pagePoint(e);
      if (p) this.laserAt(p);
      return;
    }
    const d = this.drawing;
    if (this.tool !== 'pen' || !d) return;
    // Every point the browser coalesced, for a smooth line.
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      if (Math.hypot(ev.clientX - d.last[0], ev.clientY - d.last[1]) < MIN_STEP) continue;
      const p = this.pagePoint(ev);
      if (!p || d.stroke.points.length >= MAX_STROKE) continue;
      d.last = [ev.clientX, ev.clientY];
      d.stroke.points.push([p.x, p.y]);
      d.pending.push([p.x, p.y]);
    }
    if (d.pending.length >= MAX_BATCH) this.flush(false);
    else this.scheduleFlush();
    this.draw();
  }

  onUp(e) {
    if (this.tool === 'pen') this.endStroke();
    else if (this.tool === 'highlight' && e.type === 'pointerup') {
      const p = this.pagePoint(e);
      if (p) this.send({ type: 'annotate', action: 'highlight', x: p.vx, y: p.vy });
    }
  }

  laserAt(p) {
    this.trail('').push({ x: p.x, y: p.y, t: performance.now(), role: this.role });
    this.pendingLaser = p;
    const wait = this.lastLaser + LASER_EVERY_MS - performance.now();
    if (wait <= 0) this.sendLaser();
    else if (!this.laserTimer) this.laserTimer = setTimeout(() => this.sendLaser(), wait);
    this.draw();
  }

  sendLaser() {
    this.laserTimer = 0;
    const p = this.pendingLaser;
    if (!p) return;
    this.pendingLaser = null;
    this.lastLaser = performance.now();
    this.send({ type: 'annotate', action: 'laser', x: round(p.x), y: round(p.y) });
  }

  scheduleFlush() {
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(false), FLUSH_MS);
  }

  // flush sends the points drawn since the last batch (end: the last one).
  flush(end) {
    clearTimeout(this.flushTimer);
    this.flushTimer = 0;
    const d = this.drawing;
    if (!d) return;
    while (d.pending.length > MAX_BATCH) {
      this.send({ type: 'annotate', action: 'stroke', id: d.id, points: d.pending.splice(0, MAX_BATCH).map(roundPoint), pinned: d.stroke.pinned, end: false });
    }
    if (!d.pending.length && !end) return;
    this.send({ type: 'annotate', action: 'stroke', id: d.id, points: d.pending.splice(0).map(roundPoint), pinned: d.stroke.pinned, end });
  }

  endStroke() {
    const d = this.drawing;
    if (!d) return;
    this.flush(true);
    d.stroke.endedAt = performance.now();
    this.drawing = null;
    this.draw();
  }

  // ---- drawing ----

  /** resize fits the canvas to the stage (it clears it) and redraws. */
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const r = this.stage.getBoundingClientRect();
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    this.draw();
  }

  /** draw repaints on the next animation frame. */
  draw() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    this.frame = 0;
    const c = this.canvas;
    const g = c.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, c.width, c.height);
    const b = this.box();
    const now = performance.now();
    let moving = false;
    let strokes = 0;
    let lasers = 0;
    if (b && b.stage.width > 0) {
      g.setTransform(c.width / b.stage.width, 0, 0, c.height / b.stage.height, 0, 0);
      g.save();
      g.beginPath();
      g.rect(b.left, b.top, b.width, b.height);
      g.clip();
      for (const { rect } of this.highlights.values()) {
        const [x0, y0] = this.toStage(b, rect[0], rect[1]);
        const [x1, y1] = this.toStage(b, rect[0] + rect[2], rect[1] + rect[3]);
        const x = x0 - HIGHLIGHT_PAD;
        const y = y0 - HIGHLIGHT_PAD;
        const w = x1 - x0 + 2 * HIGHLIGHT_PAD;
        const h = y1 - y0 + 2 * HIGHLIGHT_PAD;
        g.beginPath();
        if (typeof g.roundRect === 'function') g.roundRect(x, y, w, h, 6);
        else g.rect(x, y, w, h);
        g.fillStyle = 'rgba(245, 158, 11, 0.12)';
        g.fill();
        g.lineWidth = HIGHLIGHT_LINE;
        g.strokeStyle = HIGHLIGHT;
        g.stroke();
      }
      g.lineCap = 'round';
      g.lineJoin = 'round';
      g.lineWidth = STROKE_WIDTH;
      for (const [id, s] of this.strokes) {
        let alpha = 1;
        if (!s.pinned && s.endedAt) {
          const age = now - s.endedAt - FADE_AFTER_MS;
          if (age >= FADE_MS) {
            this.strokes.delete(id);
            continue;
          }
          if (age > 0) alpha = 1 - age / FADE_MS;
          moving = true;
        }
        g.globalAlpha = alpha;
        g.strokeStyle = COLOURS[s.role] || COLOURS.customer;
        g.beginPath();
        s.points.forEach(([x, y], i) => {
          const [sx, sy] = this.toStage(b, x, y);
          if (i === 0) g.moveTo(sx, sy);
          else g.lineTo(sx, sy);
        });
        if (s.points.length === 1) {
          const [sx, sy] = this.toStage(b, s.points[0][0], s.points[0][1]);
          g.lineTo(sx + 0.1, sy);
        }
        g.stroke();
        strokes++;
      }
      g.globalAlpha = 1;
      for (const [id, tr] of this.lasers) {
        while (tr.length && now - tr[0].t > LASER_TRAIL_MS) tr.shift();
        if (!tr.length) {
          this.lasers.delete(id);
          continue;
        }
        moving = true;
        lasers++;
        g.strokeStyle = LASER;
        for (let i = 1; i < tr.length; i++) {
          const [ax, ay] = this.toStage(b, tr[i - 1].x, tr[i - 1].y);
          const [bx, by] = this.toStage(b, tr[i].x, tr[i].y);
          g.globalAlpha = Math.max(0, 1 - (now - tr[i].t) / LASER_TRAIL_MS) * 0.8;
          g.lineWidth = 2 + 4 * (i / tr.length);
          g.beginPath();
          g.moveTo(ax, ay);
          g.lineTo(bx, by);
          g.stroke();
        }
        g.globalAlpha = 1;
        const head = tr[tr.length - 1];
        const [hx, hy] = this.toStage(b, head.x, head.y);
        g.beginPath();
        g.arc(hx, hy, 6, 0, Math.PI * 2);
        g.fillStyle = LASER;
        g.fill();
        g.lineWidth = 2;
        g.strokeStyle = '#fff';
        g.stroke();
      }
      g.restore();
    }
    c.dataset.strokes = String(strokes);
    c.dataset.highlights = String(b ? this.highlights.size : 0);
    c.dataset.lasers = String(lasers);
    if (moving) this.draw();
  }
}

function round(n) {
  return Math.round(n * 10) / 10;
}

function roundPoint([x, y]) {
  return [round(x), round(y)];
}
