package worker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// recoverPage is green until a press on it turns it blue (a state a
// reload forgets), with a magenta password field: the agents' canary.
const recoverPage = `<!doctype html><html><head><style>
html,body{margin:0;height:100%;background:#0c0}
body.clicked{background:#00f}
#pw{position:absolute;left:100px;top:100px;width:300px;height:60px;border:0;padding:0;box-sizing:border-box;background:#f0f;color:#f0f}
</style></head><body>
<input id="pw" type="password" aria-label="password">
<script>document.body.addEventListener('mousedown', e => { if (e.target === document.body) document.body.classList.add('clicked') });</script>
</body></html>`

// recoverLimit bounds how long a test waits for the picture of a restarted
// browser; generous, as the machine is shared (docs/recovery.md gives the
// measured times).
const recoverLimit = 45 * time.Second

func recoverRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/recover", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, recoverPage) })
}

// green says whether a YUV pixel is the page's green (U and V low).
func green(_, u, v byte) bool { return u < 100 && v < 100 }

// canaryIn reports whether p shows the password field's magenta.
func canaryIn(p botviewer.Picture) bool {
	for y := 96; y < 164; y += 4 {
		for x := 96; x < 404; x += 4 {
			if magenta(at(p, x, y)) {
				return true
			}
		}
	}
	return false
}

// watchCanary counts the agent's pictures that show the canary, until ctx
// ends; done is closed when it stopped.
func watchCanary(ctx context.Context, agent *botviewer.Viewer, leaks *atomic.Int64) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		last := -1
		_, _ = agent.WaitPicture(ctx, func(p botviewer.Picture) bool {
			if p.N != last {
				last = p.N
				if canaryIn(p) {
					leaks.Add(1)
				}
			}
			return false
		})
	}()
	return done
}

// onRecoverPage leases a consented session on the colour page, has the
// customer go to the recover page (so that the page to reopen is not the
// start page) and press it blue, and checks that both see it so, the
// agent with the field masked.
func onRecoverPage(ctx context.Context, t *testing.T, h *harness, id string) (customer, agent *botviewer.Viewer) {
	t.Helper()
	customer, agent = h.consented(ctx, t, LeaseRequest{SessionID: id})
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
			t.Fatalf("no picture of the start page: %v", err)
		}
	}
	to := h.page.URL + "/recover"
	send(ctx, t, customer, protocol.Navigate{Type: protocol.TypeNavigate, Action: protocol.NavigateGo, URL: to})
	waitLocation(ctx, t, customer, "customer", 0, protocol.LocationNotice{URL: to, Back: true})
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return green(centre(p)) && canaryIn(p) }); err != nil {
		t.Fatalf("the customer never saw the recover page: %v", err)
	}
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
			t.Fatalf("the pressed page never showed: %v", err)
		}
	}
	if p, err := agent.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil || canaryIn(p) {
		t.Fatalf("the agent's picture of the recover page (%v) shows the password field", err)
	}
	return customer, agent
}

// restartedPicture waits until v sees the recover page fresh (green: the
// blue of the press is gone with the dead browser, and the start page is
// red) and returns when.
func restartedPicture(ctx context.Context, t *testing.T, v *botviewer.Viewer, who string) (botviewer.Picture, time.Time) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, recoverLimit)
	defer cancel()
	p, err := v.WaitPicture(wctx, func(p botviewer.Picture) bool { return green(centre(p)) })
	if err != nil {
		y, u, vv := centre(p)
		t.Fatalf("%s: no picture of the reopened page within %v: %v (last YUV %d,%d,%d)", who, recoverLimit, err, y, u, vv)
	}
	return p, time.Now()
}

// waitBrowserNotices waits for v's restarting notice (with reason) and,
// after it, the restored one.
func waitBrowserNotices(ctx context.Context, t *testing.T, v *botviewer.Viewer, who, reason string) {
	t.Helper()
	_, i, err := v.WaitNotice(ctx, 0, func(n string) bool {
		return strings.Contains(n, `"type":"browser"`) && strings.Contains(n, `"state":"restarting"`) && strings.Contains(n, `"reason":"`+reason+`"`)
	})
	if err != nil {
		t.Fatalf("%s: no restarting notice (reason %s): %v", who, reason, err)
	}
	if _, _, err := v.WaitNotice(ctx, i+1, func(n string) bool {
		return strings.Contains(n, `"type":"browser"`) && strings.Contains(n, `"state":"restored"`)
	}); err != nil {
		t.Fatalf("%s: no restored notice after the restarting one: %v", who, err)
	}
}

