package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/audit"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// A worker's browser restart becomes an audit event of the system, with
// its reason and the reopened page (docs/recovery.md).
func TestBrowserRestartIsAudited(t *testing.T) {
	e := newEnv(t, true)
	e.runGateway(t)
	agent, _ := e.agentID(t, "acme")
	r := e.do(t, agent, "POST", "/api/v1/sessions", `{"start_url":"https://shop.example/cart"}`, nil)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"].(string)
	<-e.leases
	e.g.handleEvent(context.Background(), worker.Event{Type: worker.EventBrowserRestarted, Company: "acme", SessionID: id,
		Reason: worker.RestartCrashed, URL: "https://shop.example/checkout", At: time.Now()})
	events, err := e.audit.List(context.Background(), "acme", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == audit.TypeBrowserRestarted {
			want := map[string]string{"reason": "crashed", "url": "https://shop.example/checkout"}
			if d := cmp.Diff(want, ev.Details); d != "" || ev.Actor != audit.ActorSystem {
				t.Fatalf("audit event %+v; details (-want +got):\n%s", ev, d)
			}
			return
		}
	}
	t.Fatalf("no %s audit event in %+v", audit.TypeBrowserRestarted, events)
}
