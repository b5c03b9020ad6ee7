package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Real captures: what Chromium's RTCPeerConnection produced in the viewer page.
var (
	realOffer     = `{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Xh3v\r\na=ice-pwd:9ZxJ1y7x8b2kKq8Z0m5n6p7q\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"}`
	realCandidate = `{"type":"candidate","candidate":{"candidate":"candidate:1840965416 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 ufrag Xh3v network-id 1","sdpMid":"0","sdpMLineIndex":0}}`
	realInputs    = []string{
		`{"type":"mouse","action":"down","x":100,"y":200,"button":"left","buttons":1,"clicks":1,"mods":0}`,
		`{"type":"mouse","action":"move","x":101.5,"y":201.25,"buttons":0}`,
		`{"type":"wheel","x":100,"y":200,"dx":0,"dy":120}`,
		`{"type":"key","action":"down","key":"a","code":"KeyA","keyCode":65,"text":"a","mods":0}`,
		`{"type":"key","action":"up","key":"Enter","code":"Enter","keyCode":13}`,
		`{"type":"text","text":"こんにちは"}`,
		`{"type":"viewport","width":1280,"height":720}`,
	}
)

func TestDecodeClientSignal(t *testing.T) {
	mid := "0"
	var zero uint16
	tests := []struct {
		name string
		in   string
		want Signal
		err  bool
	}{
		{"offer", realOffer, Signal{Type: TypeOffer, SDP: mustSDP(t, realOffer)}, false},
		{"candidate", realCandidate, Signal{Type: TypeCandidate, Candidate: &Candidate{
			Candidate: "candidate:1840965416 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 ufrag Xh3v network-id 1", SDPMid: &mid, SDPMLineIndex: &zero}}, false},
		{"end of candidates", `{"type":"candidate","candidate":{"candidate":""}}`, Signal{Type: TypeCandidate, Candidate: &Candidate{}}, false},
		{"bye", `{"type":"bye"}`, Signal{Type: TypeBye}, false},
		{"unknown type", `{"type":"answer","sdp":"x"}`, Signal{}, true},
		{"unknown field", `{"type":"bye","x":1}`, Signal{}, true},
		{"server field", `{"type":"bye","reason":"x"}`, Signal{}, true},
		{"offer without sdp", `{"type":"offer"}`, Signal{}, true},
		{"candidate missing", `{"type":"candidate"}`, Signal{}, true},
		{"trailing data", `{"type":"bye"}{"type":"bye"}`, Signal{}, true},
		{"not an object", `[1,2]`, Signal{}, true},
		{"too large", `{"type":"offer","sdp":"` + strings.Repeat("a", MaxSignalBytes) + `"}`, Signal{}, true},
		{"wrong type", `{"type":1}`, Signal{}, true},
		{"invalid utf8", "{\"type\":\"bye\xff\"}", Signal{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeClientSignal([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrBadMessage) {
					t.Fatalf("DecodeClientSignal(%.60q) error = %v, want ErrBadMessage", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeClientSignal(%.60q) = %v", tt.in, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("DecodeClientSignal(%.60q) mismatch (-want +got):\n%s", tt.in, d)
			}
		})
	}
}

func mustSDP(t *testing.T, msg string) string {
	t.Helper()
	var s struct{ SDP string }
	if err := json.Unmarshal([]byte(msg), &s); err != nil {
		t.Fatal(err)
	}
	return s.SDP
}

func TestDecodeInput(t *testing.T) {
	for _, in := range realInputs {
		if _, err := DecodeInput([]byte(in)); err != nil {
			t.Errorf("DecodeInput(%s) = %v, want ok", in, err)
		}
	}
	bad := []string{
		`{"type":"mouse","action":"hover","x":1,"y":1}`,
		`{"type":"mouse","action":"down","button":"fourth"}`,
		`{"type":"mouse","action":"down","clicks":99}`,
		`{"type":"key","action":"down","key":"` + strings.Repeat("k", 40) + `"}`,
		`{"type":"key","action":"press"}`,
		`{"type":"text","text":""}`,
		`{"type":"text","text":"` + strings.Repeat("x", input.MaxTextLen+1) + `"}`,
		`{"type":"wheel","dy":1e9}`,
		`{"type":"viewport","width":0,"height":720}`,
		`{"type":"mouse","action":"move","mods":99}`,
		`{"type":"launch"}`,
		`{"type":"mouse","action":"move","x":"1"}`,
		`{"type":"mouse","action":"move","extra":true}`,
	}
	for _, in := range bad {
		if _, err := DecodeInput([]byte(in)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("DecodeInput(%.80s) error = %v, want ErrBadMessage", in, err)
		}
	}
}

func TestDecodeServerSignal(t *testing.T) {
	for _, s := range []Signal{
		{Type: TypeHello, Role: "customer", ViewerID: "v_1"},
		{Type: TypeAnswer, SDP: "v=0"},
		{Type: TypeEnded, Reason: "agent_ended"},
		{Type: TypeError, Error: "negotiation_failed", Message: "x"},
		{Type: TypeState, State: "active", Viewers: &Viewers{Customers: 1, Agents: 2}},
	} {
		got, err := DecodeServerSignal(Encode(s))
		if err != nil {
			t.Fatalf("DecodeServerSignal(Encode(%+v)) = %v", s, err)
		}
		if d := cmp.Diff(s, got); d != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", d)
		}
	}
	if _, err := DecodeServerSignal([]byte(`{"type":"offer","sdp":"x"}`)); err == nil {
		t.Error("DecodeServerSignal accepted a client offer")
	}
}

func FuzzDecodeClientSignal(f *testing.F) {
	f.Add([]byte(realOffer))
	f.Add([]byte(realCandidate))
	f.Add([]byte(`{"type":"bye"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeClientSignal(data)
		if err != nil {
			return
		}
		// What we accept re-encodes to something we accept again, unchanged.
		again, err := DecodeClientSignal(Encode(s))
		if err != nil {
			t.Fatalf("re-decode of accepted %q: %v", data, err)
		}
		if d := cmp.Diff(s, again); d != "" {
			t.Fatalf("round trip changed the message: %s", d)
		}
	})
}

func FuzzDecodeServerSignal(f *testing.F) {
	f.Add([]byte(`{"type":"answer","sdp":"v=0"}`))
	f.Add([]byte(realCandidate))
	f.Add([]byte(`{"type":"ended","reason":"idle"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeServerSignal(data)
		if err != nil {
			return
		}
		if _, err := DecodeServerSignal(Encode(s)); err != nil {
			t.Fatalf("re-decode of accepted %q: %v", data, err)
		}
	})
}

func FuzzDecodeInput(f *testing.F) {
	for _, in := range realInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeInput(data)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event %q: %v", data, err)
		}
		c := e.Clamp(1280, 720)
		if c.X < 0 || c.X > 1279 || c.Y < 0 || c.Y > 719 {
			t.Fatalf("Clamp left (%v,%v) outside the viewport", c.X, c.Y)
		}
		if c.Kind == input.KindViewport && (c.Width < input.MinViewportW || c.Height > input.MaxViewportH) {
			t.Fatalf("Clamp left viewport %dx%d out of range", c.Width, c.Height)
		}
		b, _ := json.Marshal(e)
		if !bytes.Contains(b, []byte(`"type"`)) {
			t.Fatalf("re-encoded event has no type: %s", b)
		}
	})
}

