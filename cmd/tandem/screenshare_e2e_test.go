package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// Screen sharing with real browsers on both sides and the real worker
// (docs/screenshare.md): the agent asks from its console, the customer
// allows in its page, whose real getDisplayMedia shares another tab (a
// green page; full headless Chromium answers the picker by the tab's
// title, pkg/browsertest.NewCaptureTab); the agent's panel plays it;
// the agent stops it and the customer's capture stops.

func TestScreenshareInBrowsers(t *testing.T) {
	screenPage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>%s</title><body style="margin:0;height:100vh;background:#0f0"></body>`, browsertest.CaptureTitle)
	}))
	t.Cleanup(screenPage.Close)
	tab := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, togglePage) }))
	t.Cleanup(tab.Close)
	screen := browsertest.CaptureContext(t)
	browsertest.Run(t, screen, "open the screen to share", chromedp.Navigate(screenPage.URL))

	s := startCanaryServe(t, nil)
	body, _ := json.Marshal(map[string]string{"start_url": tab.URL + "/"})
	sess := s.api(t, "POST", "/api/v1/sessions", string(body))
	cust, errs := browsertest.NewCaptureTab(t, 1280, 800)
	// Chromium reports its camera policy on every getDisplayMedia although
	// display-capture is allowed (ui.go); the capture works.
	errs.Allow("Permissions policy violation: camera is not allowed in this document")
	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", sess["pin"].(string))
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "consent screen", `document.body.dataset.consent === 'asking' && !document.getElementById('consent').hidden`)
	browsertest.Run(t, cust, "start sharing the tab", chromedp.Click("#consent-start"))
	browsertest.WaitJS(t, cust, "customer live", `document.body.dataset.consent === 'sharing' && document.querySelector('.viewer-stage')?.dataset.state === 'live'`)

	agent, _ := browsertest.NewLongTab(t, 1280, 800, 5*time.Minute)
	agentOpens(t, s, agent, sess["agent_url"].(string))
	browsertest.WaitJS(t, agent, "agent live", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)

	// The agent asks; the customer allows and picks (the picker answers).
	browsertest.WaitJS(t, agent, "the ask button", `document.querySelector('.viewer').dataset.screen === 'idle' && document.querySelector('.viewer-screen-button').checkVisibility()`)
	browsertest.Run(t, agent, "ask to see the screen", chromedp.Click(".viewer-screen-button"))
	browsertest.WaitJS(t, agent, "asking", `document.querySelector('.viewer').dataset.screen === 'asking'`)
	browsertest.WaitJS(t, cust, "the prompt", `document.querySelector('.viewer-screen-ask').checkVisibility()`)
	browsertest.Run(t, cust, "allow", chromedp.Click(".viewer-screen-allow"))
	browsertest.WaitJS(t, cust, "sharing", `document.querySelector('.viewer').dataset.screen === 'sharing' && window.tandemViewer.screen.capture !== null`)
	browsertest.WaitJS(t, agent, "the customer's screen in the panel", browsertest.ScreenPanelGreenJS)
	if browsertest.Eval[bool](t, cust, `!!document.querySelector('.viewer-screen-video')`) {
		t.Errorf("the customer's page has a screen panel")
	}
	browsertest.Shot(t, agent, os.Getenv("TANDEM_E2E_SHOTS"), "e2e-agent-screenshare")

	// The agent stops: the customer's page stops capturing, the panel goes.
	browsertest.Run(t, agent, "stop viewing", chromedp.Click(".viewer-screen-stop"))
	browsertest.WaitJS(t, cust, "capture stopped", `window.tandemViewer.screen.capture === null && window.tandemViewer.screen.transceiver.sender.track === null && document.querySelector('.viewer').dataset.screen === 'idle'`)
	browsertest.WaitJS(t, agent, "the panel gone", `!document.querySelector('.viewer-screen-panel').checkVisibility() && document.querySelector('.viewer').dataset.screen === 'idle'`)
}
