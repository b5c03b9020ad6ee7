// The company admin pages (/admin/): the company's agents, its API keys and
// its settings, through /api/v1/agents, /api/v1/apikeys and /api/v1/company.
// The agent signs in on the console; here a 401 links there, and an agent
// who is not an admin is told so.

import { t, getLang, initPage, onLangChange } from './i18n.js';
import { api, ApiError } from './api.js';

const $ = (id) => document.getElementById(id);

const el = {
  loading: $('loading'),
  signedOut: $('signed-out'),
  forbidden: $('forbidden'),
  loadError: $('load-error'),
  admin: $('admin'),
  account: $('account'),
  agentName: $('agent-name'),
  companyName: $('company-name'),
  agentsError: $('agents-error'),
  agentList: $('agent-list'),
  agentForm: $('agent-form'),
  agentEmail: $('agent-email'),
  agentNewName: $('agent-new-name'),
  agentRole: $('agent-role'),
  agentPassword: $('agent-password'),
  agentFormError: $('agent-form-error'),
  keysError: $('keys-error'),
  keysEmpty: $('keys-empty'),
  keyList: $('key-list'),
  keyReveal: $('key-reveal'),
  keySecret: $('key-secret'),
  keyCopy: $('key-copy'),
  keyCopyStatus: $('key-copy-status'),
  keyDone: $('key-done'),
  keyForm: $('key-form'),
  keyName: $('key-name'),
  keyFormError: $('key-form-error'),
  settingsForm: $('settings-form'),
  settingsError: $('settings-error'),
  settingsStatus: $('settings-status'),
  revokeDialog: $('revoke-dialog'),
  revokeText: $('revoke-text'),
};

const app = { me: null, agents: [], keys: [], company: null, revoking: null };

const ROLES = ['agent', 'supervisor', 'admin'];

function showError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

// errorText prefers the server's own message: the admin routes explain
// their refusals (a bad setting, an admin demoting themself).
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('error.network');
    if (err.status === 403) return t('admin.forbiddenText');
    if (err.serverMessage) return err.serverMessage;
  }
  return t('error.generic');
}

function dateText(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(getLang(), { dateStyle: 'medium' }).format(d);
}

// A call answered 401 mid-way: the login expired.
function failed(err, node) {
  if (err instanceof ApiError && err.status === 401) {
    show('signed-out');
    return;
  }
  showError(node, errorText(err));
}

function show(which) {
  el.loading.hidden = true;
  el.signedOut.hidden = which !== 'signed-out';
  el.forbidden.hidden = which !== 'forbidden';
  el.admin.hidden = which !== 'admin';
  el.account.hidden = which === 'signed-out';
}

async function boot() {
  let me;
  try {
    me = await api('GET', '/api/v1/auth/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) show('signed-out');
    else {
      show('');
      showError(el.loadError, errorText(err));
    }
    return;
  }
  app.me = me;
  el.agentName.textContent = me.agent?.name || me.agent?.email || '';
  el.companyName.textContent = me.company?.name || '';
  if (me.agent?.role !== 'admin') {
    show('forbidden');
    return;
  }
  show('admin');
  document.title = t('admin.pageTitle');
  await Promise.all([loadAgents(), loadKeys(), loadCompany()]);
}

// ---- agents ----

async function loadAgents() {
  try {
    app.agents = (await api('GET', '/api/v1/agents'))?.agents || [];
    renderAgents();
  } catch (err) {
    failed(err, el.agentsError);
  }
}

function renderAgents() {
  const items = app.agents.map((a) => {
    const li = document.createElement('li');
    li.className = 'admin-item';
    li.dataset.id = a.id;
    const main = document.createElement('div');
    main.className = 'admin-item-main';
    const name = document.createElement('span');
    name.className = 'admin-item-name';
    name.textContent = a.name || a.email;
    const meta = document.createElement('span');
    meta.className = 'admin-item-meta';
    meta.textContent = a.email;
    main.append(name, meta);
    if (a.disabled) {
      const b = document.createElement('span');
      b.className = 'badge badge-ended';
      b.textContent = t('admin.agents.disabled');
      main.append(b);
    }
    const actions = document.createElement('div');
    actions.className = 'admin-item-actions';
    const select = document.createElement('select');
    select.className = 'select-small';
    select.setAttribute('aria-label', t('admin.agents.roleOf', { name: a.name || a.email }));
    for (const r of ROLES) {
      const o = document.createElement('option');
      o.value = r;
      o.textContent = t(`admin.role.${r}`);
      select.append(o);
    }
    select.value = a.role;
    select.addEventListener('change', () => patchAgent(a, { role: select.value }));
    const toggle = document.createElement('button');
    toggle.type = 'button';
    toggle.className = a.disabled ? 'btn btn-small' : 'btn btn-small btn-danger-quiet';
    toggle.textContent = t(a.disabled ? 'admin.agents.enable' : 'admin.agents.disable');
    toggle.setAttribute('aria-label', t(a.disabled ? 'admin.agents.enableOf' : 'admin.agents.disableOf', { name: a.name || a.email }));
    toggle.addEventListener('click', () => patchAgent(a, { disabled: !a.disabled }));
    actions.append(select, toggle);
    li.append(main, actions);
    return li;
  });
  el.agentList.replaceChildren(...items);
}

async function patchAgent(a, body) {
  showError(el.agentsError, '');
  try {
    const got = await api('PATCH', `/api/v1/agents/${encodeURIComponent(a.id)}`, body);
    app.agents = app.agents.map((x) => (x.id === a.id ? got : x));
  } catch (err) {
    failed(err, el.agentsError);
  }
  renderAgents(); // a refused change goes back to what the server holds
}

el.agentForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError(el.agentFormError, '');
  const email = el.agentEmail.value.trim();
  const password = el.agentPassword.value;
  if (!email || !el.agentEmail.checkValidity()) {
    showError(el.agentFormError, t('admin.agents.emailMissing'));
    el.agentEmail.focus();
    return;
  }
  if (password.length < 8) {
    showError(el.agentFormError, t('admin.agents.passwordShort'));
    el.agentPassword.focus();
    return;
  }
  const body = { email, name: el.agentNewName.value.trim(), role: el.agentRole.value, password };
  if (!body.name) delete body.name;
  const btn = el.agentForm.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const got = await api('POST', '/api/v1/agents', body);
    app.agents.push(got);
    renderAgents();
    el.agentForm.reset();
  } catch (err) {
    failed(err, el.agentFormError);
  } finally {
    btn.disabled = false;
  }
});

