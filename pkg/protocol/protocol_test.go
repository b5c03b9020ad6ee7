package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

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
		`{"type":"touch","action":"start","touches":[{"id":0,"x":187.5,"y":402}]}`,
		`{"type":"touch","action":"move","touches":[{"id":0,"x":150,"y":380.25},{"id":1,"x":240,"y":500}]}`,
		`{"type":"touch","action":"end","touches":[{"id":1,"x":240,"y":500}]}`,
		`{"type":"touch","action":"end"}`,
		`{"type":"touch","action":"cancel"}`,
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
		{"ICE restart offer", `{"type":"offer","sdp":"v=0","restart":true}`, Signal{Type: TypeOffer, SDP: "v=0", Restart: true}, false},
		{"restart without sdp", `{"type":"offer","restart":true}`, Signal{}, true},
		{"restart on a candidate", `{"type":"candidate","candidate":{"candidate":""},"restart":true}`, Signal{}, true},
		{"restart on a bye", `{"type":"bye","restart":true}`, Signal{}, true},
		{"restart not a boolean", `{"type":"offer","sdp":"v=0","restart":"yes"}`, Signal{}, true},
		{"unknown type", `{"type":"answer","sdp":"x"}`, Signal{}, true},
		{"unknown field", `{"type":"bye","x":1}`, Signal{}, true},
		{"server field", `{"type":"bye","reason":"x"}`, Signal{}, true},
		{"ice servers from a viewer", `{"type":"bye","ice_servers":[{"urls":["turn:evil.example"]}]}`, Signal{}, true},
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
		`{"type":"touch","action":"start"}`,
		`{"type":"touch","action":"start","touches":[{"id":0,"x":1,"y":1,"force":1}]}`,
		`{"type":"touch","action":"move","touches":[{"id":0,"x":1,"y":1},{"id":0,"x":2,"y":2}]}`,
		`{"type":"touch","action":"move","touches":[{"id":99,"x":1,"y":1}]}`,
		`{"type":"touch","action":"move","touches":[{"id":0,"x":"1","y":1}]}`,
		`{"type":"touch","action":"start","touches":[{"id":0},{"id":1},{"id":2},{"id":3},{"id":4},{"id":5}]}`,
		`{"type":"touch","action":"cancel","touches":[{"id":0,"x":1,"y":1}]}`,
		`{"type":"touch","action":"down","touches":[{"id":0,"x":1,"y":1}]}`,
		`{"type":"mouse","action":"down","touches":[{"id":0,"x":1,"y":1}]}`,
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
		{Type: TypeHello, Role: "agent", ViewerID: "v_2", ICEServers: []ICEServer{
			{URLs: []string{"stun:stun.example.com:3478"}},
			{URLs: []string{"turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp"}, Username: "1767225600:v_2", Credential: "c2VjcmV0"}}},
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
	if _, err := DecodeServerSignal([]byte(`{"type":"answer","sdp":"x","restart":true}`)); err == nil {
		t.Error("DecodeServerSignal accepted an answer marked restart")
	}
	if _, err := DecodeServerSignal([]byte(`{"type":"answer","sdp":"x","ice_servers":[{"urls":["stun:a.example"]}]}`)); err == nil {
		t.Error("DecodeServerSignal accepted ice_servers outside the hello")
	}
}

func FuzzDecodeClientSignal(f *testing.F) {
	f.Add([]byte(realOffer))
	f.Add([]byte(strings.TrimSuffix(realOffer, "}") + `,"restart":true}`)) // an ICE restart
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
		if len(e.Touches) > input.MaxTouches || len(c.Touches) != len(e.Touches) {
			t.Fatalf("%d touches accepted, %d after Clamp", len(e.Touches), len(c.Touches))
		}
		for _, p := range c.Touches {
			if p.X < 0 || p.X > 1279 || p.Y < 0 || p.Y > 719 || p.ID < 0 || p.ID > input.MaxTouchID {
				t.Fatalf("Clamp left touch %+v outside the viewport or ids", p)
			}
		}
		b, _ := json.Marshal(e)
		if !bytes.Contains(b, []byte(`"type"`)) {
			t.Fatalf("re-encoded event has no type: %s", b)
		}
	})
}

