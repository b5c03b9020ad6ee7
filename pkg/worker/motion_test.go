package worker

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/browserpool"
	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
)

// While a session's page moves slower than the pool's MotionFPS, its
// browser captures it at 3/4 size (browserpool/motion.go); the viewers'
// video keeps the viewport's size and keeps moving, and the metrics say
// so. A pool whose every motion is too slow makes it certain here.
func TestReducedCaptureKeepsTheViewersVideoSize(t *testing.T) {
	pool, err := browserpool.New(browserpool.Config{Warm: -1, MotionFPS: 1000}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	h := newHarnessPool(t, Config{}, rtc.Config{Loopback: true}, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_motion", StartURL: "/anim"}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	customer := h.join(ctx, t, "acme", "s_motion", RoleCustomer)
	h.gate(t, Gate{Company: "acme", SessionID: "s_motion", Consented: true}, "")
	waitMetric(t, h.w, "tandem_sessions_capture_reduced", func(v float64) bool { return v == 1 })
	if n := gather(t, h.w)["tandem_session_capture_switches_total{acme}{s_motion}"]; n < 1 {
		t.Errorf("tandem_session_capture_switches_total = %v while reduced", n)
	}
	first, err := customer.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	for n := first.N + 1; n <= first.N+10; n++ {
		p, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.N >= n })
		if err != nil {
			t.Fatalf("the customer's video stopped at picture %d: %v", n-1, err)
		}
		if p.Width != 1280 || p.Height != 720 {
			t.Fatalf("picture %d is %dx%d while the capture is reduced, want the viewport's 1280x720", p.N, p.Width, p.Height)
		}
	}
	if got := gather(t, h.w)["tandem_sessions_capture_reduced"]; got != 1 {
		t.Errorf("tandem_sessions_capture_reduced = %v while the page animates", got)
	}
}
