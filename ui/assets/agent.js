// The agent console: sign in, start a session, read its PIN out, watch and
// operate the remote tab, list and end the company's sessions.
// Routes: /agent/ (console) and /agent/s/{id} (one session open).

import { t, getLang, initPage, onLangChange } from './i18n.js';
import { api, ApiError } from './api.js';
import { Viewer } from './viewer.js';
import { renderActivityList } from './activity.js';
import { renderArrival, gateOf } from './arrival.js';

const LIST_REFRESH_MS = 5000;
const SESSION_REFRESH_MS = 3000;
const ACTIVITY_LATE_MS = 2000;

const $ = (id) => document.getElementById(id);

const el = {
  loading: $('loading'),
  login: $('login'),
  loginForm: $('login-form'),
  loginEmail: $('login-email'),
  loginPassword: $('login-password'),
  loginError: $('login-error'),
  console: $('console'),
  account: $('account'),
  agentName: $('agent-name'),
  adminLink: $('admin-link'),
  companyName: $('company-name'),
  logout: $('logout'),
  newForm: $('new-form'),
  startUrl: $('start-url'),
  newError: $('new-error'),
  newSubmit: $('new-submit'),
  list: $('session-list'),
  listEmpty: $('list-empty'),
  listError: $('list-error'),
  refresh: $('refresh-list'),
  empty: $('session-empty'),
  view: $('session-view'),
  notFound: $('session-missing'),
  title: $('session-title'),
  url: $('session-url'),
  stateBadge: $('session-state'),
  end: $('end-session'),
  pinCard: $('pin-card'),
  pin: $('pin'),
  pinExpiry: $('pin-expiry'),
  joinUrl: $('join-url'),
  copy: $('copy-join'),
  copyStatus: $('copy-status'),
  message: $('session-message'),
  viewerHost: $('viewer-host'),
  viewers: $('session-viewers'),
  activityList: $('activity-list'),
  activityEmpty: $('activity-empty'),
  activityError: $('activity-error'),
  arrival: $('arrival'),
  arrivalText: $('arrival-text'),
  arrivalStatus: $('arrival-status'),
  arrivalError: $('arrival-error'),
  admit: $('admit'),
};

const app = {
  me: null,
  sessions: [],
  current: null, // the open session (as the API answered it)
  activity: [], // the open session's audit events, oldest first
  viewer: null,
  listTimer: 0,
  sessionTimer: 0,
  tickTimer: 0,
};

// ---- helpers ----

/** groupPin splits a PIN into groups that are easy to read out: 3-3, 4-4, 3-3-3, 3-3-4. */
export function groupPin(pin) {
  const s = String(pin || '');
  if (s.length % 4 === 0 && s.length !== 12) return s.match(/.{1,4}/g) || [];
  const groups = [];
  let i = 0;
  while (s.length - i > 4) {
    groups.push(s.slice(i, i + 3));
    i += 3;
  }
  if (i < s.length) groups.push(s.slice(i));
  return groups;
}

function showError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('error.network');
    const key = `error.${err.code}`;
    const known = t(key);
    if (known !== key) return known;
    if (err.serverMessage) return err.serverMessage;
  }
  return t('error.generic');
}

function timeText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { hour: 'numeric', minute: '2-digit' }).format(d);
}

function shortUrl(u) {
  try {
    const url = new URL(u);
    return url.host + (url.pathname === '/' ? '' : url.pathname);
  } catch {
    return u;
  }
}

function badge(node, state) {
  node.className = `badge badge-${state || 'unknown'}`;
  node.textContent = t(`state.${state}`);
}

function sessionPath(id) {
  return `/agent/s/${encodeURIComponent(id)}`;
}

