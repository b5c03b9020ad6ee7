package ui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/browsertest"
)

// waitFiles waits for the "files" messages from index from on to satisfy
// ok, and returns them.
func waitFiles(t *testing.T, w *fakeWorker, from int, what string, ok func([]fileMsg) bool) []fileMsg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := w.fileMessages(from)
		if ok(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, m := range msgs {
				seen = append(seen, string(m.data))
			}
			t.Fatalf("%s: the worker got %q on the files channel", what, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastIs(typ string) func([]fileMsg) bool {
	return func(ms []fileMsg) bool {
		return len(ms) > 0 && ms[len(ms)-1].text && strings.Contains(string(ms[len(ms)-1].data), `"type":"`+typ+`"`)
	}
}

// TestFileChooser: when the page asks for a file, the customer's view
// shows the request; the file picked on the device goes to the worker on
// the "files" channel (header, bytes, end); a file over the limit is not
// sent; cancel says so; the dialog closes when the worker says.
func TestFileChooser(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	path := browsertest.ReadableFile(t, "見積書.txt", []byte("hello, 世界"))

	send(t, w, 1, map[string]any{"type": "file_chooser", "state": "open", "max_bytes": 1 << 20})
	waitJS(t, ctx, "the chooser", `!document.querySelector('.viewer-chooser').hidden`)
	if got := eval[string](t, ctx, `document.querySelector('.viewer-chooser-title').textContent + '|' + document.querySelector('.viewer-chooser-detail').textContent + '|' + document.querySelector('.viewer-chooser-input').multiple`); got != "The page asks for a file|Pick from this device. Each file can be up to 1 MB; only the shared page gets it.|false" {
		t.Errorf("chooser = %q", got)
	}
	shot(t, ctx, "customer-file-chooser")
	run(t, ctx, "pick the file", chromedp.SetUploadFiles(chromedp.CSS(`.viewer-chooser-input`), []string{path}))
	msgs := waitFiles(t, w, 0, "the file", lastIs("files_done"))
	var head struct {
		Type, Name string
		Size       int
	}
	if len(msgs) != 3 || !msgs[0].text || json.Unmarshal(msgs[0].data, &head) != nil || head.Type != "file" || head.Name != "見積書.txt" || head.Size != 13 {
		t.Fatalf("messages %d, header %s", len(msgs), msgs[0].data)
	}
	if msgs[1].text || string(msgs[1].data) != "hello, 世界" {
		t.Errorf("file bytes %q (text %v)", msgs[1].data, msgs[1].text)
	}
	send(t, w, 1, map[string]any{"type": "file_chooser", "state": "closed"})
	waitJS(t, ctx, "the chooser closed", `document.querySelector('.viewer-chooser').hidden`)

	// Over the limit: nothing is sent, the customer is told why.
	n := len(w.fileMessages(0))
	send(t, w, 1, map[string]any{"type": "file_chooser", "state": "open", "multiple": true, "max_bytes": 4})
	waitJS(t, ctx, "the second chooser", `!document.querySelector('.viewer-chooser').hidden && document.querySelector('.viewer-chooser-input').multiple`)
	run(t, ctx, "pick a large file", chromedp.SetUploadFiles(chromedp.CSS(`.viewer-chooser-input`), []string{path}))
	waitJS(t, ctx, "too large", `document.querySelector('.viewer-chooser-progress').textContent === '見積書.txt is larger than 1 KB.'`)
	run(t, ctx, "cancel", chromedp.Click(chromedp.CSS(`.viewer-chooser-cancel`)))
	msgs = waitFiles(t, w, n, "the cancel", lastIs("files_cancel"))
	if len(msgs) != 1 {
		t.Errorf("after the large file: %d messages, want only the cancel", len(msgs))
	}
	waitJS(t, ctx, "the chooser closed after cancel", `document.querySelector('.viewer-chooser').hidden`)

	// In Japanese.
	run(t, ctx, "switch to Japanese", chromedp.Click(chromedp.CSS(`.lang-switch button[data-lang="ja"]`)))
	send(t, w, 1, map[string]any{"type": "file_chooser", "state": "open", "max_bytes": 20 << 20})
	waitJS(t, ctx, "Japanese chooser", `document.querySelector('.viewer-chooser-title').textContent === 'ページがファイルを求めています'`)
	shot(t, ctx, "customer-file-chooser-ja")
	w.checkClean(t)
}

// TestClipboardCopy: text the customer copied in the tab goes to its own
// clipboard; where the browser wants a click for that, a button does it.
func TestClipboardCopy(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	// The test browser cannot grant clipboard access: record the writes,
	// and refuse the first one as Safari and Firefox do without a click.
	run(t, ctx, "watch the clipboard", chromedp.Evaluate[chromedp.Void](`(() => {
		window.__copied = [];
		let first = true;
		navigator.clipboard.writeText = async (text) => {
			if (first) { first = false; throw new DOMException('not allowed', 'NotAllowedError'); }
			window.__copied.push(text);
		};
	})()`))
	send(t, w, 1, map[string]any{"type": "clipboard", "text": "注文番号 A-1234"})
	waitJS(t, ctx, "the copy button", `!document.querySelector('.viewer-copy').hidden`)
	if got := eval[string](t, ctx, `document.querySelector('.viewer-copy').textContent`); got != "Copy the selected text" {
		t.Errorf("copy button = %q", got)
	}
	run(t, ctx, "copy", chromedp.Click(chromedp.CSS(`.viewer-copy`)))
	waitJS(t, ctx, "copied", `window.__copied.join() === '注文番号 A-1234' && document.querySelector('.viewer-toast').textContent === 'Copied to your clipboard.'`)
	// Allowed at once: no button.
	send(t, w, 1, map[string]any{"type": "clipboard", "text": "second", "state": "truncated"})
	waitJS(t, ctx, "copied at once", `window.__copied.join() === '注文番号 A-1234,second' && document.querySelector('.viewer-copy').hidden && document.querySelector('.viewer-toast').textContent === 'Copied to your clipboard (only the first 32 KB).'`)
	w.checkClean(t)
}

// TestRemoteCursor: the view shows the page's cursor keyword, and nothing
// else (an image or an unknown value leaves the view's own).
func TestRemoteCursor(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	send(t, w, 1, map[string]any{"type": "cursor", "state": "pointer"})
	waitJS(t, ctx, "a hand", `getComputedStyle(document.querySelector('.viewer-video')).cursor === 'pointer'`)
	send(t, w, 1, map[string]any{"type": "cursor", "state": "url(https://evil.example/c.png), auto"})
	waitJS(t, ctx, "no image cursor", `document.querySelector('.viewer-video').style.cursor === ''`)
	send(t, w, 1, map[string]any{"type": "cursor", "state": "text"})
	waitJS(t, ctx, "a text cursor", `getComputedStyle(document.querySelector('.viewer-video')).cursor === 'text'`)
	w.checkClean(t)
}

// TestDownloadOffered: a download the worker sends on the files channel is
// offered to the customer, who saves it with a click; its bytes are the
// page's; a refused one is told in the page's words.
func TestDownloadOffered(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	ctx := customerLive(t, srv)
	run(t, ctx, "watch blobs", chromedp.Evaluate[chromedp.Void](`(() => {
		window.__blobs = [];
		const make = URL.createObjectURL;
		URL.createObjectURL = (b) => { window.__blobs.push(b); return make.call(URL, b); };
	})()`))
	body := []byte("請求書 4711: ¥12,000\n")
	deadline := time.Now().Add(10 * time.Second)
	for w.sendDownload("請求書-4711.txt", "text/plain", body) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the customer's files channel never opened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitJS(t, ctx, "the offer", `!document.querySelector('.viewer-download').hidden`)
	if got := eval[string](t, ctx, `document.querySelector('.viewer-download .viewer-chooser-title').textContent + '|' + document.querySelector('.viewer-download .viewer-chooser-detail').textContent`); got != "The page downloaded a file for you|請求書-4711.txt (1 KB). Only you receive it; the agent does not." {
		t.Errorf("offer = %q", got)
	}
	if got := eval[string](t, ctx, `document.activeElement.className`); !strings.Contains(got, "viewer-download-save") {
		t.Errorf("focus on %q, want the save button", got)
	}
	shot(t, ctx, "customer-download")
	run(t, ctx, "save", chromedp.Click(chromedp.CSS(`.viewer-download-save`)))
	waitJS(t, ctx, "saved", `document.querySelector('.viewer').dataset.saved === '請求書-4711.txt' && document.querySelector('.viewer-download').hidden`)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__blobs[0].text()`, chromedp.EvalAwaitPromise))
	if err != nil || got != string(body) {
		t.Errorf("saved bytes = %q, %v; want %q", got, err, body)
	}
	// A download that lost bytes on the way is never offered.
	run(t, ctx, "forget the blobs", chromedp.Evaluate[chromedp.Void](`window.__blobs = []`))
	w.mu.Lock()
	dc := w.filesDCs[len(w.filesDCs)-1]
	w.mu.Unlock()
	if err := dc.SendText(`{"type":"download","name":"short.bin","size":10,"mime":""}`); err != nil {
		t.Fatal(err)
	}
	if err := dc.Send([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := dc.SendText(`{"type":"download_done"}`); err != nil {
		t.Fatal(err)
	}
	send(t, w, 1, map[string]any{"type": "refused", "reason": "download_denied", "message": "worker text"})
	waitJS(t, ctx, "denied toast", `document.querySelector('.viewer-toast').textContent.startsWith('The page started a download')`)
	if !eval[bool](t, ctx, `document.querySelector('.viewer-download').hidden`) {
		t.Error("a short download was offered")
	}
	w.checkClean(t)
}
