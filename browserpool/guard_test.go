package browserpool

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// navSite serves /ok, /ok/frame (an allowed page framing a denied one),
// /ok/redirect (to a denied page), /denied and /other, and records every
// path it was asked for.
type navSite struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newNavSite(t *testing.T) *navSite {
	t.Helper()
	s := &navSite{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, r.URL.Path)
		s.mu.Unlock()
		switch r.URL.Path {
		case "/ok/redirect":
			http.Redirect(w, r, "/denied", http.StatusFound)
			return
		case "/ok/frame":
			fmt.Fprint(w, `<!doctype html><title>framing</title><iframe id="f" src="/denied?secret=1"></iframe>`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>%s</title>`, r.URL.Path)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *navSite) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

func (s *navSite) asked(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.hits {
		if h == path {
			return true
		}
	}
	return false
}

type navBlock struct {
	url, rule string
	top       bool
}

// TestNavGuard: every document the tab loads is checked (the top page, a
// frame, each hop of a redirect); a refused one never reaches its server
// and shows the block page; the request guard still works beside it.
func TestNavGuard(t *testing.T) {
	site := newNavSite(t)
	blocked := make(chan navBlock, 16)
	nav := &NavGuard{
		Allowed: func(u string) (bool, string) {
			if strings.Contains(u, "/denied") {
				return false, site.URL + "/denied*"
			}
			return strings.HasPrefix(u, site.URL+"/ok"), ""
		},
		Page:    func(u string) []byte { return []byte(`<!doctype html><title>blocked</title><p>` + u) },
		Blocked: func(u, rule string, top bool) { blocked <- navBlock{u, rule, top} },
	}
	guard := &RequestGuard{Patterns: []string{site.URL + "/guarded*"}}
	l := lease(t, LeaseOptions{StartURL: site.URL + "/ok", Nav: nav, Guard: guard})
	title := func() string {
		t.Helper()
		s, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](`document.title`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitTitle := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for title() != want {
			if time.Now().After(deadline) {
				t.Fatalf("title = %q, want %q", title(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitBlock := func(want navBlock) {
		t.Helper()
		select {
		case b := <-blocked:
			if b != want {
				t.Errorf("blocked %+v, want %+v", b, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing blocked, want %+v", want)
		}
	}
	waitTitle("/ok")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The top page, through Navigate (as the address bar will).
	if err := l.Navigate(ctx, site.URL+"/denied"); err != nil {
		t.Logf("navigate to a denied page: %v", err) // the block page is a 403
	}
	waitTitle("blocked")
	waitBlock(navBlock{site.URL + "/denied", site.URL + "/denied*", true})
	// A page not on the allow list, by a link of the page.
	if err := chromedp.Do(l.bctx, chromedp.Evaluate[chromedp.Void](`location.href = '/other'`)); err != nil {
		t.Fatal(err)
	}
	waitTitle("blocked")
	waitBlock(navBlock{site.URL + "/other", "", true})
	// A redirect from an allowed page to a denied one.
	if err := chromedp.Do(l.bctx, chromedp.Evaluate[chromedp.Void](`location.href = '/ok/redirect'`)); err != nil {
		t.Fatal(err)
	}
	waitTitle("blocked")
	waitBlock(navBlock{site.URL + "/denied", site.URL + "/denied*", true})
	// A frame of an allowed page.
	if err := chromedp.Do(l.bctx, chromedp.Evaluate[chromedp.Void](`location.href = '/ok/frame'`)); err != nil {
		t.Fatal(err)
	}
	waitTitle("framing")
	waitBlock(navBlock{site.URL + "/denied?secret=1", site.URL + "/denied*", false})
	if site.asked("/denied") || site.asked("/other") {
		t.Errorf("a refused document reached the server")
	}
	if !site.asked("/ok/redirect") {
		t.Errorf("the allowed hop of the redirect never reached the server")
	}

	// The request guard, on: a guarded request fails; an allowed document
	// still loads.
	l.GuardRequests(true)
	got, err := chromedp.Run(l.bctx, chromedp.Evaluate[string](`fetch('/guarded').then(() => 'went', () => 'failed')`, chromedp.EvalAwaitPromise))
	if err != nil || got != "failed" {
		t.Errorf("guarded fetch = %q, %v; want failed", got, err)
	}
	if site.asked("/guarded") {
		t.Errorf("a guarded request reached the server")
	}
	l.GuardRequests(false)
	got, err = chromedp.Run(l.bctx, chromedp.Evaluate[string](`fetch('/guarded').then(() => 'went', () => 'failed')`, chromedp.EvalAwaitPromise))
	if err != nil || got != "went" {
		t.Errorf("fetch with the guard off = %q, %v; want went", got, err)
	}
}

func TestRequestGuardPatterns(t *testing.T) {
	g := &RequestGuard{Patterns: []string{"https://shop.example/buy*", "https://*.pay.example/v?/charge"}}
	for u, want := range map[string]bool{
		"https://shop.example/buy":              true,
		"https://shop.example/buy?id=1":         true,
		"https://shop.example/cart":             false,
		"https://x.pay.example/v1/charge":       true,
		"https://x.pay.example/v12/charge":      false,
		"https://shop.example.evil/buy":         false,
		"https://shop.example/buy/../../x?a.b+": true,
	} {
		if got := g.matches(u); got != want {
			t.Errorf("matches(%q) = %v, want %v", u, got, want)
		}
	}
}
