package browserpool

import (
	"context"
	"slices"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The tab's location and history, for the viewers' address bar
// (docs/navigation.md).

// Location is where the active tab's top document is, whether its history
// goes back and forward from there, and the tabs open (tabs.go).
type Location struct {
	URL     string
	Back    bool
	Forward bool
	Tabs    []Tab
}

// Equal says whether l and o say the same.
func (l Location) Equal(o Location) bool {
	return l.URL == o.URL && l.Back == o.Back && l.Forward == o.Forward && slices.Equal(l.Tabs, o.Tabs)
}

// locationChanged wakes LocationChanged after a navigation of the top
// document, or a change of the tabs (on chromedp's event goroutine: it
// must not block).
func (l *Lease) locationChanged() {
	select {
	case l.locWake <- struct{}{}:
	default:
	}
}

// onLocationEvent takes the top document's navigations, across documents
// and within one (history.pushState, fragments).
func (l *Lease) onLocationEvent(t *tab, ev any) {
	switch ev := ev.(type) {
	case *page.EventFrameNavigated:
		if ev.Frame != nil && ev.Frame.ParentID == "" {
			l.locationChanged()
		}
	case *page.EventNavigatedWithinDocument:
		if string(ev.FrameID) == t.target {
			l.locationChanged()
		}
	}
}

// LocationChanged gets a value when the top document navigated since it
// was last read (capacity 1; never closed).
func (l *Lease) LocationChanged() <-chan struct{} { return l.locWake }

// Location returns the tab's location, from the browser's history: its
// current entry, which pushState and fragment navigations update too.
func (l *Lease) Location(ctx context.Context) (Location, error) {
	const what = "location"
	if err := l.live(what); err != nil {
		return Location{}, err
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	h, err := chromedp.Call(cctx, page.GetNavigationHistory, cdp.Empty{})
	if err != nil {
		return Location{}, l.callErr(ctx, what, err)
	}
	cur, entries := int(h.CurrentIndex), h.Entries
	l.refreshTabs(cctx)
	loc := Location{Back: cur > firstEntry(entries), Forward: cur < len(entries)-1, Tabs: l.Tabs()}
	if cur >= 0 && cur < len(entries) {
		loc.URL = entries[cur].URL
	}
	return loc, nil
}

// firstEntry is the first history entry a viewer can go back to: the tab
// starts at about:blank and then opens the start page, and going back to
// the blank page is no use to anyone.
func firstEntry(entries []*page.NavigationEntry) int {
	i := 0
	for i < len(entries)-1 && entries[i].URL == "about:blank" {
		i++
	}
	return i
}

// GoHistory moves the tab delta entries back (negative) or forward in its
// history; nothing when there is no such entry.
func (l *Lease) GoHistory(ctx context.Context, delta int) error {
	const what = "history"
	if err := l.live(what); err != nil {
		return err
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	h, err := chromedp.Call(cctx, page.GetNavigationHistory, cdp.Empty{})
	if err != nil {
		return l.callErr(ctx, what, err)
	}
	i := int(h.CurrentIndex) + delta
	if i < firstEntry(h.Entries) || i >= len(h.Entries) {
		return nil
	}
	if _, err := chromedp.Call(cctx, page.NavigateToHistoryEntry, page.NavigateToHistoryEntryParams{EntryID: h.Entries[i].ID}); err != nil {
		return l.callErr(ctx, what, err)
	}
	return nil
}

// Open starts loading url in the tab and returns once the navigation has
// started, without waiting for the page to load (the address bar's "go";
// the location notices tell the rest). Like Navigate, only http(s), data:
// and about:blank.
func (l *Lease) Open(ctx context.Context, url string) error {
	return l.load(ctx, "open", url, func(cctx context.Context) error {
		_, err := chromedp.Call(cctx, page.Navigate, page.NavigateParams{URL: url})
		return err
	})
}

// Reload reloads the tab's top document.
func (l *Lease) Reload(ctx context.Context) error {
	const what = "reload"
	if err := l.live(what); err != nil {
		return err
	}
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	if _, err := chromedp.Call(cctx, page.Reload, page.ReloadParams{}); err != nil {
		return l.callErr(ctx, what, err)
	}
	return nil
}