// ---- API keys ----

async function loadKeys() {
  try {
    app.keys = (await api('GET', '/api/v1/apikeys'))?.api_keys || [];
    renderKeys();
  } catch (err) {
    failed(err, el.keysError);
  }
}

function renderKeys() {
  el.keysEmpty.hidden = app.keys.length > 0;
  const items = app.keys.map((k) => {
    const li = document.createElement('li');
    li.className = 'admin-item';
    li.dataset.id = k.id;
    const main = document.createElement('div');
    main.className = 'admin-item-main';
    const name = document.createElement('span');
    name.className = 'admin-item-name';
    name.textContent = k.name;
    const meta = document.createElement('span');
    meta.className = 'admin-item-meta';
    meta.textContent = t('admin.keys.created', { date: dateText(k.created_at) });
    main.append(name, meta);
    li.append(main);
    if (k.revoked) {
      const b = document.createElement('span');
      b.className = 'badge badge-ended';
      b.textContent = t('admin.keys.revoked');
      main.append(b);
    } else {
      const actions = document.createElement('div');
      actions.className = 'admin-item-actions';
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'btn btn-small btn-danger-quiet';
      btn.textContent = t('admin.keys.revoke');
      btn.setAttribute('aria-label', t('admin.keys.revokeOf', { name: k.name }));
      btn.addEventListener('click', () => askRevoke(k));
      actions.append(btn);
      li.append(actions);
    }
    return li;
  });
  el.keyList.replaceChildren(...items);
}

function askRevoke(k) {
  app.revoking = k;
  el.revokeText.textContent = t('admin.keys.revokeText', { name: k.name });
  if (typeof el.revokeDialog.showModal === 'function') el.revokeDialog.showModal();
  else if (window.confirm(el.revokeText.textContent)) revoke(k);
}

el.revokeDialog.addEventListener('close', () => {
  const k = app.revoking;
  app.revoking = null;
  if (k && el.revokeDialog.returnValue === 'revoke') revoke(k);
  el.revokeDialog.returnValue = '';
});

async function revoke(k) {
  showError(el.keysError, '');
  try {
    const got = await api('DELETE', `/api/v1/apikeys/${encodeURIComponent(k.id)}`);
    app.keys = app.keys.map((x) => (x.id === k.id ? { ...x, ...got, revoked: true } : x));
    renderKeys();
  } catch (err) {
    failed(err, el.keysError);
  }
}

el.keyForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError(el.keyFormError, '');
  const name = el.keyName.value.trim();
  if (!name) {
    showError(el.keyFormError, t('admin.keys.nameMissing'));
    el.keyName.focus();
    return;
  }
  const btn = el.keyForm.querySelector('button[type=submit]');
  btn.disabled = true;
  try {
    const got = await api('POST', '/api/v1/apikeys', { name });
    const { key, ...listed } = got || {};
    app.keys.push(listed); // the list never holds the secret
    renderKeys();
    el.keyForm.reset();
    el.keySecret.value = key || '';
    el.keyCopyStatus.textContent = '';
    el.keyReveal.hidden = false;
    el.keySecret.focus();
    el.keySecret.select();
  } catch (err) {
    failed(err, el.keyFormError);
  } finally {
    btn.disabled = false;
  }
});

el.keyCopy.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(el.keySecret.value);
    el.keyCopyStatus.textContent = t('admin.keys.copied');
  } catch {
    el.keySecret.select();
    el.keyCopyStatus.textContent = t('admin.keys.copyManual');
  }
});

el.keyDone.addEventListener('click', () => {
  el.keySecret.value = '';
  el.keyReveal.hidden = true;
  el.keyName.focus();
});

