package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// cursorPage has one area per kind of cursor, 40 px tall, from the top.
const cursorPage = `<!doctype html><html><body style="margin:0">
<a href="/next" style="position:absolute;left:10px;top:10px;width:200px;height:40px;display:block">link</a>
<input style="position:absolute;left:10px;top:60px;width:200px;height:40px;box-sizing:border-box" aria-label="field">
<div style="position:absolute;left:10px;top:110px;width:200px;height:40px;cursor:wait">busy</div>
<div style="position:absolute;left:10px;top:160px;width:200px;height:40px;cursor:url(data:image/png;base64,AAAA) 4 4, grab">drag</div>
</body></html>`

func cursorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/cursors", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, cursorPage) })
}

// Each viewer is told the page's cursor under its own pointer: a hand on
// links, a text cursor in fields, the page's own, the fallback of an image
// cursor, the arrow elsewhere; an agent too, without control.
func TestViewersAreToldThePagesCursor(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, agent, _ := h.sessionOn(ctx, t, LeaseRequest{SessionID: "s_cursor", StartURL: "/cursors"})
	from := 0
	for _, c := range []struct {
		y    float64
		want string
	}{{30, "pointer"}, {80, "text"}, {130, "wait"}, {180, "grab"}, {400, "default"}} {
		if err := customer.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 100, Y: c.y}); err != nil {
			t.Fatal(err)
		}
		_, i, err := customer.WaitNotice(ctx, from, func(n string) bool { return strings.Contains(n, `"type":"cursor"`) })
		if err != nil {
			t.Fatalf("no cursor notice at y %v: %v", c.y, err)
		}
		if n := customer.Notices()[i]; !strings.Contains(n, `"state":"`+c.want+`"`) {
			t.Errorf("at y %v: %s, want %s", c.y, n, c.want)
		}
		from = i + 1
	}
	if err := agent.Send(ctx, input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 50, Y: 30}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agent.WaitNotice(ctx, 0, func(n string) bool { return strings.Contains(n, `"type":"cursor","state":"pointer"`) }); err != nil {
		t.Errorf("the agent was not told its cursor: %v", err)
	}
}
