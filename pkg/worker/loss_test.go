package worker

import (
	"context"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
)

// roleRate is the target bitrate of role's stream in session id.
func (h *harness) roleRate(t *testing.T, id, role string) int {
	t.Helper()
	h.w.mu.Lock()
	s := h.w.sessions["acme/"+id]
	h.w.mu.Unlock()
	if s == nil {
		t.Fatalf("no session %s", id)
	}
	return s.enc[role].Stats().BitrateKbps
}

// A customer whose receiver reports say it loses packets lowers the
// customers' bitrate and not the agents'; once its losses stop, the
// bitrate climbs back.
func TestBitrateFollowsViewerLoss(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const id = "s_loss"
	if rep := h.lease(t, "acme", id); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", id, RoleCustomer)
	agent := h.join(ctx, t, "acme", id, RoleAgent)
	h.gate(t, Gate{Company: "acme", SessionID: id, Consented: true}, "")
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 }); err != nil {
			t.Fatalf("no picture: %v", err)
		}
	}
	full := h.roleRate(t, id, RoleCustomer)
	report := func(loss float64, d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			if err := customer.SendLoss(loss); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	report(0.5, 4*time.Second)
	low := h.roleRate(t, id, RoleCustomer)
	if low >= full*3/4 {
		t.Fatalf("after 4 s of half the packets lost the customers' bitrate is %d kbps, want well under %d", low, full)
	}
	if got := h.roleRate(t, id, RoleAgent); got != full {
		t.Errorf("the agents' bitrate is %d kbps, want %d: only customers lost packets", got, full)
	}
	report(0, 1500*time.Millisecond) // the window with the last losses closes
	low = h.roleRate(t, id, RoleCustomer)
	report(0, 3*time.Second)
	if got := h.roleRate(t, id, RoleCustomer); got <= low {
		t.Errorf("after 3 s without loss the customers' bitrate is %d kbps, want it climbing from %d", got, low)
	}
}
