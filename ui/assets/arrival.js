// The customer's arrival in the agent console: when they joined and with
// what browser (the server reduces its User-Agent to a browser, a system and
// a kind of device), whether they agreed to share the tab, and, where the
// company makes agents admit customers, the button that lets them in.

import { t, getLang } from './i18n.js';

/**
 * gateOf says where a session's sharing stands: 'none' (no customer, or
 * over), 'consent' (waiting for the customer to agree), 'admit' (agreed,
 * waiting for an agent to let them in) or 'sharing' (the agents see the tab).
 */
export function gateOf(s) {
  if (!s || s.state !== 'active') return 'none';
  if (!s.consent_at) return 'consent';
  if (s.must_admit && !s.admitted_at) return 'admit';
  return 'sharing';
}

/** mayAdmit says whether an agent can let the session's customer in now. */
export function mayAdmit(s) {
  return !!s && s.state === 'active' && !!s.must_admit && !s.admitted_at;
}

/** clientText names the customer's browser: "Chrome on Android (phone)", "Android の Chrome（スマートフォン）". */
export function clientText(c) {
  const browser = c?.browser || '';
  const os = c?.os || '';
  let text;
  if (browser && os) text = t('client.both', { browser, os });
  else text = browser || os || t('client.unknown');
  const dk = `client.device.${c?.device}`;
  if (c?.device && t(dk) !== dk) text = t('client.withDevice', { client: text, device: t(dk) });
  return text;
}

function timeText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { hour: 'numeric', minute: '2-digit' }).format(d);
}

/**
 * renderArrival shows session s in the arrival box: els.box (hidden when no
 * customer joined), els.text (who arrived), els.status (where consent and
 * admission stand) and els.admit (the Admit button).
 */
export function renderArrival(els, s) {
  const joined = s && s.state !== 'waiting' && s.customer;
  els.box.hidden = !joined;
  if (!joined) return;
  els.box.dataset.gate = gateOf(s);
  els.text.textContent = t('agent.arrived', { time: timeText(s.customer.joined_at), client: clientText(s.customer) });
  let status = '';
  switch (gateOf(s)) {
    case 'consent':
      status = t(mayAdmit(s) ? 'agent.waitingConsentAdmit' : 'agent.waitingConsent');
      break;
    case 'admit':
      status = t('agent.waitingAdmit');
      break;
    case 'sharing':
      status = t('agent.sharingSince', { time: timeText(s.consent_at) });
      break;
    default:
      status = s.consent_at ? t('agent.sharingSince', { time: timeText(s.consent_at) }) : t('agent.neverShared');
  }
  els.status.textContent = status;
  els.admit.hidden = !mayAdmit(s);
}
