// Package browsertest starts a real headless Chromium for tests that drive
// Tandem's pages: one browser per test package, run as an unprivileged user
// with its sandbox on when the test runs as root, with the flags a WebRTC
// viewer on loopback needs. Tabs get fresh browser contexts (own cookies and
// storage) and record page errors, which fail the test.
//
// Shared starts the package's browser once; Stop in TestMain ends it and
// waits for its processes. NewCaptureTab opens tabs in a second browser,
// started on first use, that can share a screen (getDisplayMedia). Only
// tests import this package.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cdpinput "github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
)

// The package's one browser: started by the first test that needs it,
// stopped by Stop.
var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserStop func()
	browserErr  error
)

// The capture browser (NewCaptureTab): full Chromium, whose headless mode
// has getDisplayMedia (the headless shell answers NotSupportedError), with
// the picker answered by CaptureTitle. Started by the first test that
// needs it, stopped by Stop.
var (
	captureOnce sync.Once
	captureCtx  context.Context
	captureStop func()
	captureErr  error
)

// CaptureTitle is the title of the tab that getDisplayMedia shares in a
// NewCaptureTab page: open a page with that title in the same browser
// (CaptureContext) before asking for a screen.
const CaptureTitle = "Tandem test screen"

// Stop ends the shared browsers, if they started, and waits for their
// processes.
func Stop() {
	if browserStop != nil {
		browserStop()
	}
	if captureStop != nil {
		captureStop()
	}
}

func chromiumPath() string {
	for _, p := range []string{"/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium-headless-shell", "chromium", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser launches the shared headless Chromium.
func startBrowser() {
	path := chromiumPath()
	if path == "" {
		browserErr = errors.New("no Chromium found")
		return
	}
	browserCtx, browserStop, browserErr = launch(path)
}

// startCapture launches the capture browser: full Chromium in its headless
// mode, its screen picker answered with the tab titled CaptureTitle.
func startCapture() {
	path := ""
	for _, p := range []string{"/usr/lib/chromium/chromium", "chromium", "google-chrome"} {
		if lp, err := exec.LookPath(p); err == nil {
			path = lp
			break
		}
	}
	if path == "" {
		captureErr = errors.New("no full Chromium found (the headless shell cannot share a screen)")
		return
	}
	captureCtx, captureStop, captureErr = launch(path,
		chromedp.Flag("auto-select-tab-capture-source-by-title", CaptureTitle))
}

// launch starts a headless Chromium at path. As root it runs the browser as
// nobody with its sandbox on, in a profile directory nobody owns. stop ends
// it and waits for its processes.
func launch(path string, extra ...chromedp.ExecAllocatorOption) (ctx context.Context, stop func(), err error) {
	dir, err := os.MkdirTemp("", "tandem-ui-test-")
	if err != nil {
		return nil, nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "Translate,WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Env("HOME="+dir),
	)
	opts = append(opts, extra...)
	if os.Getuid() == 0 {
		const nobody = 65534
		if err := os.Chown(dir, nobody, nobody); err != nil {
			return nil, nil, err
		}
		opts = append(opts,
			chromedp.Flag("no-sandbox", false),
			chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &syscall.SysProcAttr{
					Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
					Pdeathsig:  syscall.SIGKILL,
				}
			}),
		)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop = func() {
		cancel()
		cancelAlloc()
		stopBrowserProcesses(dir)
		// Chromium's helpers may still be writing for a moment.
		for i := 0; i < 50; i++ {
			if err := os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := chromedp.Do(ctx); err != nil {
		return nil, stop, fmt.Errorf("start %s: %w", path, err)
	}
	return ctx, stop, nil
}

// need starts the package's browser once; without one the test is a
// loud skip, or a failure in CI.
func need(t testing.TB) {
	t.Helper()
	browserOnce.Do(startBrowser)
	if browserErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser: %v", browserErr)
		}
		t.Skipf("SKIPPING BROWSER TEST: %v", browserErr)
	}
}

// NewTab opens a tab in a fresh browser context (its own cookies and
// storage), sized w×h CSS px; mobile turns on phone emulation. It records the
// page's errors; the test fails on any that allow does not excuse.
func NewTab(t testing.TB, w, h int64, mobile bool) (context.Context, *PageErrors) {
	t.Helper()
	return openTab(t, w, h, mobile, 90*time.Second)
}

// NewCaptureTab is NewTab in the capture browser, where getDisplayMedia
// shares the tab titled CaptureTitle without asking (its picker cannot
// show headless). Open that tab with CaptureContext first.
func NewCaptureTab(t testing.TB, w, h int64) (context.Context, *PageErrors) {
	t.Helper()
	needCapture(t)
	return newTabIn(t, captureCtx, w, h, false, 90*time.Second)
}

// CaptureContext is a tab of the capture browser, in its default browser
// context (where the screen picker looks for CaptureTitle), for the page
// that NewCaptureTab pages share. It closes with the test.
func CaptureContext(t testing.TB) context.Context {
	t.Helper()
	needCapture(t)
	ctx, cancel := chromedp.NewContext(captureCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// needCapture starts the capture browser once; without one the test is a
// loud skip, or a failure in CI.
func needCapture(t testing.TB) {
	t.Helper()
	captureOnce.Do(startCapture)
	if captureErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("capture browser: %v", captureErr)
		}
		t.Skipf("SKIPPING SCREEN CAPTURE TEST: %v", captureErr)
	}
}

func openTab(t testing.TB, w, h int64, mobile bool, life time.Duration) (context.Context, *PageErrors) {
	t.Helper()
	need(t)
	return newTabIn(t, browserCtx, w, h, mobile, life)
}

func newTabIn(t testing.TB, parent context.Context, w, h int64, mobile bool, life time.Duration) (context.Context, *PageErrors) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, life)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	errs := &PageErrors{}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	if c := chromedp.FromContext(ctx); c != nil && c.Target != nil {
		tabErrors.Store(c.Target, errs)
		t.Cleanup(func() { tabErrors.Delete(c.Target) })
	}
	if err := chromedp.Listen(ctx, errs.listen); err != nil {
		t.Fatalf("listen: %v", err)
	}
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h, opts...)); err != nil {
		t.Fatalf("emulate viewport: %v", err)
	}
	t.Cleanup(func() { errs.check(t) })
	return ctx, errs
}

