package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// viewerEvents returns the viewer ids of the session's audit events of typ
// (customer.joined, agent.left, ...), oldest first.
func viewerEvents(t *testing.T, s *server, id, typ string) []string {
	t.Helper()
	var ids []string
	events, _ := s.api(t, "GET", "/api/v1/sessions/"+id+"/audit", "")["events"].([]any)
	for _, e := range events {
		ev, _ := e.(map[string]any)
		if ev["type"] != typ {
			continue
		}
		d, _ := ev["details"].(map[string]any)
		ids = append(ids, fmt.Sprint(d["viewer_id"]))
	}
	return ids
}

// waitViewerEvents waits until the audit trail holds exactly the wanted
// viewer ids for each event type.
func waitViewerEvents(t *testing.T, s *server, id string, want map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := map[string][]string{}
		ok := true
		for typ, ids := range want {
			got[typ] = viewerEvents(t, s, id, typ)
			ok = ok && slices.Equal(got[typ], ids)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit viewer events = %q, want %q", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// viewersNow reads the worker's tandem_viewers gauge (viewers with a peer
// connection, by role) from /metrics; the server hosts one session.
func viewersNow(t *testing.T, s *server) map[string]float64 {
	t.Helper()
	r, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	out := map[string]float64{}
	for line := range strings.Lines(string(raw)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		role, isViewers := strings.CutPrefix(name, `tandem_viewers{role="`)
		if !ok || !isViewers {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[strings.TrimSuffix(role, `"}`)] = v
		}
	}
	return out
}

// waitOneEach waits until the session has exactly one customer and one
// agent with a peer connection: no viewer left over from before a reload.
func waitOneEach(t *testing.T, s *server, when string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := viewersNow(t, s)
		if got["customer"] == 1 && got["agent"] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewers %s = %v, want one customer and one agent", when, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReloadRejoins reloads a live customer's page and then a live agent's,
// with the real server, worker and Chromium: each comes back into the same
// session by itself (the customer's cookie from the PIN, the agent's login;
// nothing typed again), as a new viewer whose video is live again, and the
// viewer it replaced is gone: the session counts one customer and one agent.
func TestReloadRejoins(t *testing.T) {
	s, page := startServe(t)
	sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+page.URL+`/"}`)
	id, pin := sess["id"].(string), sess["pin"].(string)

	cust, _ := browsertest.NewTab(t, 1280, 800, false)
	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", pin)
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "customer view", `location.pathname === "/s/`+id+`"`)
	browsertest.WaitJS(t, cust, "consent screen", `document.body.dataset.consent === 'asking'`)
	browsertest.Run(t, cust, "start sharing", chromedp.Click("#consent-start"))
	browsertest.WaitJS(t, cust, "customer live", `document.body.dataset.consent === 'sharing' &&
		document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, cust, "customer", "red")

	agent, _ := browsertest.NewTab(t, 1280, 900, false)
	agentOpens(t, s, agent, sess["agent_url"].(string))
	browsertest.WaitJS(t, agent, "agent live", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, agent, "agent", "red")
	waitOneEach(t, s, "before the reloads")

	viewerID := func(ctx context.Context) string {
		return browsertest.Eval[string](t, ctx, `window.tandemViewer?.viewerId || ''`)
	}
	cust1, agent1 := viewerID(cust), viewerID(agent)
	if cust1 == "" || agent1 == "" {
		t.Fatalf("viewer ids before the reloads: customer %q, agent %q", cust1, agent1)
	}

	// The customer reloads: the same session, no PIN, no consent question,
	// live red video again, through a new viewer that replaced the old one.
	browsertest.Run(t, cust, "reload the customer's page", chromedp.Reload())
	browsertest.WaitJS(t, cust, "customer live again", `location.pathname === "/s/`+id+`" &&
		document.body.dataset.consent === 'sharing' && document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, cust, "customer", "red")
	cust2 := viewerID(cust)
	if cust2 == "" || cust2 == cust1 {
		t.Fatalf("customer viewer after the reload = %q, before %q: want a new one", cust2, cust1)
	}
	waitViewerEvents(t, s, id, map[string][]string{
		"customer.joined": {cust1, cust2},
		"customer.left":   {cust1},
	})
	waitOneEach(t, s, "after the customer's reload")
	waitColour(t, agent, "agent", "red") // the agent's view went on

	// The agent reloads: still logged in, the same session, live again.
	browsertest.Run(t, agent, "reload the agent's page", chromedp.Reload())
	browsertest.WaitJS(t, agent, "agent live again", `document.getElementById('login-form')?.checkVisibility() !== true &&
		document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, agent, "agent", "red")
	agent2 := viewerID(agent)
	if agent2 == "" || agent2 == agent1 {
		t.Fatalf("agent viewer after the reload = %q, before %q: want a new one", agent2, agent1)
	}
	waitViewerEvents(t, s, id, map[string][]string{
		"customer.joined": {cust1, cust2},
		"customer.left":   {cust1},
		"agent.joined":    {agent1, agent2},
		"agent.left":      {agent1},
	})
	waitOneEach(t, s, "after both reloads")

	if got := s.api(t, "GET", "/api/v1/sessions/"+id, ""); got["state"] == "ended" {
		t.Fatalf("the session ended over the reloads: %v", got)
	}
}
