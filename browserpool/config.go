package browserpool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Config says how the pool launches browsers. The zero value is usable:
// every zero field means its default.
type Config struct {
	Chromium    string // browser binary; "" means the first of /usr/lib/chromium/chromium-headless-shell, /usr/lib/chromium/chromium that exists
	User        string // when Tandem runs as root, run Chromium as this unprivileged user; "" means "tandem-browser" if it exists, else "nobody"
	TempDir     string // parent of the per-browser profile directories; "" means os.TempDir(); must be searchable by User
	Warm        int    // started, unleased browsers to keep ready; 0 means 1, negative means none
	Width       int    // default viewport width in CSS pixels; 0 means 1280
	Height      int    // default viewport height in CSS pixels; 0 means 720
	JPEGQuality int    // screencast JPEG quality, 1 to 100; 0 means 60
	// MotionFPS: while the page moves and the screencast delivers fewer
	// frames a second than this, held back by the capture, it is taken at
	// 3/4 of the viewport's size until the page is still again
	// (motion.go). 0 or negative: never, the default (docs/density.md
	// says why).
	MotionFPS    int
	StartTimeout time.Duration // limit on starting one browser; 0 means 15s
	ProxyServer  string        // optional --proxy-server for egress control (pkg/egress), which then sees loopback requests too; "" means none
	MaxMemory    int64         // a browser whose processes use more (PSS, bytes) is killed (ErrMemoryLimit); 0 means 2 GiB, negative no limit
	ExtraFlags   []string      // more Chromium flags, "--name" or "--name=value"; flags that weaken isolation are refused
	// Cgroup says whether each browser runs in a cgroup v2 of its own
	// (docs/limits.md): "" or "auto" where this process may create one
	// (then the kernel enforces MaxMemory if the memory controller is
	// there), "off" never. Without one, the process group and the PSS
	// watchdog hold the browser; the watchdog runs in either case.
	Cgroup string
	// EgressCheck, when set, refuses a start URL or an address-bar URL
	// (Lease.Navigate, Lease.Open) before the browser loads it, with
	// ErrURLNotAllowed: the egress proxy would refuse it anyway, but the
	// session then fails at once instead of showing the proxy's refusal.
	EgressCheck func(ctx context.Context, url string) error
}

// Defaults of Config.
const (
	defaultWarm         = 1
	defaultWidth        = 1280
	defaultHeight       = 720
	defaultJPEGQuality  = 60
	defaultStartTimeout = 15 * time.Second
	defaultMaxMemory    = 2 << 30
	defaultUser         = "tandem-browser"
	fallbackUser        = "nobody"
)

// chromiumCandidates are the binaries tried when Config.Chromium is empty.
// /usr/bin/chromium is deliberately absent: on Debian it is a wrapper script
// that adds flags of its own.
var chromiumCandidates = []string{
	"/usr/lib/chromium/chromium-headless-shell",
	"/usr/lib/chromium/chromium",
}

// forbiddenFlags weaken the sandbox or site isolation, or take over what the
// pool owns (the profile, the CDP transport, headless mode, the viewport,
// the proxy, which has its own field, and everything that would let
// requests or WebRTC go around it).
var forbiddenFlags = []string{
	"no-sandbox",
	"disable-setuid-sandbox",
	"disable-namespace-sandbox",
	"disable-seccomp-filter-sandbox",
	"disable-gpu-sandbox",
	"no-zygote",
	"single-process",
	"in-process-renderer",
	"disable-site-isolation-trials",
	"disable-web-security",
	"user-data-dir",
	"remote-debugging-port",
	"remote-debugging-address",
	"remote-debugging-pipe",
	"headless",
	"window-size",
	"proxy-server",
	"proxy-bypass-list",
	"proxy-pac-url",
	"proxy-auto-detect",
	"no-proxy-server",
	"winhttp-proxy-resolver",
	"force-webrtc-ip-handling-policy",
}

// forbiddenFeatures are features that --disable-features must not name,
// because turning them off turns site isolation off.
var forbiddenFeatures = []string{"IsolateOrigins", "site-per-process", "SitePerProcess"}

// baseDisabledFeatures are always disabled: Translate and the autofill server
// would send page content to Google and show it in popups; the back-forward
// cache would bring a page back without a new document (no fresh mask
// report, no navigation event for the address bar).
const baseDisabledFeatures = "Translate,AutofillServerCommunication,BackForwardCache"

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	switch {
	case c.Warm == 0:
		c.Warm = defaultWarm
	case c.Warm < 0:
		c.Warm = 0
	}
	if c.Width == 0 {
		c.Width = defaultWidth
	}
	switch {
	case c.MaxMemory == 0:
		c.MaxMemory = defaultMaxMemory
	case c.MaxMemory < 0:
		c.MaxMemory = 0
	}
	if c.Height == 0 {
		c.Height = defaultHeight
	}
	if c.JPEGQuality == 0 {
		c.JPEGQuality = defaultJPEGQuality
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = defaultStartTimeout
	}
	return c
}

