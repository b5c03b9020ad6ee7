package browserpool

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// downloadSite serves /page (links to downloads), /report.csv (a small
// attachment) and /big.bin (one byte past MaxDownloadBytes).
func downloadSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/report.csv":
			w.Header().Set("Content-Disposition", `attachment; filename="請求書 report.csv"`)
			fmt.Fprint(w, "id,total\n1,4711\n")
		case "/big.bin":
			w.Header().Set("Content-Disposition", `attachment; filename="big.bin"`)
			w.Header().Set("Content-Length", fmt.Sprint(MaxDownloadBytes+1))
			chunk := make([]byte, 1<<20)
			for n := 0; n <= MaxDownloadBytes; n += len(chunk) {
				if _, err := w.Write(chunk[:min(len(chunk), MaxDownloadBytes+1-n)]); err != nil {
					return
				}
			}
		default:
			fmt.Fprint(w, `<!doctype html><body><a id="csv" href="/report.csv">csv</a><a id="big" href="/big.bin">big</a></body>`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func waitDownload(t *testing.T, l *Lease) Download {
	t.Helper()
	select {
	case d := <-l.Downloads():
		return d
	case <-time.After(waitLimit):
		t.Fatal("no download reported")
	case <-l.Done():
		t.Fatalf("lease done: %v", l.Err())
	}
	return Download{}
}

// TestDownloadsDeniedByDefault: without LeaseOptions.Downloads the page's
// download is refused, reported, and nothing is written.
func TestDownloadsDeniedByDefault(t *testing.T) {
	srv := downloadSite(t)
	l := lease(t, LeaseOptions{Width: 400, Height: 300, StartURL: srv.URL + "/page"})
	evalIn(t, l, `document.getElementById('csv').click()`)
	d := waitDownload(t, l)
	if d.Refused != DownloadDenied || d.Path != "" || d.Name != "請求書 report.csv" {
		t.Errorf("download = %+v, want the denied report", d)
	}
	if entries, err := os.ReadDir(l.dir); err == nil {
		for _, e := range entries {
			if e.Name() == "downloads" {
				t.Error("a downloads folder exists without the policy")
			}
		}
	}
}

// TestDownloadsAllowed: with LeaseOptions.Downloads a complete file is
// handed over with its name and bytes; one past the limit is cancelled.
func TestDownloadsAllowed(t *testing.T) {
	srv := downloadSite(t)
	l := lease(t, LeaseOptions{Width: 400, Height: 300, StartURL: srv.URL + "/page", Downloads: true})
	evalIn(t, l, `document.getElementById('csv').click()`)
	d := waitDownload(t, l)
	if d.Refused != "" || d.Name != "請求書 report.csv" || d.Size != 16 || !strings.HasPrefix(d.Path, l.dir) {
		t.Fatalf("download = %+v", d)
	}
	if b, err := os.ReadFile(d.Path); err != nil || string(b) != "id,total\n1,4711\n" {
		t.Errorf("downloaded file = %q, %v", b, err)
	}
	evalIn(t, l, `document.getElementById('big').click()`)
	if d := waitDownload(t, l); d.Refused != DownloadTooLarge || d.Path != "" {
		t.Errorf("too large a download = %+v", d)
	}
}
