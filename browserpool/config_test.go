package browserpool

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	cdpinput "github.com/chromedp/cdproto/input"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/media"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error // nil, ErrInvalidConfig or ErrForbiddenFlag (both wrapped)
	}{
		{"zero", Config{}, nil},
		{"full", Config{Width: 1920, Height: 1080, JPEGQuality: 80, StartTimeout: time.Second,
			ProxyServer: "http://127.0.0.1:3128", ExtraFlags: []string{"--lang=ja", "--disable-gpu", "--disable-features=Foo"}}, nil},
		{"narrow", Config{Width: 100}, ErrInvalidConfig},
		{"tall", Config{Height: 5000}, ErrInvalidConfig},
		{"quality", Config{JPEGQuality: 101}, ErrInvalidConfig},
		{"timeout", Config{StartTimeout: -time.Second}, ErrInvalidConfig},
		{"proxy", Config{ProxyServer: "a b"}, ErrInvalidConfig},
		{"cgroup off", Config{Cgroup: "off"}, nil},
		{"cgroup unknown", Config{Cgroup: "v1"}, ErrInvalidConfig},
		{"no-sandbox", Config{ExtraFlags: []string{"--no-sandbox"}}, ErrForbiddenFlag},
		{"no-sandbox-case", Config{ExtraFlags: []string{"--No-Sandbox"}}, ErrForbiddenFlag},
		{"single-process", Config{ExtraFlags: []string{"--single-process"}}, ErrForbiddenFlag},
		{"site-isolation", Config{ExtraFlags: []string{"--disable-site-isolation-trials"}}, ErrForbiddenFlag},
		{"isolate-origins", Config{ExtraFlags: []string{"--disable-features=Foo,IsolateOrigins"}}, ErrForbiddenFlag},
		{"debugging-port", Config{ExtraFlags: []string{"--remote-debugging-port=9222"}}, ErrForbiddenFlag},
		{"user-data-dir", Config{ExtraFlags: []string{"--user-data-dir=/tmp/x"}}, ErrForbiddenFlag},
		{"not-a-flag", Config{ExtraFlags: []string{"no-sandbox"}}, ErrForbiddenFlag},
		{"proxy-bypass", Config{ExtraFlags: []string{"--proxy-bypass-list=*"}}, ErrForbiddenFlag},
		{"no-proxy", Config{ExtraFlags: []string{"--no-proxy-server"}}, ErrForbiddenFlag},
		{"pac", Config{ExtraFlags: []string{"--proxy-pac-url=http://x/p.pac"}}, ErrForbiddenFlag},
		{"webrtc-policy", Config{ExtraFlags: []string{"--force-webrtc-ip-handling-policy=default"}}, ErrForbiddenFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Validate(%+v) = %v, want %v", tt.cfg, err, tt.want)
			case tt.want != nil && !errors.Is(err, ErrInvalidConfig):
				t.Errorf("Validate(%+v) = %v, want it to wrap ErrInvalidConfig too", tt.cfg, err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{TempDir: got.TempDir, Warm: 1, Width: 1280, Height: 720, JPEGQuality: 60, StartTimeout: 15 * time.Second, MaxMemory: 2 << 30}
	if diff := cmp.Diff(want, got); diff != "" || got.TempDir == "" {
		t.Errorf("withDefaults() mismatch (-want +got):\n%s", diff)
	}
	if got := (Config{Warm: -1}).withDefaults().Warm; got != 0 {
		t.Errorf("Warm -1 became %d, want 0", got)
	}
}

func TestParseExtraFlagsMergesDisabledFeatures(t *testing.T) {
	flags, disable, err := parseExtraFlags([]string{"--lang=ja", "--disable-features=A,B", "--disable-gpu"})
	if err != nil {
		t.Fatal(err)
	}
	want := []extraFlag{{"lang", "ja"}, {"disable-gpu", true}}
	if diff := cmp.Diff(want, flags, cmp.AllowUnexported(extraFlag{})); diff != "" {
		t.Errorf("flags mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"A", "B"}, disable); diff != "" {
		t.Errorf("disabled features mismatch (-want +got):\n%s", diff)
	}
}

func TestNewWithoutChromium(t *testing.T) {
	_, err := New(Config{Chromium: "/nonexistent/chromium"}, zap.NewNop())
	if !errors.Is(err, ErrNoChromium) {
		t.Errorf("New with a missing binary = %v, want ErrNoChromium", err)
	}
}

func TestIsHeadlessShell(t *testing.T) {
	for bin, want := range map[string]bool{
		"/usr/lib/chromium/chromium-headless-shell": true,
		"/opt/headless_shell":                       true,
		"/usr/lib/chromium/chromium":                false,
	} {
		if got := isHeadlessShell(bin); got != want {
			t.Errorf("isHeadlessShell(%q) = %v, want %v", bin, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://example.com/a?b", true},
		{"http://127.0.0.1:8080/", true},
		{"HTTPS://example.com", true},
		{"data:text/html,<p>hi", true},
		{"about:blank", true},
		{"about:config", false},
		{"file:///etc/passwd", false},
		{"chrome://settings", false},
		{"devtools://devtools/bundled/inspector.html", false},
		{"view-source:https://example.com", false},
		{"javascript:alert(1)", false},
		{"https:///nohost", false},
		{"example.com", false},
	}
	for _, tt := range tests {
		err := checkURL(tt.url)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrURLNotAllowed)) {
			t.Errorf("checkURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestMouseParams(t *testing.T) {
	tests := []struct {
		name string
		ev   input.Event
		want cdpinput.DispatchMouseEventParams
	}{
		{"move", input.Event{Kind: input.KindMouse, Action: input.ActionMove, X: 3, Y: 4, Buttons: 1, Clicks: 2},
			cdpinput.DispatchMouseEventParams{Type: "mouseMoved", X: 3, Y: 4, Button: "none", Buttons: 1}},
		{"press", input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 1, Y: 2, Button: input.ButtonLeft, Buttons: 1, Modifiers: input.ModShift},
			cdpinput.DispatchMouseEventParams{Type: "mousePressed", X: 1, Y: 2, Button: "left", Buttons: 1, ClickCount: 1, Modifiers: 8}},
		{"double", input.Event{Kind: input.KindMouse, Action: input.ActionUp, Button: input.ButtonRight, Clicks: 2},
			cdpinput.DispatchMouseEventParams{Type: "mouseReleased", Button: "right", ClickCount: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, mouseParams(tt.ev)); diff != "" {
				t.Errorf("mouseParams(%+v) mismatch (-want +got):\n%s", tt.ev, diff)
			}
		})
	}
}

// TestTouchParams: CDP lists the fingers still down; its touchEnd and
// touchCancel list none, and the end of some fingers is a touchMove
// without them. The wire form is what Chromium checks.
func TestTouchParams(t *testing.T) {
	a, b := input.Touch{ID: 0, X: 10, Y: 20}, input.Touch{ID: 3, X: 30.5, Y: 40}
	tests := []struct {
		name string
		ev   input.Event
		want string
	}{
		{"first finger", input.Event{Kind: input.KindTouch, Action: input.ActionStart, Touches: []input.Touch{a}},
			`{"type":"touchStart","touchPoints":[{"x":10,"y":20,"id":0}]}`},
		{"second finger", input.Event{Kind: input.KindTouch, Action: input.ActionStart, Touches: []input.Touch{a, b}},
			`{"type":"touchStart","touchPoints":[{"x":10,"y":20,"id":0},{"x":30.5,"y":40,"id":3}]}`},
		{"move", input.Event{Kind: input.KindTouch, Action: input.ActionMove, Touches: []input.Touch{b}},
			`{"type":"touchMove","touchPoints":[{"x":30.5,"y":40,"id":3}]}`},
		{"one finger up", input.Event{Kind: input.KindTouch, Action: input.ActionEnd, Touches: []input.Touch{b}},
			`{"type":"touchMove","touchPoints":[{"x":30.5,"y":40,"id":3}]}`},
		{"last finger up", input.Event{Kind: input.KindTouch, Action: input.ActionEnd},
			`{"type":"touchEnd","touchPoints":[]}`},
		{"cancel", input.Event{Kind: input.KindTouch, Action: input.ActionCancel},
			`{"type":"touchCancel","touchPoints":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(touchParams(tt.ev))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("touchParams(%+v) = %s, want %s", tt.ev, got, tt.want)
			}
		})
	}
}

func TestKeyParams(t *testing.T) {
	tests := []struct {
		name string
		ev   input.Event
		want cdpinput.DispatchKeyEventParams
	}{
		{"text", input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "a", Code: "KeyA", KeyCode: 65, Text: "a"},
			cdpinput.DispatchKeyEventParams{Type: "keyDown", Key: "a", Code: "KeyA", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65, Text: "a", UnmodifiedText: "a"}},
		{"raw", input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "ArrowLeft", Code: "ArrowLeft", KeyCode: 37, Modifiers: input.ModCtrl},
			cdpinput.DispatchKeyEventParams{Type: "rawKeyDown", Key: "ArrowLeft", Code: "ArrowLeft", WindowsVirtualKeyCode: 37, NativeVirtualKeyCode: 37, Modifiers: 2}},
		{"ctrl shortcut", input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "a", Code: "KeyA", KeyCode: 65, Modifiers: input.ModCtrl},
			cdpinput.DispatchKeyEventParams{Type: "rawKeyDown", Key: "a", Code: "KeyA", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65, Modifiers: 2}},
		{"accesskey", input.Event{Kind: input.KindKey, Action: input.ActionDown, Key: "b", Code: "KeyB", KeyCode: 66, Modifiers: input.ModAlt},
			cdpinput.DispatchKeyEventParams{Type: "keyDown", Key: "b", Code: "KeyB", WindowsVirtualKeyCode: 66, NativeVirtualKeyCode: 66, Modifiers: 1, UnmodifiedText: "b"}},
		{"up", input.Event{Kind: input.KindKey, Action: input.ActionUp, Key: "a", Code: "KeyA", KeyCode: 65, Text: "a"},
			cdpinput.DispatchKeyEventParams{Type: "keyUp", Key: "a", Code: "KeyA", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, keyParams(tt.ev)); diff != "" {
				t.Errorf("keyParams(%+v) mismatch (-want +got):\n%s", tt.ev, diff)
			}
		})
	}
}

func TestOfferLatestWins(t *testing.T) {
	l := newLease(Config{}.withDefaults(), zap.NewNop())
	for seq := uint64(1); seq <= 3; seq++ {
		l.offer(media.Capture{Seq: seq})
	}
	if got := (<-l.Frames()).Seq; got != 3 {
		t.Errorf("after three offers the reader got Seq %d, want 3", got)
	}
	select {
	case c := <-l.Frames():
		t.Errorf("a second frame %d was queued", c.Seq)
	default:
	}
	if err := l.Close(); err != nil { // never started: Close must cope
		t.Errorf("Close of an unstarted lease: %v", err)
	}
	if !errors.Is(l.Err(), ErrLeaseClosed) {
		t.Errorf("Err() = %v, want ErrLeaseClosed", l.Err())
	}
}

func TestCheckTempDirNeedsSearchPermission(t *testing.T) {
	dir, err := os.MkdirTemp("", "browserpool-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	stranger := &browserUser{name: "stranger", uid: 54321, gid: 54321}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkTempDir(dir, stranger); err == nil {
		t.Errorf("checkTempDir(%s with mode 0700, another user) = nil, want an error", dir)
	}
	if err := checkTempDir(filepath.Clean(dir), nil); err != nil {
		t.Errorf("checkTempDir(%s, no user switch) = %v, want nil", dir, err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := checkTempDir(dir, stranger); err != nil {
		t.Errorf("checkTempDir(%s with mode 0711) = %v, want nil", dir, err)
	}
}
