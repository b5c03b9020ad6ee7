// Package canary is a test site whose secrets are canaries: bright blocks of
// magenta (#ff00ff) and black 8 px squares, carried only by elements that
// Tandem's built-in mask rules cover ([data-tandem-mask] blocks, an
// input[type=password], an input[autocomplete=cc-number]). Nothing else on
// its pages is magenta-like, so a magenta pixel in a viewer's decoded video
// is a masked pixel (browsertest.StartScan counts them).
//
// Start serves the same handler twice: at Site.URL (http://127.0.0.1:port)
// and at Site.OtherURL (http://localhost:port2), a different site, so that
// Chromium with site isolation puts the pages' cross-origin iframes into
// another process. The pages:
//
//   - CasesURL: a fixed grid of cells (CaseRegions), each a way a canary can
//     slip past masking, all animating all the time; it can zoom and
//     navigate by itself (Schedule) or when the test says (Zoom, Navigate).
//   - FormURL: a checkout form thousands of pixels tall with canary fields
//     all along it, a sticky bar with a canary, scrolled up and down by
//     script while rows with canaries are inserted (FormRegions).
//
// The pages report what happens to them (loads, resizes, zooms,
// navigations) as Events, which tests wait for with WaitEvent. A Site is
// safe for concurrent use; Start closes its servers in the test's cleanup.
package canary

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Site is a running canary site.
type Site struct {
	URL      string // the main server, http://127.0.0.1:port
	OtherURL string // the same pages on another site, http://localhost:port2

	mu       sync.Mutex
	events   []Event       // guarded by mu
	changed  chan struct{} // closed and replaced when events grow; guarded by mu
	commands []command     // guarded by mu
}

// Event is something a canary page reported about itself.
type Event struct {
	Name   string    // load, resize, zoom, navigate
	Page   string    // cases, form or frame
	Phase  string    // the cases page's phase ("1", "2", ...)
	Origin string    // the reporting document's origin
	Width  int       // its window.innerWidth, CSS px
	Height int       // its window.innerHeight, CSS px
	Zoom   float64   // the CSS zoom of its body
	At     time.Time // when the site received it
	// A tick of the form page (every 2 s): how many animation frames its
	// script has run, and the document's visibility then.
	Frames     int
	Visibility string
}

// command is an order for the top page currently shown, fetched by the
// page's poll (/cmd).
type command struct {
	Seq  int     `json:"seq"`
	Do   string  `json:"do"` // zoom or navigate
	Zoom float64 `json:"zoom,omitempty"`
	URL  string  `json:"url,omitempty"`
}

// Region is where, in fractions of the viewport (= of the video picture),
// a case's canary can appear.
type Region struct {
	Name       string
	X, Y, W, H float64
}

// The cases page's grid: every cell is a quarter of the viewport's width
// and a third of its height, whatever the viewport's size and the body's
// zoom, so its regions hold in every phase.
const (
	gridCols = 4
	gridRows = 3
)

// caseCells names the cases page's cells in grid order; "info" carries no
// canary.
var caseCells = []string{
	"move", "flash-insert", "flash-class", "scroll-rows",
	"sticky", "transformed", "iframe-same", "iframe-cross",
	"shadow", "password", "cc-number", "info",
}

// CaseRegions returns where each case of the cases page shows its canary:
// move (a: CSS transform animation), flash-insert and flash-class (b: one
// animation frame each), scroll-rows (c), sticky and transformed (d),
// iframe-same and iframe-cross (e), shadow (f), password and cc-number (g).
func CaseRegions() []Region {
	var rs []Region
	for i, name := range caseCells {
		if name == "info" {
			continue
		}
		c, r := i%gridCols, i/gridCols
		rs = append(rs, Region{Name: name, X: float64(c) / gridCols, Y: float64(r) / gridRows,
			W: 1.0 / gridCols, H: 1.0 / gridRows})
	}
	return rs
}

// FormRegions returns the form page's regions: the sticky top bar (the top
// tenth of the viewport) and the scrolling fields below it.
func FormRegions() []Region {
	return []Region{
		{Name: "topbar", X: 0, Y: 0, W: 1, H: formBarFraction},
		{Name: "fields", X: 0, Y: formBarFraction, W: 1, H: 1 - formBarFraction},
	}
}

// Schedule is what a cases page does by itself, timed from its load.
type Schedule struct {
	ZoomAt     time.Duration // set the body's CSS zoom to Zoom this long after load; 0: never
	Zoom       float64       // 0 means 1.5
	NavigateAt time.Duration // go to Next this long after load; 0: never
	Next       string        // where to go; "" means the cases page's next phase
}

// Start serves a canary site until the test ends.
func Start(t testing.TB) *Site {
	t.Helper()
	s := &Site{changed: make(chan struct{})}
	main := httptest.NewServer(s)
	t.Cleanup(main.Close)
	// The other server listens on loopback too but is reached as
	// "localhost": another site to Chromium, hence another process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("canary: listen: %v", err)
	}
	other := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}}
	other.Start()
	t.Cleanup(other.Close)
	s.URL = main.URL
	s.OtherURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	return s
}

