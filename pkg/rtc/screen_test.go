package rtc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// offerWith returns a pion viewer's offer with the tab's recvonly video
// m-line and then, if second is not zero, a second video m-line in that
// direction (sendonly with a track, as a customer's page).
func offerWith(t *testing.T, second webrtc.RTPTransceiverDirection) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	switch second {
	case webrtc.RTPTransceiverDirectionRecvonly:
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: second}); err != nil {
			t.Fatal(err)
		}
	case webrtc.RTPTransceiverDirectionSendonly:
		tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "page")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: second}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pc.CreateDataChannel("input", nil); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// videoSections returns each video m-line's direction and msid, in order.
func videoSections(sdp string) []string {
	var out []string
	for _, sec := range strings.Split(sdp, "\r\nm=")[1:] {
		if !strings.HasPrefix(sec, "video") {
			continue
		}
		dir, msid := "", ""
		for _, l := range strings.Split(sec, "\r\n") {
			switch {
			case l == "a=sendonly" || l == "a=recvonly" || l == "a=sendrecv" || l == "a=inactive":
				dir = l[2:]
			case strings.HasPrefix(l, "a=msid:"):
				msid = strings.Fields(l[len("a=msid:"):])[0]
			}
		}
		out = append(out, dir+" "+msid)
	}
	return out
}

// The screen's m-line (docs/screenshare.md): an agent's second recvonly
// m-line carries the screen track; a customer's second sendonly one is
// received; any other combination shares nothing, and an older page's
// offer with the tab only still works.
func TestPeerScreenMLines(t *testing.T) {
	a, err := NewAPI(Config{Loopback: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tab, _ := a.NewTrack("agent")
	screen, err := a.NewScreenTrack()
	if err != nil {
		t.Fatal(err)
	}
	agent := PeerConfig{ViewerID: "va", Role: "agent", Track: tab, ScreenTrack: screen}
	customer := PeerConfig{ViewerID: "vc", Role: "customer", Track: tab, OnScreenRTP: func(*rtp.Packet) {}}
	const none = webrtc.RTPTransceiverDirectionUnknown
	tests := []struct {
		name       string
		cfg        PeerConfig
		second     webrtc.RTPTransceiverDirection
		wantScreen bool
		want       []string
	}{
		{"agent", agent, webrtc.RTPTransceiverDirectionRecvonly, true, []string{"sendonly tandem-agent", "sendonly tandem-screen"}},
		{"agent's older page", agent, none, false, []string{"sendonly tandem-agent"}},
		{"agent that sends", agent, webrtc.RTPTransceiverDirectionSendonly, false, []string{"sendonly tandem-agent", "recvonly "}},
		{"customer", customer, webrtc.RTPTransceiverDirectionSendonly, true, []string{"sendonly tandem-agent", "recvonly "}},
		{"customer's older page", customer, none, false, []string{"sendonly tandem-agent"}},
		// pion answers the direction the offer allows, with no track on it:
		// nothing is ever sent there.
		{"customer that asks for a screen", customer, webrtc.RTPTransceiverDirectionRecvonly, false, []string{"sendonly tandem-agent", "sendonly "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.NewPeer(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			answer, err := p.Answer(ctx, offerWith(t, tt.second))
			if err != nil {
				t.Fatal(err)
			}
			if got := videoSections(answer); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("answer's video m-lines = %q, want %q", got, tt.want)
			}
			if got := p.HasScreen(); got != tt.wantScreen {
				t.Errorf("HasScreen() = %v, want %v", got, tt.wantScreen)
			}
			if !strings.Contains(answer, sdesMidURI) {
				t.Errorf("answer lacks the mid extension:\n%s", answer)
			}
		})
	}
}
