package signaling

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"acme", "s_01HZX3-abc", "v_9f8e", "", "a.b", "*", ">", "a b", "ａ", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidToken(s)
		if want := tokenRE.MatchString(s); got != want {
			t.Fatalf("ValidToken(%q) = %v, want %v", s, got, want)
		}
		if !got {
			return
		}
		subject := upSubject("acme", "s1", s)
		if id, ok := parseUpSubject(subject, "acme", "s1"); !ok || id != s {
			t.Fatalf("parseUpSubject(%q) = %q, %v, want %q", subject, id, ok, s)
		}
	})
}

func FuzzParseUpSubject(f *testing.F) {
	for _, s := range []string{
		"tandem.sig.acme.s1.v_1.up", "tandem.sig.acme.s1.v_1.down", "tandem.sig.acme.s1.*.up",
		"tandem.sig.acme.s1.a.b.up", "tandem.sig.other.s1.v.up", "tandem.sig.acme.s1..up", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		id, ok := parseUpSubject(subject, "acme", "s1")
		if !ok {
			return
		}
		if !ValidToken(id) || upSubject("acme", "s1", id) != subject {
			t.Fatalf("parseUpSubject(%q) = %q, which does not rebuild the subject", subject, id)
		}
	})
}

// chromiumSignals returns the messages a Chromium 156 viewer produced for
// the offer of docs/protocol.md (testdata/chromium-signals.jsonl: the offer,
// then its candidates as RTCIceCandidate.toJSON() gives them, with
// "usernameFragment"), and the same candidates without it, as older
// browsers send them.
func chromiumSignals(tb testing.TB) [][]byte {
	tb.Helper()
	raw, err := os.ReadFile("testdata/chromium-signals.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		out = append(out, []byte(line))
		if stripped := usernameFragment.ReplaceAllString(line, ""); stripped != line {
			out = append(out, []byte(stripped))
		}
	}
	return out
}

var usernameFragment = regexp.MustCompile(`,"usernameFragment":"[^"]*"`)

func TestChromiumSignals(t *testing.T) {
	msgs := chromiumSignals(t)
	if up, err := decodeUp(msgs[0], nil); err != nil || up.sig.Type != protocol.TypeOffer {
		t.Fatalf("decodeUp(Chromium offer) = %+v, %v", up, err)
	}
	for _, m := range msgs[1:] {
		if up, err := decodeUp(m, nil); err != nil || up.sig.Type != protocol.TypeCandidate {
			t.Fatalf("decodeUp(%s) = %+v, %v", m, up, err)
		}
	}
}

func FuzzDecodeUp(f *testing.F) {
	f.Add([]byte(`{"type":"join"}`), "customer", "Hanako%20Yamada")
	f.Add([]byte(` { "type" : "join" } `), "agent", url.PathEscape("山田 花子"))
	f.Add([]byte(`{"type":"join"}`), "", "")
	f.Add([]byte(`{"type":"join"}`), "agent", "%0d%0aX")
	f.Add([]byte(`{"type":"join","role":"agent"}`), "customer", "")
	for _, m := range chromiumSignals(f) {
		f.Add(m, "", "")
	}
	f.Add([]byte(`{"type":"bye"}`), "", "")
	f.Add([]byte(`{"type":"ended","reason":"x"}`), "", "")
	f.Fuzz(func(t *testing.T, data []byte, role, name string) {
		hdr := nats.Header{}
		hdr.Set(headerRole, role)
		hdr.Set(headerName, name)
		up, err := decodeUp(data, hdr)
		if err != nil {
			return
		}
		if up.join {
			if !ValidToken(up.role) || !validName(up.name) {
				t.Fatalf("decodeUp accepted join role %q name %q", up.role, up.name)
			}
			m := joinMsg(Viewer{Company: "acme", Session: "s1", ID: "v1", Role: up.role, Name: up.name})
			again, err := decodeUp(m.Data, m.Header)
			if err != nil || !again.join || again.role != up.role || again.name != up.name {
				t.Fatalf("join round trip: %+v, %v; want %+v", again, err, up)
			}
			return
		}
		if up.sig.Type == typeJoin {
			t.Fatal("a client signal of type join was accepted")
		}
		again, err := decodeUp(protocol.Encode(up.sig), nil)
		if err != nil {
			t.Fatalf("re-encoded signal %+v does not decode: %v", up.sig, err)
		}
		if diff := cmp.Diff(up, again, cmp.AllowUnexported(upMessage{})); diff != "" {
			t.Fatalf("signal round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzJoinName checks that every valid display name survives the header.
func FuzzJoinName(f *testing.F) {
	for _, s := range []string{"", "Hanako", "山田 花子", "a/b%c?d#e", "O'Brien \"Bob\"", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v := Viewer{Company: "acme", Session: "s1", ID: "v1", Role: "customer", Name: name}
		if v.Validate() != nil {
			return
		}
		m := joinMsg(v)
		for _, vals := range m.Header {
			for _, h := range vals {
				if strings.ContainsAny(h, "\r\n") || strings.ContainsFunc(h, func(r rune) bool { return r > 0x7e }) {
					t.Fatalf("header value %q is not plain ASCII", h)
				}
			}
		}
		up, err := decodeUp(m.Data, m.Header)
		if err != nil || up.name != name || up.role != "customer" {
			t.Fatalf("join of name %q decoded as %+v, %v", name, up, err)
		}
	})
}
