// Package browserpool owns the hosted Chromium browsers: it launches them,
// keeps a few warm, leases each to one session, streams its tab out as
// screencast frames, feeds viewer input in, and destroys it afterwards. It is
// the only package that imports chromedp; a Lease speaks Tandem types
// (media.Capture out, input.Event in, Close), never CDP contexts.
//
// # Isolation
//
// Every browser is its own process group with a fresh temporary directory
// (profile, HOME and TMPDIR) that is removed when the lease closes. Where
// this process may create cgroup v2 children, every browser also starts
// inside a cgroup of its own, with the kernel enforcing Config.MaxMemory
// when the memory controller is there, killed whole and removed when the
// lease closes (cgroup.go, docs/limits.md); the PSS watchdog guards the
// limit in every case. Flags are
// listed explicitly (chromedp's defaults are not used); the sandbox and site
// isolation stay on, and Config.ExtraFlags cannot turn them off. When Tandem
// runs as root, Chromium runs as an unprivileged user (Config.User) with no
// supplementary groups. The browser gets a minimal environment, not Tandem's.
// CDP runs over a pipe (--remote-debugging-pipe); no port is opened. Downloads
// are denied; autofill, the password manager and translate are off. With
// Config.ProxyServer (pkg/egress), every request goes through that proxy,
// loopback ones included (--proxy-bypass-list=<-loopback>); WebRTC never
// sends UDP around it nor shows local addresses
// (--force-webrtc-ip-handling-policy=disable_non_proxied_udp).
//
// # Lifecycle
//
// New validates the Config and starts one refill goroutine that keeps
// Config.Warm browsers started on about:blank, starting them one at a time.
// Pool.Lease takes a warm browser, or starts one (a cold start) if none is
// ready, then sets the viewport, starts the screencast and loads the start
// URL. The caller owns the returned Lease and must Close it; Close kills the
// whole process group with SIGKILL, waits for it, and removes the directory.
// Done is closed when the lease is closed or the browser dies (the process
// exits, the CDP pipe breaks, or the tab crashes); Err says which. A dead
// lease must still be closed. Pool.Close stops the refill goroutine, waits for
// Lease calls under way and closes every browser the pool still owns,
// including live leases.
//
// # Concurrency
//
// Pool and Lease methods are safe for concurrent use. Each live browser has
// two goroutines of its own, both ended by Lease.Close: a monitor that closes
// Done, and an ack loop that acknowledges screencast frames. Frames are taken
// off chromedp's reader goroutine without blocking it: the frame goes into
// Frames (capacity 1, the latest wins) and its acknowledgement is queued for
// the ack loop. Chromium sends frames only when the page changes, with one
// frame in flight (maxFramesInFlight 1).
package browserpool
