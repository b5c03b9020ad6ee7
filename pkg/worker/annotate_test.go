package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/media"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// annotatePage is a tall page with elements to highlight: one placed
// absolutely, one in an inner scroll container, one in a flow that grows
// above it, a button in an open shadow root, an element in a same-origin
// frame, a cross-origin frame, and a span in masked content.
const annotatePage = `<!doctype html><html><head><style>
body{margin:0;height:4000px;font:16px sans-serif;background:#fff}
.abs{position:absolute;margin:0;box-sizing:border-box}
#target{left:100px;top:200px;width:200px;height:60px;background:#0a0}
#scroller{left:500px;top:100px;width:300px;height:200px;overflow:auto;background:#eee}
#inner{height:50px;background:#00a;margin-top:150px}
#flow{left:100px;top:400px;width:300px}
#moved{height:40px;background:#a00}
#host{left:900px;top:100px;width:150px;height:50px}
#fr{left:900px;top:300px;width:300px;height:150px;border:0}
#xfr{left:900px;top:500px;width:300px;height:150px;border:0}
#secret{left:100px;top:600px;width:300px;height:60px;background:#ccc}
#digits{display:inline-block;width:120px;height:30px}
</style></head><body>
<div id="target" class="abs">target</div>
<div id="scroller" class="abs"><div id="inner">inner</div><div style="height:600px"></div></div>
<div id="flow" class="abs"><div id="moved">moved</div></div>
<div id="host" class="abs"></div>
<iframe id="fr" class="abs" src="/annotate-frame"></iframe>
<iframe id="xfr" class="abs" src="{{OTHER}}/annotate-frame"></iframe>
<div id="secret" class="abs" data-tandem-mask><span id="digits">4111 1111</span></div>
<script>
document.getElementById('host').attachShadow({ mode: 'open' }).innerHTML =
  '<button style="display:block;margin:0;width:150px;height:50px">shadow</button>';
</script></body></html>`

const annotateFrame = `<!doctype html><html><body style="margin:0;background:#ffe">
<div id="el" style="position:absolute;left:10px;top:10px;width:100px;height:40px;background:#fa0">frame</div>
</body></html>`

func annotateRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/annotate", func(w http.ResponseWriter, r *http.Request) {
		other := "http://localhost:" + r.Host[strings.LastIndex(r.Host, ":")+1:]
		fmt.Fprint(w, strings.Replace(annotatePage, "{{OTHER}}", other, 1))
	})
	mux.HandleFunc("/annotate-frame", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, annotateFrame) })
}

// note is any notice of the input channel, as the viewers read it.
type note struct {
	Type     string       `json:"type"`
	Action   string       `json:"action"`
	ID       string       `json:"id"`
	ViewerID string       `json:"viewer_id"`
	Role     string       `json:"role"`
	Name     string       `json:"name"`
	Points   [][2]float64 `json:"points"`
	Pinned   bool         `json:"pinned"`
	End      bool         `json:"end"`
	X        float64      `json:"x"`
	Y        float64      `json:"y"`
	Rect     [4]float64   `json:"rect"`
	Text     string       `json:"text"`
	At       string       `json:"at"`
	Reason   string       `json:"reason"`
}

func parseNote(s string) note {
	var n note
	_ = json.Unmarshal([]byte(s), &n)
	return n
}

// notes returns v's notices from the from-th on that ok accepts.
func notes(v *botviewer.Viewer, from int, ok func(note) bool) []note {
	var out []note
	all := v.Notices()
	for _, s := range all[min(from, len(all)):] {
		if n := parseNote(s); ok(n) {
			out = append(out, n)
		}
	}
	return out
}

// waitNote waits for a notice from the from-th on that ok accepts.
func waitNote(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string, from int, ok func(note) bool) (note, int) {
	t.Helper()
	s, i, err := v.WaitNotice(ctx, from, func(s string) bool { return ok(parseNote(s)) })
	if err != nil {
		t.Fatalf("%s: %v; notices from %d: %q", who, err, from, v.Notices()[min(from, len(v.Notices())):])
	}
	return parseNote(s), i
}

