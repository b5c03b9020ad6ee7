package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The opener page is red and opens a blue popup on a press; the popup's
// query is the customer's alone.
const (
	openerPage = `<!doctype html><html><head><title>Opener</title><style>html,body{margin:0;height:100%;background:#f00}</style></head><body>
<script>document.body.addEventListener('mousedown', () => window.open('/tabs/popup?order=4711', '_blank'));</script></body></html>`
	popupPage = `<!doctype html><html><head><title>ポップアップ</title><style>html,body{margin:0;height:100%;background:#00f}</style></head><body></body></html>`
)

func tabRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/tabs/opener", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, openerPage) })
	mux.HandleFunc("/tabs/popup", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, popupPage) })
}

// lastTabs returns the tabs of v's newest location notice.
func lastTabs(v *botviewer.Viewer) []protocol.TabNotice {
	var loc protocol.LocationNotice
	if json.Unmarshal([]byte(lastNotice(v, protocol.TypeLocation)), &loc) != nil {
		return nil
	}
	return loc.Tabs
}

// waitTabStrip waits until v's tab strip has n tabs with the one titled
// active in front.
func waitTabStrip(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string, n int, active string) []protocol.TabNotice {
	t.Helper()
	for {
		tabs := lastTabs(v)
		if len(tabs) == n {
			for _, tb := range tabs {
				if tb.Active && tb.Title == active {
					return tabs
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: tab strip never had %d tabs with %q in front; last %+v", who, n, active, tabs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A popup the page opens is a tab of the session: both viewers see it in
// the strip and its picture in front; the customer brings the first tab
// back and closes the popup; an agent switches tabs only in control; the
// agent's strip carries no query.
func TestTabsReachTheViewers(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_tabs", StartURL: "/tabs/opener"})
	isRed := func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }
	isBlue := func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, isRed); err != nil {
			t.Fatalf("no picture of the opener: %v", err)
		}
	}
	waitTabStrip(ctx, t, customer, "customer", 1, "Opener")

	// The customer's press opens the popup, in front for everyone.
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	tabs := waitTabStrip(ctx, t, customer, "customer", 2, "ポップアップ")
	if !strings.Contains(tabs[1].URL, "/tabs/popup?order=4711") {
		t.Errorf("the customer's strip has %+v, want the popup's whole URL", tabs[1])
	}
	agentTabs := waitTabStrip(ctx, t, agent, "agent", 2, "ポップアップ")
	if agentTabs[1].URL != h.page.URL+"/tabs/popup" {
		t.Errorf("the agent's strip has %+v, want the popup without its query", agentTabs[1])
	}
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, isBlue); err != nil {
			t.Fatalf("the popup's picture never came: %v", err)
		}
	}
	for _, n := range agent.Notices() {
		if strings.Contains(n, "4711") {
			t.Errorf("the agent was told the popup's query: %s", n)
		}
	}

	// The agent, watching, cannot switch tabs.
	before := len(agent.Notices())
	send(ctx, t, agent, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateTab, Tab: tabs[0].ID})
	if _, _, err := agent.WaitNotice(ctx, before, func(n string) bool { return strings.Contains(n, RefusedNoControl) }); err != nil {
		t.Fatalf("the agent's tab switch without control was not refused: %v", err)
	}
	// The customer can.
	send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateTab, Tab: tabs[0].ID})
	waitTabStrip(ctx, t, agent, "agent", 2, "Opener")
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, isRed); err != nil {
			t.Fatalf("the first tab's picture never came back: %v", err)
		}
	}
	// In control, the agent switches to the popup, then the customer
	// closes it: the first tab is left, in front.
	grantControl(ctx, t, customer, agent)
	send(ctx, t, agent, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateTab, Tab: tabs[1].ID})
	waitTabStrip(ctx, t, customer, "customer", 2, "ポップアップ")
	if _, err := customer.WaitPicture(ctx, isBlue); err != nil {
		t.Fatalf("the agent's switch never showed the popup: %v", err)
	}
	send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateClose, Tab: tabs[1].ID})
	waitTabStrip(ctx, t, agent, "agent", 1, "Opener")
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, isRed); err != nil {
			t.Fatalf("closing the popup did not bring the opener back: %v", err)
		}
	}
}
