// The live remote tab, shared by the agent console and the customer view.
//
// A Viewer opens the signaling WebSocket of docs/protocol.md, makes one
// RTCPeerConnection (one recvonly video transceiver, the "input" and
// "pointer" DataChannels), shows the stream in one <video> with a canvas
// overlay above it (the customer's mask outlines now; cursors and
// annotations later), and hands the visitor's input (input.js) to the
// DataChannels.
//
// Masking: the customer's overlay outlines every area the agent cannot see
// (the worker's "masks" notices), behind a switch the customer can turn off;
// the agent's view shows a banner while the worker holds the agent's
// picture ("masking" notices, state "paused"). Neither side acts on the
// other side's notice.
//
// Control (docs/control.md): the customer always controls; an agent asks
// for control from the view's bar, the customer allows or refuses in a
// prompt over the picture (which never takes the focus: a customer typing
// in the page must not answer it by accident) and takes control back with
// the bar's button or Alt+Shift+C, which is never forwarded to the tab. An
// agent without control sends only its pointer; what it tries beyond that
// stays here, with a note at the pointer. Each side sees the other side's
// pointer, with its name. The root carries data-control: for the agent
// viewing, asking, controlling or never; for the customer customer,
// requested or agent.
//
// Screen sharing (screenshare.js, docs/screenshare.md): the agent asks to
// see the customer's screen; it comes on the connection's second video
// m-line, which both pages offer from the start.
//
// Annotations and chat (annotate.js, chat.js; docs/annotations.md): both
// roles draw with the bar's tools on their own canvas over the video and
// write in the chat panel; neither needs control.
//
// Browser restarts (docs/recovery.md): while the worker replaces a crashed
// browser ("browser" notices, state "restarting" then "restored") both
// roles see a banner over the held picture; the stage carries
// data-browser="restarting" meanwhile.
//
// The state is on the root element and on the video's container
// (.viewer-stage) as data-state: connecting, live, reconnecting, failed or
// ended. A lost connection is "reconnecting" until live again: first an
// ICE restart on the same socket and peer, then, if that does not bring it
// back in time or the socket is gone, a new socket and peer with backoff.
// The stage also carries data-masking (agent: paused or active) and
// data-mask-outlines and data-mask-count (customer: on or off, and how many
// outlines are drawn). window.tandemViewer points at the newest
// Viewer (its pc, ws and channels) for debugging and tests.

import { t, onLangChange } from './i18n.js';
import { RemoteInput, contentBox, isMobile } from './input.js';
import { Annotations } from './annotate.js';
import { ChatPanel } from './chat.js';
import { ScreenShare } from './screenshare.js';

const MAX_ATTEMPTS = 6; // reconnects in a row before "failed"
// A connection that drops while its socket stays open is first restarted
// in place (ICE restart, docs/protocol.md "Reconnecting"): after this long
// "disconnected" (a short blip heals by itself), or at once on "failed".
const ICE_GRACE_MS = 2500;
// How long an ICE restart may take to get the connection back before the
// viewer gives up on it and reconnects from scratch (new socket, new peer).
const ICE_RESTART_MS = 6000;
const TOAST_MS = 4000;
const COPY_OFFER_MS = 15000; // how long the copy button waits for a click
// The CSS cursors the page may show in the view (docs/keyboard.md, "Cursor").
const CURSORS = new Set(['default', 'pointer', 'text', 'vertical-text', 'wait', 'progress', 'help', 'crosshair', 'move',
  'grab', 'grabbing', 'not-allowed', 'no-drop', 'copy', 'alias', 'context-menu', 'cell', 'all-scroll', 'zoom-in',
  'zoom-out', 'col-resize', 'row-resize', 'n-resize', 'e-resize', 's-resize', 'w-resize', 'ne-resize', 'nw-resize',
  'se-resize', 'sw-resize', 'ew-resize', 'ns-resize', 'nesw-resize', 'nwse-resize', 'none']);
const FILE_CHUNK = 16 * 1024; // bytes per message of the "files" channel
const FILE_BUFFERED = 1024 * 1024; // wait while this much is queued on it