func isAnnotation(action string) func(note) bool {
	return func(n note) bool { return n.Type == protocol.TypeAnnotation && n.Action == action }
}

func isChat(n note) bool { return n.Type == protocol.TypeChat }

// sessionOf returns the session the worker hosts under company/id.
func (h *harness) sessionOf(t *testing.T, company, id string) *session {
	t.Helper()
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	s := h.w.sessions[company+"/"+id]
	if s == nil {
		t.Fatalf("no session %s/%s", company, id)
	}
	return s
}

// evalPage evaluates expr (a string-valued expression) in the top
// document, as the test's own look at the page.
func evalPage(ctx context.Context, t *testing.T, s *session, expr string) string {
	t.Helper()
	for {
		_, ans, err := s.lease().EvalWorld(ctx, mask.Top, expr)
		if err == nil {
			return ans
		}
		select {
		case <-ctx.Done():
			t.Fatalf("evaluate %s: %v", expr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pageRect asks the page for an element's border box in page pixels; el is
// an expression for the element, ox and oy an expression for its frame's
// offset in the top viewport ("0" for the top document).
func pageRect(ctx context.Context, t *testing.T, s *session, el, ox, oy string) [4]float64 {
	t.Helper()
	ans := evalPage(ctx, t, s, `(() => { const r = (`+el+`).getBoundingClientRect();
		return JSON.stringify([r.left + (`+ox+`) + scrollX, r.top + (`+oy+`) + scrollY, r.width, r.height]); })()`)
	var r [4]float64
	if err := json.Unmarshal([]byte(ans), &r); err != nil {
		t.Fatalf("page rect of %s: %q: %v", el, ans, err)
	}
	return r
}

func near(a, b [4]float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1 {
			return false
		}
	}
	return true
}

func annotateMsg(action string, x, y float64) protocol.Annotate {
	return protocol.Annotate{Type: protocol.TypeAnnotate, Action: action, X: x, Y: y}
}

// send sends msg as v, failing the test on error.
func send(ctx context.Context, t *testing.T, v *botviewer.Viewer, msg any) {
	t.Helper()
	if err := v.SendMessage(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// Strokes go from their author to the others under a namespaced id, never
// back; the laser is throttled but ends where the viewer left it; chat is
// echoed to everyone in one order and kept for a viewer that comes later
// (with the pinned strokes, not the faded ones); clear reaches everyone; a
// chat flood is refused beyond the rate. An agent in view mode does all of
// it.
func TestAnnotationsAndChat(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_annot", StartURL: "/control"})
	waitNotice(ctx, t, agent, "agent", `"type":"control","controller":"customer"`)
	waitNotice(ctx, t, agent, "agent", `"type":"scroll"`)

	// An unpinned stroke, then a pinned one in two messages.
	fadeFrom := time.Now()
	send(ctx, t, agent, []byte(`{"type":"annotate","action":"stroke","id":"faded","points":[[5,5],[6,6]],"end":true}`))
	send(ctx, t, agent, []byte(`{"type":"annotate","action":"stroke","id":"s1","points":[[1,2],[3,4.5]],"pinned":true,"end":false}`))
	send(ctx, t, agent, []byte(`{"type":"annotate","action":"stroke","id":"s1","points":[[5,6]],"pinned":true,"end":true}`))
	first, i := waitNote(ctx, t, customer, "the customer", 0, isAnnotation(protocol.AnnotateStroke))
	agentID := first.ViewerID
	if first.ID != agentID+".faded" || first.Role != RoleAgent || first.Name != "agent" || !strings.HasPrefix(agentID, "v_agent") {
		t.Fatalf("the first stroke = %+v, want the agent's, id <viewer>.faded", first)
	}
	second, i := waitNote(ctx, t, customer, "the customer", i+1, isAnnotation(protocol.AnnotateStroke))
	third, _ := waitNote(ctx, t, customer, "the customer", i+1, isAnnotation(protocol.AnnotateStroke))
	if second.ID != agentID+".s1" || !second.Pinned || second.End || len(second.Points) != 2 || second.Points[1] != [2]float64{3, 4.5} {
		t.Errorf("the pinned stroke's first message = %+v", second)
	}
	if third.ID != agentID+".s1" || !third.End || len(third.Points) != 1 || third.Points[0] != [2]float64{5, 6} {
		t.Errorf("the pinned stroke's last message = %+v", third)
	}

	// The laser: a burst of 50 positions reaches the customer as a few,
	// ending at the last.
	before := len(customer.Notices())
	for x := range 50 {
		send(ctx, t, agent, annotateMsg(protocol.AnnotateLaser, float64(x), 1000))
	}
	waitNote(ctx, t, customer, "the customer", before, func(n note) bool {
		return n.Action == protocol.AnnotateLaser && n.X == 49 && n.Y == 1000 && n.ViewerID == agentID
	})
	time.Sleep(200 * time.Millisecond)
	lasers := notes(customer, before, isAnnotation(protocol.AnnotateLaser))
	if len(lasers) > 10 || lasers[len(lasers)-1].X != 49 {
		t.Errorf("the customer got %d laser notices for a burst of 50, the last at %v; want a few, ending at 49", len(lasers), lasers[len(lasers)-1].X)
	}
	// Nothing of its own comes back to the agent.
	for _, n := range notes(agent, 0, func(n note) bool { return n.Type == protocol.TypeAnnotation }) {
		t.Errorf("the agent got its own annotation back: %+v", n)
	}

	// Chat: both write at once; both get both, in the same order, with
	// the echo of their own.
	send(ctx, t, agent, protocol.Chat{Type: protocol.TypeChat, Text: "  Which button?\n"})
	send(ctx, t, customer, protocol.Chat{Type: protocol.TypeChat, Text: "この青いボタン"})
	var orders [2][]string
	for k, v := range []*botviewer.Viewer{customer, agent} {
		_, j := waitNote(ctx, t, v, "chat", 0, isChat)
		waitNote(ctx, t, v, "chat", j+1, isChat)
		for _, n := range notes(v, 0, isChat) {
			orders[k] = append(orders[k], n.ID+" "+n.ViewerID+" "+n.Role+" "+n.Text)
			if at, err := time.Parse(time.RFC3339, n.At); err != nil || time.Since(at) > time.Minute {
				t.Errorf("chat %s at %q: %v", n.ID, n.At, err)
			}
		}
	}
	if strings.Join(orders[0], "|") != strings.Join(orders[1], "|") || len(orders[0]) != 2 {
		t.Fatalf("the customer got %q, the agent %q; want the same two", orders[0], orders[1])
	}
	if !strings.Contains(strings.Join(orders[0], "|"), "Which button?") ||
		!strings.HasPrefix(orders[0][0], "c1 ") || !strings.HasPrefix(orders[0][1], "c2 ") {
		t.Errorf("chat = %q; want c1 and c2, trimmed", orders[0])
	}

	// A viewer that comes later gets the scroll offset, the pinned stroke
	// whole (not the one that faded) and the chat, in order.
	time.Sleep(time.Until(fadeFrom.Add(strokeFade + 500*time.Millisecond)))
	late := h.join(ctx, t, "acme", "s_annot", RoleAgent)
	_, j := waitNote(ctx, t, late, "the late agent", 0, func(n note) bool { return n.Type == protocol.TypeScroll })
	got, j := waitNote(ctx, t, late, "the late agent", j+1, isAnnotation(protocol.AnnotateStroke))
	if got.ID != agentID+".s1" || len(got.Points) != 3 || !got.Pinned || !got.End {
		t.Errorf("the late agent's stroke = %+v; want s1 whole, pinned and ended", got)
	}
	waitNote(ctx, t, late, "the late agent", j+1, isChat)
	waitFor(ctx, t, "the late agent's history", func() bool { return len(notes(late, 0, isChat)) >= 2 })
	var lateOrder []string
	for _, n := range notes(late, 0, isChat) {
		lateOrder = append(lateOrder, n.ID+" "+n.ViewerID+" "+n.Role+" "+n.Text)
	}
	if strings.Join(lateOrder, "|") != strings.Join(orders[0], "|") {
		t.Errorf("the late agent's history = %q, want %q", lateOrder, orders[0])
	}
	if n := notes(late, 0, func(n note) bool { return strings.HasSuffix(n.ID, ".faded") }); len(n) > 0 {
		t.Errorf("the late agent got the faded stroke: %+v", n)
	}

	// The customer clears: everyone is told, the customer included.
	send(ctx, t, customer, protocol.Annotate{Type: protocol.TypeAnnotate, Action: protocol.AnnotateClear})
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent, "late agent": late} {
		n, _ := waitNote(ctx, t, v, name, 0, isAnnotation(protocol.AnnotateClear))
		if n.Role != RoleCustomer || n.ViewerID == "" {
			t.Errorf("%s: clear = %+v, want the customer's", name, n)
		}
	}

	// A flood of 30 chat messages: about the burst gets through, the rest
	// is refused, and the sender is told.
	before = len(notes(customer, 0, isChat))
	for k := range 30 {
		send(ctx, t, agent, protocol.Chat{Type: protocol.TypeChat, Text: fmt.Sprint("flood ", k)})
	}
	refused(ctx, t, agent, "the agent", RefusedRateLimited)
	time.Sleep(500 * time.Millisecond)
	flood := len(notes(customer, 0, isChat)) - before
	if flood < chatBurst || flood > chatBurst+5 {
		t.Errorf("%d of a flood of 30 chat messages got through, want about %d", flood, chatBurst)
	}
	if m := gather(t, h.w); m["tandem_input_dropped_total"] < 30-chatBurst-5 {
		t.Errorf("dropped input = %v after a refused flood", m["tandem_input_dropped_total"])
	}
}

// Nothing is taken from an agent before the customer's consent, and an
// agent is sent nothing before it: the customer's chat reaches it with the
// history once the customer agreed.
func TestAnnotationsWaitForConsent(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_annot_gate", StartURL: "/annotate"}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_annot_gate", RoleCustomer)
	agent := h.join(ctx, t, "acme", "s_annot_gate", RoleAgent)
	waitNotice(ctx, t, customer, "the customer", `"type":"scroll"`)

	send(ctx, t, agent, protocol.Chat{Type: protocol.TypeChat, Text: "agent before consent"})
	send(ctx, t, agent, []byte(`{"type":"annotate","action":"stroke","id":"s1","points":[[1,2]],"pinned":true}`))
	send(ctx, t, agent, annotateMsg(protocol.AnnotateHighlight, 200, 230))
	send(ctx, t, agent, annotateMsg(protocol.AnnotateLaser, 200, 230))
	send(ctx, t, agent, protocol.Annotate{Type: protocol.TypeAnnotate, Action: protocol.AnnotateClear})
	refused(ctx, t, agent, "the agent", RefusedNoConsent)
	// The customer's pointer is not shown to an agent before the consent
	// either (control.go shares pointers through the annotator), nor the
	// agent's to the customer.
	if err := customer.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 10, Y: 20}); err != nil {
		t.Fatal(err)
	}
	if err := agent.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 30, Y: 40}); err != nil {
		t.Fatal(err)
	}
	send(ctx, t, customer, protocol.Chat{Type: protocol.TypeChat, Text: "customer before consent"})
	waitNote(ctx, t, customer, "the customer", 0, func(n note) bool { return isChat(n) && n.Text == "customer before consent" })
	time.Sleep(time.Second)
	for _, n := range notes(customer, 0, func(n note) bool { return n.Type != "" }) {
		if n.Role == RoleAgent {
			t.Errorf("the customer got the agent's %s before consent: %+v", n.Type, n)
		}
	}
	for _, n := range notes(agent, 0, func(n note) bool {
		return n.Type == protocol.TypeChat || n.Type == protocol.TypeAnnotation || n.Type == protocol.TypeScroll || n.Type == protocol.TypePointer
	}) {
		t.Errorf("the agent got %+v before consent", n)
	}

	h.gate(t, Gate{Company: "acme", SessionID: "s_annot_gate", Consented: true}, "")
	n, _ := waitNote(ctx, t, agent, "the agent", 0, isChat)
	if n.Text != "customer before consent" || n.ID != "c1" {
		t.Errorf("the agent's history = %+v, want the customer's message alone", n)
	}
	waitNote(ctx, t, agent, "the agent", 0, func(n note) bool { return n.Type == protocol.TypeScroll })
	// Now the pointers go across, the last position of a quick run always.
	for i := range 20 {
		if err := customer.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: float64(100 + i), Y: 200}); err != nil {
			t.Fatal(err)
		}
	}
	waitNote(ctx, t, agent, "the customer's last pointer", 0, func(n note) bool { return n.Type == protocol.TypePointer && n.X == 119 && n.Y == 200 })
	send(ctx, t, agent, protocol.Chat{Type: protocol.TypeChat, Text: "after consent"})
	waitNote(ctx, t, customer, "the customer", 0, func(n note) bool { return isChat(n) && n.Text == "after consent" && n.ID == "c2" })

	// With an admission to wait for, the customer's chat is refused too.
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_annot_admit", MustAdmit: true}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	waiting := h.join(ctx, t, "acme", "s_annot_admit", RoleCustomer)
	send(ctx, t, waiting, protocol.Chat{Type: protocol.TypeChat, Text: "let me in"})
	refused(ctx, t, waiting, "the waiting customer", RefusedNotAdmitted)
	time.Sleep(500 * time.Millisecond)
	if n := notes(waiting, 0, isChat); len(n) > 0 {
		t.Errorf("a customer not admitted chatted: %+v", n)
	}
}