func TestDecodeViewerMessage(t *testing.T) {
	m, err := DecodeViewerMessage([]byte(`{"type":"control","action":"request"}`))
	if err != nil || m.Control == nil || m.Control.Action != ControlRequest || m.Event.Kind != "" || m.Annotate != nil || m.Chat != nil {
		t.Fatalf("control request = %+v %v", m, err)
	}
	m, err = DecodeViewerMessage([]byte(`{"type":"mouse","action":"move","x":1,"y":2}`))
	if err != nil || m.Control != nil || m.Annotate != nil || m.Chat != nil || m.Event.Kind != input.KindMouse {
		t.Fatalf("mouse move = %+v %v", m, err)
	}
	for _, bad := range []string{
		`{"type":"control","action":"take"}`,
		`{"type":"control","action":"grant","viewer_id":"x"}`,
		`{"type":"control"}`,
		`{"type":"control","action":"grant"} {}`,
		`{"type":"steer","action":"grant"}`,
	} {
		if m, err := DecodeViewerMessage([]byte(bad)); !errors.Is(err, ErrBadMessage) || m.Control != nil {
			t.Errorf("DecodeViewerMessage(%s) = %+v, %v; want ErrBadMessage", bad, m, err)
		}
	}
}

// points returns a stroke message's points list of n points.
func points(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = "[1.5,2]"
	}
	return "[" + strings.Join(p, ",") + "]"
}

// Real messages of the viewer pages (docs/protocol.md, "Annotations and chat").
var realAnnotations = []string{
	`{"type":"annotate","action":"stroke","id":"s1","points":[[100,200],[101.5,203.25]],"pinned":false,"end":false}`,
	`{"type":"annotate","action":"stroke","id":"s1","points":[],"pinned":false,"end":true}`,
	`{"type":"annotate","action":"laser","x":640,"y":1800.5}`,
	`{"type":"annotate","action":"highlight","x":200,"y":130}`,
	`{"type":"annotate","action":"clear"}`,
	`{"type":"chat","text":"こんにちは、どのボタンですか？"}`,
}