// CasesURL is the cases page in the given phase (1 for the first), doing
// what sch says by itself.
func (s *Site) CasesURL(phase int, sch Schedule) string {
	q := url.Values{"phase": {strconv.Itoa(phase)}}
	if sch.ZoomAt > 0 {
		q.Set("zoom_at", strconv.FormatInt(sch.ZoomAt.Milliseconds(), 10))
		if sch.Zoom > 0 {
			q.Set("zoom", strconv.FormatFloat(sch.Zoom, 'f', -1, 64))
		}
	}
	if sch.NavigateAt > 0 {
		q.Set("navigate_at", strconv.FormatInt(sch.NavigateAt.Milliseconds(), 10))
		if sch.Next != "" {
			q.Set("next", sch.Next)
		}
	}
	return s.URL + "/cases?" + q.Encode()
}

// FormURL is the long scrolling form page.
func (s *Site) FormURL() string { return s.URL + "/form" }

// FrameURL is the page the cases page puts into its iframes: on the main
// server (same origin) or on the other one (cross-origin, another site).
func (s *Site) FrameURL(crossOrigin bool) string {
	if crossOrigin {
		return s.OtherURL + "/frame"
	}
	return s.URL + "/frame"
}

// Zoom tells the top page shown now to set its body's CSS zoom.
func (s *Site) Zoom(f float64) { s.order(command{Do: "zoom", Zoom: f}) }

// Navigate tells the top page shown now to go to u.
func (s *Site) Navigate(u string) { s.order(command{Do: "navigate", URL: u}) }

func (s *Site) order(c command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Seq = len(s.commands) + 1
	s.commands = append(s.commands, c)
}

// Events returns what the pages reported so far, oldest first.
func (s *Site) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// WaitEvent waits up to 30 s for an event that match accepts and returns
// the first one; the test fails with what it waited for otherwise.
func (s *Site) WaitEvent(t testing.TB, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	seen := 0
	for {
		s.mu.Lock()
		evs, changed := s.events, s.changed
		s.mu.Unlock()
		for ; seen < len(evs); seen++ {
			if match(evs[seen]) {
				return evs[seen]
			}
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("canary: no %s in 30 s; the pages reported %s", what, describe(s.Events()))
			return Event{}
		}
	}
}

func describe(evs []Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s/%s %dx%d zoom %g", e.Name, e.Page, e.Phase, e.Width, e.Height, e.Zoom)
	}
	if b.Len() == 0 {
		return "nothing"
	}
	return b.String()
}

func (s *Site) record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	close(s.changed)
	s.changed = make(chan struct{})
}

// ServeHTTP serves the pages, the pages' event reports (/event) and their
// command poll (/cmd).
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	repl := map[string]string{"{{OTHER}}": s.OtherURL, "{{HIDE}}": "", "{{HIDEQ}}": ""}
	if r.URL.Query().Get("hide") == "1" {
		repl["{{HIDE}}"], repl["{{HIDEQ}}"] = "hide", "?hide=1"
	}
	switch r.URL.Path {
	case "/cases":
		s.page(w, casesPage, repl)
	case "/form":
		s.page(w, formPage(), repl)
	case "/frame":
		s.page(w, framePage, repl)
	case "/event":
		q := r.URL.Query()
		width, _ := strconv.Atoi(q.Get("w"))
		height, _ := strconv.Atoi(q.Get("h"))
		zoom, _ := strconv.ParseFloat(q.Get("zoom"), 64)
		frames, _ := strconv.Atoi(q.Get("frames"))
		s.record(Event{Name: q.Get("name"), Page: q.Get("page"), Phase: q.Get("phase"), Origin: q.Get("origin"),
			Width: width, Height: height, Zoom: zoom, At: time.Now(), Frames: frames, Visibility: q.Get("vis")})
		w.WriteHeader(http.StatusNoContent)
	case "/cmd":
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		s.mu.Lock()
		cmds := []command{}
		if after < len(s.commands) {
			cmds = append(cmds, s.commands[after:]...)
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cmds)
	default:
		http.NotFound(w, r)
	}
}

// page writes a page with the common parts filled in; {{SEQ}} is the
// newest command now, so that a page obeys only the orders given after it
// was served.
func (s *Site) page(w http.ResponseWriter, html string, repl map[string]string) {
	s.mu.Lock()
	seq := len(s.commands)
	s.mu.Unlock()
	html = strings.ReplaceAll(html, "{{COMMON_CSS}}", commonCSS)
	html = strings.ReplaceAll(html, "{{COMMON_JS}}", commonJS)
	html = strings.ReplaceAll(html, "{{SEQ}}", strconv.Itoa(seq))
	for k, v := range repl {
		html = strings.ReplaceAll(html, k, v)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(html))
}
