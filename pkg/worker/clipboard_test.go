package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// waitClipboard waits for a clipboard notice to v from index from on and
// returns its text and the index after it.
func waitClipboard(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string, from int) (string, int) {
	t.Helper()
	n, i, err := v.WaitNotice(ctx, from, func(n string) bool { return strings.Contains(n, `"type":"clipboard"`) })
	if err != nil {
		t.Fatalf("%s got no clipboard notice: %v", who, err)
	}
	var got protocol.Notice
	if err := json.Unmarshal([]byte(n), &got); err != nil {
		t.Fatal(err)
	}
	return got.Text, i + 1
}

func clipboardNotices(v *botviewer.Viewer) int {
	n := 0
	for _, s := range v.Notices() {
		if strings.Contains(s, `"type":"clipboard"`) {
			n++
		}
	}
	return n
}

// The customer pastes its own clipboard's text and copies the tab's
// selection to its own clipboard (a cut too); the agent, by default, does
// neither, and nobody's paste key reaches the tab (the hosted browser's
// clipboard may hold what the customer copied there). A company that
// allows it lets agents copy.
func TestClipboard(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	customer, agent, s := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_clip", StartURL: "/keys"})
	if err := customer.Click(ctx, 100, 25); err != nil {
		t.Fatal(err)
	}
	sendAll(ctx, t, customer, []input.Event{{Kind: input.KindText, Text: "注文番号 A-1234", Paste: true}})
	waitTyped(ctx, t, h.typed, "注文番号 A-1234")

	// Select all and copy: the selection comes back to the customer.
	sendAll(ctx, t, customer, press("KeyA", "a", 65, input.ModCtrl, ""))
	sendAll(ctx, t, customer, press("KeyC", "c", 67, input.ModCtrl, ""))
	text, c := waitClipboard(ctx, t, customer, "the customer", 0)
	if text != "注文番号 A-1234" {
		t.Errorf("the customer copied %q", text)
	}
	// A paste key would paste the hosted browser's clipboard: refused.
	sendAll(ctx, t, customer, press("KeyV", "v", 86, input.ModCtrl, ""))
	// Cut: the text comes back, and leaves the field.
	sendAll(ctx, t, customer, press("KeyA", "a", 65, input.ModCtrl, ""))
	sendAll(ctx, t, customer, press("KeyX", "x", 88, input.ModMeta, ""))
	if text, _ = waitClipboard(ctx, t, customer, "the customer", c); text != "注文番号 A-1234" {
		t.Errorf("the customer cut %q", text)
	}
	waitTyped(ctx, t, h.typed, "")

	// The agent in control: its paste is refused, its copy gives nothing.
	grantControl(ctx, t, customer, agent)
	sendAll(ctx, t, customer, []input.Event{{Kind: input.KindText, Text: "visible"}})
	waitTyped(ctx, t, h.typed, "visible")
	before := len(agent.Notices())
	sendAll(ctx, t, agent, []input.Event{{Kind: input.KindText, Text: "from the agent's clipboard", Paste: true}})
	if _, _, err := agent.WaitNotice(ctx, before, func(n string) bool { return strings.Contains(n, RefusedClipboard) }); err != nil {
		t.Errorf("the agent's paste was not refused: %v", err)
	}
	sendAll(ctx, t, agent, press("KeyA", "a", 65, input.ModCtrl, ""))
	sendAll(ctx, t, agent, press("KeyC", "c", 67, input.ModCtrl, ""))
	sendAll(ctx, t, agent, press("KeyV", "v", 86, input.ModCtrl, ""))
	sendAll(ctx, t, agent, press("Insert", "Insert", 45, input.ModShift, ""))
	// Typed text still goes through, after all of the above.
	sendAll(ctx, t, agent, press("End", "End", 35, 0, ""))
	sendAll(ctx, t, agent, press("KeyZ", "z", 90, 0, "z"))
	waitTyped(ctx, t, h.typed, "visiblez")
	if n := clipboardNotices(agent); n != 0 {
		t.Errorf("the agent got %d clipboard notices", n)
	}
	logged := evalPage(ctx, t, s, `document.getElementById('log').textContent`)
	for _, bad := range []string{"v|KeyV|", "Insert|Insert|S"} {
		if strings.Contains(logged, bad) {
			t.Errorf("a paste key reached the page (%q): %q", bad, logged)
		}
	}
	if !strings.Contains(logged, "c|KeyC|C\n") {
		t.Errorf("the agent's copy key never reached the page: %q", logged)
	}

	// A company that lets agents use the clipboard.
	customer2, agent2, _ := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_clip2", StartURL: "/keys", AgentClipboard: true})
	grantControl(ctx, t, customer2, agent2)
	if err := agent2.Click(ctx, 100, 25); err != nil {
		t.Fatal(err)
	}
	sendAll(ctx, t, agent2, []input.Event{{Kind: input.KindText, Text: "pasted by the agent", Paste: true}})
	waitTyped(ctx, t, h.typed, "pasted by the agent")
	sendAll(ctx, t, agent2, press("KeyA", "a", 65, input.ModCtrl, ""))
	sendAll(ctx, t, agent2, press("KeyC", "c", 67, input.ModCtrl, ""))
	if text, _ := waitClipboard(ctx, t, agent2, "the allowed agent", 0); text != "pasted by the agent" {
		t.Errorf("the allowed agent copied %q", text)
	}
}
