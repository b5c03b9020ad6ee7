package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// keysPage logs every keydown the page gets (key, code, modifiers) into
// #log, where the test reads it, and reports the field's value.
const keysPage = `<!doctype html><html><body style="margin:0">
<input id="t" aria-label="text" style="position:absolute;left:10px;top:10px;width:300px;height:30px">
<pre id="log"></pre>
<script>
const log = document.getElementById('log');
addEventListener('keydown', (e) => {
  log.textContent += [e.key, e.code, (e.ctrlKey ? 'C' : '') + (e.metaKey ? 'M' : '') + (e.altKey ? 'A' : '') + (e.shiftKey ? 'S' : '')].join('|') + '\n';
}, true);
document.getElementById('t').addEventListener('input', (e) => fetch('/typed?v=' + encodeURIComponent(e.target.value)));
</script></body></html>`

func keysRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, keysPage) })
}

// sessionOn starts a consented session of acme on path and waits for the
// page to load.
func (h *harness) sessionOn(ctx context.Context, t *testing.T, req LeaseRequest) (customer, agent *botviewer.Viewer, s *session) {
	t.Helper()
	customer, agent = h.consented(ctx, t, req)
	s = h.sessionOf(t, "acme", req.SessionID)
	waitFor(ctx, t, "the page "+req.StartURL, func() bool {
		return evalPage(ctx, t, s, `location.pathname + (document.readyState === 'complete' ? '' : '…')`) == req.StartURL
	})
	return customer, agent, s
}

func press(code, key string, keyCode, mods int, text string) []input.Event {
	return []input.Event{
		{Kind: input.KindKey, Action: input.ActionDown, Key: key, Code: code, KeyCode: keyCode, Modifiers: mods, Text: text},
		{Kind: input.KindKey, Action: input.ActionUp, Key: key, Code: code, KeyCode: keyCode, Modifiers: mods},
	}
}

// Keys that would reach the hosted browser's features (save, print,
// devtools, view-source, windows) never reach the tab, from the customer
// or a controlling agent, and the sender is told; the page's own keys,
// shortcuts it handles (select all, copy), dead keys and composed Japanese
// text arrive.
func TestBrowserShortcutsAreRefused(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent, s := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_keys", StartURL: "/keys"})
	if err := customer.Click(ctx, 100, 25); err != nil {
		t.Fatal(err)
	}
	var evs []input.Event
	evs = append(evs, press("KeyA", "a", 65, 0, "a")...)
	shortcuts := [][]input.Event{
		press("KeyS", "s", 83, input.ModCtrl, ""),
		press("KeyP", "p", 80, input.ModMeta, ""),
		press("KeyO", "o", 79, input.ModCtrl, ""),
		press("KeyU", "u", 85, input.ModCtrl, ""),
		press("KeyI", "I", 73, input.ModCtrl|input.ModShift, ""),
		press("F12", "F12", 123, 0, ""),
		press("KeyW", "w", 87, input.ModCtrl, ""),
		press("KeyT", "t", 84, input.ModCtrl, ""),
	}
	for _, sc := range shortcuts {
		evs = append(evs, sc...)
	}
	evs = append(evs, press("KeyB", "b", 66, 0, "b")...)
	// A dead key and the letter it composes, as a European layout sends them.
	evs = append(evs, press("BracketLeft", "Dead", 219, 0, "")...)
	evs = append(evs, press("KeyE", "é", 69, 0, "é")...)
	evs = append(evs, input.Event{Kind: input.KindText, Text: "日本語"})
	sendAll(ctx, t, customer, evs)
	waitTyped(ctx, t, h.typed, "abé日本語")
	if _, _, err := customer.WaitNotice(ctx, 0, func(n string) bool { return strings.Contains(n, RefusedShortcut) }); err != nil {
		t.Errorf("the customer was not told the shortcut was refused: %v", err)
	}

	// The controlling agent: the same shortcuts refused; select all and
	// copy reach the page.
	grantControl(ctx, t, customer, agent)
	evs = nil
	for _, sc := range shortcuts {
		evs = append(evs, sc...)
	}
	evs = append(evs, press("KeyA", "a", 65, input.ModCtrl, "")...)
	evs = append(evs, press("KeyC", "c", 67, input.ModCtrl, "")...)
	evs = append(evs, press("KeyX", "x", 88, 0, "x")...)
	sendAll(ctx, t, agent, evs)
	// Ctrl+A selected everything, so x replaced it.
	waitTyped(ctx, t, h.typed, "x")
	if _, _, err := agent.WaitNotice(ctx, 0, func(n string) bool { return strings.Contains(n, RefusedShortcut) }); err != nil {
		t.Errorf("the agent was not told the shortcut was refused: %v", err)
	}
	logged := evalPage(ctx, t, s, `document.getElementById('log').textContent`)
	for _, sc := range shortcuts {
		if strings.Contains(logged, "|"+sc[0].Code+"|") {
			t.Errorf("the page got %s %s: %q", sc[0].Key, sc[0].Code, logged)
		}
	}
	for _, want := range []string{"a|KeyA|\n", "Dead|BracketLeft|\n", "é|KeyE|\n", "a|KeyA|C\n", "c|KeyC|C\n", "x|KeyX|\n"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the page's keydowns lack %q: %q", want, logged)
		}
	}
}
