package worker

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
)

// animPage changes its colour on every animation frame: Chromium has a
// new picture to capture all the time.
const animPage = `<!doctype html><html><body style="margin:0;height:100vh"><script>
let n = 0;
const tick = () => { n++; document.body.style.background = 'rgb(' + (n % 256) + ',0,' + (255 - n % 256) + ')'; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
</script></body></html>`

func pauseRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/anim", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, animPage) })
}

// waitMetric polls the worker's metric name until ok says yes, failing the
// test after 20 s.
func waitMetric(t *testing.T, w *Worker, name string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := gather(t, w)[name]
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s stayed at %v", name, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// capturedIn counts the frames the worker decoded within d.
func capturedIn(t *testing.T, w *Worker, d time.Duration) float64 {
	t.Helper()
	c0 := gather(t, w)["tandem_frames_captured_total"]
	time.Sleep(d)
	return gather(t, w)["tandem_frames_captured_total"] - c0
}

// A session nobody watches stops capturing its moving page once
// PauseCaptureAfter has passed; a viewer starts it again at once, and the
// viewer's video moves; when the last viewer leaves, it stops again.
func TestCaptureStopsWhileNobodyWatches(t *testing.T) {
	h := newHarness(t, Config{PauseCaptureAfter: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep := h.leaseWith(t, LeaseRequest{Company: "acme", SessionID: "s_pause", StartURL: "/anim"}); rep.Error != "" {
		t.Fatalf("lease = %+v", rep)
	}
	paused := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	waitMetric(t, h.w, "tandem_sessions_capture_paused", paused(1))
	capturedIn(t, h.w, 500*time.Millisecond) // a frame in flight
	if n := capturedIn(t, h.w, 2*time.Second); n > 0 {
		t.Fatalf("%v frames captured in 2 s of a session nobody watches", n)
	}

	customer := h.join(ctx, t, "acme", "s_pause", RoleCustomer)
	h.gate(t, Gate{Company: "acme", SessionID: "s_pause", Consented: true}, "")
	if got := gather(t, h.w)["tandem_sessions_capture_paused"]; got != 0 {
		t.Errorf("tandem_sessions_capture_paused = %v once the customer watches, want 0", got)
	}
	first, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.Width == 1280 })
	if err != nil {
		t.Fatalf("the customer never saw the page: %v", err)
	}
	later, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.N >= first.N+5 })
	if err != nil {
		t.Fatalf("the customer's video did not move after picture %d: %v", first.N, err)
	}
	if n := capturedIn(t, h.w, time.Second); n < 3 {
		t.Errorf("%v frames captured in 1 s while the customer watches (their picture %d)", n, later.N)
	}

	if err := customer.Close(); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, h.w, "tandem_sessions_capture_paused", paused(1))
	capturedIn(t, h.w, 500*time.Millisecond)
	if n := capturedIn(t, h.w, 2*time.Second); n > 0 {
		t.Fatalf("%v frames captured in 2 s after the last viewer left", n)
	}
}