func TestDecodeAnnotate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Annotate // nil: refused
	}{
		{"stroke", realAnnotations[0], &Annotate{Type: TypeAnnotate, Action: AnnotateStroke, ID: "s1", Points: [][2]float64{{100, 200}, {101.5, 203.25}}}},
		{"stroke end without points", realAnnotations[1], &Annotate{Type: TypeAnnotate, Action: AnnotateStroke, ID: "s1", Points: [][2]float64{}, End: true}},
		{"stroke pinned, flags absent", `{"type":"annotate","action":"stroke","id":"a_B-9","points":[[-1e6,1e6]],"pinned":true}`,
			&Annotate{Type: TypeAnnotate, Action: AnnotateStroke, ID: "a_B-9", Points: [][2]float64{{-1e6, 1e6}}, Pinned: true}},
		{"stroke of 64 points", `{"type":"annotate","action":"stroke","id":"s","points":` + points(64) + `}`,
			&Annotate{Type: TypeAnnotate, Action: AnnotateStroke, ID: "s", Points: func() [][2]float64 {
				p := make([][2]float64, 64)
				for i := range p {
					p[i] = [2]float64{1.5, 2}
				}
				return p
			}()}},
		{"id of 32", `{"type":"annotate","action":"stroke","id":"` + strings.Repeat("x", 32) + `","points":[]}`,
			&Annotate{Type: TypeAnnotate, Action: AnnotateStroke, ID: strings.Repeat("x", 32), Points: [][2]float64{}}},
		{"laser", realAnnotations[2], &Annotate{Type: TypeAnnotate, Action: AnnotateLaser, X: 640, Y: 1800.5}},
		{"laser at 0,0", `{"type":"annotate","action":"laser","x":0,"y":0}`, &Annotate{Type: TypeAnnotate, Action: AnnotateLaser}},
		{"highlight", realAnnotations[3], &Annotate{Type: TypeAnnotate, Action: AnnotateHighlight, X: 200, Y: 130}},
		{"clear", realAnnotations[4], &Annotate{Type: TypeAnnotate, Action: AnnotateClear}},

		{"stroke without id", `{"type":"annotate","action":"stroke","points":[[1,2]]}`, nil},
		{"empty id", `{"type":"annotate","action":"stroke","id":"","points":[[1,2]]}`, nil},
		{"id of 33", `{"type":"annotate","action":"stroke","id":"` + strings.Repeat("x", 33) + `","points":[[1,2]]}`, nil},
		{"id with a dot", `{"type":"annotate","action":"stroke","id":"a.b","points":[[1,2]]}`, nil},
		{"id with a space", `{"type":"annotate","action":"stroke","id":"a b","points":[[1,2]]}`, nil},
		{"id not ASCII", `{"type":"annotate","action":"stroke","id":"ß","points":[[1,2]]}`, nil},
		{"id a number", `{"type":"annotate","action":"stroke","id":1,"points":[[1,2]]}`, nil},
		{"65 points", `{"type":"annotate","action":"stroke","id":"s","points":` + points(65) + `}`, nil},
		{"a point of one number", `{"type":"annotate","action":"stroke","id":"s","points":[[1]]}`, nil},
		{"a point of three numbers", `{"type":"annotate","action":"stroke","id":"s","points":[[1,2,3]]}`, nil},
		{"a point not a list", `{"type":"annotate","action":"stroke","id":"s","points":[1,2]}`, nil},
		{"a coordinate beyond 1e6", `{"type":"annotate","action":"stroke","id":"s","points":[[1000000.5,2]]}`, nil},
		{"a coordinate below -1e6", `{"type":"annotate","action":"stroke","id":"s","points":[[1,-1e7]]}`, nil},
		{"a coordinate 1e999", `{"type":"annotate","action":"stroke","id":"s","points":[[1e999,2]]}`, nil},
		{"a coordinate NaN", `{"type":"annotate","action":"stroke","id":"s","points":[[NaN,2]]}`, nil},
		{"a coordinate \"NaN\"", `{"type":"annotate","action":"stroke","id":"s","points":[["NaN",2]]}`, nil},
		{"a coordinate Infinity", `{"type":"annotate","action":"laser","x":Infinity,"y":2}`, nil},
		{"a coordinate null", `{"type":"annotate","action":"stroke","id":"s","points":[[null,2]]}`, nil},
		{"pinned not a bool", `{"type":"annotate","action":"stroke","id":"s","points":[],"pinned":1}`, nil},
		{"stroke with x", `{"type":"annotate","action":"stroke","id":"s","points":[],"x":1}`, nil},
		{"laser without y", `{"type":"annotate","action":"laser","x":1}`, nil},
		{"laser with y null", `{"type":"annotate","action":"laser","x":1,"y":null}`, nil},
		{"laser beyond 1e6", `{"type":"annotate","action":"laser","x":1,"y":2e6}`, nil},
		{"laser with an id", `{"type":"annotate","action":"laser","id":"s","x":1,"y":2}`, nil},
		{"highlight with points", `{"type":"annotate","action":"highlight","x":1,"y":2,"points":[]}`, nil},
		{"highlight x a string", `{"type":"annotate","action":"highlight","x":"1","y":2}`, nil},
		{"clear with x", `{"type":"annotate","action":"clear","x":1,"y":2}`, nil},
		{"clear pinned", `{"type":"annotate","action":"clear","pinned":false}`, nil},
		{"remove is the worker's", `{"type":"annotate","action":"remove","id":"h1"}`, nil},
		{"unknown action", `{"type":"annotate","action":"erase"}`, nil},
		{"no action", `{"type":"annotate"}`, nil},
		{"unknown field", `{"type":"annotate","action":"clear","color":"red"}`, nil},
		{"server field", `{"type":"annotate","action":"laser","x":1,"y":2,"viewer_id":"v_1"}`, nil},
		{"trailing data", `{"type":"annotate","action":"clear"}{}`, nil},
		{"too large", `{"type":"annotate","action":"clear","id":"` + strings.Repeat("x", MaxInputBytes) + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeViewerMessage([]byte(tt.in))
			if tt.want == nil {
				if !errors.Is(err, ErrBadMessage) || m.Annotate != nil {
					t.Fatalf("DecodeViewerMessage(%.80s) = %+v, %v; want ErrBadMessage", tt.in, m.Annotate, err)
				}
				return
			}
			if err != nil || m.Control != nil || m.Chat != nil || m.Event.Kind != "" {
				t.Fatalf("DecodeViewerMessage(%.80s) = %+v, %v", tt.in, m, err)
			}
			if d := cmp.Diff(tt.want, m.Annotate); d != "" {
				t.Errorf("DecodeViewerMessage(%.80s) mismatch (-want +got):\n%s", tt.in, d)
			}
		})
	}
}

