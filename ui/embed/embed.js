/*
 * Tandem's help button for a company's own website. One line on the site:
 *
 *   <script src="https://HOST/embed.js" data-company="X" async></script>
 *
 * The script asks HOST whether this site may show company X's button
 * (GET /api/v1/companies/X/embed, which HOST answers with CORS only when the
 * page's origin is one of X's allowed origins) and only then adds a small
 * button in the corner. The button opens X's PIN entry on HOST (/join/X) in
 * a new tab, where the customer types the PIN their agent reads out and then
 * sees the shared tab: first-party on HOST, so the customer's cookie works,
 * and nothing of this page goes to HOST.
 *
 * Optional: data-lang="ja" or "en" (else the page's lang, else the
 * browser's). The script sets data-tandem-embed on its own tag to
 * "loading", then "ready" (button added) or "refused" (not on this site),
 * for the site's developers. It defines no globals; the button lives in its
 * own shadow root, so the page's styles do not reach it.
 */
(() => {
  const script = document.currentScript || document.querySelector('script[data-company][src*="/embed.js"]');
  if (!script || script.dataset.tandemEmbed) return; // loaded twice: one button
  script.dataset.tandemEmbed = 'loading';

  const STRINGS = {
    en: { text: 'Help', name: 'Help: enter the PIN from your support agent (opens in a new tab)' },
    ja: { text: 'ヘルプ', name: 'ヘルプ：サポート担当者から伝えられたPINを入力（新しいタブで開きます）' },
  };

  const company = script.dataset.company || '';
  let base = '';
  try {
    base = new URL(script.src, location.href).origin;
  } catch {
    base = '';
  }
  if (!base || !/^[a-z0-9][a-z0-9-]{1,39}$/.test(company)) {
    script.dataset.tandemEmbed = 'refused';
    return;
  }
  const want = String(script.dataset.lang || document.documentElement.lang || navigator.language || 'en').toLowerCase();
  const lang = want.startsWith('ja') ? 'ja' : 'en';
  const joinUrl = `${base}/join/${company}`;

  function addButton() {
    const holder = document.createElement('div');
    holder.dataset.tandemHelp = company;
    Object.assign(holder.style, {
      position: 'fixed',
      right: 'max(16px, env(safe-area-inset-right))',
      bottom: 'max(16px, env(safe-area-inset-bottom))',
      zIndex: '2147483000',
    });
    const root = holder.attachShadow({ mode: 'open' });
    const button = document.createElement('button');
    button.type = 'button';
    button.lang = lang;
    button.textContent = STRINGS[lang].text;
    button.setAttribute('aria-label', STRINGS[lang].name);
    button.title = STRINGS[lang].name;
    Object.assign(button.style, {
      minHeight: '44px',
      minWidth: '44px',
      padding: '10px 18px',
      border: '2px solid #ffffff',
      borderRadius: '999px',
      background: '#4338ca',
      color: '#ffffff',
      font: '600 16px/1.2 system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans JP", Meiryo, sans-serif',
      boxShadow: '0 4px 16px rgba(22, 26, 46, 0.3)',
      cursor: 'pointer',
      outlineOffset: '3px',
    });
    button.addEventListener('click', () => {
      window.open(joinUrl, '_blank', 'noopener');
    });
    root.append(button);
    document.body.append(holder);
    script.dataset.tandemEmbed = 'ready';
  }

  fetch(`${base}/api/v1/companies/${company}/embed`, { mode: 'cors', credentials: 'omit', cache: 'no-store' })
    .then((res) => {
      if (!res.ok) throw new Error(`embed check answered ${res.status}`);
      if (document.body) addButton();
      else document.addEventListener('DOMContentLoaded', addButton, { once: true });
    })
    .catch(() => {
      script.dataset.tandemEmbed = 'refused';
    });
})();
