package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
	"github.com/tandem-cobrowse/tandem/pkg/rtc/rtctest"
)

// relayOnlyJS makes every RTCPeerConnection of the page relay-only, as a
// viewer behind a network that lets nothing but its TURN server through.
// It keeps the page's own configuration (the ICE servers from the hello).
const relayOnlyJS = `(() => {
  const Native = window.RTCPeerConnection;
  const Relay = function (cfg) { return new Native({ ...(cfg || {}), iceTransportPolicy: 'relay' }); };
  Relay.prototype = Native.prototype;
  window.RTCPeerConnection = Relay;
})()`

// transportStatsJS reads, from the viewer's own getStats(), the transport's
// ciphers and the candidate pair it uses, and the page's ICE configuration.
const transportStatsJS = `(async () => {
  const pc = window.tandemViewer.pc;
  const stats = await pc.getStats();
  let tr = null;
  stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) tr = r; });
  if (!tr) return JSON.stringify({});
  const pair = stats.get(tr.selectedCandidatePairId);
  const local = stats.get(pair.localCandidateId);
  const cfg = pc.getConfiguration();
  return JSON.stringify({
    srtpCipher: tr.srtpCipher, dtlsCipher: tr.dtlsCipher, dtlsState: tr.dtlsState, tlsVersion: tr.tlsVersion,
    localType: local.candidateType, relayProtocol: local.relayProtocol || '',
    policy: cfg.iceTransportPolicy, iceServers: cfg.iceServers,
  });
})()`

type transportStats struct {
	SRTPCipher    string `json:"srtpCipher"`
	DTLSCipher    string `json:"dtlsCipher"`
	DTLSState     string `json:"dtlsState"`
	TLSVersion    string `json:"tlsVersion"`
	LocalType     string `json:"localType"`
	RelayProtocol string `json:"relayProtocol"`
	Policy        string `json:"policy"`
	ICEServers    []struct {
		URLs       any    `json:"urls"`
		Username   string `json:"username"`
		Credential string `json:"credential"`
	} `json:"iceServers"`
}

// TestMediaTransportChromium: a real headless Chromium customer, forced to
// relay-only, connects to a real worker through a real TURN server (pion's,
// with the coturn use-auth-secret scheme) with the credentials its hello
// carried, sees the tab, and its own getStats() reports DTLS-SRTP with an
// AES-GCM SRTP profile and an AEAD DTLS cipher suite (SECURITY.md P8).
func TestMediaTransportChromium(t *testing.T) {
	const secret = "e2e-turn-secret-0123456789"
	turnAddr := rtctest.TURNServer(t, secret)

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, togglePage) }))
	t.Cleanup(site.Close)
	s := &server{typed: make(chan string, 64), done: make(chan error, 1)}
	serveWith(t, s, func(c *serveConfig) {
		c.EgressAllow = listFlag{testEgressAllow}
		c.TURN = listFlag{"turn:" + turnAddr + "?transport=udp"}
		c.TURNSecret = secret
	})

	cust, _ := browsertest.NewTab(t, 1280, 800, false)
	if _, err := chromedp.Call(cust, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: relayOnlyJS}); err != nil {
		t.Fatal(err)
	}
	sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+site.URL+`/"}`)
	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", sess["pin"].(string))
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "customer's own tab", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, cust, "customer", "red")

	raw, err := chromedp.Run(cust, chromedp.Evaluate[string](transportStatsJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var st transportStats
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("stats %q: %v", raw, err)
	}
	t.Logf("Chromium's transport: srtpCipher %q, dtlsCipher %q, %s, local candidate %s/%s",
		st.SRTPCipher, st.DTLSCipher, st.TLSVersion, st.LocalType, st.RelayProtocol)

	// The page took the TURN server and its minted credentials from the hello.
	if st.Policy != "relay" {
		t.Fatalf("iceTransportPolicy = %q, want relay (the test's override)", st.Policy)
	}
	var turnServer bool
	for _, srv := range st.ICEServers {
		b, _ := json.Marshal(srv.URLs)
		if strings.Contains(string(b), "turn:"+turnAddr) {
			turnServer = true
			if !regexp.MustCompile(`^\d{10,}:v_[A-Za-z0-9_-]+$`).MatchString(srv.Username) || srv.Credential == "" {
				t.Errorf("TURN username %q (credential set: %v), want <expiry>:<viewer id> and a credential", srv.Username, srv.Credential != "")
			}
		}
	}
	if !turnServer {
		t.Fatalf("the page's ICE servers %+v lack the TURN server", st.ICEServers)
	}
	if st.LocalType != "relay" {
		t.Fatalf("the viewer's selected candidate is %q, want relay", st.LocalType)
	}

	// SECURITY.md P8, from the browser's own report.
	if st.DTLSState != "connected" {
		t.Errorf("dtlsState = %q, want connected", st.DTLSState)
	}
	if !strings.Contains(st.SRTPCipher, "GCM") || strings.Contains(st.SRTPCipher, "CM_HMAC") ||
		strings.Contains(st.SRTPCipher, "SHA1") {
		t.Errorf("srtpCipher = %q, want an AEAD AES-GCM profile", st.SRTPCipher)
	}
	if !strings.Contains(st.DTLSCipher, "_GCM_") {
		t.Errorf("dtlsCipher = %q, want an AEAD (AES-GCM) suite", st.DTLSCipher)
	}
}

// startTURN runs a pion TURN server on loopback UDP with the TURN REST