// A highlight is resolved from the DOM (through shadow roots and frames;
// in masked content, the masked element) and follows its element: unchanged by the document's scroll, updated when
// an inner container scrolls or the layout moves it, removed when the
// element goes or hides; at most 8 live. Clicking on the page's root
// highlights nothing.
func TestHighlightsFollowTheirElements(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_hl", StartURL: "/annotate"})
	s := h.sessionOf(t, "acme", "s_hl")
	if _, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 }); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the frames loaded", func() bool {
		return evalPage(ctx, t, s, `document.readyState === 'complete' && document.getElementById('fr').contentDocument.getElementById('el') ? 'ok' : ''`) == "ok"
	})

	// Picks, one after the other: each answer comes before the next is
	// asked. The first, on the body, highlights nothing.
	const frameOff = `document.getElementById('fr').getBoundingClientRect().left`
	const frameTop = `document.getElementById('fr').getBoundingClientRect().top`
	picks := []struct {
		name   string
		x, y   float64
		el     string
		ox, oy string
	}{
		{"target", 200, 230, `document.getElementById('target')`, "0", "0"},
		{"inner", 600, 270, `document.getElementById('inner')`, "0", "0"},
		{"moved", 200, 420, `document.getElementById('moved')`, "0", "0"},
		{"shadow", 950, 120, `document.getElementById('host').shadowRoot.querySelector('button')`, "0", "0"},
		{"same-origin frame", 950, 330, `document.getElementById('fr').contentDocument.getElementById('el')`, frameOff, frameTop},
		{"cross-origin frame", 950, 550, `document.getElementById('xfr')`, "0", "0"},
		// Masked content shows no more than the masked area.
		{"masked content", 150, 615, `document.getElementById('secret')`, "0", "0"},
	}
	send(ctx, t, agent, annotateMsg(protocol.AnnotateHighlight, 50, 700))
	ids := map[string]string{}
	last := map[string][4]float64{}
	from := 0
	for k, p := range picks {
		send(ctx, t, agent, annotateMsg(protocol.AnnotateHighlight, p.x, p.y))
		n, i := waitNote(ctx, t, customer, "the customer", from, isAnnotation(protocol.AnnotateHighlight))
		from = i + 1
		want := pageRect(ctx, t, s, p.el, p.ox, p.oy)
		if n.ID != fmt.Sprintf("h%d", k+2) || !near(n.Rect, want) || n.Role != RoleAgent {
			t.Fatalf("%s: highlight %+v, want h%d at %v", p.name, n, k+2, want)
		}
		ids[p.name], last[p.name] = n.ID, n.Rect
		// The sender gets it too.
		waitNote(ctx, t, agent, "the agent", 0, func(m note) bool { return m.Action == protocol.AnnotateHighlight && m.ID == n.ID })
	}
	t.Logf("highlights %v at %v", ids, last)

	// changed waits for a new box of name's highlight equal to the
	// element's real one.
	changed := func(what, name string) {
		t.Helper()
		p := picks[0]
		for _, q := range picks {
			if q.name == name {
				p = q
			}
		}
		var want [4]float64
		n, _ := waitNote(ctx, t, customer, what, from, func(n note) bool {
			if n.Action != protocol.AnnotateHighlight || n.ID != ids[name] {
				return false
			}
			want = pageRect(ctx, t, s, p.el, p.ox, p.oy)
			return near(n.Rect, want)
		})
		if n.Rect == last[name] {
			t.Fatalf("%s: the box of %s did not move (%v)", what, name, n.Rect)
		}
		last[name] = n.Rect
	}

	// The document scrolls: the scroll notice follows, the boxes (in page
	// pixels) stay.
	before := len(customer.Notices())
	evalPage(ctx, t, s, `(scrollTo(0, 300), String(scrollY))`)
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		waitNote(ctx, t, v, name, before, func(n note) bool { return n.Type == protocol.TypeScroll && n.X == 0 && n.Y == 300 })
	}
	time.Sleep(2 * measureSlow)
	for _, n := range notes(customer, before, isAnnotation(protocol.AnnotateHighlight)) {
		t.Errorf("a box moved with the document's scroll: %+v", n)
	}
	from = len(customer.Notices())

	// An inner container scrolls; the layout moves an element.
	evalPage(ctx, t, s, `(document.getElementById('scroller').scrollTop = 100, 'ok')`)
	changed("inner scroll", "inner")
	evalPage(ctx, t, s, `(() => { const d = document.createElement('div'); d.style.height = '100px';
		document.getElementById('flow').prepend(d); return 'ok'; })()`)
	changed("an element inserted above", "moved")
	if r := last["moved"]; math.Abs(r[1]-500) > 1 {
		t.Errorf("the moved element's box is at %v, want y 500", r)
	}

	// Gone and hidden elements are removed.
	evalPage(ctx, t, s, `(document.getElementById('target').remove(), 'ok')`)
	waitNote(ctx, t, customer, "removed element", from, func(n note) bool {
		return n.Action == protocol.AnnotateRemove && n.ID == ids["target"]
	})
	evalPage(ctx, t, s, `(document.getElementById('host').style.display = 'none', 'ok')`)
	for _, v := range []*botviewer.Viewer{agent, customer} {
		// Both have it before the count below starts.
		waitNote(ctx, t, v, "hidden element", 0, func(n note) bool {
			return n.Action == protocol.AnnotateRemove && n.ID == ids["shadow"]
		})
	}

	// Five live (inner, moved, the two frames, the masked one); four more:
	// the oldest goes.
	from = len(customer.Notices())
	for range 4 {
		send(ctx, t, customer, annotateMsg(protocol.AnnotateHighlight, 200, 520-300))
	}
	waitNote(ctx, t, customer, "a ninth highlight", from, func(n note) bool {
		return n.Action == protocol.AnnotateRemove && n.ID == ids["inner"]
	})
	if n := notes(customer, from, isAnnotation(protocol.AnnotateRemove)); len(n) != 1 {
		t.Errorf("removed %+v for one highlight beyond 8", n)
	}

	// Cleared, nothing is followed any more.
	send(ctx, t, agent, protocol.Annotate{Type: protocol.TypeAnnotate, Action: protocol.AnnotateClear})
	_, i := waitNote(ctx, t, customer, "clear", from, isAnnotation(protocol.AnnotateClear))
	i++
	evalPage(ctx, t, s, `(document.getElementById('flow').prepend(document.createElement('p')), 'ok')`)
	time.Sleep(2 * measureSlow)
	if n := notes(customer, i, func(n note) bool { return n.Type == protocol.TypeAnnotation }); len(n) > 0 {
		t.Errorf("after clear: %+v", n)
	}
}

