// Screen sharing (docs/screenshare.md): when the trouble is outside the
// page, the agent asks to see the customer's screen; the customer allows
// in a prompt over the picture, which, like the control prompt, never
// takes the focus (a customer typing in the tab must not answer it by
// accident). Allow asks the browser for a screen (getDisplayMedia, from
// that click) and sends it on the connection's second video m-line, which
// the customer's page offers from the start without a track (sendonly):
// replaceTrack starts and stops it without a new negotiation. The agent's
// page offers that m-line recvonly and shows what comes on it in a panel
// beside the tab, view only: nothing is ever sent for it. Either side
// stops: the customer's bar button (or the browser's own "Stop sharing"),
// the agent's panel button. The worker's "screenshare" notices say the
// state to everyone; the root carries it as data-screen (idle, requested,
// asking, sharing, never).

import { t } from './i18n.js';

const CUSTOMER_ASK = `
<div class="viewer-screen-ask" role="status" aria-live="assertive" hidden>
  <p class="viewer-screen-ask-text"></p>
  <div class="viewer-ask-actions">
    <button type="button" class="btn btn-primary btn-small viewer-screen-allow"></button>
    <button type="button" class="btn btn-small viewer-screen-deny"></button>
  </div>
</div>`;

const BAR = `
<span class="viewer-screen-dot" aria-hidden="true"></span>
<span class="viewer-screen-text" role="status" aria-live="polite"></span>
<button type="button" class="btn btn-small viewer-screen-button"></button>`;

const AGENT_PANEL = `
<div class="viewer-screen-head">
  <h2 class="viewer-screen-title"></h2>
  <button type="button" class="btn btn-small viewer-screen-size" aria-pressed="false"></button>
  <button type="button" class="btn btn-small viewer-screen-stop"></button>
</div>
<video class="viewer-screen-video" autoplay muted playsinline disablepictureinpicture></video>`;

/**
 * ScreenShare is one viewer's side of screen sharing.
 *
 *   const s = new ScreenShare({ root, stage, bar, role, send, toast, refocus, signal });
 *   s.addTransceiver(pc);   // before the offer: the second video m-line
 *   s.onTrack(ev);          // true when ev was the screen's track (agent)
 *   s.onNotice(msg);        // a "screenshare" notice
 *   s.reset();              // the connection went: stop capturing, hide
 *   s.render();             // after a language change
 */
export class ScreenShare {
  constructor({ root, stage, bar, role, send, toast, refocus, signal }) {
    this.root = root;
    this.role = role;
    this.send = send;
    this.toast = toast;
    this.refocus = refocus;
    this.state = ''; // as the worker last said: idle, requested, sharing, never; '' before
    this.asker = null; // {id, name} of the agent that asked
    this.asking = false; // agent: this page asked, the worker has not said yet
    this.transceiver = null;
    this.capture = null; // customer: the MediaStream being shared
    this.picking = false; // customer: the browser's picker is open
    this.me = () => '';

    this.barEl = document.createElement('div');
    this.barEl.className = 'viewer-screen';
    this.barEl.hidden = true;
    this.barEl.innerHTML = BAR;
    bar.insertBefore(this.barEl, bar.querySelector('.viewer-tools'));
    const q = (el, sel) => el.querySelector(sel);
    this.text = q(this.barEl, '.viewer-screen-text');
    this.button = q(this.barEl, '.viewer-screen-button');
    this.button.addEventListener('click', () => this.onButton(), { signal });

    if (role === 'customer') {
      stage.insertAdjacentHTML('beforeend', CUSTOMER_ASK);
      this.askEl = q(stage, '.viewer-screen-ask');
      this.askText = q(this.askEl, '.viewer-screen-ask-text');
      this.allowBtn = q(this.askEl, '.viewer-screen-allow');
      this.denyBtn = q(this.askEl, '.viewer-screen-deny');
      this.allowBtn.addEventListener('click', () => this.allow(), { signal });
      this.denyBtn.addEventListener('click', () => this.refuse(''), { signal });
    } else {
      // Outside the stage: nothing done on the panel can reach the tab.
      this.panel = document.createElement('section');
      this.panel.className = 'viewer-screen-panel card';
      this.panel.hidden = true;
      this.panel.innerHTML = AGENT_PANEL;
      root.append(this.panel);
      this.panelTitle = q(this.panel, '.viewer-screen-title');
      this.panel.setAttribute('aria-labelledby', this.panelTitle.id = `viewer-screen-title-${Math.random().toString(36).slice(2)}`);
      this.video = q(this.panel, '.viewer-screen-video');
      this.sizeBtn = q(this.panel, '.viewer-screen-size');
      this.stopBtn = q(this.panel, '.viewer-screen-stop');
      this.sizeBtn.addEventListener('click', () => {
        this.panel.dataset.size = this.panel.dataset.size === 'large' ? '' : 'large';
        this.render();
      }, { signal });
      this.stopBtn.addEventListener('click', () => this.send({ type: 'screenshare', action: 'stop' }), { signal });
    }
    this.render();
  }

