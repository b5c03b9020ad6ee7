// Strings in English and Japanese, the language choice, and the language
// switch. The dictionaries are JSON files beside this module (i18n/en.json,
// i18n/ja.json) with the same keys; the Go tests check that they match.
//
// Elements opt in with data-i18n="key" (text content) and
// data-i18n-attr="attr=key;attr2=key2" (attributes). The module loads both
// dictionaries before any page module runs (top-level await), so switching is
// instant and works offline after the first load.

export const LANGS = ['en', 'ja'];
const STORAGE_KEY = 'tandem.lang';
const LANG_NAMES = { en: 'English', ja: '日本語' };

const dicts = {};
const listeners = new Set();

async function load(lang) {
  const res = await fetch(`/assets/i18n/${lang}.json`, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`i18n: ${lang}.json answered ${res.status}`);
  dicts[lang] = await res.json();
}

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage can be off (private mode, policy)
  }
}

/** detectLang returns the saved choice, else the browser's first supported language, else English. */
export function detectLang() {
  const saved = stored();
  if (LANGS.includes(saved)) return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
  for (const pref of prefs) {
    const base = String(pref).toLowerCase().split('-')[0];
    if (LANGS.includes(base)) return base;
  }
  return 'en';
}

await Promise.all(LANGS.map(load));
let lang = detectLang();

/** t returns the string for key in the current language; {name} placeholders take vars.name. */
export function t(key, vars) {
  let s = dicts[lang]?.[key] ?? dicts.en?.[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** getLang returns the current language code ("en" or "ja"). */
export function getLang() {
  return lang;
}

/** setLang switches the language, remembers it and re-renders the page. */
export function setLang(next, { remember = true } = {}) {
  if (!LANGS.includes(next)) return;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // not remembered; the switch still works for this page
    }
  }
  if (next === lang) return;
  lang = next;
  apply();
  for (const fn of listeners) fn(lang);
}

/** onLangChange calls fn(lang) after every switch; it returns a func that stops it. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** apply renders the strings of root (the whole document by default). */
export function apply(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split('=').map((s) => s && s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
  for (const btn of document.querySelectorAll('.lang-switch button[data-lang]')) {
    btn.setAttribute('aria-pressed', String(btn.dataset.lang === lang));
  }
  for (const group of document.querySelectorAll('.lang-switch')) {
    group.setAttribute('aria-label', t('lang.label'));
  }
}

function mountLangSwitch(host) {
  host.classList.add('lang-switch');
  host.setAttribute('role', 'group');
  host.replaceChildren();
  for (const code of LANGS) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.dataset.lang = code;
    btn.lang = code;
    btn.textContent = LANG_NAMES[code];
    btn.addEventListener('click', () => setLang(code));
    host.append(btn);
  }
}

/** initPage renders the strings, mounts every [data-lang-switch] and reveals the page. */
export function initPage() {
  for (const host of document.querySelectorAll('[data-lang-switch]')) mountLangSwitch(host);
  apply();
  // Another tab switched: follow it.
  window.addEventListener('storage', (e) => {
    if (e.key === STORAGE_KEY && LANGS.includes(e.newValue)) setLang(e.newValue, { remember: false });
  });
  document.documentElement.classList.remove('i18n-pending');
}
