package browserpool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// preferences is written as the profile's Default/Preferences: autofill, the
// password manager and translate are off, so that no native popup can show a
// stored value to an agent; WebRTC sends no UDP outside the proxy and shows
// no local address (the flag --force-webrtc-ip-handling-policy says the same
// to browsers that ignore this preference).
const preferences = `{
  "autofill": {"enabled": false, "profile_enabled": false, "credit_card_enabled": false},
  "webrtc": {"ip_handling_policy": "disable_non_proxied_udp", "multiple_routes_enabled": false, "nonproxied_udp_enabled": false},
  "credentials_enable_service": false,
  "credentials_enable_autosignin": false,
  "profile": {"password_manager_enabled": false},
  "translate": {"enabled": false},
  "printing": {"enabled": false}
}
`

// launchSpec is everything New resolved once about how browsers start.
type launchSpec struct {
	binary        string
	headlessShell bool
	user          *browserUser // nil when Tandem is not root
	flags         []extraFlag
	disabled      string // value of --disable-features
}

// makeProfile creates a fresh directory for one browser, owned by the
// browser user: profile/ is the user data dir, home/ is HOME, tmp/ is TMPDIR.
func (p *Pool) makeProfile() (root string, err error) {
	root, err = os.MkdirTemp(p.cfg.TempDir, profilePrefix)
	if err != nil {
		return "", fmt.Errorf("create profile dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(root)
			root = ""
		}
	}()
	for _, d := range []string{"profile/Default", "home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return "", fmt.Errorf("create profile dir: %w", err)
		}
	}
	prefs := filepath.Join(root, "profile", "Default", "Preferences")
	if err := os.WriteFile(prefs, []byte(preferences), 0o600); err != nil {
		return "", fmt.Errorf("write preferences: %w", err)
	}
	if u := p.spec.user; u != nil {
		err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, int(u.uid), int(u.gid))
		})
		if err != nil {
			return "", fmt.Errorf("chown profile dir to %s: %w", u.name, err)
		}
	}
	return root, nil
}

// allocatorOptions lists every flag explicitly; chromedp's defaults are not
// used, so nothing we did not choose reaches the command line.
func (p *Pool) allocatorOptions(l *Lease) []chromedp.ExecAllocatorOption {
	home := filepath.Join(l.dir, "home")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(p.spec.binary),
		// chromedp adds --no-sandbox when it runs as root unless the flag
		// is set; false keeps it off the command line. We drop to an
		// unprivileged user instead, and the sandbox stays on.
		chromedp.Flag("no-sandbox", false),
		chromedp.UserDataDir(l.userDataDir),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-features", p.spec.disabled),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		// Scrolling and animations run on the page's main thread, so every
		// frame the compositor draws is one that the mask script (in that
		// thread) has measured: nothing moves on the compositor alone
		// (docs/masking.md).
		chromedp.Flag("disable-threaded-scrolling", true),
		// The headless shell does not isolate sites by default: every
		// cross-site frame gets its own renderer process (SECURITY.md P5),
		// which is also how the mask reaches cross-origin frames.
		chromedp.Flag("site-per-process", true),
		chromedp.Flag("disable-threaded-animation", true),
		// WebRTC would otherwise send UDP (STUN, media) to any address a
		// page names, around the egress proxy, and tell the page the
		// machine's local addresses (SECURITY.md P6).
		chromedp.Flag("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"),
		chromedp.WindowSize(p.cfg.Width, p.cfg.Height),
		// The browser gets only this environment, never Tandem's (which
		// may hold secrets in TANDEM_* variables).
		chromedp.NoInheritEnv,
		chromedp.Env(
			"HOME="+home,
			"TMPDIR="+filepath.Join(l.dir, "tmp"),
			"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
			"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"LANG=C.UTF-8",
		),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Dir = home
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Setpgid:    true, // Close kills the whole group
				Pdeathsig:  syscall.SIGKILL,
				Credential: p.spec.user.credential(),
			}
			if l.cg != nil {
				// clone3 creates the process inside its cgroup, as
				// Tandem (before the drop to the browser user), so
				// nothing runs outside it for a moment.
				cmd.SysProcAttr.UseCgroupFD = true
				cmd.SysProcAttr.CgroupFD = int(l.cg.fd.Fd())
			}
			l.cmd = cmd // read only after Allocate has returned
		}),
	}
	if !p.spec.headlessShell {
		opts = append(opts, chromedp.Flag("headless", "new"))
	}
	if p.cfg.ProxyServer != "" {
		// Chromium sends localhost, 127/8, [::1] and link-local hosts
		// around any proxy unless told <-loopback>: the egress check must
		// see them too (net/docs/proxy.md, "implicit bypass rules").
		opts = append(opts, chromedp.ProxyServer(p.cfg.ProxyServer), chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	}
	for _, f := range p.spec.flags {
		opts = append(opts, chromedp.Flag(f.name, f.value))
	}
	// The pipe transport is chromedp's default: it adds
	// --remote-debugging-pipe, and no port is opened.
	return opts
}

