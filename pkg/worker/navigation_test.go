package worker

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
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

// waitLocation waits, from notice index from on, for v's location notice
// of want and returns the index after it.
func waitLocation(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string, from int, want protocol.LocationNotice) int {
	t.Helper()
	want.Type = protocol.TypeLocation
	_, i, err := v.WaitNotice(ctx, from, func(n string) bool {
		var got protocol.LocationNotice
		return json.Unmarshal([]byte(n), &got) == nil && sameLocation(got, want)
	})
	if err != nil {
		var seen []string
		for _, n := range v.Notices() {
			if strings.Contains(n, `"location"`) || strings.Contains(n, `"refused"`) || strings.Contains(n, `"control"`) {
				seen = append(seen, n)
			}
		}
		t.Fatalf("%s: no location %+v: %v; got %q", who, want, err, seen)
	}
	return i + 1
}

// sameLocation says whether got is want; want's tabs count only when it
// names some.
func sameLocation(got, want protocol.LocationNotice) bool {
	if want.Tabs != nil && !slices.Equal(got.Tabs, want.Tabs) {
		return false
	}
	got.Tabs, want.Tabs = nil, nil
	return reflect.DeepEqual(got, want)
}

// The address bar: the customer navigates, goes back and forward; every
// viewer is told where the tab is, agents without the query and fragment;
// an agent navigates only while it controls; what is not an http(s)
// address is refused.
func TestAddressBar(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_addr", StartURL: "/shop"})
	shop := h.page.URL + "/shop"
	c := waitLocation(ctx, t, customer, "customer", 0, protocol.LocationNotice{URL: shop})
	a := waitLocation(ctx, t, agent, "agent", 0, protocol.LocationNotice{URL: shop})

	go2 := h.page.URL + "/annotate?account=123#top"
	send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateGo, URL: go2})
	c = waitLocation(ctx, t, customer, "customer", c, protocol.LocationNotice{URL: go2, Back: true})
	a = waitLocation(ctx, t, agent, "agent", a, protocol.LocationNotice{URL: h.page.URL + "/annotate", Back: true})
	for _, n := range agent.Notices() {
		if strings.Contains(n, "account=123") || strings.Contains(n, "#top") {
			t.Errorf("the agent was told the query or fragment: %s", n)
		}
	}

	// The agent, viewing, cannot go back.
	before := len(agent.Notices())
	send(ctx, t, agent, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateBack})
	if _, _, err := agent.WaitNotice(ctx, before, func(n string) bool { return strings.Contains(n, RefusedNoControl) }); err != nil {
		t.Fatalf("the agent's back without control was not refused: %v", err)
	}
	// The customer can.
	send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateBack})
	c = waitLocation(ctx, t, customer, "customer", c, protocol.LocationNotice{URL: shop, Forward: true})
	for _, bad := range []string{"javascript:alert(1)", "ftp://files.example/", "https://user:pw@shop.example/", "https://"} {
		before := len(customer.Notices())
		send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateGo, URL: bad})
		if _, _, err := customer.WaitNotice(ctx, before, func(n string) bool { return strings.Contains(n, RefusedBadURL) }); err != nil {
			t.Errorf("go %q was not refused: %v", bad, err)
		}
		time.Sleep(2100 * time.Millisecond) // one refusal notice every 2 s
	}

	// In control, the agent goes forward.
	grantControl(ctx, t, customer, agent)
	send(ctx, t, agent, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateForward})
	waitLocation(ctx, t, agent, "agent", a, protocol.LocationNotice{URL: h.page.URL + "/annotate", Back: true})
	waitLocation(ctx, t, customer, "customer", c, protocol.LocationNotice{URL: go2, Back: true})
}
