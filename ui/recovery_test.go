package ui

import (
	"context"
	"testing"
)

// The viewers' side of a browser restart (docs/recovery.md): both roles
// show a banner over the held picture while the worker restarts the
// browser, in place of the agent's masking banner, and a toast when it is
// back; a state they do not know changes nothing.
func TestBrowserRestartBanner(t *testing.T) {
	const (
		restartingEN = "The shared browser stopped and is restarting on the same page…"
		restoredEN   = "The shared browser is back."
	)
	srv := newFakeServer(t)
	w := srv.worker
	w.setFrame(encodeFrame(t, srv, nil, 1280, 720), 1280, 720)
	for i, c := range []struct {
		role string
		open func() context.Context
	}{
		{"agent", func() context.Context { return agentLive(t, srv, "s_restart") }},
		{"customer", func() context.Context { return customerLive(t, srv) }},
	} {
		ctx := c.open()
		n := i + 1 // the pages' input channels, in the order they opened
		w.waitInput(t, ctx, n)
		banner := func() string {
			return eval[string](t, ctx, `(() => {
				const b = document.querySelector('.viewer-browser');
				const m = document.querySelector('.viewer-masking');
				return [document.querySelector('.viewer-stage').dataset.browser ?? '', b.checkVisibility(),
					b.textContent.trim(), m ? m.checkVisibility() : 'none'].join('|');
			})()`)
		}
		masking := "none"
		if c.role == "agent" {
			masking = "false"
			send(t, w, n, map[string]any{"type": "masking", "state": "paused", "reason": "navigating"})
			waitJS(t, ctx, "paused", `document.querySelector('.viewer-stage').dataset.masking === 'paused'`)
		}
		held := map[string]string{"agent": "true", "customer": "none"}[c.role] // the agent's masking banner
		if got := banner(); got != "|false|"+restartingEN+"|"+held {
			t.Errorf("%s before any browser notice: %q, want no banner", c.role, got)
		}
		send(t, w, n, map[string]any{"type": "browser", "state": "restarting", "reason": "lost"})
		waitJS(t, ctx, c.role+" restarting", `document.querySelector('.viewer-stage').dataset.browser === 'restarting'`)
		if got, want := banner(), "restarting|true|"+restartingEN+"|"+masking; got != want {
			t.Errorf("%s restarting: %q, want %q", c.role, got, want)
		}
		if !eval[bool](t, ctx, `(() => {
			const b = document.querySelector('.viewer-browser').getBoundingClientRect();
			const top = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
			return b.width > 0 && document.querySelector('.viewer-browser').contains(top);
		})()`) {
			t.Errorf("%s: the restarting banner is not on top", c.role)
		}
		shot(t, ctx, c.role+"-browser-restarting-desktop")
		send(t, w, n, map[string]any{"type": "browser", "state": "from_a_newer_worker"})
		send(t, w, n, map[string]any{"type": "browser", "state": "restored"})
		waitJS(t, ctx, c.role+" restored toast", `(() => { const e = document.querySelector('.viewer-toast'); return !e.hidden && e.textContent === '`+restoredEN+`'; })()`)
		if got := banner(); got != "|false|"+restartingEN+"|"+held {
			t.Errorf("%s restored: %q, want the banner gone (and the agent's masking banner back)", c.role, got)
		}
	}
}
