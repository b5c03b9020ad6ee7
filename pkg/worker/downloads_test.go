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
)

// The download page starts a download of a small invoice on a press.
const downloadPage = `<!doctype html><html><head><style>html,body{margin:0;height:100%;background:#f00}</style></head><body>
<a id="dl" href="/download/invoice"></a>
<script>document.body.addEventListener('mousedown', () => document.getElementById('dl').click());</script></body></html>`

const invoice = "invoice 4711: 12,000 JPY\n"

func downloadRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/download/page", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, downloadPage) })
	mux.HandleFunc("/download/invoice", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="invoice-4711.txt"`)
		fmt.Fprint(w, invoice)
	})
}

// waitFiles waits until v got a download's end on its files channel, and
// returns what came.
func waitFiles(ctx context.Context, t *testing.T, v *botviewer.Viewer) []botviewer.FileMessage {
	t.Helper()
	for {
		got := v.FilesReceived()
		if n := len(got); n > 0 && got[n-1].Text && strings.Contains(string(got[n-1].Data), "download_done") {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no download arrived: %d messages", len(got))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// With the company's leave, the page's download goes to the customer on
// its files channel, name and bytes intact, and the agent learns nothing of
// it; the audit event carries the size, never the name. Without it, the
// download is refused and the customer told.
func TestDownloadsGoToTheCustomerOnly(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_dl", StartURL: "/download/page", Downloads: true})
	if err := customer.OpenFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatal(err)
	}
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	got := waitFiles(ctx, t, customer)
	var head DownloadHeader
	if err := json.Unmarshal(got[0].Data, &head); err != nil || !got[0].Text {
		t.Fatalf("first message %q: %v", got[0].Data, err)
	}
	if head.Type != "download" || head.Name != "invoice-4711.txt" || head.Size != int64(len(invoice)) || !strings.HasPrefix(head.MIME, "text/plain") {
		t.Errorf("header = %+v", head)
	}
	var body []byte
	for _, m := range got[1 : len(got)-1] {
		if m.Text {
			t.Errorf("a text message among the bytes: %q", m.Data)
		}
		body = append(body, m.Data...)
	}
	if string(body) != invoice {
		t.Errorf("bytes = %q, want %q", body, invoice)
	}
	ev := waitEvent(ctx, t, h, EventDownload)
	if ev.Reason != "sent" || ev.Size != int64(len(invoice)) || ev.SessionID != "s_dl" {
		t.Errorf("event = %+v", ev)
	}
	raw, _ := json.Marshal(ev)
	if strings.Contains(string(raw), "invoice") {
		t.Errorf("the event names the file: %s", raw)
	}
	for _, n := range agent.Notices() {
		if strings.Contains(n, "invoice") || strings.Contains(n, `"download_`) || strings.Contains(n, `"type":"download"`) {
			t.Errorf("the agent was told of the download: %s", n)
		}
	}

	// The default: denied, and the customer told.
	customer2, _ := h.consented(ctx, t, LeaseRequest{SessionID: "s_dl_off", StartURL: "/download/page"})
	if err := customer2.OpenFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := customer2.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatal(err)
	}
	if err := customer2.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	refused(ctx, t, customer2, "the customer", RefusedDownloadDenied)
	if ev := waitEvent(ctx, t, h, EventDownload); ev.Reason != RefusedDownloadDenied || ev.SessionID != "s_dl_off" {
		t.Errorf("event = %+v", ev)
	}
	if got := customer2.FilesReceived(); len(got) != 0 {
		t.Errorf("a denied download sent %d messages", len(got))
	}
}
