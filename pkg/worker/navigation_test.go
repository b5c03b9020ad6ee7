package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/urlpolicy"
)

// The company's URL lists hold for every document of the tab: a frame on
// no allow pattern is refused, a denied page shows the block page in both languages and is published without its
// query; a start page outside the lists shows it from the start.
func TestURLPolicyBlocksDocuments(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pol := urlpolicy.Policy{Allow: []string{h.page.URL + "/*"}, Deny: []string{h.page.URL + "/denied*"}}
	h.consented(ctx, t, LeaseRequest{SessionID: "s_nav", StartURL: "/shop", URLs: pol})
	s := h.sessionOf(t, "acme", "s_nav")
	// The shop's cross-origin frame (localhost) is on no allow pattern.
	if ev := waitEvent(ctx, t, h, EventNavBlocked); ev.Reason != "frame" || !strings.HasPrefix(ev.URL, "http://localhost:") || ev.Selector != "" {
		t.Errorf("frame event = %+v, want the localhost frame, refused for being on no allow pattern", ev)
	}
	if got := evalPage(ctx, t, s, `document.getElementById('tandem-blocked') ? 'blocked' : location.pathname`); got != "/shop" {
		t.Fatalf("the allowed start page shows %q", got)
	}

	evalPage(ctx, t, s, `(location.href = '/denied/page?card=4111', 'ok')`)
	ev := waitEvent(ctx, t, h, EventNavBlocked)
	if ev.URL != h.page.URL+"/denied/page" || ev.Selector != h.page.URL+"/denied*" || ev.Reason != "top" {
		t.Errorf("event = %+v, want the URL without its query, the deny rule, top", ev)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := evalPage(ctx, t, s, `(() => { const b = document.getElementById('tandem-blocked'); return b ? b.innerText : ''; })()`)
		if got != "" {
			for _, want := range []string{"This page is not available in this session", "このページはこのセッションでは開けません", h.page.URL + "/denied/page"} {
				if !strings.Contains(got, want) {
					t.Errorf("block page %q lacks %q", got, want)
				}
			}
			if strings.Contains(got, "4111") {
				t.Errorf("the block page shows the query: %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no block page")
		}
	}

	// A start page outside the lists.
	h.consented(ctx, t, LeaseRequest{SessionID: "s_nav2", StartURL: "/denied", URLs: pol})
	if ev := waitEvent(ctx, t, h, EventNavBlocked); ev.SessionID != "s_nav2" || ev.URL != h.page.URL+"/denied" {
		t.Errorf("event = %+v, want the start page of s_nav2", ev)
	}
	s2 := h.sessionOf(t, "acme", "s_nav2")
	if got := evalPage(ctx, t, s2, `document.getElementById('tandem-blocked') ? 'blocked' : location.pathname`); got != "blocked" {
		t.Errorf("the denied start page shows %q", got)
	}
}