func TestDecodeChat(t *testing.T) {
	emoji := strings.Repeat("😀", MaxChatChars) // 4 bytes each: the longest chat fits the 8 KiB limit
	tests := []struct {
		name string
		in   string
		want string // "" refused
	}{
		{"japanese", realAnnotations[5], "こんにちは、どのボタンですか？"},
		{"trimmed", `{"type":"chat","text":"  hello\n  "}`, "hello"},
		{"newline inside", `{"type":"chat","text":"line 1\nline 2"}`, "line 1\nline 2"},
		{"2000 characters", `{"type":"chat","text":"` + strings.Repeat("あ", MaxChatChars) + `"}`, strings.Repeat("あ", MaxChatChars)},
		{"2000 emoji", `{"type":"chat","text":"` + emoji + `"}`, emoji},
		{"2000 after trimming", `{"type":"chat","text":"   ` + strings.Repeat("x", MaxChatChars) + `   "}`, strings.Repeat("x", MaxChatChars)},

		{"empty", `{"type":"chat","text":""}`, ""},
		{"only spaces", `{"type":"chat","text":" \n\t "}`, ""},
		{"no text", `{"type":"chat"}`, ""},
		{"2001 characters", `{"type":"chat","text":"` + strings.Repeat("x", MaxChatChars+1) + `"}`, ""},
		{"a tab inside", `{"type":"chat","text":"a\tb"}`, ""},
		{"a carriage return inside", `{"type":"chat","text":"a\r\nb"}`, ""},
		{"NUL", `{"type":"chat","text":"a\u0000b"}`, ""},
		{"escape", `{"type":"chat","text":"a\u001b[31mb"}`, ""},
		{"DEL", "{\"type\":\"chat\",\"text\":\"a\x7fb\"}", ""},
		{"C1 control", `{"type":"chat","text":"a\u0085b"}`, ""},
		{"invalid UTF-8", "{\"type\":\"chat\",\"text\":\"a\xffb\"}", ""},
		{"text a number", `{"type":"chat","text":5}`, ""},
		{"unknown field", `{"type":"chat","text":"hi","to":"agent"}`, ""},
		{"server field", `{"type":"chat","text":"hi","id":"c1"}`, ""},
		{"too large", `{"type":"chat","text":"` + strings.Repeat("x", MaxInputBytes) + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeViewerMessage([]byte(tt.in))
			if tt.want == "" {
				if !errors.Is(err, ErrBadMessage) || m.Chat != nil {
					t.Fatalf("DecodeViewerMessage(%.80q) = %+v, %v; want ErrBadMessage", tt.in, m.Chat, err)
				}
				return
			}
			if err != nil || m.Chat == nil {
				t.Fatalf("DecodeViewerMessage(%.80q) = %+v, %v", tt.in, m, err)
			}
			if m.Chat.Text != tt.want || m.Chat.Type != TypeChat {
				t.Errorf("DecodeViewerMessage(%.80q) text = %.80q, want %.80q", tt.in, m.Chat.Text, tt.want)
			}
		})
	}
}