// The scroll notice follows the document's scroll to its final offset,
// also a customer's wheel, and a viewer that connects gets the current one.
func TestScrollNoticeFollowsTheDocument(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent := h.consented(ctx, t, LeaseRequest{SessionID: "s_scroll", StartURL: "/annotate"})
	s := h.sessionOf(t, "acme", "s_scroll")
	n, _ := waitNote(ctx, t, customer, "the customer", 0, func(n note) bool { return n.Type == protocol.TypeScroll })
	if n.X != 0 || n.Y != 0 {
		t.Errorf("the first scroll notice = %+v, want 0, 0", n)
	}
	for range 3 {
		if err := customer.Send(ctx, input.Event{Kind: input.KindWheel, X: 640, Y: 360, DeltaY: 250}); err != nil {
			t.Fatal(err)
		}
	}
	const y = "750"
	waitFor(ctx, t, "the page scrolled by the three wheels", func() bool { return evalPage(ctx, t, s, `String(scrollY)`) == y })
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		waitFor(ctx, t, name+"'s scroll notice at "+y, func() bool {
			got := notes(v, 0, func(n note) bool { return n.Type == protocol.TypeScroll })
			return len(got) > 0 && fmt.Sprint(got[len(got)-1].Y) == y
		})
	}
	late := h.join(ctx, t, "acme", "s_scroll", RoleCustomer)
	waitNote(ctx, t, late, "the late customer", 0, func(n note) bool { return n.Type == protocol.TypeScroll && fmt.Sprint(n.Y) == y })

	// A page that scrolls itself on every animation frame for a second:
	// at most 30 notices a second, the last one where it stopped.
	isScroll := func(n note) bool { return n.Type == protocol.TypeScroll }
	before := len(customer.Notices())
	start := time.Now()
	evalPage(ctx, t, s, `(() => { let i = 0; const f = () => { scrollBy(0, 3); if (++i < 60) requestAnimationFrame(f); };
		requestAnimationFrame(f); return 'ok'; })()`)
	waitFor(ctx, t, "the page stopped", func() bool { return evalPage(ctx, t, s, `String(scrollY)`) == "930" })
	waitNote(ctx, t, customer, "the customer", before, func(n note) bool { return isScroll(n) && n.Y == 930 })
	got := notes(customer, before, isScroll)
	if limit := int(time.Since(start)/scrollEvery) + 2; len(got) > limit || got[len(got)-1].Y != 930 {
		t.Errorf("%d scroll notices in %v, the last at %v; want at most %d, the last at 930", len(got), time.Since(start), got[len(got)-1].Y, limit)
	}
	t.Logf("%d scroll notices in %v", len(got), time.Since(start))

	// Frames faster than the screencast gives under -race: a notice at
	// most every scrollEvery, and the last offset always.
	before = len(customer.Notices())
	start = time.Now()
	for i := range 100 {
		s.annot.frame(media.Meta{ScrollOffsetY: float64(10000 + i)})
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	waitNote(ctx, t, customer, "the customer", before, func(n note) bool { return isScroll(n) && n.Y == 10099 })
	got = notes(customer, before, func(n note) bool { return isScroll(n) && n.Y >= 10000 })
	if limit := int(took/scrollEvery) + 2; len(got) > limit {
		t.Errorf("%d scroll notices for 100 frames in %v, want at most %d", len(got), took, limit)
	}
}
