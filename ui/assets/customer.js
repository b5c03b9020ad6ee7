// The customer's live view at /s/{id}: the remote tab fills the page; a Leave
// button (with a confirmation) says bye; the ended state explains why.

import { t, initPage, onLangChange } from './i18n.js';
import { Viewer } from './viewer.js';

const $ = (id) => document.getElementById(id);
const match = location.pathname.match(/^\/s\/([^/]+)$/);
const sessionId = match ? decodeURIComponent(match[1]) : '';

const leaveBtn = $('leave');
const dialog = $('leave-dialog');
const ended = $('ended');
const endedReason = $('ended-reason');
const host = $('viewer-host');
const liveBadge = $('live-badge');

let lastReason = '';

function renderEnded() {
  if (!lastReason) return;
  const key = `reason.${lastReason}`;
  endedReason.textContent = t(key) === key ? t('reason.unknown') : t(key);
}

function onState(state, reason) {
  document.body.dataset.viewerState = state;
  liveBadge.hidden = state !== 'live';
  if (state === 'ended') {
    lastReason = reason;
    renderEnded();
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

onLangChange(renderEnded);
initPage();
viewer.start();
