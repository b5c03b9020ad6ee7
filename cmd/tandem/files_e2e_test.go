package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// uploadPage has a file input at the top left that reports the file it
// was given to /typed.
const uploadPage = `<!doctype html><html><body style="margin:0;background:#f00">
<input type="file" id="f" style="position:absolute;left:0;top:0;width:400px;height:100px">
<script>
document.getElementById('f').addEventListener('change', async e => {
  const f = e.target.files[0];
  fetch('/typed?v=' + encodeURIComponent(f.name + ':' + f.size + ':' + await f.text()));
});
</script></body></html>`

// A file chooser through the real pages: the customer clicks the page's
// file input in the video, their view asks for the file, they pick one on
// their device and it arrives in the remote input; an agent who opens the
// session while the chooser is open is told that the customer is asked.
func TestFileChooserInBrowsers(t *testing.T) {
	s, page := startServePage(t, uploadPage)
	sess := s.api(t, "POST", "/api/v1/sessions", `{"start_url":"`+page.URL+`/"}`)

	cust, _ := browsertest.NewTab(t, 1280, 800, false)
	browsertest.Run(t, cust, "open join page", chromedp.Navigate(sess["join_url"].(string)))
	browsertest.Fill(t, cust, "#pin", sess["pin"].(string))
	browsertest.Run(t, cust, "join", chromedp.Click("#join-submit"))
	browsertest.WaitJS(t, cust, "consent screen", `document.body.dataset.consent === 'asking'`)
	browsertest.Run(t, cust, "start sharing", chromedp.Click("#consent-start"))
	browsertest.WaitJS(t, cust, "live", `document.querySelector('.viewer-stage')?.dataset.state === 'live'`)
	waitColour(t, cust, "customer", "red")

	clickAt(t, cust, fmt.Sprintf(remotePointJS, 200, 50))
	browsertest.WaitJS(t, cust, "the chooser", `!document.querySelector('.viewer-chooser').hidden`)

	// The agent comes while the customer is choosing.
	agent, _ := browsertest.NewTab(t, 1280, 900, false)
	agentOpens(t, s, agent, sess["agent_url"].(string))
	browsertest.WaitJS(t, agent, "told the customer is choosing",
		`document.querySelector('.viewer-toast')?.textContent === 'The customer is asked to choose a file.'`)

	path := browsertest.ReadableFile(t, "見積書.txt", []byte("hello"))
	browsertest.Run(t, cust, "pick the file", chromedp.SetUploadFiles(chromedp.CSS(`.viewer-chooser-input`), []string{path}))
	waitTyped(t, s.typed, "見積書.txt:5:hello")
	browsertest.WaitJS(t, cust, "the chooser closed", `document.querySelector('.viewer-chooser').hidden`)
}