// tabErrors finds the PageErrors of a tab (its *chromedp.Target) for the
// helpers that only get its context.
var tabErrors sync.Map

// errorsOf returns the PageErrors of the tab of ctx, or nil.
func errorsOf(ctx context.Context) *PageErrors {
	if c := chromedp.FromContext(ctx); c != nil && c.Target != nil {
		if e, ok := tabErrors.Load(c.Target); ok {
			return e.(*PageErrors)
		}
	}
	return nil
}

// PageErrors collects exceptions, console errors and browser log errors
// (failed loads, CSP violations) of one tab.
type PageErrors struct {
	mu      sync.Mutex
	errs    []string // guarded by mu
	allowed []string // substrings of errors the test expects; guarded by mu
}

// Allow excuses errors that contain substr.
func (p *PageErrors) Allow(substr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = append(p.allowed, substr)
}

func (p *PageErrors) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *cdpruntime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type != cdpruntime.ConsoleAPICalledTypeError && ev.Type != cdpruntime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		// The pages expect some API answers to fail (401 before login,
		// 404 for a wrong PIN, 429); Chromium logs each of them.
		if ev.Entry.Source == log.EntrySourceNetwork && strings.Contains(ev.Entry.URL, "/api/v1/") {
			return
		}
		msg = fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	p.mu.Lock()
	p.errs = append(p.errs, msg)
	p.mu.Unlock()
}

func (p *PageErrors) check(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, e := range p.errs {
		for _, a := range p.allowed {
			if strings.Contains(e, a) {
				continue next
			}
		}
		t.Errorf("page error: %s", e)
	}
}

// Run runs chromedp actions, failing the test with what it was doing.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes it.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitJS polls a JavaScript predicate until it is true or the deadline.
func WaitJS(t testing.TB, ctx context.Context, what, predicate string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("Boolean(%s)", predicate)))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s (%s): err %v", what, predicate, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Shot writes a screenshot of the tab into dir as name.png; an empty dir
// writes nothing.
func Shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	if dir == "" {
		return
	}
	// Let fonts and transitions settle before the picture.
	Run(t, ctx, "wait for fonts", chromedp.Evaluate[chromedp.Void]("document.fonts.ready.then(() => new Promise(r => setTimeout(r, 300)))", chromedp.EvalAwaitPromise))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// stopBrowserProcesses waits for the processes of the browser that used the
