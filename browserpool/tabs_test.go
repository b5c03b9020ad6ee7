package browserpool

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// tabSite serves solid pages: /red (with a target=_blank link to /blue),
// /green, /blue, and /denied, which the test's URL policy refuses.
type tabSite struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newTabSite(t *testing.T) *tabSite {
	t.Helper()
	s := &tabSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, r.URL.Path)
		s.mu.Unlock()
		colour := strings.TrimPrefix(r.URL.Path, "/")
		fmt.Fprintf(w, `<!doctype html><title>%s</title><body style="margin:0;background:%s">
<a id="blank" target="_blank" href="/blue" style="display:block;width:10px;height:10px"></a></body>`, colour, colour)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tabSite) asked(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.hits {
		if h == path {
			return true
		}
	}
	return false
}

// waitTabs waits until the lease's tabs satisfy ok.
func waitTabs(t *testing.T, l *Lease, what string, ok func([]Tab) bool) []Tab {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		loc, err := l.Location(ctx)
		cancel()
		tabs := loc.Tabs
		if err == nil && ok(tabs) {
			return tabs
		}
		if time.Now().After(deadline) {
			t.Fatalf("tabs never %s: %+v", what, tabs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// activeIs says whether the active tab is the one with the path, of n tabs.
func activeIs(n int, path string) func([]Tab) bool {
	return func(tabs []Tab) bool {
		if len(tabs) != n {
			return false
		}
		for _, tb := range tabs {
			if tb.Active {
				return strings.HasSuffix(tb.URL, path)
			}
		}
		return false
	}
}

// evalIn runs a script in the active tab, as a user's gesture.
func evalIn(t *testing.T, l *Lease, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cctx, ccancel := l.callCtx(ctx)
	defer ccancel()
	if err := chromedp.Do(cctx, chromedp.Evaluate[chromedp.Void]("void ("+script+")", func(p *runtime.EvaluateParams) { yes := true; p.UserGesture = &yes })); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
}

// TestTabsFollowPopups: window.open and a target=_blank link open tabs of
// their own, each brought to the front as it opens; the viewer's choice
// of tab switches the picture; a tab beyond the limit is closed as it
// opens; closing a tab brings its opener back; a popup to a denied page
// gets the block page without reaching the server; the first tab stays.
func TestTabsFollowPopups(t *testing.T) {
	site := newTabSite(t)
	var refused atomic.Int32
	blocked := make(chan navBlock, 4)
	nav := &NavGuard{
		Allowed: func(u string) (bool, string) { return !strings.Contains(u, "/denied"), "*/denied" },
		Page:    func(string) []byte { return []byte(`<!doctype html><body style="margin:0;background:#ff0">blocked`) },
		Blocked: func(u, rule string, top bool) { blocked <- navBlock{u, rule, top} },
	}
	l := lease(t, LeaseOptions{Width: 400, Height: 300, StartURL: site.URL + "/red", Nav: nav, MaxTabs: 3,
		TabRefused: func() { refused.Add(1) }})
	red, green, blue, yellow := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 128, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{255, 255, 0, 255}
	waitFrame(t, l, "the first tab", isColour(red))
	waitTabs(t, l, "name the first tab", func(tabs []Tab) bool {
		return len(tabs) == 1 && tabs[0].Active && tabs[0].ID == "1" && tabs[0].Title == "red" && tabs[0].URL == site.URL+"/red"
	})

	evalIn(t, l, `window.open('/green')`)
	tabs := waitTabs(t, l, "show the popup in front", activeIs(2, "/green"))
	waitFrame(t, l, "the popup", isColour(green))
	popup := tabs[1].ID

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.SwitchTab(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, l, "the first tab again", isColour(red))
	waitTabs(t, l, "show the first tab in front", activeIs(2, "/red"))

	// A link with target=_blank (a new process: no opener).
	evalIn(t, l, `document.getElementById('blank').click()`)
	tabs = waitTabs(t, l, "show the link's tab in front", activeIs(3, "/blue"))
	waitFrame(t, l, "the link's tab", isColour(blue))
	linked := tabs[2].ID

	// A fourth tab is one too many.
	evalIn(t, l, `window.open('/green?fourth')`)
	deadline := time.Now().Add(waitLimit)
	for refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a fourth tab was not refused: %+v", l.Tabs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tabs := l.Tabs(); len(tabs) != 3 {
		t.Errorf("after the refusal, tabs = %+v", tabs)
	}

	// Closing the active tab brings its opener (the first tab) back.
	if err := l.CloseTab(ctx, linked); err != nil {
		t.Fatal(err)
	}
	waitTabs(t, l, "fall back to the first tab", activeIs(2, "/red"))
	waitFrame(t, l, "the first tab after a close", isColour(red))
	if err := l.CloseTab(ctx, "1"); !errors.Is(err, ErrFirstTab) {
		t.Errorf("closing the first tab: %v, want ErrFirstTab", err)
	}
	if err := l.SwitchTab(ctx, "99"); !errors.Is(err, ErrNoTab) {
		t.Errorf("switching to no tab: %v, want ErrNoTab", err)
	}

	// A popup that closes itself goes from the strip.
	if err := l.SwitchTab(ctx, popup); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, l, "the popup again", isColour(green))
	// Closed a moment later, so that the evaluation's own answer is not
	// lost with the tab (the call then ends as "context canceled").
	evalIn(t, l, `setTimeout(() => window.close(), 50)`)
	waitTabs(t, l, "lose the closed popup", activeIs(1, "/red"))
	waitFrame(t, l, "the first tab after the popup closed", isColour(red))

	// The URL policy holds in a popup from its very first document.
	evalIn(t, l, `window.open('/denied?secret=1')`)
	waitTabs(t, l, "open the denied popup", func(tabs []Tab) bool { return len(tabs) == 2 && tabs[1].Active })
	waitFrame(t, l, "the block page in the popup", isColour(yellow))
	select {
	case b := <-blocked:
		if !b.top || !strings.Contains(b.url, "/denied") {
			t.Errorf("blocked %+v, want the popup's top document", b)
		}
	case <-time.After(waitLimit):
		t.Fatal("the denied popup was not reported")
	}
	if site.asked("/denied") {
		t.Error("the denied popup reached the server")
	}
}
