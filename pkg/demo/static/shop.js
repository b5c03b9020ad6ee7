// Komorebi Goods: the checkout's "Buy now" posts to /demo/api/buy and shows
// the count that the server returns.

const form = document.getElementById('checkout-form');
if (form) {
  const count = document.getElementById('bought-count');
  const thanks = document.getElementById('thanks');
  const button = document.getElementById('buy');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      const res = await fetch('/demo/api/buy', { method: 'POST', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`buy answered ${res.status}`);
      const data = await res.json();
      count.textContent = String(data.bought);
      thanks.hidden = false;
    } catch {
      thanks.hidden = true;
    } finally {
      button.disabled = false;
    }
  });
}