/** formatMB writes a byte count as megabytes (kilobytes below one). */
function formatMB(n) {
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`;
  return `${Math.round((n / (1024 * 1024)) * 10) / 10} MB`;
}
const NOTE_MS = 2500;
const POINTER_IDLE_MS = 8000; // another viewer's pointer fades after this long still
const TAKE_BACK = { code: 'KeyC', altKey: true, shiftKey: true }; // the customer's key (with no Ctrl or Meta)

// The arrow drawn for another viewer's pointer; its tip is at (0, 0).
const POINTER_SVG = '<svg viewBox="0 0 16 22" width="16" height="22" aria-hidden="true"><path d="M1 1v17l4.5-4.2 3 7 3-1.3-3-6.8h6.2z" stroke="#fff" stroke-width="1.5" stroke-linejoin="round"/></svg>';

/** isTakeBack says whether a keydown is the customer's take-back key, Alt+Shift+C. */
export function isTakeBack(e) {
  return e.code === TAKE_BACK.code && e.altKey === TAKE_BACK.altKey && e.shiftKey === TAKE_BACK.shiftKey && !e.ctrlKey && !e.metaKey;
}

const OUTLINES_KEY = 'tandem.maskOutlines'; // "off" once the customer turned the outlines off
const MAX_MASK_RECTS = 2000; // far more than a page has; the rest of a longer list is not drawn
// The outlines tell, never hide: a thin two-tone dashed line (blue on
// white, visible on light and dark pages) and a fill of 8% at most.
const OUTLINE_FILL = 'rgba(2, 132, 199, 0.08)';
const OUTLINE_LINE = 'rgba(2, 132, 199, 0.95)';
const OUTLINE_GAP = 'rgba(255, 255, 255, 0.75)';
const OUTLINE_WIDTH = 1.5; // CSS px
const OUTLINE_DASH = 6; // CSS px of each colour

function outlinesWanted() {
  try {
    return localStorage.getItem(OUTLINES_KEY) !== 'off';
  } catch {
    return true; // storage can be off (private mode, policy): the default
  }
}

// parseMasks checks a "masks" notice: the remote viewport it refers to and
// its [x, y, w, h] rects, in that viewport's pixels. It returns null for a
// notice it cannot use and drops rects that are not four finite numbers
// with a positive size.
function parseMasks(msg) {
  const { width, height, rects } = msg;
  if (!(Number.isFinite(width) && width > 0 && Number.isFinite(height) && height > 0 && Array.isArray(rects))) return null;
  const out = [];
  for (const r of rects.slice(0, MAX_MASK_RECTS)) {
    if (Array.isArray(r) && r.length === 4 && r.every((n) => Number.isFinite(n)) && r[2] > 0 && r[3] > 0) out.push(r);
  }
  return { width, height, rects: out };
}

// The browser's candidate has more fields (usernameFragment) than the
// protocol's decoder accepts; send the three it knows.
function candidateInit(c) {
  const out = { candidate: c.candidate };
  if (c.sdpMid != null) out.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) out.sdpMLineIndex = c.sdpMLineIndex;
  return out;
}

const TEMPLATE = `
<div class="viewer-head">
<div class="viewer-tabs" role="tablist" hidden></div>
<form class="viewer-nav" novalidate>
  <button type="button" class="viewer-tool viewer-nav-back" data-nav="back"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M12 4l-6 6 6 6"/></svg></button>
  <button type="button" class="viewer-tool viewer-nav-forward" data-nav="forward"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M8 4l6 6-6 6"/></svg></button>
  <button type="button" class="viewer-tool viewer-nav-reload" data-nav="reload"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M16 10a6 6 0 1 1-2-4.5M16 3v4h-4"/></svg></button>
  <input class="viewer-nav-url" type="text" inputmode="url" autocomplete="off" autocapitalize="off" spellcheck="false" enterkeyhint="go">
</form>
</div>
<div class="viewer-stage">
  <video class="viewer-video" tabindex="0" autoplay muted playsinline disablepictureinpicture></video>
  <canvas class="viewer-overlay" aria-hidden="true"></canvas>
  <canvas class="viewer-annotations" aria-hidden="true"></canvas>
  <div class="viewer-draw" hidden></div>
  <textarea class="viewer-ime" tabindex="-1" autocomplete="off" autocorrect="off" autocapitalize="off" spellcheck="false"></textarea>
  <div class="viewer-status">
    <span class="spinner" aria-hidden="true"></span>
    <p class="viewer-status-title"></p>
    <p class="viewer-status-detail"></p>
    <button type="button" class="btn btn-primary viewer-retry" hidden></button>
  </div>
  <div class="viewer-masking" role="status" aria-live="polite" hidden>
    <div>
      <p class="viewer-masking-title"></p>
      <p class="viewer-masking-reason"></p>
    </div>
  </div>
  <div class="viewer-browser" role="status" aria-live="polite" hidden>
    <p class="viewer-browser-title"></p>
  </div>
  <div class="viewer-pointers" aria-hidden="true"></div>
  <div class="viewer-ask" role="status" aria-live="assertive" hidden>
    <p class="viewer-ask-text"></p>
    <div class="viewer-ask-actions">
      <button type="button" class="btn btn-primary btn-small viewer-ask-allow"></button>
      <button type="button" class="btn btn-small viewer-ask-deny"></button>
    </div>
  </div>
  <div class="viewer-note" role="status" aria-live="polite" hidden></div>
  <div class="viewer-toast" role="status" aria-live="polite" hidden></div>
  <button type="button" class="btn btn-primary btn-small viewer-copy" hidden></button>
  <div class="viewer-chooser" role="dialog" aria-modal="false" aria-labelledby="viewer-chooser-title" hidden>
    <p class="viewer-chooser-title" id="viewer-chooser-title"></p>
    <p class="viewer-chooser-detail"></p>
    <div class="viewer-chooser-actions">
      <label class="btn btn-primary btn-small viewer-chooser-pick"><span></span><input type="file" class="viewer-chooser-input"></label>
      <button type="button" class="btn btn-small viewer-chooser-cancel"></button>
    </div>
    <p class="viewer-chooser-progress" role="status" aria-live="polite"></p>
  </div>
  <div class="viewer-chooser viewer-download" role="dialog" aria-modal="false" aria-labelledby="viewer-download-title" hidden>
    <p class="viewer-chooser-title" id="viewer-download-title"></p>
    <p class="viewer-chooser-detail"></p>
    <div class="viewer-chooser-actions">
      <button type="button" class="btn btn-primary btn-small viewer-download-save"></button>
      <button type="button" class="btn btn-small viewer-download-dismiss"></button>
    </div>
  </div>
</div>
<div class="viewer-bar">
  <div class="viewer-control" hidden>
    <span class="viewer-control-dot" aria-hidden="true"></span>
    <span class="viewer-control-text" role="status" aria-live="polite"></span>
    <button type="button" class="btn btn-small viewer-control-button"></button>
  </div>
  <div class="viewer-tools" role="toolbar">
    <button type="button" class="viewer-tool" data-tool="operate" aria-pressed="true"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M5 2v14l4-3.8 2.6 5.8 2.4-1.1-2.6-5.7H17z"/></svg></button>
    <button type="button" class="viewer-tool" data-tool="pen" aria-pressed="false"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M3 17l1-4 9-9 3 3-9 9zM12 5l3 3"/></svg></button>
    <button type="button" class="viewer-tool" data-tool="laser" aria-pressed="false"><svg viewBox="0 0 20 20" aria-hidden="true"><circle cx="13" cy="7" r="3"/><path d="M3 17l7-7"/></svg></button>
    <button type="button" class="viewer-tool" data-tool="highlight" aria-pressed="false"><svg viewBox="0 0 20 20" aria-hidden="true"><rect x="3" y="5" width="14" height="10" rx="2"/></svg></button>
    <button type="button" class="viewer-tool viewer-tool-pin" aria-pressed="false"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M7 3h6l-1 5 3 3H5l3-3zM10 11v6"/></svg></button>
    <button type="button" class="viewer-tool viewer-tool-clear"><svg viewBox="0 0 20 20" aria-hidden="true"><path d="M4 6h12M8 6V4h4v2M6 6l1 11h6l1-11"/></svg></button>
  </div>
  <button type="button" class="btn btn-small viewer-chat-toggle" aria-expanded="false"></button>
  <p class="viewer-hint"></p>
  <label class="viewer-masks" hidden>
    <input type="checkbox" class="viewer-masks-toggle">
    <span class="viewer-masks-swatch" aria-hidden="true"></span>
    <span class="viewer-masks-label"></span>
  </label>
  <button type="button" class="btn btn-small viewer-keyboard"></button>
</div>
<section class="viewer-chat card" hidden></section>`;

/**
 * Viewer is one live view of a session's remote tab inside host.
 *
 *   const v = new Viewer(host, { sessionId, role: 'customer', onState, onSession });
 *   v.start();   // connect (and reconnect on loss)
 *   v.leave();   // say bye, close, show "you left"
 *   v.destroy(); // say bye, close and remove the view
 *
 * onState(state, reason) follows data-state; onSession(msg) gets the
 * server's "state" messages (who is watching). setWaiting(text) says, while
 * the view is connecting, what it waits for (the agent's view gets no
 * picture until the customer agreed). The customer's outlines of masked
 * areas follow a switch in the view's bar (setOutlines does the same),
 * remembered in localStorage; they are on unless the customer turned them off.
 */
export class Viewer {
  constructor(host, { sessionId, role, onState, onSession } = {}) {
    if (role !== 'customer' && role !== 'agent') throw new Error(`viewer: bad role ${role}`);
    this.sessionId = sessionId;
    this.role = role;
    this.onState = onState || (() => {});
    this.onSession = onSession || (() => {});

    this.state = '';
    this.reason = '';
    this.closed = false;
    this.gen = 0; // bumped on every (re)connect; stale callbacks compare it
    this.iceTimer = 0; // the grace before an ICE restart
    this.restartTimer = 0; // the bound on an ICE restart in progress
    this.restarting = false; // an ICE restart waits for the connection
    this.attempts = 0;
    this.retryTimer = 0;
    this.ws = null;
    this.pc = null;
    this.input = null;
    this.pointer = null;
    this.viewerId = '';
    this.pendingCandidates = [];
    this.hasFrame = false;
    this.remote = null; // {width, height} of the remote viewport, as last told
    this.waiting = ''; // what a connecting view waits for (setWaiting)
    this.masks = null; // customer: the connection's last "masks" notice, parsed
    this.masksSeen = false; // customer: the worker masks (it sent a "masks" notice)
    this.outlines = role === 'customer' && outlinesWanted();
    this.masking = ''; // agent: "paused" or "active", as the worker last said; '' before it did
    this.restarting = false; // the worker is replacing a crashed browser
    this.maskingReason = '';
    // Control, as the worker last told: who controls besides the customer
    // (controller "customer" or "agent", with that agent's id and name),
    // what this agent asked (''/asking), the agent asking the customer
    // ({id, name} or null), and whether the company lets agents only watch.
    this.control = { controller: 'customer', id: '', name: '' };
    this.asking = '';
    this.request = null;
    this.controlNever = false;
    this.pointers = new Map(); // viewer id -> {el, x, y, timer}
    this.lastClient = null; // the visitor's last pointer position on the stage (client px)

    this.toastTimer = 0;
    this.noteTimer = 0;

    this.root = document.createElement('div');
    this.root.className = 'viewer';
    this.root.dataset.role = role;
    this.root.innerHTML = TEMPLATE;
    host.replaceChildren(this.root);
    const q = (sel) => this.root.querySelector(sel);
    this.stage = q('.viewer-stage');
    this.video = q('.viewer-video');
    this.overlay = q('.viewer-overlay');
    this.ime = q('.viewer-ime');
    this.status = q('.viewer-status');
    this.statusTitle = q('.viewer-status-title');
    this.statusDetail = q('.viewer-status-detail');
    this.retryBtn = q('.viewer-retry');
    this.toastEl = q('.viewer-toast');
    this.copyBtn = q('.viewer-copy');
    this.chooser = q('.viewer-chooser');
    this.chooserInput = q('.viewer-chooser-input');
    this.downloadEl = q('.viewer-download');
    this.download = null; // a complete download waiting for the customer: {name, blob}
    this.incoming = null; // the download arriving on the files channel
    this.hint = q('.viewer-hint');
    this.keyboardBtn = q('.viewer-keyboard');
    this.maskingEl = q('.viewer-masking');
    this.maskingTitle = q('.viewer-masking-title');
    this.maskingReasonEl = q('.viewer-masking-reason');
    this.browserEl = q('.viewer-browser');
    this.browserTitle = q('.viewer-browser-title');
    this.masksSwitch = q('.viewer-masks');
    this.masksToggle = q('.viewer-masks-toggle');
    this.masksLabel = q('.viewer-masks-label');
    this.pointersEl = q('.viewer-pointers');
    this.askEl = q('.viewer-ask');
    this.askText = q('.viewer-ask-text');
    this.allowBtn = q('.viewer-ask-allow');
    this.denyBtn = q('.viewer-ask-deny');
    this.noteEl = q('.viewer-note');
    this.controlEl = q('.viewer-control');
    this.controlText = q('.viewer-control-text');
    this.controlBtn = q('.viewer-control-button');
    if (role === 'agent') {
      this.askEl.remove();
      this.askEl = null;
    }
    this.annotCanvas = q('.viewer-annotations');
    this.drawLayer = q('.viewer-draw');
    this.toolBtns = [...this.root.querySelectorAll('.viewer-tool[data-tool]')];
    this.pinBtn = q('.viewer-tool-pin');
    this.clearBtn = q('.viewer-tool-clear');
    this.chatBtn = q('.viewer-chat-toggle');
    this.chatEl = q('.viewer-chat');
    this.navForm = q('.viewer-nav');
    this.navUrl = q('.viewer-nav-url');
    this.navBtns = [...this.navForm.querySelectorAll('[data-nav]')];
    this.location = null; // the worker's last location notice: {url, back, forward, tabs}
    this.tabsEl = q('.viewer-tabs');
    // Each role keeps only its own side of masking.
    if (role === 'customer') {
      this.maskingEl.remove();
      this.maskingEl = null;
      this.masksToggle.checked = this.outlines;
      this.stage.dataset.maskOutlines = this.outlines ? 'on' : 'off';
      this.stage.dataset.maskCount = '0';
    } else {
      this.masksSwitch.remove();
      this.masksSwitch = this.masksToggle = null;
    }

    this.abort = new AbortController();
    this.copyBtn.addEventListener('click', () => this.copyNow(), { signal: this.abort.signal });
    this.chooserInput.addEventListener('change', () => this.sendChosen(), { signal: this.abort.signal });
    q('.viewer-chooser-cancel').addEventListener('click', () => this.cancelChooser(), { signal: this.abort.signal });
    q('.viewer-download-save').addEventListener('click', () => this.saveDownload(), { signal: this.abort.signal });
    q('.viewer-download-dismiss').addEventListener('click', () => this.closeDownload(), { signal: this.abort.signal });
    this.capture = new RemoteInput({
      video: this.video,
      stage: this.stage,
      ime: this.ime,
      keyboardBtn: this.keyboardBtn,
      role,
      live: () => this.state === 'live',
      mayOperate: () => this.mayOperate(),
      onHeldBack: (x, y) => this.note(t(this.controlNever ? 'viewer.control.never' : 'viewer.control.needed'), x, y),
      sendInput: (msg) => this.sendInput(msg),
      sendPointer: (msg) => this.sendPointer(msg),
      signal: this.abort.signal,
    });
    this.retryBtn.addEventListener('click', () => this.start(), { signal: this.abort.signal });
    this.annotations = new Annotations({
      stage: this.stage,
      video: this.video,
      canvas: this.annotCanvas,
      layer: this.drawLayer,
      role,
      remote: () => this.remote,
      send: (msg) => this.sendInput(msg),
      onWheel: (e) => this.capture.onWheel(e),
      signal: this.abort.signal,
    });
    this.chat = new ChatPanel({
      panel: this.chatEl,
      button: this.chatBtn,
      role,
      me: () => this.viewerId,
      send: (text) => this.sendInput({ type: 'chat', text }),
      signal: this.abort.signal,
    });
    for (const b of this.toolBtns) b.addEventListener('click', () => this.setTool(b.dataset.tool), { signal: this.abort.signal });
    this.pinBtn.addEventListener('click', () => {
      this.annotations.setPinned(!this.annotations.pinned);
      this.renderTools();
    }, { signal: this.abort.signal });
    this.clearBtn.addEventListener('click', () => this.annotations.clearAll(), { signal: this.abort.signal });
    for (const b of this.navBtns) b.addEventListener('click', () => this.navigate(b.dataset.nav), { signal: this.abort.signal });
    this.tabsEl.addEventListener('click', (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      if (b.dataset.close) this.navigate('close_tab', '', b.dataset.close);
      else if (b.dataset.tab && b.getAttribute('aria-selected') !== 'true') this.navigate('tab', '', b.dataset.tab);
    }, { signal: this.abort.signal });
    this.tabsEl.addEventListener('keydown', (e) => this.onTabsKey(e), { signal: this.abort.signal });
    this.navForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const url = this.navUrl.value.trim();
      if (url) this.navigate('go', url);
    }, { signal: this.abort.signal });
    this.navUrl.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.navUrl.value = this.location?.url || ''; // back to where the tab is
        this.navUrl.blur();
      }
    }, { signal: this.abort.signal });
    // Esc on the drawing layer's stage goes back to operating the tab.
    this.stage.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.annotations.tool !== 'operate') {
        e.preventDefault();
        e.stopImmediatePropagation();
        this.setTool('operate');
      }
    }, { capture: true, signal: this.abort.signal });
    this.video.addEventListener(
      'resize',
      () => {
        this.checkLive();
        this.drawOverlay(); // a new picture size moves the letterbox bars
        this.annotations.draw();
        for (const p of this.pointers.values()) this.placePointer(p);
      },
      { signal: this.abort.signal },
    );
    this.masksToggle?.addEventListener('change', () => this.setOutlines(this.masksToggle.checked), { signal: this.abort.signal });
    this.controlBtn.addEventListener('click', () => this.onControlButton(), { signal: this.abort.signal });
    this.allowBtn?.addEventListener('click', () => this.answerRequest(true), { signal: this.abort.signal });
    this.denyBtn?.addEventListener('click', () => this.answerRequest(false), { signal: this.abort.signal });
    this.stage.addEventListener('pointermove', (e) => {
      this.lastClient = { x: e.clientX, y: e.clientY };
    }, { signal: this.abort.signal });
    if (role === 'customer') {
      // Capture, before the remote input sees it: the key never reaches the tab.
      window.addEventListener('keydown', (e) => {
        if (!isTakeBack(e) || this.control.controller !== 'agent') return;
        e.preventDefault();
        e.stopImmediatePropagation();
        this.takeBack();
      }, { capture: true, signal: this.abort.signal });
    }
    this.screen = new ScreenShare({
      root: this.root,
      stage: this.stage,
      bar: q('.viewer-bar'),
      role,
      send: (msg) => this.sendInput(msg),
      toast: (text) => this.toast(text),
      refocus: () => this.video.focus({ preventScroll: true }),
      signal: this.abort.signal,
    });
    this.screen.me = () => this.viewerId;
    this.resizeObserver = new ResizeObserver(() => this.onResize());
    this.resizeObserver.observe(this.stage);
    this.stopLang = onLangChange(() => this.render());
    this.setState('connecting');
    window.tandemViewer = this;
  }

  /** start connects; the viewer then reconnects by itself until it ends. */
  start() {
    this.closed = false;
    this.attempts = 0;
    this.connect();
  }

  /** leave says bye to the server, closes the connection and shows the "you left" state. */
  leave() {
    this.sendSignal({ type: 'bye' });
    this.end('left');
  }

  /** setWaiting shows text instead of "Connecting…" until the first picture; '' goes back. */
  setWaiting(text) {
    if (this.waiting === text) return;
    this.waiting = text || '';
    if (this.waiting) this.root.dataset.waiting = 'true';
    else delete this.root.dataset.waiting;
    this.render();
  }

  /** destroy says bye, closes everything and removes the view from the page. */
  destroy() {
    if (this.state !== 'ended') this.sendSignal({ type: 'bye' });
    this.closed = true;
    this.teardown();
    clearTimeout(this.retryTimer);
    clearTimeout(this.toastTimer);
    clearTimeout(this.noteTimer);
    this.clearPointers();
    this.abort.abort();
    this.resizeObserver.disconnect();
    this.stopLang();
    this.video.srcObject = null;
    this.root.remove();
    if (window.tandemViewer === this) window.tandemViewer = undefined;
  }

  // ---- connection ----

  connect() {
    if (this.closed) return;
    this.teardown();
    const gen = ++this.gen;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/api/v1/sessions/${encodeURIComponent(this.sessionId)}/ws?role=${this.role}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.lost();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (gen === this.gen) this.onSignal(ev.data, gen);
    };
    ws.onclose = () => {
      if (gen === this.gen) this.lost();
    };
  }

  // teardown closes the current socket and peer without changing the state.
  teardown() {
    this.gen++;
    this.stopRestart();
    this.capture.reset();
    this.pendingCandidates = [];
    this.hasFrame = false;
    for (const ch of [this.input, this.pointer]) {
      if (ch) {
        ch.onopen = ch.onmessage = null;
        ch.close();
      }
    }
    this.input = this.pointer = null;
    if (this.pc) {
      this.pc.ontrack = this.pc.onicecandidate = this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
    }
    if (this.ws) {
      this.ws.onmessage = this.ws.onclose = null;
      if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
      this.ws = null;
    }
    // What the worker said about masking was about that connection; the
    // next one tells again as its peer connects.
    this.masks = null;
    this.masking = this.maskingReason = '';
    delete this.stage.dataset.masking;
    this.restarting = false;
    this.drawOverlay();
    this.renderMasking();
    // So is control: a new connection is told again. A leaving agent lost it.
    this.control = { controller: 'customer', id: '', name: '' };
    this.asking = '';
    this.request = null;
    this.clearPointers();
    this.annotations.reset();
    this.location = null;
    this.screen?.reset(); // a customer's capture stops with its connection
    this.renderControl();
  }

  // lost handles a socket or peer that went away without "ended": a new
  // socket and peer, after a backoff.
  lost() {
    if (this.closed || this.state === 'ended') return;
    this.teardown();
    this.root.dataset.recovery = 'reconnect';
    if (this.attempts >= MAX_ATTEMPTS) {
      this.setState('failed');
      return;
    }
    const delay = Math.min(500 * 2 ** this.attempts, 8000);
    this.attempts++;
    this.setState('reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  end(reason) {
    if (this.state === 'ended') return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.capture.releaseAll();
    this.teardown();
    this.setState('ended', reason || 'unknown');
  }

  sendSignal(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  async onSignal(data, gen) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    try {
      switch (msg.type) {
        case 'hello':
          this.viewerId = msg.viewer_id || '';
          // STUN/TURN servers, TURN with credentials minted for this
          // socket (docs/media-network.md); none: host candidates only.
          this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
          if (msg.width > 0 && msg.height > 0) this.setRemote(msg.width, msg.height);
          if (!this.pc) await this.startPeer(gen);
          break;
        case 'answer':
          if (!this.pc) return;
          await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
          if (gen !== this.gen) return;
          for (const c of this.pendingCandidates.splice(0)) await this.pc.addIceCandidate(c);
          break;
        case 'candidate': {
          if (!msg.candidate || !this.pc) return;
          const c = { ...msg.candidate };
          if (c.sdpMid == null && c.sdpMLineIndex == null) c.sdpMLineIndex = 0;
          if (this.pc.remoteDescription) await this.pc.addIceCandidate(c);
          else this.pendingCandidates.push(c);
          break;
        }
        case 'state':
          this.root.dataset.session = msg.state || '';
          this.onSession(msg);
          break;
        case 'ended':
          this.end(msg.reason);
          break;
        case 'error':
          // A refused ICE restart: start anew rather than wait for the bound.
          if (this.restarting && (msg.error === 'restart_failed' || msg.error === 'negotiation_failed')) this.lost();
          else this.toast(msg.message || t('viewer.error'));
          break;
        default:
          break; // a newer server's message: nothing to do
      }
    } catch {
      if (gen === this.gen) this.lost();
    }
  }

  async startPeer(gen) {
    // The hello named the ICE servers; without any, host candidates (and
    // the worker's configured addresses) only.
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    this.screen.addTransceiver(pc); // the second video m-line: the customer's screen
    this.input = pc.createDataChannel('input');
    this.pointer = pc.createDataChannel('pointer', { ordered: false, maxRetransmits: 0 });
    // Files the customer picks for the page's file chooser (docs/files.md).
    // Files the customer picks for the page's file chooser, and the page's
    // downloads when the company allows them (docs/files.md).
    this.files = this.role === 'customer' ? pc.createDataChannel('files') : null;
    if (this.files) {
      this.files.binaryType = 'arraybuffer';
      this.files.onmessage = (ev) => this.onDownloadMessage(ev.data);
    }
    this.input.onopen = () => {
      this.capture.sendViewport(true);
    };
    this.input.onmessage = (ev) => this.onNotice(ev.data);
    pc.ontrack = (ev) => {
      if (this.screen.onTrack(ev)) return;
      // A remote tab is interactive: play each frame as soon as it is
      // decoded rather than buffering for smoothness (Chromium's
      // jitterBufferTarget; other browsers ignore it).
      try {
        if ('jitterBufferTarget' in ev.receiver) ev.receiver.jitterBufferTarget = 0;
      } catch (_) { /* not supported */ }
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this.video.srcObject = stream;
      this.video.play().catch(() => {});
      this.watchFrames(gen);
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) this.sendSignal({ type: 'candidate', candidate: candidateInit(ev.candidate) });
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.gen) return;
      switch (pc.connectionState) {
        case 'connected':
          this.stopRestart();
          this.attempts = 0;
          this.checkLive();
          break;
        case 'disconnected':
          if (this.state === 'live') this.setState('reconnecting');
          if (!this.restarting && !this.iceTimer) this.iceTimer = setTimeout(() => this.restartIce(gen), ICE_GRACE_MS);
          break;
        case 'failed':
          if (this.restarting) this.lost();
          else this.restartIce(gen);
          break;
        default:
          break;
      }
    };
    const offer = await pc.createOffer();
    if (gen !== this.gen) return;
    await pc.setLocalDescription(offer);
    if (gen !== this.gen) return;
    this.sendSignal({ type: 'offer', sdp: pc.localDescription.sdp });
  }

  // restartIce restarts ICE on the current peer connection: a new offer with
  // fresh credentials, marked "restart", on the same socket; the worker
  // renegotiates the same peer (channels, track and encoder stay). Without
  // an open socket, or if the connection is not back within ICE_RESTART_MS,
  // it falls back to a full reconnect (lost).
  async restartIce(gen) {
    clearTimeout(this.iceTimer);
    this.iceTimer = 0;
    if (gen !== this.gen || this.closed || this.restarting) return;
    const pc = this.pc;
    if (!pc || !this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.lost();
      return;
    }
    this.restarting = true;
    this.root.dataset.recovery = 'ice-restart';
    if (this.state !== 'connecting') this.setState('reconnecting');
    // Live again only with a picture that came over the restarted path.
    this.hasFrame = false;
    this.watchFrames(gen);
    this.restartTimer = setTimeout(() => {
      if (gen === this.gen && this.restarting) this.lost();
    }, ICE_RESTART_MS);
    try {
      const offer = await pc.createOffer({ iceRestart: true });
      if (gen !== this.gen) return;
      await pc.setLocalDescription(offer);
      if (gen !== this.gen) return;
      this.sendSignal({ type: 'offer', sdp: pc.localDescription.sdp, restart: true });
    } catch {
      if (gen === this.gen) this.lost();
    }
  }

  // stopRestart forgets a pending or running ICE restart.
  stopRestart() {
    clearTimeout(this.iceTimer);
    clearTimeout(this.restartTimer);
    this.iceTimer = this.restartTimer = 0;
    this.restarting = false;
  }

  // watchFrames marks the first decoded frame of this connection.
  watchFrames(gen) {
    const seen = () => {
      if (gen !== this.gen) return;
      this.hasFrame = true;
      this.checkLive();
    };
    if (typeof this.video.requestVideoFrameCallback === 'function') {
      this.video.requestVideoFrameCallback(seen);
    } else {
      this.video.addEventListener('loadeddata', seen, { once: true, signal: this.abort.signal });
    }
  }

  checkLive() {
    if (this.closed || !this.pc) return;
    if (this.pc.connectionState === 'connected' && this.hasFrame && this.video.videoWidth > 0) this.setState('live');
  }

  onNotice(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === 'viewport' && msg.width > 0 && msg.height > 0) this.setRemote(msg.width, msg.height);
    else if (msg.type === 'refused') {
      // A question held back by the gate is not waiting for an answer.
      this.screen.heldBack();
      if (msg.reason === 'control_never') {
        this.controlNever = true;
        this.asking = '';
        this.renderControl();
      }
      // The gate's reasons have our own words; others come with the worker's.
      const key = `viewer.refusedReason.${msg.reason}`;
      const text = t(key) !== key ? t(key) : msg.message || t('viewer.refused');
      // What the agent's pointer tried (blocked, no control): a note there.
      if (['blocked', 'no_control', 'control_never'].includes(msg.reason)) this.note(text);
      else this.toast(text);
    } else if (msg.type === 'control') this.onControlNotice(msg);
    else if (msg.type === 'screenshare') this.screen.onNotice(msg);
    else if (msg.type === 'chat') this.chat.onNotice(msg);
    else if (msg.type === 'location') this.onLocation(msg);
    else if (msg.type === 'clipboard' && typeof msg.text === 'string') this.onClipboard(msg);
    else if (msg.type === 'file_chooser') this.onChooser(msg);
    else if (msg.type === 'focus' && this.role === 'customer') this.onRemoteFocus(msg.state);
    else if (msg.type === 'cursor') this.video.style.cursor = CURSORS.has(msg.state) ? msg.state : '';
    else if (this.annotations.onNotice(msg)) return;
    else if (msg.type === 'pointer') this.showPointer(msg);
    else if (msg.type === 'masks' && this.role === 'customer') {
      const masks = parseMasks(msg);
      if (!masks) return;
      this.masks = masks;
      if (!this.masksSeen) {
        this.masksSeen = true;
        this.render();
      }
      this.drawOverlay();
    } else if (msg.type === 'masking' && this.role === 'agent') {
      // A state a newer worker knows and we do not leaves the banner as it was.
      if (msg.state !== 'paused' && msg.state !== 'active') return;
      this.masking = msg.state;
      this.maskingReason = msg.state === 'paused' && typeof msg.reason === 'string' ? msg.reason : '';
      this.stage.dataset.masking = msg.state;
      this.renderMasking();
    } else if (msg.type === 'browser') {
      if (msg.state !== 'restarting' && msg.state !== 'restored') return;
      const was = this.restarting;
      this.restarting = msg.state === 'restarting';
      if (was && !this.restarting) this.toast(t('viewer.browser.restored'));
      this.renderMasking();
    }
  }

  // ---- control ----

  // mayOperate says whether clicks, keys, wheel and text go to the tab: the
  // customer's always; an agent's while it controls (the worker checks too).
  mayOperate() {
    return this.role === 'customer' || (this.control.controller === 'agent' && this.control.id === this.viewerId);
  }

  onControlNotice(msg) {
    if (msg.controller === 'customer' || msg.controller === 'agent') {
      const before = this.control;
      const now = { controller: msg.controller, id: msg.viewer_id || '', name: msg.name || '' };
      const mine = (c) => c.controller === 'agent' && c.id === this.viewerId && this.role === 'agent';
      this.control = now;
      if (mine(now)) this.asking = '';
      // The worker follows the state with the question still waiting, if
      // any: an answered, withdrawn or granted question goes.
      this.request = null;
      if (mine(before) !== mine(now) || before.controller !== now.controller) {
        // The worker released what was held down; so does this side.
        this.capture.forget();
        if (this.role === 'agent' && mine(before) && !mine(now)) this.toast(t(now.controller === 'agent' ? 'viewer.control.passed' : 'viewer.control.takenBack'));
        if (this.role === 'agent' && mine(now) && !mine(before)) this.toast(t('viewer.control.granted'));
      }
    } else if (msg.state === 'requested' && this.role === 'customer') {
      this.request = { id: msg.viewer_id || '', name: msg.name || '' };
    } else if (msg.state === 'asking' && this.role === 'agent') {
      this.asking = 'asking';
    } else if (msg.state === 'denied' && this.role === 'agent') {
      this.asking = '';
      this.toast(t('viewer.control.denied'));
    } else {
      return; // a newer worker's state
    }
    this.renderControl();
  }

  onControlButton() {
    if (this.role === 'customer') {
      this.takeBack();
      return;
    }
    if (this.mayOperate()) {
      this.capture.releaseAll();
      this.sendInput({ type: 'control', action: 'release' });
    } else if (!this.asking && !this.controlNever && this.sendInput({ type: 'control', action: 'request' })) {
      this.asking = 'asking'; // until the worker answers
      this.renderControl();
    }
  }

  /** takeBack takes control back from the agent (customer). */
  takeBack() {
    if (this.role !== 'customer') return;
    if (this.sendInput({ type: 'control', action: 'revoke' })) this.toast(t('viewer.control.tookBack'));
  }

  answerRequest(allow) {
    if (!this.request) return;
    this.sendInput({ type: 'control', action: allow ? 'grant' : 'deny' });
    this.request = null;
    this.renderControl();
    this.video.focus({ preventScroll: true });
  }

  // who names a viewer in the current language: its name, else its role.
  who(name, role) {
    return name || t(role === 'agent' ? 'viewer.control.anAgent' : 'viewer.control.theCustomer');
  }

  renderControl() {
    const live = this.state === 'live';
    const c = this.control;
    const agentName = this.who(c.name, 'agent');
    let state;
    let text = '';
    let button = '';
    if (this.role === 'agent') {
      if (this.mayOperate()) {
        state = 'controlling';
        text = t('viewer.control.controlling');
        button = t('viewer.control.release');
      } else if (this.controlNever) {
        state = 'never';
        text = t('viewer.control.never');
      } else {
        state = this.asking ? 'asking' : 'viewing';
        text = this.asking ? t('viewer.control.asking') : c.controller === 'agent' ? t('viewer.control.other', { name: agentName }) : t('viewer.control.viewing');
        button = t('viewer.control.request');
      }
    } else {
      state = this.request ? 'requested' : c.controller;
      if (c.controller === 'agent') {
        text = t('viewer.control.agentControls', { name: agentName });
        button = t('viewer.control.takeBack');
      }
    }
    this.root.dataset.control = state;
    this.controlEl.hidden = !live || !text;
    this.controlEl.dataset.control = state;
    this.controlText.textContent = text;
    this.controlBtn.hidden = !button;
    this.controlBtn.textContent = button;
    this.controlBtn.disabled = state === 'asking';
    if (this.role === 'customer') {
      this.controlBtn.title = t('viewer.control.takeBackKey');
      this.controlBtn.setAttribute('aria-keyshortcuts', 'Alt+Shift+C');
    }
    for (const p of this.pointers.values()) p.label.textContent = this.who(p.name, p.role);
    if (this.askEl) {
      this.askEl.hidden = !live || !this.request;
      if (this.request) this.askText.textContent = t('viewer.control.asks', { name: this.who(this.request.name, 'agent') });
      this.allowBtn.textContent = t('viewer.control.allow');
      this.denyBtn.textContent = t('viewer.control.deny');
    }
    this.hint.textContent = this.role === 'agent' && state !== 'controlling' ? '' : t('viewer.hint');
    this.hint.title = this.hint.textContent; // the bar keeps one line; the whole hint on hover
    this.renderNav(); // whoever controls navigates
    this.renderTabs();
    this.controlText.title = text;
    this.video.setAttribute('aria-label', t(this.role === 'customer' ? 'viewer.labelCustomer' : state === 'controlling' ? 'viewer.labelAgent' : 'viewer.labelAgentViewing'));
  }

  // ---- the address bar ----

  onLocation(msg) {
    if (typeof msg.url !== 'string') return;
    const tabs = Array.isArray(msg.tabs) ? msg.tabs.filter((tb) => tb && typeof tb.id === 'string' && /^[0-9]{1,8}$/.test(tb.id)) : [];
    this.location = { url: msg.url, back: !!msg.back, forward: !!msg.forward, tabs };
    this.root.dataset.location = msg.url;
    // What someone is typing stays until they go or give up.
    if (document.activeElement !== this.navUrl) this.navUrl.value = msg.url;
    this.renderNav();
    this.renderTabs();
  }

  /**
   * navigate sends the address bar's action: go (to url), back, forward,
   * reload, or the tab strip's: tab (bring tab to the front), close_tab.
   */
  navigate(action, url, tab) {
    if (!this.mayOperate()) {
      const r = (action === 'tab' || action === 'close_tab' ? this.tabsEl : this.navUrl).getBoundingClientRect();
      this.note(t('viewer.control.needed'), r.left + 12, r.bottom - 8);
      return;
    }
    const msg = { type: 'navigate', action };
    if (action === 'go') msg.url = url;
    if (action === 'tab' || action === 'close_tab') msg.tab = tab;
    if (this.sendInput(msg) && action === 'go') {
      this.navUrl.blur();
      this.video.focus({ preventScroll: true });
    }
  }

  renderNav() {
    const may = this.mayOperate() && this.state === 'live';
    const loc = this.location;
    this.navForm.dataset.enabled = String(may);
    this.navUrl.readOnly = !may;
    this.navUrl.setAttribute('aria-label', t('viewer.nav.address'));
    this.navUrl.placeholder = t('viewer.nav.placeholder');
    for (const b of this.navBtns) {
      const label = t(`viewer.nav.${b.dataset.nav}`);
      b.setAttribute('aria-label', label);
      b.title = label;
      b.disabled = !may || (b.dataset.nav === 'back' && !loc?.back) || (b.dataset.nav === 'forward' && !loc?.forward) || !loc;
    }
  }

  // The tab strip (docs/tabs.md): shown once the page opened a second
  // tab. Titles are the page's: text, never markup.
  renderTabs() {
    const tabs = this.location?.tabs || [];
    const el = this.tabsEl;
    el.setAttribute('aria-label', t('viewer.tabs.label'));
    el.hidden = tabs.length < 2;
    const focused = el.contains(document.activeElement) ? document.activeElement.dataset.tab : '';
    el.replaceChildren();
    const may = this.mayOperate();
    tabs.forEach((tb, i) => {
      const title = (typeof tb.title === 'string' && tb.title.trim()) || (typeof tb.url === 'string' && tb.url) || t('viewer.tabs.untitled');
      const item = document.createElement('div');
      item.className = 'viewer-tab';
      item.dataset.active = String(!!tb.active);
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'viewer-tab-title';
      b.setAttribute('role', 'tab');
      b.setAttribute('aria-selected', String(!!tb.active));
      b.tabIndex = tb.active ? 0 : -1;
      b.dataset.tab = tb.id;
      b.textContent = title;
      b.title = typeof tb.url === 'string' && tb.url ? `${title}\n${tb.url}` : title;
      b.setAttribute('aria-disabled', String(!may));
      item.append(b);
      if (i > 0) { // the session's first tab stays open
        const x = document.createElement('button');
        x.type = 'button';
        x.className = 'viewer-tab-close';
        x.dataset.close = tb.id;
        x.tabIndex = tb.active ? 0 : -1;
        x.setAttribute('aria-label', t('viewer.tabs.close', { title }));
        x.title = x.getAttribute('aria-label');
        x.textContent = '×';
        x.setAttribute('aria-disabled', String(!may));
        item.append(x);
      }
      el.append(item);
      if (focused === tb.id) b.focus({ preventScroll: true });
    });
  }

  // Arrow keys move along the strip, as in any tab list; Enter or Space
  // (the button's own) brings the tab to the front; Delete closes it.
  onTabsKey(e) {
    const tabs = [...this.tabsEl.querySelectorAll('[role="tab"]')];
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    let next = -1;
    if (e.key === 'ArrowRight') next = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') next = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = tabs.length - 1;
    else if (e.key === 'Delete' && i > 0) {
      e.preventDefault();
      this.navigate('close_tab', '', tabs[i].dataset.tab);
      return;
    }
    if (next < 0) return;
    e.preventDefault();
    tabs[i].tabIndex = -1;
    tabs[next].tabIndex = 0;
    tabs[next].focus();
  }

  // ---- annotations ----

  /** setTool picks what the pointer does over the picture: operate, pen, laser or highlight. */
  setTool(tool) {
    this.annotations.setTool(tool);
    this.renderTools();
  }

  renderTools() {
    const a = this.annotations;
    for (const b of this.toolBtns) {
      b.setAttribute('aria-pressed', String(a.tool === b.dataset.tool));
      const label = t(`viewer.tool.${b.dataset.tool}`);
      b.setAttribute('aria-label', label);
      b.title = label;
    }
    this.pinBtn.setAttribute('aria-pressed', String(a.pinned));
    this.pinBtn.setAttribute('aria-label', t('viewer.tool.pin'));
    this.pinBtn.title = t('viewer.tool.pin');
    this.clearBtn.setAttribute('aria-label', t('viewer.tool.clear'));
    this.clearBtn.title = t('viewer.tool.clear');
    this.root.querySelector('.viewer-tools').setAttribute('aria-label', t('viewer.tool.bar'));
  }

  // ---- pointers ----

  // showPointer moves (or adds) another viewer's pointer to the notice's
  // remote point; a CSS transition smooths the steps between notices.
  showPointer(msg) {
    const { viewer_id: id, x, y } = msg;
    if (!id || id === this.viewerId || !Number.isFinite(x) || !Number.isFinite(y)) return;
    let p = this.pointers.get(id);
    if (!p) {
      const el = document.createElement('div');
      el.className = 'viewer-pointer';
      el.innerHTML = POINTER_SVG;
      const label = document.createElement('span');
      label.className = 'viewer-pointer-name';
      el.append(label);
      this.pointersEl.append(el);
      p = { el, label, x: 0, y: 0, timer: 0 };
      this.pointers.set(id, p);
    }
    p.x = x;
    p.y = y;
    p.el.dataset.viewerId = id;
    p.role = msg.role === 'agent' ? 'agent' : 'customer';
    p.name = p.role === 'agent' && typeof msg.name === 'string' ? msg.name : '';
    p.el.dataset.role = p.role;
    p.label.textContent = this.who(p.name, p.role);
    p.el.classList.remove('is-idle');
    clearTimeout(p.timer);
    p.timer = setTimeout(() => p.el.classList.add('is-idle'), POINTER_IDLE_MS);
    this.placePointer(p);
  }

  placePointer(p) {
    const r = this.remote;
    const box = contentBox(this.video.getBoundingClientRect(), this.video.videoWidth || r?.width, this.video.videoHeight || r?.height);
    if (!box) {
      p.el.hidden = true;
      return;
    }
    const stage = this.stage.getBoundingClientRect();
    const vw = this.video.videoWidth || r.width;
    const left = box.left - stage.left + (p.x / vw) * box.width;
    const top = box.top - stage.top + (p.y / (this.video.videoHeight || r.height)) * box.height;
    p.el.hidden = false;
    p.el.dataset.left = String(Math.round(left));
    p.el.dataset.top = String(Math.round(top));
    p.el.style.transform = `translate(${left}px, ${top}px)`;
  }

  clearPointers() {
    for (const p of this.pointers.values()) {
      clearTimeout(p.timer);
      p.el.remove();
    }
    this.pointers.clear();
  }

  // note shows text by the visitor's pointer (client px; the last known
  // position when none is given), for what the tab did not take there.
  note(text, x, y) {
    const at = Number.isFinite(x) && Number.isFinite(y) ? { x, y } : this.lastClient;
    const stage = this.stage.getBoundingClientRect();
    this.noteEl.textContent = text;
    this.noteEl.hidden = false;
    const w = this.noteEl.offsetWidth;
    const h = this.noteEl.offsetHeight;
    let left = at ? at.x - stage.left + 14 : (stage.width - w) / 2;
    let top = at ? at.y - stage.top + 18 : stage.height - h - 16;
    left = Math.max(8, Math.min(left, stage.width - w - 8));
    if (top + h > stage.height - 8) top = (at ? at.y - stage.top : stage.height) - h - 12;
    top = Math.max(8, top);
    this.noteEl.style.left = `${Math.round(left)}px`;
    this.noteEl.style.top = `${Math.round(top)}px`;
    clearTimeout(this.noteTimer);
    this.noteTimer = setTimeout(() => {
      this.noteEl.hidden = true;
    }, NOTE_MS);
  }

  // ---- masking ----

  /** setOutlines turns the customer's outlines of masked areas on or off, and remembers it. */
  setOutlines(on) {
    if (this.role !== 'customer') return;
    this.outlines = !!on;
    try {
      localStorage.setItem(OUTLINES_KEY, this.outlines ? 'on' : 'off');
    } catch {
      // not remembered; the switch still works for this page
    }
    if (this.masksToggle.checked !== this.outlines) this.masksToggle.checked = this.outlines;
    this.stage.dataset.maskOutlines = this.outlines ? 'on' : 'off';
    this.drawOverlay();
  }

  // drawOverlay repaints the overlay canvas. On the customer's view it
  // outlines each area the agent cannot see, mapped from the remote
  // viewport through the video's letterboxing (as input.js maps the other
  // way) and clipped to the picture. The agent's overlay stays empty.
  drawOverlay() {
    if (this.role !== 'customer') return;
    const c = this.overlay;
    const g = c.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, c.width, c.height);
    let drawn = 0;
    const m = this.masks;
    const stage = this.stage.getBoundingClientRect();
    if (this.outlines && m && m.rects.length && stage.width > 0 && stage.height > 0) {
      // Before the first frame the notice's size stands for the picture's.
      const box = contentBox(this.video.getBoundingClientRect(), this.video.videoWidth || m.width, this.video.videoHeight || m.height);
      if (box) {
        // Draw in CSS px of the stage; the canvas has devicePixelRatio more.
        g.setTransform(c.width / stage.width, 0, 0, c.height / stage.height, 0, 0);
        const left = box.left - stage.left;
        const top = box.top - stage.top;
        const sx = box.width / m.width;
        const sy = box.height / m.height;
        g.save();
        g.beginPath();
        g.rect(left, top, box.width, box.height);
        g.clip();
        g.beginPath();
        for (const [x, y, w, h] of m.rects) g.rect(left + x * sx, top + y * sy, w * sx, h * sy);
        // One path: where areas overlap the fill still adds up to 8%.
        g.fillStyle = OUTLINE_FILL;
        g.fill();
        g.lineWidth = OUTLINE_WIDTH;
        g.setLineDash([OUTLINE_DASH, OUTLINE_DASH]);
        g.strokeStyle = OUTLINE_GAP;
        g.lineDashOffset = OUTLINE_DASH;
        g.stroke();
        g.strokeStyle = OUTLINE_LINE;
        g.lineDashOffset = 0;
        g.stroke();
        g.restore();
        drawn = m.rects.length;
      }
    }
    this.stage.dataset.maskCount = String(drawn);
  }

  // renderMasking shows the agent's "masking paused" banner, in the
  // current language, while the worker holds the picture; and either
  // role's "restarting" banner, which stands in for it meanwhile.
  renderMasking() {
    const s = this.state;
    const restarting = this.restarting && s !== 'ended' && s !== 'failed';
    this.browserEl.hidden = !restarting;
    this.browserTitle.textContent = t('viewer.browser.restarting');
    if (restarting) this.stage.dataset.browser = 'restarting';
    else delete this.stage.dataset.browser;
    if (!this.maskingEl) return;
    this.maskingEl.hidden = this.masking !== 'paused' || s === 'ended' || s === 'failed' || restarting;
    this.maskingTitle.textContent = t('viewer.masking.paused');
    const key = `viewer.masking.reason.${this.maskingReason}`;
    const why = this.maskingReason && t(key) !== key ? t(key) : '';
    this.maskingReasonEl.textContent = why;
    this.maskingReasonEl.hidden = !why;
  }

  setRemote(width, height) {
    this.remote = { width, height };
    this.root.dataset.remoteWidth = String(width);
    this.root.dataset.remoteHeight = String(height);
    // The agent's stage takes the remote shape; the customer's fills the page.
    if (this.role === 'agent') this.stage.style.aspectRatio = `${width} / ${height}`;
  }

  // ---- state and text ----

  setState(state, reason = '') {
    this.state = state;
    this.reason = reason;
    this.root.dataset.state = state;
    this.stage.dataset.state = state; // the video's own container, for tests and styles
    // data-recovery says how a "reconnecting" view is trying: ice-restart or reconnect.
    if (state !== 'reconnecting') delete this.root.dataset.recovery;
    if (reason) this.root.dataset.reason = reason;
    else delete this.root.dataset.reason;
    this.render();
    this.onState(state, reason);
  }

  render() {
    const s = this.state;
    this.status.hidden = s === 'live';
    this.stage.setAttribute('aria-busy', String(s === 'connecting' || s === 'reconnecting'));
    this.status.classList.toggle('is-busy', s === 'connecting' || s === 'reconnecting');
    this.statusTitle.textContent = s === 'connecting' && this.waiting ? this.waiting : t(`viewer.state.${s}`);
    let detail = '';
    if (s === 'ended') detail = t(`reason.${this.reason}`) === `reason.${this.reason}` ? t('reason.unknown') : t(`reason.${this.reason}`);
    else if (s === 'failed') detail = t('viewer.failedDetail');
    this.statusDetail.textContent = detail;
    this.statusDetail.hidden = !detail;
    this.retryBtn.hidden = s !== 'failed';
    this.retryBtn.textContent = t('viewer.retry');
    this.copyBtn.textContent = t('viewer.copyButton');
    this.ime.setAttribute('aria-label', t('viewer.typeLabel'));
    this.keyboardBtn.textContent = t('viewer.keyboard');
    this.video.tabIndex = s === 'live' ? 0 : -1;
    if (this.masksSwitch) {
      // Shown once the worker masks: an older one never outlines anything.
      this.masksSwitch.hidden = !this.masksSeen;
      this.masksLabel.textContent = t('viewer.masks.outline');
    }
    this.renderMasking();
    this.renderControl();
    this.renderTools();
    this.chat?.render();
    this.screen?.render();
    this.renderDownload();
  }

  // onRemoteFocus opens the phone's keyboard when a tap put the tab's focus
  // in a text field, and closes it when the focus left one (docs/mobile.md).
  // The tap's user activation is still fresh: phones let the hidden field
  // take the focus then.
  onRemoteFocus(state) {
    if (!isMobile() || this.state !== 'live') return;
    if (state === 'editable') this.capture.focusKeyboard();
    else if (state === 'none' && document.activeElement === this.ime) this.ime.blur();
  }

  // ---- file chooser (docs/files.md) ----

  // onChooser shows, to a customer, the page's request for files, and to
  // an agent that the customer is asked.
  onChooser(msg) {
    if (this.role !== 'customer') {
      if (msg.state === 'customer') this.toast(t('viewer.chooser.agent'));
      return;
    }
    if (msg.state === 'open') {
      this.chooserMsg = msg;
      this.chooserInput.multiple = !!msg.multiple;
      this.chooserInput.value = '';
      this.chooser.hidden = false;
      this.renderChooser('');
      this.chooser.querySelector('.viewer-chooser-pick').focus?.();
    } else if (msg.state === 'closed') {
      this.chooser.hidden = true;
      this.chooserMsg = null;
    }
  }

  renderChooser(progress) {
    const msg = this.chooserMsg;
    if (!msg) return;
    this.chooser.querySelector('.viewer-chooser-title').textContent = t(msg.multiple ? 'viewer.chooser.titleMany' : 'viewer.chooser.title');
    this.chooser.querySelector('.viewer-chooser-detail').textContent = t('viewer.chooser.detail', { size: formatMB(msg.max_bytes || 0) });
    this.chooser.querySelector('.viewer-chooser-pick span').textContent = t('viewer.chooser.pick');
    this.chooser.querySelector('.viewer-chooser-cancel').textContent = t('viewer.chooser.cancel');
    this.chooser.querySelector('.viewer-chooser-progress').textContent = progress;
  }

  cancelChooser() {
    if (this.files && this.files.readyState === 'open') this.files.send(JSON.stringify({ type: 'files_cancel' }));
    this.chooser.hidden = true;
    this.chooserMsg = null;
  }

  // sendChosen sends the picked files on the "files" channel: a header,
  // the bytes in pieces (waiting while the channel's buffer is full), and
  // the end.
  async sendChosen() {
    const msg = this.chooserMsg;
    const files = [...this.chooserInput.files];
    const ch = this.files;
    if (!msg || !files.length || !ch || ch.readyState !== 'open') return;
    const max = msg.max_bytes || Infinity;
    const big = files.find((f) => f.size > max);
    if (big) {
      this.renderChooser(t('viewer.chooser.tooLarge', { name: big.name, size: formatMB(max) }));
      this.chooserInput.value = '';
      return;
    }
    const total = files.reduce((n, f) => n + f.size, 0);
    let sent = 0;
    try {
      for (const f of files) {
        ch.send(JSON.stringify({ type: 'file', name: f.name, size: f.size }));
        for (let off = 0; off < f.size; off += FILE_CHUNK) {
          const piece = await f.slice(off, off + FILE_CHUNK).arrayBuffer();
          while (ch.bufferedAmount > FILE_BUFFERED) await new Promise((r) => setTimeout(r, 20));
          ch.send(piece);
          sent += piece.byteLength;
          this.renderChooser(t('viewer.chooser.sending', { percent: Math.round((100 * sent) / Math.max(total, 1)) }));
        }
      }
      ch.send(JSON.stringify({ type: 'files_done' }));
    } catch {
      this.renderChooser(t('viewer.chooser.failed'));
    }
  }

  // ---- downloads (docs/files.md) ----

  // onDownloadMessage takes a download from the files channel: its header,
  // its bytes, its end. Only a complete one is offered; the customer saves
  // it with a click (the page never saves anything by itself).
  onDownloadMessage(data) {
    if (typeof data !== 'string') {
      const d = this.incoming;
      if (!d) return;
      d.parts.push(data);
      d.got += data.byteLength;
      if (d.got > d.size) this.incoming = null;
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === 'download' && typeof msg.name === 'string' && Number.isSafeInteger(msg.size) && msg.size >= 0) {
      this.incoming = { name: msg.name || 'download', size: msg.size, mime: typeof msg.mime === 'string' ? msg.mime : '', parts: [], got: 0 };
    } else if (msg.type === 'download_done') {
      const d = this.incoming;
      this.incoming = null;
      if (!d || d.got !== d.size) return;
      this.download = { name: d.name, size: d.size, blob: new Blob(d.parts, { type: d.mime || 'application/octet-stream' }) };
      this.downloadEl.hidden = false;
      this.renderDownload();
      this.downloadEl.querySelector('.viewer-download-save').focus({ preventScroll: true });
    }
  }

  renderDownload() {
    const d = this.download;
    if (!d) return;
    this.downloadEl.querySelector('.viewer-chooser-title').textContent = t('viewer.download.title');
    this.downloadEl.querySelector('.viewer-chooser-detail').textContent = t('viewer.download.detail', { name: d.name, size: formatMB(d.size) });
    this.downloadEl.querySelector('.viewer-download-save').textContent = t('viewer.download.save');
    this.downloadEl.querySelector('.viewer-download-dismiss').textContent = t('viewer.download.dismiss');
  }

  saveDownload() {
    const d = this.download;
    if (!d) return;
    const url = URL.createObjectURL(d.blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = d.name;
    a.rel = 'noopener';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    this.root.dataset.saved = d.name;
    this.closeDownload();
  }

  closeDownload() {
    this.download = null;
    this.downloadEl.hidden = true;
    this.video.focus({ preventScroll: true });
  }

  // ---- clipboard (docs/clipboard.md) ----

  // onClipboard puts what the visitor copied in the tab on its own
  // clipboard. Browsers that want a click for that (Safari, Firefox) get a
  // button that copies it.
  async onClipboard(msg) {
    this.copied = msg;
    this.copyBtn.hidden = true;
    try {
      await navigator.clipboard.writeText(msg.text);
      this.toastCopied();
    } catch {
      this.copyBtn.hidden = false;
      clearTimeout(this.copyTimer);
      this.copyTimer = setTimeout(() => {
        this.copyBtn.hidden = true;
      }, COPY_OFFER_MS);
    }
  }

  async copyNow() {
    this.copyBtn.hidden = true;
    if (!this.copied) return;
    try {
      await navigator.clipboard.writeText(this.copied.text);
      this.toastCopied();
    } catch {
      this.toast(t('viewer.copyFailed'));
    }
  }

  toastCopied() {
    this.toast(t(this.copied.state === 'truncated' ? 'viewer.copiedTruncated' : 'viewer.copied'));
  }

  toast(text) {
    this.toastEl.textContent = text;
    this.toastEl.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toastEl.hidden = true;
    }, TOAST_MS);
  }

  // ---- sending input ----

  sendInput(msg) {
    if (!this.input || this.input.readyState !== 'open') return false;
    this.input.send(JSON.stringify(msg));
    return true;
  }

  sendPointer(msg) {
    if (!this.pointer || this.pointer.readyState !== 'open') return false;
    this.pointer.send(JSON.stringify(msg));
    return true;
  }


  onResize() {
    const dpr = window.devicePixelRatio || 1;
    const r = this.stage.getBoundingClientRect();
    this.overlay.width = Math.max(1, Math.round(r.width * dpr));
    this.overlay.height = Math.max(1, Math.round(r.height * dpr));
    this.drawOverlay(); // sizing the canvas cleared it
    this.annotations.resize();
    for (const p of this.pointers.values()) this.placePointer(p);
    this.capture.scheduleViewport();
  }
}