// killGroup SIGKILLs a browser's whole process group, as `kill -9 -pgid`.
func killGroup(t *testing.T, s *session) {
	t.Helper()
	pid := s.lease().PID()
	if pid <= 0 {
		t.Fatalf("the session's browser has no pid (%d)", pid)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 -%d: %v", pid, err)
	}
}

// killRenderers SIGKILLs the renderer processes of a browser (its
// descendants that run with --type=renderer), as a renderer crash; the
// browser itself lives on.
func killRenderers(t *testing.T, browser int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := bytes.Fields(b[i+1:]); len(f) > 1 {
				parent[pid], _ = strconv.Atoi(string(f[1]))
			}
		}
	}
	descends := func(pid int) bool {
		for n := 0; pid > 1 && n < 64; n++ {
			if pid = parent[pid]; pid == browser {
				return true
			}
		}
		return false
	}
	killed := 0
	for pid := range parent {
		if !descends(pid) {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		// The zygote's children rewrite their title: no NULs between args.
		if err != nil || !bytes.Contains(cmd, []byte("--type=renderer")) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no renderer process under the browser %d", browser)
	}
}

// `kill -9` of the browser mid-session: the session lives on with a fresh
// browser on the last page, which both viewers see again; the agent never
// gets the masked field meanwhile; the viewers are told; the restart is
// published; input works on the new browser.
func TestRecoverKilledBrowser(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	customer, agent := onRecoverPage(ctx, t, h, "s_kill")
	s := h.sessionOf(t, "acme", "s_kill")
	old := s.lease()

	var leaks atomic.Int64
	wctx, stopWatch := context.WithCancel(ctx)
	watched := watchCanary(wctx, agent, &leaks)
	killed := time.Now()
	killGroup(t, s)
	select {
	case <-old.Done():
	case <-time.After(recoverLimit):
		t.Fatal("the killed browser's lease never ended")
	}
	detected := time.Since(killed)

	_, custAt := restartedPicture(ctx, t, customer, "customer")
	p, agentAt := restartedPicture(ctx, t, agent, "agent")
	t.Logf("kill -9: detected after %v; the customer saw the page again after %v, the agent after %v",
		detected, custAt.Sub(killed), agentAt.Sub(killed))
	if s.lease() == old {
		t.Fatal("the session still has the dead browser")
	}
	if y, u, v := at(p, 250, 130); !grey(y, u, v) {
		t.Errorf("the password field is YUV %d,%d,%d in the agent's picture of the new browser, want the mask's grey", y, u, v)
	}
	waitBrowserNotices(ctx, t, customer, "customer", RestartLost)
	waitBrowserNotices(ctx, t, agent, "agent", RestartLost)
	if ev := waitEvent(ctx, t, h, EventBrowserRestarted); ev.Reason != RestartLost || ev.URL != h.page.URL+"/recover" || ev.SessionID != "s_kill" {
		t.Errorf("restart event %+v, want reason lost and the recover page", ev)
	}
	if n := gather(t, h.w)[`tandem_browser_restarts_total{restarted}`]; n != 1 {
		t.Errorf("tandem_browser_restarts_total{restarted} = %v, want 1", n)
	}

	// The new browser takes input: a press turns the page blue again.
	if err := customer.Click(ctx, 640, 360); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*botviewer.Viewer{"customer": customer, "agent": agent} {
		if _, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsBlue(centre(p)) }); err != nil {
			t.Fatalf("%s: a press on the new browser never showed: %v", name, err)
		}
	}
	stopWatch()
	<-watched
	if n := leaks.Load(); n > 0 {
		t.Fatalf("the agent saw the password field in %d pictures around the restart", n)
	}
}