func TestDecodeViewerMessage(t *testing.T) {
	ev, ctl, err := DecodeViewerMessage([]byte(`{"type":"control","action":"request"}`))
	if err != nil || ctl == nil || ctl.Action != ControlRequest || ev.Kind != "" {
		t.Fatalf("control request = %+v %+v %v", ev, ctl, err)
	}
	ev, ctl, err = DecodeViewerMessage([]byte(`{"type":"mouse","action":"move","x":1,"y":2}`))
	if err != nil || ctl != nil || ev.Kind != input.KindMouse {
		t.Fatalf("mouse move = %+v %+v %v", ev, ctl, err)
	}
	for _, bad := range []string{
		`{"type":"control","action":"take"}`,
		`{"type":"control","action":"grant","viewer_id":"x"}`,
		`{"type":"control"}`,
		`{"type":"control","action":"grant"} {}`,
		`{"type":"steer","action":"grant"}`,
	} {
		if _, ctl, err := DecodeViewerMessage([]byte(bad)); !errors.Is(err, ErrBadMessage) || ctl != nil {
			t.Errorf("DecodeViewerMessage(%s) = %+v, %v; want ErrBadMessage", bad, ctl, err)
		}
	}
}

func FuzzDecodeViewerMessage(f *testing.F) {
	for _, in := range append(realInputs, `{"type":"control","action":"grant"}`) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, ctl, err := DecodeViewerMessage(data)
		if err != nil {
			return
		}
		if ctl != nil {
			if ctl.Type != TypeControl || ev.Kind != "" {
				t.Fatalf("accepted control %q as %+v with event %+v", data, ctl, ev)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted an invalid event %q: %v", data, err)
		}
	})
}