// Validate reports settings that New would refuse, without looking at the
// machine: a missing binary or user is reported by New.
func (c Config) Validate() error {
	var errs []error
	if c.Width != 0 && (c.Width < input.MinViewportW || c.Width > input.MaxViewportW) {
		errs = append(errs, fmt.Errorf("width %d outside %d..%d", c.Width, input.MinViewportW, input.MaxViewportW))
	}
	if c.Height != 0 && (c.Height < input.MinViewportH || c.Height > input.MaxViewportH) {
		errs = append(errs, fmt.Errorf("height %d outside %d..%d", c.Height, input.MinViewportH, input.MaxViewportH))
	}
	if c.JPEGQuality < 0 || c.JPEGQuality > 100 {
		errs = append(errs, fmt.Errorf("jpeg quality %d outside 1..100", c.JPEGQuality))
	}
	if c.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative start timeout %v", c.StartTimeout))
	}
	if strings.ContainsAny(c.ProxyServer, " \t\n") {
		errs = append(errs, fmt.Errorf("proxy server %q contains white space", c.ProxyServer))
	}
	switch c.Cgroup {
	case "", "auto", "off":
	default:
		errs = append(errs, fmt.Errorf("cgroup %q is not auto or off", c.Cgroup))
	}
	if _, _, err := parseExtraFlags(c.ExtraFlags); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// extraFlag is one parsed entry of Config.ExtraFlags.
type extraFlag struct {
	name  string
	value any // string or true
}

// parseExtraFlags splits ExtraFlags into flags and the extra features to
// disable (merged with baseDisabledFeatures), refusing the forbidden ones.
func parseExtraFlags(raw []string) (flags []extraFlag, disable []string, err error) {
	for _, f := range raw {
		body, ok := strings.CutPrefix(f, "--")
		if !ok || body == "" || strings.ContainsAny(body, " \t\n") {
			return nil, nil, fmt.Errorf("%w: %q is not --name or --name=value", ErrForbiddenFlag, f)
		}
		name, value, hasValue := strings.Cut(body, "=")
		name = strings.ToLower(name)
		if slices.Contains(forbiddenFlags, name) {
			return nil, nil, fmt.Errorf("%w: --%s", ErrForbiddenFlag, name)
		}
		if name == "disable-features" {
			for feat := range strings.SplitSeq(value, ",") {
				if slices.Contains(forbiddenFeatures, strings.TrimSpace(feat)) {
					return nil, nil, fmt.Errorf("%w: --disable-features=%s", ErrForbiddenFlag, feat)
				}
				if feat != "" {
					disable = append(disable, feat)
				}
			}
			continue
		}
		if hasValue {
			flags = append(flags, extraFlag{name: name, value: value})
		} else {
			flags = append(flags, extraFlag{name: name, value: true})
		}
	}
	return flags, disable, nil
}

// findChromium returns the configured binary, or the first candidate that
// exists.
func findChromium(configured string) (string, error) {
	candidates := chromiumCandidates
	if configured != "" {
		candidates = []string{configured}
	}
	for _, path := range candidates {
		st, err := os.Stat(path)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: tried %s", ErrNoChromium, strings.Join(candidates, ", "))
}

// isHeadlessShell reports whether the binary is the headless shell, which is
// always headless and needs no --headless flag.
func isHeadlessShell(binary string) bool {
	base := filepath.Base(binary)
	return strings.Contains(base, "headless-shell") || strings.Contains(base, "headless_shell")
}

// browserUser is who the browser processes run as when Tandem is root.
type browserUser struct {
	name     string
	uid, gid uint32
}

// credential returns the process credential that drops to u, with no
// supplementary groups.
func (u *browserUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
}

// resolveUser picks the unprivileged user to run Chromium as. It returns nil
// when Tandem does not run as root: the browser then runs as Tandem's user.
func resolveUser(configured string) (*browserUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var (
		u   *user.User
		err error
	)
	if configured != "" {
		u, err = user.Lookup(configured)
	} else if u, err = user.Lookup(defaultUser); err != nil {
		u, err = user.Lookup(fallbackUser)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: uid %q of %s: %w", ErrNoUser, u.Uid, u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: gid %q of %s: %w", ErrNoUser, u.Gid, u.Username, err)
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("%w: %s is root", ErrNoUser, u.Username)
	}
	return &browserUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// checkTempDir makes sure the browser user can reach its profile under dir:
// dir and every parent must be searchable by it.
func checkTempDir(dir string, u *browserUser) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("temp dir %s is not a directory", dir)
	}
	if u == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		var bit os.FileMode = 0o001
		switch {
		case sys.Uid == u.uid:
			bit = 0o100
		case sys.Gid == u.gid:
			bit = 0o010
		}
		if st.Mode().Perm()&bit == 0 {
			return fmt.Errorf("temp dir %s: %s is not searchable by %s (mode %v)", dir, d, u.name, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