// start launches one browser on about:blank, attaches to its tab and starts
// the lease's goroutines. ctx and Config.StartTimeout bound the start only;
// the browser lives until the lease is closed. On error everything started is
// torn down.
func (p *Pool) start(ctx context.Context, warm bool) (l *Lease, err error) {
	began := time.Now()
	l = newLease(p.cfg, p.log)
	l.pool = p
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				p.log.Warn("clean up failed browser start", zap.Error(cerr))
			}
			l = nil
			p.mu.Lock()
			p.failedStarts++
			p.mu.Unlock()
		}
	}()
	if l.dir, err = p.makeProfile(); err != nil {
		return l, err
	}
	if l.lock, err = lockProfile(l.dir); err != nil {
		return l, fmt.Errorf("lock profile dir: %w", err)
	}
	l.userDataDir = filepath.Join(l.dir, "profile")
	if p.cg != nil {
		// Named as the folder, so that an operator sees which is which.
		if l.cg, err = p.cg.create(filepath.Base(l.dir), p.cfg.MaxMemory); err != nil {
			return l, err
		}
	}

	// root is the browser's lifetime; abort ends it without waiting. The
	// chromedp contexts are the handle of the CDP session, kept in the
	// lease for that reason.
	root, abort := context.WithCancel(context.Background())
	l.abort = abort
	allocCtx, allocCancel := chromedp.NewExecAllocator(root, p.allocatorOptions(l)...)
	l.allocCancel = allocCancel
	l.bctx, l.bcancel = chromedp.NewContext(allocCtx,
		chromedp.WithLogf(l.chromedpLog(zap.DebugLevel)),
		chromedp.WithErrorf(l.chromedpLog(zap.WarnLevel)),
		chromedp.WithBrowserOption(chromedp.WithBrowserDebugf(l.inputWritten)),
	)

	var timedOut atomic.Bool
	timer := time.AfterFunc(p.cfg.StartTimeout, func() { timedOut.Store(true); abort() })
	stopCtx := context.AfterFunc(ctx, abort)
	startErr := l.attach()
	timer.Stop()
	stopCtx()
	if l.cmd != nil && l.cmd.Process != nil {
		l.pid.Store(int64(l.cmd.Process.Pid)) // Setpgid: the group id is the pid
		l.log = l.log.With(zap.Int("pid", l.PID()))
	}
	switch {
	case ctx.Err() != nil:
		return l, fmt.Errorf("start browser: %w", ctx.Err())
	case timedOut.Load():
		return l, fmt.Errorf("start browser: %w after %v", ErrStartTimeout, p.cfg.StartTimeout)
	case startErr != nil:
		return l, fmt.Errorf("start browser: %w", startErr)
	}
	l.goWatch()

	latency := time.Since(began)
	p.mu.Lock()
	if warm {
		p.warmStarts++
	} else {
		p.coldStarts++
	}
	p.lastStart = latency
	p.startTimes.add(warm, latency)
	p.mu.Unlock()
	l.log.Info("browser started", zap.Bool("warm", warm), zap.Duration("latency", latency))
	return l, nil
}

// attach starts the browser process (chromedp does that on the first use of
// the context), subscribes to the tab's events and denies downloads.
func (l *Lease) attach() error {
	// Listen is the first use of l.bctx: it allocates the browser, binds
	// its life to l.bctx and attaches to its about:blank tab.
	var first *tab
	ready := make(chan struct{})
	if err := chromedp.Listen(l.bctx, func(ev any) {
		<-ready // closed before any event can matter: the tab is blank
		l.onTabEvent(first, ev)
	}); err != nil {
		return err
	}
	c := chromedp.FromContext(l.bctx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil || c.Target == nil {
		close(ready)
		return errors.New("browser has no process")
	}
	first = l.addFirstTab(l.bctx, string(c.Target.TargetID))
	close(ready)
	l.lost = c.Browser.LostConnection
	if ch, err := chromedp.Detached(l.bctx); err == nil {
		l.detached = ch
	}
	_, err := chromedp.CallBrowser(l.bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorDeny,
	})
	if err != nil {
		return fmt.Errorf("deny downloads: %w", err)
	}
	return nil
}

// chromedpLog adapts chromedp's printf logging onto the lease's logger.
func (l *Lease) chromedpLog(level zapcore.Level) func(string, ...any) {
	log := l.log // chromedp calls this from its own goroutines
	return func(format string, args ...any) {
		if ce := log.Check(level, "chromedp"); ce != nil {
			ce.Write(zap.String("message", strings.TrimSpace(fmt.Sprintf(format, args...))))
		}
	}
}