function routeId() {
  const m = location.pathname.match(/^\/agent\/s\/([^/]+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

// ---- sign in and out ----

async function boot() {
  try {
    const me = await api('GET', '/api/v1/auth/me');
    signedIn(me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin();
    else {
      showLogin();
      showError(el.loginError, errorText(err));
    }
  } finally {
    el.loading.hidden = true;
  }
}

function showLogin() {
  stopTimers();
  closeViewer();
  app.me = null;
  el.console.hidden = true;
  el.account.hidden = true;
  el.companyName.textContent = '';
  el.login.hidden = false;
  document.title = t('login.pageTitle');
  el.loginEmail.focus();
}

function signedIn(me) {
  app.me = me;
  el.login.hidden = true;
  el.console.hidden = false;
  el.account.hidden = false;
  el.agentName.textContent = me.agent?.name || me.agent?.email || '';
  el.adminLink.hidden = me.agent?.role !== 'admin';
  el.companyName.textContent = me.company?.name || '';
  document.title = t('agent.pageTitle');
  if (!el.startUrl.value) el.startUrl.value = `${location.origin}/demo/`;
  refreshList();
  app.listTimer = setInterval(() => {
    if (!document.hidden) refreshList();
  }, LIST_REFRESH_MS);
  route();
}

el.loginForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError(el.loginError, '');
  const email = el.loginEmail.value.trim();
  const password = el.loginPassword.value;
  if (!email || !password) {
    showError(el.loginError, t('login.missing'));
    (email ? el.loginPassword : el.loginEmail).focus();
    return;
  }
  const btn = el.loginForm.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    await api('POST', '/api/v1/auth/login', { email, password });
    el.loginPassword.value = '';
    signedIn(await api('GET', '/api/v1/auth/me'));
  } catch (err) {
    showError(el.loginError, err instanceof ApiError && err.status === 401 ? t('login.invalid') : errorText(err));
    el.loginPassword.focus();
  } finally {
    btn.disabled = false;
  }
});

el.logout.addEventListener('click', async () => {
  try {
    await api('POST', '/api/v1/auth/logout');
  } catch {
    // signed out locally anyway
  }
  if (routeId()) history.pushState(null, '', '/agent/');
  showLogin();
});

// A call answered 401 mid-way: the login expired.
function handleAuth(err) {
  if (err instanceof ApiError && err.status === 401) {
    showLogin();
    return true;
  }
  return false;
}

// ---- new session ----

el.newForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError(el.newError, '');
  const startUrl = el.startUrl.value.trim();
  let ok = false;
  try {
    const u = new URL(startUrl);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) {
    el.startUrl.setAttribute('aria-invalid', 'true');
    showError(el.newError, t('error.invalid_start_url'));
    el.startUrl.focus();
    return;
  }
  el.startUrl.removeAttribute('aria-invalid');
  el.newSubmit.disabled = true;
  try {
    const s = await api('POST', '/api/v1/sessions', { start_url: startUrl });
    history.pushState(null, '', sessionPath(s.id));
    openSession(s);
    refreshList();
  } catch (err) {
    if (!handleAuth(err)) showError(el.newError, errorText(err));
  } finally {
    el.newSubmit.disabled = false;
  }
});

// ---- the list ----

async function refreshList() {
  try {
    const res = await api('GET', '/api/v1/sessions');
    app.sessions = Array.isArray(res?.sessions) ? res.sessions : [];
    showError(el.listError, '');
    renderList();
    const cur = app.current && app.sessions.find((s) => s.id === app.current.id);
    if (cur) updateSession({ ...app.current, ...cur });
  } catch (err) {
    if (!handleAuth(err)) showError(el.listError, errorText(err));
  }
}

function renderList() {
  // Keep the focused control across a re-render.
  const active = document.activeElement;
  const focusKey = active && el.list.contains(active) ? active.dataset.focusKey : '';
  el.list.replaceChildren();
  el.listEmpty.hidden = app.sessions.length > 0;
  for (const s of app.sessions) {
    const li = document.createElement('li');
    li.className = 'session-item';
    if (app.current && app.current.id === s.id) li.classList.add('is-current');

    const main = document.createElement('div');
    main.className = 'session-item-main';
    const b = document.createElement('span');
    badge(b, s.state);
    const url = document.createElement('span');
    url.className = 'session-item-url';
    url.textContent = shortUrl(s.start_url);
    url.title = s.start_url;
    const meta = document.createElement('span');
    meta.className = 'session-item-meta';
    const parts = [timeText(s.created_at)];
    if (s.state === 'waiting' && s.pin) parts.push(`${t('agent.pinShort')} ${groupPin(s.pin).join(' ')}`);
    if (gateOf(s) === 'consent' || gateOf(s) === 'admit') parts.push(t(`agent.list.${gateOf(s)}`));
    if (s.state === 'ended' && s.end_reason) parts.push(t(`reason.${s.end_reason}`));
    meta.textContent = parts.filter(Boolean).join(' · ');
    main.append(b, url, meta);

    const actions = document.createElement('div');
    actions.className = 'session-item-actions';
    const open = document.createElement('a');
    open.className = 'btn btn-small';
    open.href = sessionPath(s.id);
    open.dataset.focusKey = `open:${s.id}`;
    open.textContent = t('agent.open');
    open.setAttribute('aria-label', t('agent.openLabel', { url: shortUrl(s.start_url) }));
    open.addEventListener('click', (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      history.pushState(null, '', sessionPath(s.id));
      openSession(s);
    });
    actions.append(open);
    if (s.state !== 'ended') {
      const end = document.createElement('button');
      end.type = 'button';
      end.className = 'btn btn-small btn-danger-quiet';
      end.dataset.focusKey = `end:${s.id}`;
      end.textContent = t('agent.end');
      end.setAttribute('aria-label', t('agent.endLabel', { url: shortUrl(s.start_url) }));
      end.addEventListener('click', () => endSession(s.id));
      actions.append(end);
    }
    li.append(main, actions);
    el.list.append(li);
  }
  if (focusKey) el.list.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
}