// The worker's notices carry every field the viewers read, zero values
// included.
func TestAnnotationNotices(t *testing.T) {
	who := Author{ViewerID: "v_a", Role: "agent", Name: "Aiko"}
	at := time.Date(2026, 5, 1, 9, 30, 0, 123e6, time.UTC)
	for _, tt := range []struct {
		v    any
		want string
	}{
		{StrokeNotice{Type: TypeAnnotation, Action: AnnotateStroke, ID: "v_a.s1", Author: who, Points: [][2]float64{{1, 2.5}}},
			`{"type":"annotation","action":"stroke","id":"v_a.s1","viewer_id":"v_a","role":"agent","name":"Aiko","points":[[1,2.5]],"pinned":false,"end":false}`},
		{LaserNotice{Type: TypeAnnotation, Action: AnnotateLaser, Author: who},
			`{"type":"annotation","action":"laser","viewer_id":"v_a","role":"agent","name":"Aiko","x":0,"y":0}`},
		{HighlightNotice{Type: TypeAnnotation, Action: AnnotateHighlight, ID: "h1", Author: who, Rect: [4]float64{0, 1500, 200, 60}},
			`{"type":"annotation","action":"highlight","id":"h1","viewer_id":"v_a","role":"agent","name":"Aiko","rect":[0,1500,200,60]}`},
		{RemoveNotice{Type: TypeAnnotation, Action: AnnotateRemove, ID: "h1"},
			`{"type":"annotation","action":"remove","id":"h1"}`},
		{ClearNotice{Type: TypeAnnotation, Action: AnnotateClear, Author: who},
			`{"type":"annotation","action":"clear","viewer_id":"v_a","role":"agent","name":"Aiko"}`},
		{ChatNotice{Type: TypeChat, ID: "c1", Author: who, Text: "hi", At: at},
			`{"type":"chat","id":"c1","viewer_id":"v_a","role":"agent","name":"Aiko","text":"hi","at":"2026-05-01T09:30:00.123Z"}`},
		{ScrollNotice{Type: TypeScroll}, `{"type":"scroll","x":0,"y":0}`},
	} {
		if got := string(Encode(tt.v)); got != tt.want {
			t.Errorf("Encode(%T) = %s\nwant %s", tt.v, got, tt.want)
		}
	}
}

func FuzzDecodeViewerMessage(f *testing.F) {
	for _, in := range slices.Concat(realInputs, realAnnotations, realScreenshares, []string{`{"type":"control","action":"grant"}`}) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeViewerMessage(data)
		if err != nil {
			return
		}
		set := 0
		for _, p := range []bool{m.Control != nil, m.Annotate != nil, m.Chat != nil, m.Navigate != nil, m.Screenshare != nil} {
			if p {
				set++
			}
		}
		if set > 1 || (set == 1 && m.Event.Kind != "") {
			t.Fatalf("accepted %q as more than one message: %+v", data, m)
		}
		switch {
		case m.Control != nil:
			if m.Control.Type != TypeControl {
				t.Fatalf("accepted control %q as %+v", data, m.Control)
			}
		case m.Annotate != nil:
			// What we accept re-encodes to the same message.
			again, err := DecodeViewerMessage(Encode(m.Annotate))
			if err != nil {
				t.Fatalf("re-decode of accepted %q: %v", data, err)
			}
			a := *m.Annotate
			if len(a.Points) == 0 {
				a.Points = again.Annotate.Points // [] and absent are the same
			}
			if d := cmp.Diff(&a, again.Annotate); d != "" {
				t.Fatalf("round trip changed %q: %s", data, d)
			}
			for _, p := range a.Points {
				if !validCoord(p[0]) || !validCoord(p[1]) {
					t.Fatalf("accepted a point out of range: %q", data)
				}
			}
		case m.Navigate != nil: // TestDecodeNavigate
		case m.Screenshare != nil:
			again, err := DecodeViewerMessage(Encode(m.Screenshare))
			if err != nil || m.Screenshare.Type != TypeScreenshare {
				t.Fatalf("accepted screenshare %q as %+v; re-decode: %v", data, m.Screenshare, err)
			}
			if d := cmp.Diff(m.Screenshare, again.Screenshare); d != "" {
				t.Fatalf("round trip changed %q: %s", data, d)
			}
		case m.Chat != nil:
			if n := utf8.RuneCountInString(m.Chat.Text); n == 0 || n > MaxChatChars || strings.TrimSpace(m.Chat.Text) != m.Chat.Text {
				t.Fatalf("accepted chat text %q", m.Chat.Text)
			}
			for _, r := range m.Chat.Text {
				if r != '\n' && unicode.IsControl(r) {
					t.Fatalf("accepted a control character in %q", m.Chat.Text)
				}
			}
		default:
			if err := m.Event.Validate(); err != nil {
				t.Fatalf("accepted an invalid event %q: %v", data, err)
			}
		}
	})
}

