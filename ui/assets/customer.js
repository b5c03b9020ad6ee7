// The customer's live view at /s/{id}. First the consent screen: who will
// see the shared tab (the agents' names and the company) and one "Start
// sharing" button (POST /api/v1/sessions/{id}/consent); where the company
// makes agents admit customers, then a wait until an agent lets them in.
// The remote tab runs behind that screen from the start (it is the
// customer's own page; the worker sends agents nothing before the consent)
// and takes input once the screen is gone. A Leave button (with a
// confirmation) says bye; the ended state explains why.

import { t, initPage, onLangChange } from './i18n.js';
import { api, ApiError } from './api.js';
import { Viewer } from './viewer.js';

const CONSENT_POLL_MS = 2000;

const $ = (id) => document.getElementById(id);
const match = location.pathname.match(/^\/s\/([^/]+)$/);
const sessionId = match ? decodeURIComponent(match[1]) : '';
const consentPath = `/api/v1/sessions/${encodeURIComponent(sessionId)}/consent`;

const leaveBtn = $('leave');
const dialog = $('leave-dialog');
const ended = $('ended');
const endedReason = $('ended-reason');
const host = $('viewer-host');
const liveBadge = $('live-badge');
const layer = $('consent');
const ask = $('consent-ask');
const wait = $('consent-wait');
const startBtn = $('consent-start');
const consentError = $('consent-error');

let lastReason = '';
let viewerState = '';
let consent = null; // the server's answer (docs/api.md), once loaded
let consentErr = ''; // i18n key of the last failure to show
let pollTimer = 0;

const sharing = () => !!consent && consent.consented && consent.admitted;

function renderEnded() {
  if (!lastReason) return;
  const key = `reason.${lastReason}`;
  endedReason.textContent = t(key) === key ? t('reason.unknown') : t(key);
}

function renderBadge() {
  liveBadge.hidden = viewerState !== 'live' || !sharing();
}

function renderConsent() {
  const over = viewerState === 'ended';
  layer.hidden = over || !consent || sharing();
  host.inert = !sharing();
  document.body.dataset.consent = !consent ? 'loading' : sharing() ? 'sharing' : consent.consented ? 'waiting' : 'asking';
  renderBadge();
  if (!consent || layer.hidden) return;
  const company = consent.company?.name || consent.company?.slug || '';
  $('consent-company').textContent = company;
  $('consent-title').textContent = t('consent.title', { company });
  const names = Array.isArray(consent.agents) ? consent.agents : [];
  const people = names.map((name) => t('consent.person', { name, company }));
  if (!people.length) people.push(t('consent.staff', { company }));
  $('consent-people').replaceChildren(
    ...people.map((text) => {
      const li = document.createElement('li');
      li.textContent = text;
      return li;
    }),
  );
  ask.hidden = consent.consented;
  wait.hidden = !consent.consented;
  consentError.textContent = consentErr ? t(consentErr) : '';
  consentError.hidden = !consentErr;
}

// applyConsent takes a new answer, re-renders, and polls while the screen
// is up (for agents who join, and for the admission).
function applyConsent(c) {
  const before = document.body.dataset.consent;
  consent = c;
  renderConsent();
  const now = document.body.dataset.consent;
  if (now !== before) {
    if (now === 'asking') $('consent-title').focus();
    else if (now === 'waiting') $('consent-wait-title').focus();
    else if (now === 'sharing') host.querySelector('.viewer-video')?.focus({ preventScroll: true });
  }
  clearTimeout(pollTimer);
  if (!sharing() && viewerState !== 'ended') pollTimer = setTimeout(loadConsent, CONSENT_POLL_MS);
}

async function loadConsent() {
  try {
    applyConsent(await api('GET', consentPath));
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
      viewer.end('unknown'); // not this visitor's session, or it is over
      return;
    }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(loadConsent, CONSENT_POLL_MS);
  }
}

startBtn.addEventListener('click', async () => {
  consentErr = '';
  renderConsent();
  startBtn.disabled = true;
  startBtn.setAttribute('aria-busy', 'true');
  try {
    applyConsent(await api('POST', consentPath));
  } catch (err) {
    consentErr = err instanceof ApiError && err.status === 0 ? 'error.network' : 'consent.failed';
    renderConsent();
  } finally {
    startBtn.disabled = false;
    startBtn.removeAttribute('aria-busy');
  }
});

function onState(state, reason) {
  viewerState = state;
  document.body.dataset.viewerState = state;
  renderBadge();
  if (state === 'ended') {
    clearTimeout(pollTimer);
    lastReason = reason;
    renderEnded();
    renderConsent();
    leaveBtn.hidden = true;
    if (dialog.open) dialog.close();
    ended.hidden = false;
    host.hidden = true;
    ended.querySelector('h1').focus();
  }
}

const viewer = new Viewer(host, { sessionId, role: 'customer', onState });

leaveBtn.addEventListener('click', () => {
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else viewer.leave();
});

dialog.addEventListener('close', () => {
  if (dialog.returnValue === 'leave') viewer.leave();
});

onLangChange(() => {
  renderEnded();
  renderConsent();
});
initPage();
viewer.start();
loadConsent();
