package demo

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browser starts headless Chromium for one test (as nobody, sandboxed, when
// the test runs as root) and returns a tab whose page errors fail the test.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := "/usr/lib/chromium/chromium-headless-shell"
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium-headless-shell"); err == nil {
			path = p
		} else if os.Getenv("CI") != "" {
			t.Fatalf("no Chromium: %v", err)
		} else {
			t.Skipf("SKIPPING BROWSER TEST: no Chromium: %v", err)
		}
	}
	// Not t.TempDir: its parent is private to root, and the browser runs as
	// nobody.
	dir, err := os.MkdirTemp("", "tandem-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 800), chromedp.Env("HOME="+dir))
	if os.Getuid() == 0 {
		const nobody = 65534
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, chromedp.Flag("no-sandbox", false), chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}, Pdeathsig: syscall.SIGKILL}
		}))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		stopBrowserProcesses(dir)
		for i := 0; i < 50 && os.RemoveAll(dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond) // helpers may still be writing
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	var mu sync.Mutex
	var errs []string
	err = chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				msg = "console.error"
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			errs = append(errs, msg)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

func waitText(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('bought').textContent`))
		if err == nil && strings.TrimSpace(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter = %q (%v), want %q", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShopInBrowser loads every page in Chromium (no script error, no CSP
// violation, no missing file) and buys three ways: a click on the button, a
// click on its label, and Enter in a field of the form.
func TestShopInBrowser(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	ctx, errs := browser(t)
	for _, p := range []string{"/demo/", "/demo/product/furoshiki", "/demo/account", "/demo/checkout?item=tea"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+p)); err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		imgs, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Promise.all([...document.images].map(i => i.decode())).then(() => true)`, chromedp.EvalAwaitPromise))
		if err != nil || !imgs {
			t.Errorf("%s: images do not load: %v", p, err)
		}
	}
	waitText(t, ctx, "bought: 0")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("buy"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "bought: 1")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label[for="buy"]`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "bought: 2")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("cc-name"), "HANAKO YAMADA"+kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "bought: 3")
	if thanks, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById('thanks').hidden`)); err != nil || !thanks {
		t.Errorf("no thank-you message after buying: %v", err)
	}
	// The server counted the same, and a reload shows it.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "bought: 3")
	for _, e := range errs() {
		t.Errorf("page error: %s", e)
	}
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
