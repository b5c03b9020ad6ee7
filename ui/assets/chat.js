// Text chat between the customer and the agents of a session
// (docs/annotations.md): a panel over the viewer, opened from its bar.
// Messages go out on the input DataChannel ({"type":"chat","text"}) and are
// shown when the worker's echo comes back, in the one order the worker
// gives everyone; a message that gets no echo in a few seconds is put back
// in the box with an error. Enter sends, Shift+Enter starts a new line, and
// Enter that ends an IME composition (Japanese input) only ends it.
//
// The panel is outside the video's stage, so its keys never reach the tab.
// It carries data-open; the bar's button data-unread (how many messages
// of the other side came while it was closed).

import { t, getLang } from './i18n.js';

const MAX_CHARS = 2000; // protocol.MaxChatChars
const ECHO_MS = 5000;
const MAX_SHOWN = 200; // the worker keeps as many for late joiners

const TEMPLATE = `
<div class="chat-head">
  <h2 class="chat-title"></h2>
  <button type="button" class="btn btn-ghost btn-small chat-close"></button>
</div>
<ol class="chat-list" aria-live="polite"></ol>
<p class="chat-empty muted"></p>
<form class="chat-form" novalidate>
  <textarea class="chat-input" rows="2" maxlength="${MAX_CHARS}" autocomplete="off"></textarea>
  <p class="form-error chat-error" role="alert" hidden></p>
  <button type="submit" class="btn btn-primary btn-small chat-send"></button>
</form>`;

/**
 * ChatPanel is the chat of one viewer.
 *
 *   panel       the (empty) element it fills, outside the stage
 *   button      the bar's button that opens and closes it
 *   role        'agent' or 'customer'
 *   me()        this viewer's id (its own messages are "You")
 *   send(text)  sends a chat message; false when it could not
 *   signal      aborts the listeners
 */
export class ChatPanel {
  constructor({ panel, button, role, me, send, signal }) {
    Object.assign(this, { panel, button, role, me, sendText: send });
    this.messages = []; // as the worker echoed them, in its order
    this.ids = new Set();
    this.unread = 0;
    this.pending = null; // {text, timer}: sent, waiting for its echo
    this.error = '';
    panel.innerHTML = TEMPLATE;
    const q = (s) => panel.querySelector(s);
    this.title = q('.chat-title');
    this.closeBtn = q('.chat-close');
    this.list = q('.chat-list');
    this.empty = q('.chat-empty');
    this.form = q('.chat-form');
    this.input = q('.chat-input');
    this.errorEl = q('.chat-error');
    this.sendBtn = q('.chat-send');
    this.badge = document.createElement('span');
    this.badge.className = 'chat-unread';
    this.label = document.createElement('span');
    button.replaceChildren(this.label, this.badge);
    const opts = { signal };
    button.addEventListener('click', () => this.setOpen(panel.hidden), opts);
    this.closeBtn.addEventListener('click', () => {
      this.setOpen(false);
      button.focus();
    }, opts);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    }, opts);
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.setOpen(false);
        button.focus();
        return;
      }
      if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      this.submit();
    }, opts);
    signal.addEventListener('abort', () => clearTimeout(this.pending?.timer));
    panel.hidden = true;
    this.render();
  }

  /** setOpen shows or hides the panel; opening reads the unread messages. */
  setOpen(open) {
    this.panel.hidden = !open;
    this.panel.dataset.open = String(open);
    this.button.setAttribute('aria-expanded', String(open));
    if (open) {
      this.unread = 0;
      this.input.focus();
      this.list.lastElementChild?.scrollIntoView({ block: 'end' });
    }
    this.render();
  }

  /** onNotice takes a worker's chat notice. */
  onNotice(msg) {
    if (typeof msg.id !== 'string' || typeof msg.text !== 'string' || this.ids.has(msg.id)) return;
    this.ids.add(msg.id);
    const mine = !!msg.viewer_id && msg.viewer_id === this.me();
    this.messages.push({ id: msg.id, text: msg.text, role: msg.role === 'agent' ? 'agent' : 'customer', name: typeof msg.name === 'string' ? msg.name : '', at: msg.at, mine });
    if (this.messages.length > MAX_SHOWN) this.ids.delete(this.messages.shift().id);
    if (mine && this.pending && this.pending.text === msg.text) {
      clearTimeout(this.pending.timer);
      this.pending = null;
    }
    if (!mine && this.panel.hidden) this.unread++;
    this.render();
    if (!this.panel.hidden) this.list.lastElementChild?.scrollIntoView({ block: 'end' });
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if ([...text].length > MAX_CHARS) {
      this.setError('chat.tooLong');
      return;
    }
    if (this.pending) return; // one at a time: the order stays the worker's
    if (!this.sendText(text)) {
      this.setError('chat.notSent');
      return;
    }
    this.setError('');
    this.input.value = '';
    this.pending = {
      text,
      timer: setTimeout(() => {
        // No echo: not delivered. The text comes back to the box.
        this.pending = null;
        if (!this.input.value) this.input.value = text;
        this.setError('chat.notSent');
      }, ECHO_MS),
    };
    this.render();
  }

  setError(key) {
    this.error = key;
    this.render();
  }

  who(m) {
    if (m.mine) return t('chat.you');
    if (m.role === 'agent') return m.name || t('viewer.control.anAgent');
    return t('viewer.control.theCustomer');
  }

  render() {
    this.title.textContent = t('chat.title');
    this.closeBtn.textContent = t('chat.close');
    this.input.setAttribute('aria-label', t('chat.inputLabel'));
    this.input.placeholder = t('chat.placeholder');
    this.sendBtn.textContent = t('chat.send');
    this.sendBtn.disabled = !!this.pending;
    this.errorEl.textContent = this.error ? t(this.error) : '';
    this.errorEl.hidden = !this.error;
    this.label.textContent = t('chat.open');
    this.badge.textContent = String(this.unread);
    this.badge.hidden = this.unread === 0;
    this.button.dataset.unread = String(this.unread);
    this.button.setAttribute('aria-label', this.unread ? t('chat.openUnread', { n: this.unread }) : t('chat.open'));
    this.empty.textContent = t('chat.empty');
    this.empty.hidden = this.messages.length > 0;
    const fmt = new Intl.DateTimeFormat(getLang(), { hour: 'numeric', minute: '2-digit' });
    this.list.replaceChildren(
      ...this.messages.map((m) => {
        const li = document.createElement('li');
        li.className = 'chat-msg';
        li.dataset.role = m.role;
        li.dataset.mine = String(m.mine);
        const head = document.createElement('p');
        head.className = 'chat-meta';
        const who = document.createElement('span');
        who.className = 'chat-who';
        who.textContent = this.who(m);
        head.append(who);
        const d = new Date(m.at);
        if (!Number.isNaN(d.getTime())) {
          const time = document.createElement('time');
          time.dateTime = d.toISOString();
          time.textContent = fmt.format(d);
          head.append(time);
        }
        const text = document.createElement('p');
        text.className = 'chat-text';
        text.dir = 'auto'; // a message's own direction, isolated: it cannot turn the rest around
        text.textContent = m.text;
        li.append(head, text);
        return li;
      }),
    );
  }
}