func TestDecodeNavigate(t *testing.T) {
	for in, want := range map[string]Navigate{
		`{"type":"navigate","action":"go","url":"shop.example/cart?x=1"}`: {Type: TypeNavigate, Action: NavigateGo, URL: "shop.example/cart?x=1"},
		`{"type":"navigate","action":"go","url":"https://例え.jp/"}`:        {Type: TypeNavigate, Action: NavigateGo, URL: "https://例え.jp/"},
		`{"type":"navigate","action":"back"}`:                             {Type: TypeNavigate, Action: NavigateBack},
		`{"type":"navigate","action":"forward"}`:                          {Type: TypeNavigate, Action: NavigateForward},
		`{"type":"navigate","action":"reload"}`:                           {Type: TypeNavigate, Action: NavigateReload},
		`{"type":"navigate","action":"tab","tab":"2"}`:                    {Type: TypeNavigate, Action: NavigateTab, Tab: "2"},
		`{"type":"navigate","action":"close_tab","tab":"12345678"}`:       {Type: TypeNavigate, Action: NavigateClose, Tab: "12345678"},
	} {
		m, err := DecodeViewerMessage([]byte(in))
		if err != nil || m.Navigate == nil || *m.Navigate != want || m.Control != nil || m.Event.Kind != "" {
			t.Errorf("DecodeViewerMessage(%s) = %+v, %v; want %+v", in, m, err, want)
		}
	}
	for _, bad := range []string{
		`{"type":"navigate","action":"go"}`,
		`{"type":"navigate","action":"go","url":""}`,
		`{"type":"navigate","action":"go","url":"https://a/` + strings.Repeat("x", MaxNavigateURL) + `"}`,
		`{"type":"navigate","action":"go","url":"https://a/\nb"}`,
		`{"type":"navigate","action":"go","url":"https://a/\u0000"}`,
		`{"type":"navigate","action":"back","url":"https://a/"}`,
		`{"type":"navigate","action":"close"}`,
		`{"type":"navigate"}`,
		`{"type":"navigate","action":"go","url":"https://a/","tab":2}`,
		`{"type":"navigate","action":"go","url":5}`,
		`{"type":"navigate","action":"go","url":"https://a/","tab":"2"}`,
		`{"type":"navigate","action":"reload","tab":"2"}`,
		`{"type":"navigate","action":"tab"}`,
		`{"type":"navigate","action":"tab","tab":""}`,
		`{"type":"navigate","action":"tab","tab":"123456789"}`,
		`{"type":"navigate","action":"tab","tab":"2a"}`,
		`{"type":"navigate","action":"tab","tab":"-1"}`,
		`{"type":"navigate","action":"close_tab","tab":"２"}`,
		`{"type":"navigate","action":"close_tab","tab":"2","url":"https://a/"}`,
	} {
		if m, err := DecodeViewerMessage([]byte(bad)); !errors.Is(err, ErrBadMessage) || m.Navigate != nil {
			t.Errorf("DecodeViewerMessage(%.80s) = %+v, %v; want ErrBadMessage", bad, m, err)
		}
	}
}

// Real screen sharing messages of the viewer pages (docs/screenshare.md).
var realScreenshares = []string{
	`{"type":"screenshare","action":"request"}`,
	`{"type":"screenshare","action":"start"}`,
	`{"type":"screenshare","action":"refuse"}`,
	`{"type":"screenshare","action":"refuse","reason":"unsupported"}`,
	`{"type":"screenshare","action":"stop"}`,
}

func TestDecodeScreenshare(t *testing.T) {
	for _, in := range realScreenshares {
		m, err := DecodeViewerMessage([]byte(in))
		if err != nil || m.Screenshare == nil || m.Control != nil || m.Event.Kind != "" {
			t.Errorf("DecodeViewerMessage(%s) = %+v, %v; want a screenshare message", in, m, err)
			continue
		}
		if got := string(Encode(m.Screenshare)); got != in {
			t.Errorf("Encode(DecodeViewerMessage(%s)) = %s", in, got)
		}
	}
	for _, bad := range []string{
		`{"type":"screenshare","action":"allow"}`,
		`{"type":"screenshare"}`,
		`{"type":"screenshare","action":"stop","reason":"unsupported"}`,
		`{"type":"screenshare","action":"refuse","reason":"busy"}`,
		`{"type":"screenshare","action":"request","viewer_id":"v_1"}`,
		`{"type":"screenshare","action":"request"} {}`,
	} {
		if m, err := DecodeViewerMessage([]byte(bad)); !errors.Is(err, ErrBadMessage) || m.Screenshare != nil {
			t.Errorf("DecodeViewerMessage(%s) = %+v, %v; want ErrBadMessage", bad, m, err)
		}
	}
}
