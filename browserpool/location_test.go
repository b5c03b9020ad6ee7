package browserpool

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The tab's location follows its navigations, across documents and within
// one, with its history; GoHistory and Reload move it.
func TestLocationAndHistory(t *testing.T) {
	site := newNavSite(t)
	l := lease(t, LeaseOptions{StartURL: site.URL + "/ok"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitLoc := func(want Location) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case <-l.LocationChanged():
			case <-time.After(100 * time.Millisecond):
			}
			got, err := l.Location(ctx)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("location = %+v (%v), want %+v", got, err, want)
			}
		}
	}
	waitLoc(Location{URL: site.URL + "/ok"})
	if err := l.Navigate(ctx, site.URL+"/other"); err != nil {
		t.Fatal(err)
	}
	waitLoc(Location{URL: site.URL + "/other", Back: true})
	if err := chromedp.Do(l.bctx, chromedp.Evaluate[chromedp.Void](`history.pushState({}, '', '/other/step2?x=1#f')`)); err != nil {
		t.Fatal(err)
	}
	waitLoc(Location{URL: site.URL + "/other/step2?x=1#f", Back: true})
	if err := l.GoHistory(ctx, -1); err != nil {
		t.Fatal(err)
	}
	waitLoc(Location{URL: site.URL + "/other", Back: true, Forward: true})
	if err := l.GoHistory(ctx, -5); err != nil { // no such entry: nothing
		t.Fatal(err)
	}
	if err := l.GoHistory(ctx, -1); err != nil {
		t.Fatal(err)
	}
	waitLoc(Location{URL: site.URL + "/ok", Forward: true})
	before := site.count()
	if err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); site.count() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reload never reached the server")
		}
	}
}
