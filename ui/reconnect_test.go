package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	pinput "github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// watchStatesJS records every change of the viewer's data-state, with its
// data-recovery, as "state/recovery" in window.__states.
const watchStatesJS = `(() => {
	const root = document.querySelector('.viewer');
	window.__states = [];
	new MutationObserver(() => {
		const s = root.dataset.state + '/' + (root.dataset.recovery || '');
		if (window.__states.at(-1) !== s) window.__states.push(s);
	}).observe(root, { attributes: true, attributeFilter: ['data-state', 'data-recovery'] });
	return true;
})()`

// framesDecodedJS is how many video frames the viewer's current peer
// connection decoded.
const framesDecodedJS = `window.tandemViewer.pc.getStats().then((stats) => {
	let n = 0;
	stats.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded || 0; });
	return n;
})`

// waitFor polls ok until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// states returns what watchStatesJS recorded.
func states(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return eval[[]string](t, ctx, `window.__states`)
}

// waitFrames waits until the viewer's current connection decoded more than
// n frames beyond what it had when called: the video flows.
func waitFrames(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	from := eval[int](t, ctx, framesDecodedJS)
	waitFor(t, 15*time.Second, fmt.Sprintf("%d more decoded frames", n), func() bool {
		return eval[int](t, ctx, framesDecodedJS) > from+n
	})
}

// TestViewerRestartsICE breaks the network path of a live customer's peer
// connection for good while its signaling socket stays up: the viewer shows
// "reconnecting", restarts ICE with an offer marked restart on the same
// socket, the fake worker renegotiates the same peer, and the view is live
// again with frames flowing and the same input channel working.
func TestViewerRestartsICE(t *testing.T) {
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 320, 240), 320, 240)
	ctx, _ := newTab(t, 1024, 700, false)
	run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
	waitLive(t, ctx)
	eval[bool](t, ctx, watchStatesJS)

	if err := w.cutICE(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "an ICE-restart offer", func() bool { return w.restartOffers() == 1 })
	waitLive(t, ctx)

	if n := len(srv.calls("GET", "/api/v1/sessions/s_joined/ws")); n != 1 {
		t.Errorf("%d signaling sockets, want 1: the restart must use the open one", n)
	}
	if n := w.signalCount(protocol.TypeOffer); n != 2 {
		t.Errorf("%d offers, want 2 (the first and the restart)", n)
	}
	got := states(t, ctx)
	// "disconnected" shows at once; the restart follows the grace.
	if want := []string{"reconnecting/", "reconnecting/ice-restart", "live/"}; !slices.Equal(got, want) {
		t.Errorf("states = %q, want %q", got, want)
	}
	waitFrames(t, ctx, 3)

	// The peer's "input" channel is the one from before and still carries
	// the customer's clicks.
	if n := w.inputCount(); n != 1 {
		t.Errorf("%d input channels, want the first one only", n)
	}
	from := w.count()
	g := videoGeometry(t, ctx)
	x, y := g.client(100, 100)
	mouse(t, ctx, input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonLeft, 1, 1)
	mouse(t, ctx, input.DispatchMouseEventTypeMouseReleased, x, y, input.MouseButtonLeft, 0, 1)
	w.waitEvent(t, &from, "a click after the restart", isMouse(pinput.ActionDown))
	w.checkClean(t)
}

// TestViewerFallsBackToReconnect breaks the path as above, but the worker
// refuses the ICE restart or never answers it: the viewer gives up on it
// (at once, or after its bound) and reconnects with a new socket and a new
// peer connection, "reconnecting" throughout.
func TestViewerFallsBackToReconnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode restartMode
	}{
		{"refused", restartRefuse},
		{"unanswered", restartIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			w := srv.worker
			w.setFrame(encodeFrame(t, srv, nil, 320, 240), 320, 240)
			w.setRestart(tc.mode)
			ctx, _ := newTab(t, 1024, 700, false)
			run(t, ctx, "open customer view", chromedp.Navigate(srv.URL+"/s/s_joined"))
			waitLive(t, ctx)
			eval[bool](t, ctx, watchStatesJS)

			if err := w.cutICE(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "an ICE-restart offer", func() bool { return w.restartOffers() == 1 })
			waitFor(t, 30*time.Second, "a second signaling socket", func() bool {
				return len(srv.calls("GET", "/api/v1/sessions/s_joined/ws")) == 2
			})
			waitLive(t, ctx)

			if n := w.signalCount(protocol.TypeOffer); n != 3 {
				t.Errorf("%d offers, want 3 (the first, the restart, the new connection's)", n)
			}
			if n := w.restartOffers(); n != 1 {
				t.Errorf("%d restart offers, want 1", n)
			}
			got := states(t, ctx)
			if want := []string{"reconnecting/", "reconnecting/ice-restart", "reconnecting/reconnect", "live/"}; !slices.Equal(got, want) {
				t.Errorf("states = %q, want %q", got, want)
			}
			if strings.Contains(eval[string](t, ctx, `document.querySelector('.viewer-toast')?.textContent || ''`), "restarted") {
				t.Errorf("the refused restart was shown as an error toast")
			}
			waitFrames(t, ctx, 3)
			w.checkClean(t)
		})
	}
}