el.refresh.addEventListener('click', () => refreshList());

// ---- one session ----

function route() {
  const id = routeId();
  if (!id) {
    closeSession();
    return;
  }
  if (app.current && app.current.id === id) return;
  loadSession(id);
}

async function loadSession(id) {
  try {
    openSession(await api('GET', `/api/v1/sessions/${encodeURIComponent(id)}`));
  } catch (err) {
    if (handleAuth(err)) return;
    closeSession();
    el.empty.hidden = true;
    el.notFound.hidden = false;
    showError(el.notFound.querySelector('p'), err instanceof ApiError && err.status === 404 ? t('agent.missingDetail') : errorText(err));
  }
}

function openSession(s) {
  closeViewer();
  app.current = s;
  el.empty.hidden = true;
  el.notFound.hidden = true;
  el.view.hidden = false;
  el.copyStatus.textContent = '';
  app.activity = [];
  renderActivity();
  updateSession(s);
  refreshActivity();
  renderList();
  clearInterval(app.sessionTimer);
  app.sessionTimer = setInterval(pollSession, SESSION_REFRESH_MS);
  clearInterval(app.tickTimer);
  app.tickTimer = setInterval(renderExpiry, 1000);
  el.title.focus({ preventScroll: true });
}

function closeSession() {
  closeViewer();
  clearInterval(app.sessionTimer);
  clearInterval(app.tickTimer);
  app.current = null;
  el.view.hidden = true;
  el.notFound.hidden = true;
  el.empty.hidden = false;
  renderList();
}

function closeViewer() {
  if (app.viewer) {
    app.viewer.destroy();
    app.viewer = null;
  }
}

async function pollSession() {
  const cur = app.current;
  if (!cur || cur.state === 'ended' || document.hidden) return;
  try {
    const s = await api('GET', `/api/v1/sessions/${encodeURIComponent(cur.id)}`);
    if (app.current && app.current.id === s.id) updateSession(s);
  } catch (err) {
    handleAuth(err);
  }
  refreshActivity();
}

function updateSession(s) {
  const prev = app.current;
  app.current = s;
  el.title.textContent = t('agent.sessionTitle', { id: s.id });
  el.url.textContent = s.start_url || '';
  el.url.title = s.start_url || '';
  badge(el.stateBadge, s.state);
  el.end.hidden = s.state === 'ended';

  const waiting = s.state === 'waiting';
  el.pinCard.hidden = !waiting || !s.pin;
  if (waiting && s.pin) {
    const groups = groupPin(s.pin);
    el.pin.replaceChildren(
      ...groups.map((g) => {
        const span = document.createElement('span');
        span.textContent = g;
        return span;
      }),
    );
    el.pin.setAttribute('aria-label', `${t('agent.pinLabel')}: ${s.pin.split('').join(' ')}`);
    el.joinUrl.value = s.join_url || '';
    renderExpiry();
  }

  if (s.state === 'waiting') el.message.textContent = t('agent.waitingCustomer');
  else if (s.state === 'ended') el.message.textContent = `${t('agent.ended')} ${t(`reason.${s.end_reason || 'unknown'}`)}`;
  else el.message.textContent = '';
  el.message.hidden = !el.message.textContent;

  renderArrival({ box: el.arrival, text: el.arrivalText, status: el.arrivalStatus, admit: el.admit }, s);
  if (prev?.id !== s.id) showError(el.arrivalError, '');

  // The agent's viewer connects once the customer is in; the worker sends
  // it no picture until the customer agreed (and was admitted, where the
  // company asks for it), so until then it says what it waits for.
  if (s.state === 'active' && !app.viewer) {
    app.viewer = new Viewer(el.viewerHost, {
      sessionId: s.id,
      role: 'agent',
      onSession: (msg) => renderViewers(msg.viewers),
      onState: (state, reason) => {
        // Pictures arrive once the gate opened: show that now, not at the next poll.
        if (state === 'live' && app.current && app.current.id === s.id && ['consent', 'admit'].includes(gateOf(app.current))) pollSession();
        if (state === 'ended' && app.current && app.current.id === s.id && app.current.state !== 'ended') {
          updateSession({ ...app.current, state: 'ended', end_reason: reason });
          refreshList();
        }
      },
    });
    app.viewer.start();
  }
  const gate = gateOf(s);
  if (app.viewer) app.viewer.setWaiting(gate === 'consent' || gate === 'admit' ? t(`viewer.waiting.${gate}`) : '');
  el.viewerHost.hidden = !app.viewer;
  if (prev && prev.id === s.id && prev.state !== s.state) {
    renderList();
    refreshActivity();
    // The viewers' leaving reaches the trail shortly after the end.
    if (s.state === 'ended') setTimeout(refreshActivity, ACTIVITY_LATE_MS);
  }
}