  /** supported says whether this browser can share a screen. */
  static supported() {
    return !!(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function');
  }

  /** addTransceiver adds the screen's m-line; call it after the tab's, before the offer. */
  addTransceiver(pc) {
    this.transceiver = pc.addTransceiver('video', { direction: this.role === 'customer' ? 'sendonly' : 'recvonly' });
  }

  /** onTrack shows the screen's track (agent) and says whether ev was it. */
  onTrack(ev) {
    if (!this.transceiver || ev.transceiver !== this.transceiver) return false;
    if (this.role === 'agent') {
      this.video.srcObject = new MediaStream([ev.track]);
      this.video.play().catch(() => {});
    }
    return true;
  }

  onNotice(msg) {
    if (!['idle', 'requested', 'sharing', 'never', 'refused'].includes(msg.state)) return; // a newer worker's
    if (msg.state === 'refused') {
      // To the agent that asked: the customer said no, or cannot share.
      this.asking = false;
      this.toast(t(msg.reason === 'unsupported' ? 'viewer.screen.unsupported' : 'viewer.screen.refused'));
      this.render();
      return;
    }
    const before = this.state;
    this.state = msg.state;
    this.asker = msg.state === 'requested' || msg.state === 'sharing' ? { id: msg.viewer_id || '', name: msg.name || '' } : null;
    this.asking = false;
    if (this.role === 'customer') {
      if (msg.state === 'requested' && !ScreenShare.supported()) {
        // Phones and older browsers cannot: the agent is told at once.
        this.send({ type: 'screenshare', action: 'refuse', reason: 'unsupported' });
        this.toast(t('viewer.screen.cannot'));
      }
      if (msg.state !== 'sharing' && this.capture) {
        this.stopCapture();
        if (before === 'sharing') this.toast(t('viewer.screen.ended'));
      }
    } else if (before === 'sharing' && msg.state !== 'sharing') {
      this.video.srcObject = null;
      this.toast(t('viewer.screen.ended'));
    }
    this.render();
  }

  /** heldBack forgets this agent's question when the worker refused a message. */
  heldBack() {
    if (!this.asking) return;
    this.asking = false;
    this.render();
  }

  /** reset forgets the connection's share: a new one is told afresh. */
  reset() {
    this.stopCapture();
    this.transceiver = null;
    this.state = '';
    this.asker = null;
    this.asking = false;
    if (this.video) this.video.srcObject = null;
    this.render();
  }

  onButton() {
    if (this.role === 'customer') {
      if (this.capture) this.stop();
      return;
    }
    if (this.state === 'idle' && !this.asking && this.send({ type: 'screenshare', action: 'request' })) {
      this.asking = true;
      this.render();
    } else if (this.state === 'requested' && this.asker?.id === this.me()) {
      this.send({ type: 'screenshare', action: 'stop' }); // withdraw the question
    }
  }

  // allow asks the browser for a screen, from the click on Allow (a user
  // gesture is required), and starts sending it.
  async allow() {
    if (this.picking || this.state !== 'requested') return;
    if (!ScreenShare.supported() || !this.transceiver) {
      this.refuse('unsupported');
      return;
    }
    this.picking = true;
    this.render();
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    } catch {
      this.picking = false;
      this.refuse(''); // the customer closed the picker, or the browser said no
      return;
    }
    this.picking = false;
    const [track] = stream.getVideoTracks();
    if (!track || this.state !== 'requested' || !this.transceiver) {
      // The question went while the picker was open.
      for (const tr of stream.getTracks()) tr.stop();
      this.render();
      return;
    }
    try {
      track.contentHint = 'detail'; // text and lines over smooth motion
    } catch { /* not supported */ }
    this.capture = stream;
    // The browser's own "Stop sharing" ends the track.
    track.addEventListener('ended', () => {
      if (this.capture === stream) this.stop();
    });
    try {
      await this.transceiver.sender.replaceTrack(track);
    } catch {
      this.stopCapture();
      this.refuse('');
      return;
    }
    if (this.capture !== stream || !this.send({ type: 'screenshare', action: 'start' })) {
      this.stopCapture();
    }
    this.render();
    this.refocus();
  }