// profile dir (they carry it on their command line) to exit, and kills the
// ones still there after a few seconds: Chromium's helpers can outlive the
// main process for a moment.
func stopBrowserProcesses(dir string) {
	want := []byte("--user-data-dir=" + dir + "\x00")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(cmd, want) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PlainTab opens a tab in the shared browser's default context, sized w×h,
// whose page errors are not recorded: for a test's own work (encoding test
// frames, screenshots of other pages).
func PlainTab(t testing.TB, w, h int64) context.Context {
	t.Helper()
	need(t)
	ctx, cancel := chromedp.NewContext(browserCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	Run(t, ctx, "size tab", chromedp.EmulateViewport(w, h))
	return ctx
}

// Type presses and releases a key for each ASCII letter or digit of text,
// as a physical keyboard does (Press).
func Type(t testing.TB, ctx context.Context, text string) {
	t.Helper()
	for _, r := range text {
		var code string
		switch {
		case r >= 'a' && r <= 'z':
			code = "Key" + strings.ToUpper(string(r))
		case r >= '0' && r <= '9':
			code = "Digit" + string(r)
		default:
			t.Fatalf("Type: %q is not a letter or digit", r)
		}
		Press(t, ctx, string(r), code, int64(strings.ToUpper(string(r))[0]), string(r), 0)
	}
}

// Named keys for Press: key, code, Windows virtual key code and text.
var (
	KeyEnter = [4]string{"Enter", "Enter", "13", "\r"}
	KeySpace = [4]string{" ", "Space", "32", " "}
	KeyTab   = [4]string{"Tab", "Tab", "9", ""}
)

// PressKey presses one of the named keys (KeyEnter, KeySpace, KeyTab).
func PressKey(t testing.TB, ctx context.Context, k [4]string) {
	t.Helper()
	vk, _ := strconv.ParseInt(k[2], 10, 64)
	Press(t, ctx, k[0], k[1], vk, k[3], 0)
}

// Press presses and releases one key as a physical keyboard does: a
// keydown that carries the text (none with Alt, Ctrl or Meta in mods,
// chromedp's modifier bits), then a keyup. chromedp.KeyEvent also sends a
// separate "char" event, which inserts text even when the page cancelled
// the keydown; a real keyboard does not.
func Press(t testing.TB, ctx context.Context, key, code string, vk int64, text string, mods int64) {
	t.Helper()
	if mods&int64(chromedp.ModifierAlt|chromedp.ModifierCtrl|chromedp.ModifierMeta) != 0 {
		text = ""
	}
	down := cdpinput.DispatchKeyEventParams{Type: cdpinput.DispatchKeyEventTypeKeyDown, Key: key, Code: code,
		Text: text, UnmodifiedText: text, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk, Modifiers: mods}
	if text == "" {
		down.Type = cdpinput.DispatchKeyEventTypeRawKeyDown
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = cdpinput.DispatchKeyEventTypeKeyUp, "", ""
	for _, p := range []cdpinput.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, cdpinput.DispatchKeyEvent, p); err != nil {
			t.Fatalf("press %q: %v", key, err)
		}
	}
}

// Fill waits for the element sel (a CSS selector) to show, focuses it and
// types text into it as text input (Input.insertText). It stands in for
// chromedp.SendKeys, which reads the node's attributes without chromedp's
// lock and races (under -race) with a page that changes them.
func Fill(t testing.TB, ctx context.Context, sel, text string) {
	t.Helper()
	q, _ := json.Marshal(sel)
	WaitJS(t, ctx, "field "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e || !e.checkVisibility()) return false; e.focus(); return document.activeElement === e; })()`, q))
	if _, err := chromedp.Call(ctx, cdpinput.InsertText, cdpinput.InsertTextParams{Text: text}); err != nil {
		t.Fatalf("fill %s: %v", sel, err)
	}
}

// Main runs a package's tests (TestMain: os.Exit(browsertest.Main(m))),
// stops the shared browser, and then fails if the tests left a goroutine
// behind (pkg/leakcheck).
func Main(m *testing.M) int {
	return leakcheck.Run(stopAfter{m})
}

type stopAfter struct{ m *testing.M }

func (s stopAfter) Run() int {
	defer Stop()
	return s.m.Run()
}

// ScreenPanelGreenJS says whether the agent's screen panel
// (docs/screenshare.md) plays a green picture: the tests' shared screen.
const ScreenPanelGreenJS = `(() => {
  const v = document.querySelector('.viewer-screen-video');
  if (!v || !v.checkVisibility() || !v.videoWidth) return false;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const p = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
  return p[1] > 180 && p[0] < 80 && p[2] < 80;
})()`

// ReadableFile writes data to a file called name that the test browser,
// which runs as its own unprivileged user, can read (t.TempDir's cannot),
// for chromedp.SetUploadFiles. It is removed when the test ends.
func ReadableFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tandem-test-files-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, name)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
