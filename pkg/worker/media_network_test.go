package worker

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
)

// TestViewerOverICETCP: a Go viewer that can use TCP only (a network that
// drops UDP) watches a real session through the worker's ICE TCP port and
// decodes the page; with the port off the same viewer gets no picture.
func TestViewerOverICETCP(t *testing.T) {
	tcpOnly := botviewer.Options{NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeTCP4}}
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "port on", false: "port off"}[on]
		t.Run(name, func(t *testing.T) {
			rc := rtc.Config{Loopback: true}
			if on {
				l, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				rc.ICETCPPort = l.Addr().(*net.TCPAddr).Port
				l.Close()
			}
			h := newHarnessRTC(t, Config{}, rc)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if rep := h.lease(t, "acme", "s_tcp"); rep.Error != "" {
				t.Fatalf("lease = %+v", rep)
			}
			v := h.joinWith(ctx, t, "acme", "s_tcp", RoleCustomer, tcpOnly)
			if on {
				p, err := v.WaitPicture(ctx, func(p botviewer.Picture) bool { return botviewer.IsRed(centre(p)) })
				if err != nil {
					t.Fatalf("the TCP-only viewer never saw the red page: %v (last %dx%d)", err, p.Width, p.Height)
				}
				return
			}
			// Over loopback a picture comes within a second or two.
			wctx, wcancel := context.WithTimeout(ctx, 8*time.Second)
			defer wcancel()
			p, err := v.WaitPicture(wctx, func(botviewer.Picture) bool { return true })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the TCP-only viewer got a %dx%d picture (err %v) with ICE TCP off", p.Width, p.Height, err)
			}
		})
	}
}