// ---- the open session's activity (its audit trail) ----

let activitySeq = 0;

async function refreshActivity() {
  const cur = app.current;
  if (!cur) return;
  const seq = ++activitySeq;
  try {
    const res = await api('GET', `/api/v1/sessions/${encodeURIComponent(cur.id)}/audit`);
    if (seq !== activitySeq || !app.current || app.current.id !== cur.id) return; // a newer answer or another session
    app.activity = Array.isArray(res?.events) ? res.events : [];
    showError(el.activityError, '');
    renderActivity();
  } catch (err) {
    if (seq === activitySeq && !handleAuth(err)) showError(el.activityError, errorText(err));
  }
}

function renderActivity() {
  renderActivityList(el.activityList, el.activityEmpty, app.activity, app.me?.agent?.id);
}

function renderViewers(v) {
  if (!v) {
    el.viewers.textContent = '';
    return;
  }
  el.viewers.textContent = t('agent.viewers', { customers: v.customers ?? 0, agents: v.agents ?? 0 });
}

function renderExpiry() {
  const s = app.current;
  if (!s || s.state !== 'waiting' || !s.expires_at) {
    el.pinExpiry.textContent = '';
    return;
  }
  const left = Math.max(0, Math.round((new Date(s.expires_at).getTime() - Date.now()) / 1000));
  if (left === 0) {
    el.pinExpiry.textContent = t('agent.pinExpired');
    return;
  }
  const mm = Math.floor(left / 60);
  const ss = String(left % 60).padStart(2, '0');
  el.pinExpiry.textContent = t('agent.pinExpires', { time: timeText(s.expires_at), left: `${mm}:${ss}` });
}

async function endSession(id) {
  try {
    const s = await api('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
    if (app.current && app.current.id === id) {
      closeViewer();
      updateSession(s && s.id ? s : { ...app.current, state: 'ended', end_reason: 'agent_ended' });
    }
  } catch (err) {
    if (!handleAuth(err)) showError(el.listError, errorText(err));
  }
  refreshList();
}

el.admit.addEventListener('click', async () => {
  const cur = app.current;
  if (!cur) return;
  showError(el.arrivalError, '');
  el.admit.disabled = true;
  try {
    const s = await api('POST', `/api/v1/sessions/${encodeURIComponent(cur.id)}/admit`);
    if (s && app.current && app.current.id === s.id) updateSession(s);
    refreshActivity();
  } catch (err) {
    if (!handleAuth(err)) showError(el.arrivalError, errorText(err));
  } finally {
    el.admit.disabled = false;
  }
});

el.end.addEventListener('click', () => {
  if (app.current) endSession(app.current.id);
});

el.copy.addEventListener('click', async () => {
  const text = el.joinUrl.value;
  try {
    await navigator.clipboard.writeText(text);
    el.copyStatus.textContent = t('agent.copied');
  } catch {
    el.joinUrl.select();
    el.copyStatus.textContent = t('agent.copyManual');
  }
});

function stopTimers() {
  clearInterval(app.listTimer);
  clearInterval(app.sessionTimer);
  clearInterval(app.tickTimer);
}

window.addEventListener('popstate', () => {
  if (app.me) route();
});

onLangChange(() => {
  document.title = t(app.me ? 'agent.pageTitle' : 'login.pageTitle');
  if (!app.me) return;
  renderList();
  if (app.current) updateSession(app.current);
  renderActivity();
});

initPage();
boot();
