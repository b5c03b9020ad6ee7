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
// The state is on the root element and on the video's container
// (.viewer-stage) as data-state: connecting, live, reconnecting, failed or
// ended; the stage also carries data-masking (agent: paused or active) and
// data-mask-outlines and data-mask-count (customer: on or off, and how many
// outlines are drawn). window.tandemViewer points at the newest
// Viewer (its pc, ws and channels) for debugging and tests.

import { t, onLangChange } from './i18n.js';
import { RemoteInput, contentBox } from './input.js';

const MAX_ATTEMPTS = 6; // reconnects in a row before "failed"
const TOAST_MS = 4000;

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
<div class="viewer-stage">
  <video class="viewer-video" tabindex="0" autoplay muted playsinline disablepictureinpicture></video>
  <canvas class="viewer-overlay" aria-hidden="true"></canvas>
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
  <div class="viewer-toast" role="status" aria-live="polite" hidden></div>
</div>
<div class="viewer-bar">
  <p class="viewer-hint"></p>
  <label class="viewer-masks" hidden>
    <input type="checkbox" class="viewer-masks-toggle">
    <span class="viewer-masks-swatch" aria-hidden="true"></span>
    <span class="viewer-masks-label"></span>
  </label>
  <button type="button" class="btn btn-small viewer-keyboard"></button>
</div>`;

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
    this.maskingReason = '';

    this.toastTimer = 0;

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
    this.hint = q('.viewer-hint');
    this.keyboardBtn = q('.viewer-keyboard');
    this.maskingEl = q('.viewer-masking');
    this.maskingTitle = q('.viewer-masking-title');
    this.maskingReasonEl = q('.viewer-masking-reason');
    this.masksSwitch = q('.viewer-masks');
    this.masksToggle = q('.viewer-masks-toggle');
    this.masksLabel = q('.viewer-masks-label');
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
    this.capture = new RemoteInput({
      video: this.video,
      stage: this.stage,
      ime: this.ime,
      keyboardBtn: this.keyboardBtn,
      role,
      live: () => this.state === 'live',
      sendInput: (msg) => this.sendInput(msg),
      sendPointer: (msg) => this.sendPointer(msg),
      signal: this.abort.signal,
    });
    this.retryBtn.addEventListener('click', () => this.start(), { signal: this.abort.signal });
    this.video.addEventListener(
      'resize',
      () => {
        this.checkLive();
        this.drawOverlay(); // a new picture size moves the letterbox bars
      },
      { signal: this.abort.signal },
    );
    this.masksToggle?.addEventListener('change', () => this.setOutlines(this.masksToggle.checked), { signal: this.abort.signal });
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
    this.drawOverlay();
    this.renderMasking();
  }

  // lost handles a socket or peer that went away without "ended".
  lost() {
    if (this.closed || this.state === 'ended') return;
    this.teardown();
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
          this.toast(msg.message || t('viewer.error'));
          break;
        default:
          break; // a newer server's message: nothing to do
      }
    } catch {
      if (gen === this.gen) this.lost();
    }
  }

  async startPeer(gen) {
    // The API names no ICE servers yet: host candidates (and the worker's
    // configured addresses) only.
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    this.input = pc.createDataChannel('input');
    this.pointer = pc.createDataChannel('pointer', { ordered: false, maxRetransmits: 0 });
    this.input.onopen = () => {
      this.capture.sendViewport(true);
    };
    this.input.onmessage = (ev) => this.onNotice(ev.data);
    pc.ontrack = (ev) => {
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
          this.attempts = 0;
          this.checkLive();
          break;
        case 'disconnected':
          if (this.state === 'live') this.setState('reconnecting');
          break;
        case 'failed':
          this.lost();
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
      // The gate's reasons have our own words; others come with the worker's.
      const key = `viewer.refusedReason.${msg.reason}`;
      this.toast(t(key) !== key ? t(key) : msg.message || t('viewer.refused'));
    } else if (msg.type === 'masks' && this.role === 'customer') {
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
    }
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
  // current language, while the worker holds the picture.
  renderMasking() {
    if (!this.maskingEl) return;
    const s = this.state;
    this.maskingEl.hidden = this.masking !== 'paused' || s === 'ended' || s === 'failed';
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
    this.video.setAttribute('aria-label', t(this.role === 'agent' ? 'viewer.labelAgent' : 'viewer.labelCustomer'));
    this.ime.setAttribute('aria-label', t('viewer.typeLabel'));
    this.hint.textContent = t('viewer.hint');
    this.keyboardBtn.textContent = t('viewer.keyboard');
    this.video.tabIndex = s === 'live' ? 0 : -1;
    if (this.masksSwitch) {
      // Shown once the worker masks: an older one never outlines anything.
      this.masksSwitch.hidden = !this.masksSeen;
      this.masksLabel.textContent = t('viewer.masks.outline');
    }
    this.renderMasking();
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
    this.capture.scheduleViewport();
  }
}