// ---- company settings ----

const f = {
  name: $('set-name'),
  pinLength: $('set-pin-length'),
  pinLifetime: $('set-pin-lifetime'),
  idle: $('set-idle'),
  maxLength: $('set-max-length'),
  retention: $('set-retention'),
  maxSessions: $('set-max-sessions'),
  mustAdmit: $('set-must-admit'),
  origins: $('set-origins'),
  brandName: $('set-brand-name'),
  colourOn: $('set-colour-on'),
  colour: $('set-colour'),
  logo: $('set-logo'),
};

// Durations: the form shows minutes (days for the audit trail), the API
// takes seconds; empty is 0, the server's default.
const DURATIONS = [
  ['pin_lifetime', 'pinLifetime', 60],
  ['idle_timeout', 'idle', 60],
  ['max_session_length', 'maxLength', 60],
  ['audit_retention', 'retention', 86400],
];

function unitText(seconds, unit) {
  if (!seconds) return '';
  return String(Math.round((seconds / unit) * 100) / 100);
}

async function loadCompany() {
  try {
    fillSettings(await api('GET', '/api/v1/company'));
  } catch (err) {
    failed(err, el.settingsError);
  }
}

function fillSettings(c) {
  app.company = c;
  el.companyName.textContent = c.name || '';
  f.name.value = c.name || '';
  f.pinLength.value = c.pin_length ? String(c.pin_length) : '';
  f.maxSessions.value = c.max_sessions ? String(c.max_sessions) : '';
  for (const [key, field, unit] of DURATIONS) f[field].value = unitText(c[key], unit);
  f.mustAdmit.checked = !!c.agent_must_admit;
  f.origins.value = (c.allowed_origins || []).join('\n');
  const b = c.branding || {};
  f.brandName.value = b.name || '';
  f.colourOn.checked = !!b.colour;
  f.colour.value = b.colour || '#4338ca';
  f.colour.disabled = !b.colour;
  f.logo.value = b.logo_url || '';
}

f.colourOn.addEventListener('change', () => {
  f.colour.disabled = !f.colourOn.checked;
});

// readNumber returns the field's number, 0 when empty, NaN when not a number.
function readNumber(input) {
  const s = input.value.trim();
  if (!s) return 0;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? n : NaN;
}

// settingsPatch returns the fields that differ from the stored company, or
// an error key.
function settingsPatch() {
  const c = app.company || {};
  const out = {};
  const name = f.name.value.trim();
  if (!name) return { error: 'admin.settings.nameMissing', field: f.name };
  if (name !== c.name) out.name = name;
  const pinLength = readNumber(f.pinLength);
  if (Number.isNaN(pinLength)) return { error: 'admin.settings.notNumber', field: f.pinLength };
  if (pinLength !== (c.pin_length || 0)) out.pin_length = pinLength;
  const maxSessions = readNumber(f.maxSessions);
  if (Number.isNaN(maxSessions) || !Number.isInteger(maxSessions)) return { error: 'admin.settings.notNumber', field: f.maxSessions };
  if (maxSessions !== (c.max_sessions || 0)) out.max_sessions = maxSessions;
  for (const [key, field, unit] of DURATIONS) {
    const n = readNumber(f[field]);
    if (Number.isNaN(n)) return { error: 'admin.settings.notNumber', field: f[field] };
    const secs = Math.round(n * unit);
    if (secs !== (c[key] || 0)) out[key] = secs;
  }
  if (f.mustAdmit.checked !== !!c.agent_must_admit) out.agent_must_admit = f.mustAdmit.checked;
  const origins = f.origins.value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  if (origins.join('\n') !== (c.allowed_origins || []).join('\n')) out.allowed_origins = origins;
  const b = c.branding || {};
  const brand = {};
  const brandName = f.brandName.value.trim();
  if (brandName !== (b.name || '')) brand.name = brandName;
  const colour = f.colourOn.checked ? f.colour.value : '';
  if (colour !== (b.colour || '')) brand.colour = colour;
  const logo = f.logo.value.trim();
  if (logo !== (b.logo_url || '')) brand.logo_url = logo;
  if (Object.keys(brand).length) out.branding = brand;
  return { patch: out };
}

el.settingsForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError(el.settingsError, '');
  el.settingsStatus.textContent = '';
  const { patch, error, field } = settingsPatch();
  if (error) {
    showError(el.settingsError, t(error));
    field.focus();
    return;
  }
  if (!Object.keys(patch).length) {
    el.settingsStatus.textContent = t('admin.settings.unchanged');
    return;
  }
  const btn = $('settings-save');
  btn.disabled = true;
  try {
    fillSettings(await api('PATCH', '/api/v1/company', patch));
    el.settingsStatus.textContent = t('admin.settings.saved');
  } catch (err) {
    failed(err, el.settingsError);
  } finally {
    btn.disabled = false;
  }
});

initPage();
onLangChange(() => {
  if (!el.admin.hidden) {
    document.title = t('admin.pageTitle');
    renderAgents();
    renderKeys();
  }
});
boot();
