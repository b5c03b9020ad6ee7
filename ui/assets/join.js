// The customer's PIN form at /join/{company}: shows the company's name,
// colour and logo (its branding), takes the PIN the agent reads out and redeems it with POST /api/v1/join.

import { t, initPage, onLangChange } from './i18n.js';
import { api, ApiError } from './api.js';

const $ = (id) => document.getElementById(id);
const form = $('join-form');
const pinInput = $('pin');
const pinError = $('pin-error');
const submit = $('join-submit');
const companyLabel = $('company-name');
const unknown = $('unknown-company');
const card = $('join-card');
const logo = $('company-logo');

const match = location.pathname.match(/^\/join\/([^/]+)\/?$/);
const company = match ? decodeURIComponent(match[1]) : '';
let companyName = '';
let lastError = null; // {key} or {text}, re-rendered on a language switch

/** normalizePin drops the spaces and dashes people type between digit groups. */
export function normalizePin(v) {
  return String(v).replace(/[\s\-\u3000]/g, '').replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
}

function setError(err) {
  lastError = err;
  const text = !err ? '' : err.key ? t(err.key, err.vars) : err.text;
  pinError.textContent = text;
  pinError.hidden = !text;
  if (text) pinInput.setAttribute('aria-invalid', 'true');
  else pinInput.removeAttribute('aria-invalid');
}

function renderCompany() {
  companyLabel.textContent = companyName;
  document.title = companyName ? t('join.pageTitleCompany', { company: companyName }) : t('join.pageTitle');
}

/**
 * onAccent picks the text colour for a #rrggbb background: white or dark,
 * whichever contrasts more (WCAG relative luminance).
 */
export function onAccent(hex) {
  const lin = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * lin(1) + 0.7152 * lin(3) + 0.0722 * lin(5);
  const dark = '#111827'; // luminance 0.0116
  return 1.05 / (l + 0.05) >= (l + 0.05) / (0.0116 + 0.05) ? '#ffffff' : dark;
}

/** applyBranding shows the company's colour and logo; names go in as text only. */
function applyBranding(b) {
  if (typeof b?.colour === 'string' && /^#[0-9a-fA-F]{6}$/.test(b.colour)) {
    card.style.setProperty('--accent', b.colour);
    card.style.setProperty('--on-accent', onAccent(b.colour));
    card.classList.add('branded');
  }
  let url = null;
  try {
    url = typeof b?.logo_url === 'string' && b.logo_url ? new URL(b.logo_url) : null;
  } catch {
    url = null;
  }
  // The page's CSP allows https: images only.
  if (url && url.protocol === 'https:') {
    logo.alt = companyName;
    logo.addEventListener('error', () => { logo.hidden = true; }, { once: true });
    logo.src = url.href;
    logo.hidden = false;
  }
}

async function loadCompany() {
  try {
    const c = await api('GET', `/api/v1/companies/${encodeURIComponent(company)}`);
    companyName = (typeof c?.branding?.name === 'string' && c.branding.name) || c?.name || company;
    applyBranding(c?.branding);
    renderCompany();
    card.dataset.ready = 'true';
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      showUnknown();
      return;
    }
    // The name is only branding: the form still works without it.
    companyName = company;
    renderCompany();
    card.dataset.ready = 'true';
  }
}

function showUnknown() {
  form.hidden = true;
  unknown.hidden = false;
  card.dataset.ready = 'unknown';
  unknown.querySelector('h2').focus();
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const pin = normalizePin(pinInput.value);
  if (!/^[0-9]{6,10}$/.test(pin)) {
    setError({ key: pin ? 'join.pinFormat' : 'join.pinMissing' });
    pinInput.focus();
    return;
  }
  setError(null);
  submit.disabled = true;
  submit.setAttribute('aria-busy', 'true');
  try {
    const res = await api('POST', '/api/v1/join', { company, pin });
    if (!res || typeof res.customer_url !== 'string') throw new ApiError(500, 'bad_answer', '');
    location.assign(res.customer_url);
    return; // keep the button disabled while the page changes
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.code === 'invalid_pin') {
      setError(err.serverMessage ? { text: err.serverMessage } : { key: 'join.invalidPin' });
    } else if (err instanceof ApiError && err.status === 429) {
      setError(err.retryAfter ? { key: 'join.tooManyWait', vars: { seconds: err.retryAfter } } : { key: 'join.tooMany' });
    } else if (err instanceof ApiError && err.status === 404) {
      showUnknown();
    } else if (err instanceof ApiError && err.status === 0) {
      setError({ key: 'error.network' });
    } else {
      setError({ key: 'error.generic' });
    }
    pinInput.select();
    pinInput.focus();
  }
  submit.disabled = false;
  submit.removeAttribute('aria-busy');
});

pinInput.addEventListener('input', () => {
  if (lastError) setError(null);
});

onLangChange(() => {
  renderCompany();
  if (lastError) setError(lastError);
});

initPage();
if (!company) showUnknown();
else loadCompany();
