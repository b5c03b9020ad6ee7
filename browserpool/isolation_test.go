package browserpool

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Two sessions (two leases, as two companies' sessions get) share nothing:
// what the first stores on a site (cookie, localStorage, IndexedDB, a
// service-worker-free cache) is not there for the second on the same site,
// even while both live; and the second's pictures never show the first's
// page.
func TestLeasesShareNothing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		colour := r.URL.Query().Get("c")
		fmt.Fprintf(w, `<!doctype html><body style="margin:0;background:%s"></body>`, colour)
	}))
	defer srv.Close()
	a := lease(t, LeaseOptions{Width: 320, Height: 240, StartURL: srv.URL + "/?c=%23f0f"})
	b := lease(t, LeaseOptions{Width: 320, Height: 240, StartURL: srv.URL + "/?c=%23fff"})

	eval := func(l *Lease, expr string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cctx, ccancel := l.callCtx(ctx)
		defer ccancel()
		got, err := chromedp.Run(cctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return got
	}
	stored := eval(a, `(async () => {
		document.cookie = 'secret=a; max-age=3600';
		localStorage.setItem('secret', 'a');
		sessionStorage.setItem('secret', 'a');
		await new Promise((ok, fail) => {
			const req = indexedDB.open('tandem-test', 1);
			req.onupgradeneeded = () => req.result.createObjectStore('s');
			req.onsuccess = () => { const tx = req.result.transaction('s', 'readwrite'); tx.objectStore('s').put('a', 'secret'); tx.oncomplete = ok; tx.onerror = fail; };
			req.onerror = fail;
		});
		await caches.open('tandem-test').then((c) => c.put('/secret', new Response('a')));
		return document.cookie + '|' + localStorage.getItem('secret');
	})()`)
	if stored != "secret=a|a" {
		t.Fatalf("the first session stored %q", stored)
	}
	seen := eval(b, `(async () => {
		const dbs = (await indexedDB.databases()).map((d) => d.name).join(',');
		const cached = await caches.has('tandem-test');
		return [document.cookie, localStorage.getItem('secret'), sessionStorage.getItem('secret'), dbs, cached].join('|');
	})()`)
	if seen != "||||false" {
		t.Errorf("the second session sees %q of the first's storage", seen)
	}
	// b's pictures are its own white page, never a's magenta.
	deadline := time.After(2 * time.Second)
	white := isColour(color.RGBA{255, 255, 255, 255})
	waitFrame(t, b, "the second session's own page", white)
	for {
		select {
		case c := <-b.Frames():
			img, err := jpeg.Decode(bytes.NewReader(c.JPEG))
			if err != nil {
				t.Fatal(err)
			}
			if near(colourAt(img, 0.5, 0.5), color.RGBA{255, 0, 255, 255}) {
				t.Fatal("the second session showed the first's page")
			}
		case <-deadline:
			return
		}
	}
}