  refuse(reason) {
    const msg = { type: 'screenshare', action: 'refuse' };
    if (reason) msg.reason = reason;
    this.send(msg);
    this.state = this.state === 'requested' ? 'idle' : this.state; // the worker confirms
    this.render();
    this.refocus();
  }

  /** stop ends the customer's share (its button, or the browser's). */
  stop() {
    this.stopCapture();
    this.send({ type: 'screenshare', action: 'stop' });
    this.toast(t('viewer.screen.youStopped'));
    this.render();
  }

  stopCapture() {
    const stream = this.capture;
    this.capture = null;
    if (!stream) return;
    for (const tr of stream.getTracks()) tr.stop();
    try {
      this.transceiver?.sender.replaceTrack(null).catch(() => {});
    } catch { /* the connection is gone */ }
  }

  render() {
    const s = this.state;
    const mine = this.asker && this.asker.id && this.asker.id === this.me();
    let state = s || 'idle';
    if (this.role === 'agent' && (this.asking || (s === 'requested' && mine))) state = 'asking';
    this.root.dataset.screen = state;
    const name = this.asker?.name || t(this.role === 'customer' ? 'viewer.control.anAgent' : 'viewer.control.theCustomer');
    let text = '';
    let button = '';
    if (this.role === 'customer') {
      const asked = s === 'requested' && ScreenShare.supported() && !this.capture;
      this.askEl.hidden = !asked;
      this.askText.textContent = t('viewer.screen.asks', { name });
      this.allowBtn.textContent = t(this.picking ? 'viewer.screen.picking' : 'viewer.screen.allow');
      this.allowBtn.disabled = this.picking;
      this.denyBtn.textContent = t('viewer.screen.deny');
      if (this.capture) {
        text = t('viewer.screen.sharing');
        button = t('viewer.screen.stop');
      }
    } else {
      if (state === 'asking') {
        text = t('viewer.screen.asking');
        button = this.asking ? '' : t('viewer.screen.cancel');
      } else if (s === 'idle') {
        button = t('viewer.screen.request');
      } else if (s === 'requested') {
        text = t('viewer.screen.otherAsks', { name });
      } else if (s === 'sharing') {
        text = t('viewer.screen.seeing');
      }
      this.panel.hidden = s !== 'sharing';
      this.panelTitle.textContent = t('viewer.screen.title');
      const large = this.panel.dataset.size === 'large';
      this.sizeBtn.textContent = t(large ? 'viewer.screen.smaller' : 'viewer.screen.larger');
      this.sizeBtn.setAttribute('aria-pressed', String(large));
      this.stopBtn.textContent = t('viewer.screen.stopViewing');
      this.video.setAttribute('aria-label', t('viewer.screen.label'));
    }
    this.barEl.hidden = !text && !button;
    this.barEl.dataset.screen = state;
    this.text.textContent = text;
    this.text.hidden = !text;
    this.button.hidden = !button;
    this.button.textContent = button;
  }
}