// A renderer crash (its process killed; the browser lives) is recovered
// the same way, at the size the customer's window gave the tab.
func TestRecoverCrashedRenderer(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	customer, agent := onRecoverPage(ctx, t, h, "s_crash")
	s := h.sessionOf(t, "acme", "s_crash")
	if err := customer.Send(ctx, input.Event{Kind: input.KindViewport, Width: 800, Height: 600}); err != nil {
		t.Fatal(err)
	}
	sized := func(p botviewer.Picture) bool {
		return p.Width == 800 && p.Height == 600 && botviewer.IsBlue(centre(p))
	}
	for _, v := range []*botviewer.Viewer{customer, agent} {
		if _, err := v.WaitPicture(ctx, sized); err != nil {
			t.Fatalf("no 800x600 picture after the customer's resize: %v", err)
		}
	}
	old := s.lease()

	var leaks atomic.Int64
	wctx, stopWatch := context.WithCancel(ctx)
	watched := watchCanary(wctx, agent, &leaks)
	killed := time.Now()
	killRenderers(t, old.PID())
	select {
	case <-old.Done():
	case <-time.After(recoverLimit):
		t.Fatal("the lease never noticed the renderer's crash")
	}
	detected := time.Since(killed)
	pc, custAt := restartedPicture(ctx, t, customer, "customer")
	pa, agentAt := restartedPicture(ctx, t, agent, "agent")
	for _, p := range []botviewer.Picture{pc, pa} {
		if p.Width != 800 || p.Height != 600 {
			t.Errorf("a picture of the new browser is %dx%d, want the customer's 800x600", p.Width, p.Height)
		}
	}
	t.Logf("renderer crash: detected after %v; the customer saw the page again after %v, the agent after %v",
		detected, custAt.Sub(killed), agentAt.Sub(killed))
	waitBrowserNotices(ctx, t, customer, "customer", RestartCrashed)
	if ev := waitEvent(ctx, t, h, EventBrowserRestarted); ev.Reason != RestartCrashed {
		t.Errorf("restart event %+v, want reason crashed", ev)
	}
	stopWatch()
	<-watched
	if n := leaks.Load(); n > 0 {
		t.Fatalf("the agent saw the password field in %d pictures around the restart", n)
	}
}

// A browser that keeps dying ends the session as browser_failed once the
// restarts allowed are spent.
func TestRecoverGivesUp(t *testing.T) {
	h := newHarness(t, Config{MaxRestarts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	customer, _ := h.consented(ctx, t, LeaseRequest{SessionID: "s_dies"})
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("no picture of the start page: %v", err)
	}
	s := h.sessionOf(t, "acme", "s_dies")
	killGroup(t, s)
	if ev := waitEvent(ctx, t, h, EventBrowserRestarted); ev.Reason != RestartLost {
		t.Fatalf("restart event %+v", ev)
	}
	killGroup(t, s)
	reason, err := customer.WaitEnded(ctx)
	if err != nil || reason != ReasonBrowserFailed {
		t.Fatalf("viewer ended = %q, %v; want %q", reason, err, ReasonBrowserFailed)
	}
	if ev := waitEvent(ctx, t, h, "ended"); ev.Reason != ReasonBrowserFailed {
		t.Errorf("ended event %+v, want reason %s", ev, ReasonBrowserFailed)
	}
	if n := gather(t, h.w)[`tandem_browser_restarts_total{failed}`]; n != 1 {
		t.Errorf("tandem_browser_restarts_total{failed} = %v, want 1", n)
	}
}

// With restarts off, a dead browser ends the session as before.
func TestRecoverOff(t *testing.T) {
	h := newHarness(t, Config{MaxRestarts: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	customer, _ := h.consented(ctx, t, LeaseRequest{SessionID: "s_off"})
	if _, err := customer.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) }); err != nil {
		t.Fatalf("no picture of the start page: %v", err)
	}
	killGroup(t, h.sessionOf(t, "acme", "s_off"))
	if reason, err := customer.WaitEnded(ctx); err != nil || reason != ReasonBrowserLost {
		t.Fatalf("viewer ended = %q, %v; want %q", reason, err, ReasonBrowserLost)
	}
}
