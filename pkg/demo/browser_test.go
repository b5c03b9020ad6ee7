package demo

import (
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	browsertest.Stop()
	os.Exit(code)
}

// TestShopInBrowser loads every page in Chromium (no script error, no CSP
// violation, no missing file) and buys three ways: a click on the button, a
// click on its label, and Enter in a field of the form.
func TestShopInBrowser(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	ctx, _ := browsertest.NewTab(t, 1280, 800, false)
	for _, p := range []string{"/demo/", "/demo/product/furoshiki", "/demo/account", "/demo/checkout?item=tea"} {
		browsertest.Run(t, ctx, "open "+p, chromedp.Navigate(srv.URL+p))
		if !browsertest.Eval[bool](t, ctx, `Promise.all([...document.images].map(i => i.decode())).then(() => true)`) {
			t.Errorf("%s: images do not load", p)
		}
	}
	bought := func(n string) {
		t.Helper()
		browsertest.WaitJS(t, ctx, "bought: "+n, `document.getElementById('bought').textContent.trim() === "bought: `+n+`"`)
	}
	bought("0")
	browsertest.Run(t, ctx, "click Buy", chromedp.Click(chromedp.ID("buy")))
	bought("1")
	browsertest.Run(t, ctx, "click its label", chromedp.Click(chromedp.CSS(`label[for="buy"]`)))
	bought("2")
	browsertest.Fill(t, ctx, "#cc-name", "HANAKO YAMADA")
	browsertest.Run(t, ctx, "Enter in a field", chromedp.KeyEvent(kb.Enter))
	bought("3")
	if !browsertest.Eval[bool](t, ctx, `!document.getElementById('thanks').hidden`) {
		t.Error("no thank-you message after buying")
	}
	// The server counted the same, and a reload shows it.
	browsertest.Run(t, ctx, "reload", chromedp.Reload())
	bought("3")
}
