package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The soak (`go tool task soak`, SECURITY.md "Reliability"): an in-process
// `tandem serve` hosts soakSessions sessions at a time for soakDuration,
// each watched by a customer and an agent (Go viewers, pkg/botviewer, over
// the real WebSocket and WebRTC) who click on the page, ended over the REST
// API after a while and replaced at once. When serve has shut down, no
// goroutine, open file, child process, browser folder or browser cgroup
// may be left of what it started.
var (
	soakDuration = flag.Duration("soak.duration", 0, "run TestSoak for this long (0: skip it)")
	soakSessions = flag.Int("soak.sessions", 2, "TestSoak: sessions kept alive at once")
	soakReport   = flag.String("soak.report", "", "TestSoak: write the figures to this Markdown file")
)

// soakLife bounds how long one session lives before its agent ends it.
const (
	soakLifeMin = 10 * time.Second
	soakLifeMax = 30 * time.Second
)

type soakStats struct {
	mu         sync.Mutex
	starts     []time.Duration // POST to the customer's first picture; guarded by mu
	ended      int             // sessions ended and gone; guarded by mu
	viewers    int             // viewers connected; guarded by mu
	frames     int64           // pictures decoded by all viewers; guarded by mu
	clicks     int64           // clicks sent; guarded by mu
	failures   []string        // guarded by mu
	cgroups    map[string]bool // browser cgroups seen (dir → true); guarded by mu
	profiles   map[string]bool // browser folders seen; guarded by mu
	peakRSS    int64           // of Chromium's processes together, sampled; guarded by mu
	peakTandem int64           // VmRSS of this process, sampled; guarded by mu
}

func (st *soakStats) fail(format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failures = append(st.failures, fmt.Sprintf(format, args...))
}

// snapshot is what the process holds at one moment.
type snapshot struct {
	goroutines int
	fds        []string // readlink of each /proc/self/fd entry
	children   []string // live child processes: "pid comm"
}

func takeSnapshot() snapshot {
	s := snapshot{goroutines: len(leakcheck.Live()), fds: openFiles(), children: childProcs()}
	return s
}

// openFiles lists this process's open files by what they point at.
func openFiles() []string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own fd, closed already
		}
		out = append(out, target)
	}
	sort.Strings(out)
	return out
}

// childProcs lists this process's live (not zombie) children.
func childProcs() []string {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := bytes.Fields(b[i+1:])
		if i < 0 || len(f) < 2 || string(f[0]) == "Z" || string(f[1]) != self {
			continue
		}
		comm := string(b[bytes.IndexByte(b, '(')+1 : i])
		out = append(out, e.Name()+" "+comm)
	}
	return out
}

// procsMentioning lists live processes whose command line mentions s.
func procsMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, e.Name()+" "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// statusKB reads a "Name:   123 kB" line of /proc/<pid>/status.
func statusKB(pid, name string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// cgroup2Mount is where the cgroup v2 hierarchy is mounted, "" if nowhere.
func cgroup2Mount() string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) >= 5 && strings.HasPrefix(post, "cgroup2 ") && f[3] == "/" {
			return f[4]
		}
	}
	return ""
}

// watch samples, every second until ctx ends, the browser folders under
// tmp, the cgroups of the browsers' processes and the memory in use.
func (st *soakStats) watch(ctx context.Context, tmp string) {
	mount := cgroup2Mount()
	ownCgroup := cgroupLine(strconv.Itoa(os.Getpid()))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		entries, _ := os.ReadDir(tmp)
		var browserRSS int64
		cgs := map[string]bool{}
		for _, p := range procsMentioning(tmp) {
			pid, _, _ := strings.Cut(p, " ")
			browserRSS += statusKB(pid, "VmRSS")
			if cg := cgroupLine(pid); mount != "" && cg != "" && cg != ownCgroup {
				cgs[filepath.Join(mount, cg)] = true
			}
		}
		self := statusKB("self", "VmRSS")
		st.mu.Lock()
		for _, e := range entries {
			st.profiles[e.Name()] = true
		}
		for cg := range cgs {
			st.cgroups[cg] = true
		}
		st.peakRSS = max(st.peakRSS, browserRSS)
		st.peakTandem = max(st.peakTandem, self)
		st.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// cgroupLine is the cgroup v2 path of pid ("0::" line), "" if none.
func cgroupLine(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("a soak runs only with -soak.duration (go tool task soak)")
	}
	// Warm up what the runtime opens once, on first use, so that the
	// baseline has it: the network poller.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	data, err := os.MkdirTemp("", "tandem-soak-data-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	// The pool's browser folders go to os.TempDir(): a folder of our own,
	// so that other Chromium tests on the machine do not blur the count.
	tmp, err := os.MkdirTemp("", "tandem-soak-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o711); err != nil { // the browser user reaches its folder inside
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, togglePage) })
	mux.HandleFunc("/typed", func(http.ResponseWriter, *http.Request) {})
	page := httptest.NewServer(mux)
	runtime.GC()
	before := takeSnapshot()
	began := time.Now()
	load0, _ := os.ReadFile("/proc/loadavg")

	st := &soakStats{cgroups: map[string]bool{}, profiles: map[string]bool{}}
	s := &server{typed: make(chan string, 1), done: make(chan error, 1)}
	cfg := serveConfig{Addr: "127.0.0.1:0", Data: data, Demo: true, DemoPassword: e2ePassword, DemoAPIKey: e2eKey,
		LogLevel: "warn", ICELoopback: "auto", EgressAllow: listFlag{testEgressAllow}, MaxSessions: *soakSessions + 1}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { s.done <- serve(sctx, cfg, log, io.Discard, ready) }()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
	case err := <-s.done:
		t.Fatalf("serve: %v", err)
	}
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	wctx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { st.watch(wctx, tmp); close(watched) }()

	deadline := time.Now().Add(*soakDuration)
	var wg sync.WaitGroup
	for slot := range *soakSessions {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				soakSession(s.URL, page.URL, client, st, fmt.Sprintf("slot %d session %d", slot, n), deadline)
			}
		})
	}
	wg.Wait()
	stopWatch()
	<-watched
	afterChurn := takeSnapshot()

	stop()
	if err := <-s.done; err != nil {
		t.Errorf("serve returned %v", err)
	}
	page.Close()
	tr.CloseIdleConnections()
	elapsed := time.Since(began)
	load1, _ := os.ReadFile("/proc/loadavg")

	// What must be gone. Goroutines and files may take a moment to end.
	var leaks []string
	if err := leakcheck.Settle(before.goroutines, 30*time.Second); err != nil {
		leaks = append(leaks, "goroutines: "+err.Error())
	}
	var after snapshot
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = takeSnapshot()
		if (len(after.fds) <= len(before.fds) && len(after.children) <= len(before.children)) || time.Now().After(end) {
			break
		}
	}
	if extra := subtract(after.fds, before.fds); len(extra) > 0 {
		leaks = append(leaks, fmt.Sprintf("open files (%d before, %d after): %s", len(before.fds), len(after.fds), strings.Join(extra, ", ")))
	}
	if extra := subtract(after.children, before.children); len(extra) > 0 {
		leaks = append(leaks, "child processes: "+strings.Join(extra, ", "))
	}
	if procs := procsMentioning(tmp); len(procs) > 0 {
		leaks = append(leaks, "browser processes: "+strings.Join(procs, "; "))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		leaks = append(leaks, "temporary folders in "+tmp+": "+strings.Join(names, ", "))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var cgLeft []string
	for cg := range st.cgroups {
		if _, err := os.Stat(cg); err == nil {
			cgLeft = append(cgLeft, cg)
		}
	}
	if len(cgLeft) > 0 {
		leaks = append(leaks, "browser cgroups: "+strings.Join(cgLeft, ", "))
	}
	for _, f := range st.failures {
		t.Errorf("session failed: %s", f)
	}
	for _, l := range leaks {
		t.Errorf("left behind: %s", l)
	}
	if st.ended == 0 {
		t.Error("no session went through its whole life")
	}

	slices.Sort(st.starts)
	pct := func(p float64) time.Duration {
		if len(st.starts) == 0 {
			return 0
		}
		return st.starts[min(len(st.starts)-1, int(p*float64(len(st.starts))))]
	}
	verdict := "nothing left behind"
	if len(leaks) > 0 {
		verdict = "LEFT BEHIND: " + strings.Join(leaks, "; ")
	}
	placement := "process group only (no cgroup v2 the pool could use)"
	if len(st.cgroups) > 0 {
		placement = fmt.Sprintf("a cgroup v2 each (%d seen, every one removed)", len(st.cgroups))
		if len(cgLeft) > 0 {
			placement = fmt.Sprintf("a cgroup v2 each (%d seen, %d left)", len(st.cgroups), len(cgLeft))
		}
	}
	rows := [][2]string{
		{"duration (asked / whole run, serve start to shutdown)", fmt.Sprintf("%v / %v", *soakDuration, elapsed.Round(time.Second))},
		{"sessions kept alive at once", strconv.Itoa(*soakSessions)},
		{"sessions started (customer saw the page)", strconv.Itoa(len(st.starts))},
		{"sessions ended by the agent, viewers told", strconv.Itoa(st.ended)},
		{"session start, POST to the customer's first decoded picture: p50 / p95 / max", fmt.Sprintf("%v / %v / %v", pct(0.5).Round(time.Millisecond), pct(0.95).Round(time.Millisecond), pct(1).Round(time.Millisecond))},
		{"viewers connected (Go viewers, customer and agent)", strconv.Itoa(st.viewers)},
		{"video frames decoded by all viewers", strconv.FormatInt(st.frames, 10)},
		{"clicks sent (customer and agent)", strconv.FormatInt(st.clicks, 10)},
		{"failed sessions", strconv.Itoa(len(st.failures))},
		{"browser folders seen", strconv.Itoa(len(st.profiles))},
		{"browser processes held by", placement},
		{"peak RSS of the test process (Tandem, viewers, race detector), VmHWM", mib(statusKB("self", "VmHWM"))},
		{"peak RSS of the browsers' processes together (sampled each second; shared pages counted per process)", mib(st.peakRSS)},
		{"goroutines: before / end of churn / after shutdown", fmt.Sprintf("%d / %d / %d", before.goroutines, afterChurn.goroutines, len(leakcheck.Live()))},
		{"open files: before / end of churn / after shutdown", fmt.Sprintf("%d / %d / %d", len(before.fds), len(afterChurn.fds), len(after.fds))},
		{"child processes: before / end of churn / after shutdown", fmt.Sprintf("%d / %d / %d", len(before.children), len(afterChurn.children), len(after.children))},
		{"result", verdict},
	}
	var b strings.Builder
	b.WriteString("| figure | value |\n|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
	}
	fmt.Fprintf(&b, "\nLoad average (1, 5, 15 min) at the start: %s; at the end: %s.\n",
		strings.Join(strings.Fields(string(load0))[:3], ", "), strings.Join(strings.Fields(string(load1))[:3], ", "))
	t.Logf("soak figures:\n%s", b.String())
	if *soakReport != "" {
		if err := writeSoakReport(*soakReport, b.String()); err != nil {
			t.Error(err)
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

// subtract returns the entries of after that before does not account for
// (as multisets).
func subtract(after, before []string) []string {
	n := map[string]int{}
	for _, s := range before {
		n[s]++
	}
	var out []string
	for _, s := range after {
		if n[s] > 0 {
			n[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}

// writeSoakReport writes the report: the text above "## Latest run" in
// the file stays, the run below it is replaced.
func writeSoakReport(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	head, _, _ := strings.Cut(string(old), "## Latest run")
	if head == "" {
		head = "# Soak\n\n"
	}
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	var b strings.Builder
	b.WriteString(head)
	fmt.Fprintf(&b, "## Latest run\n\n%s, `%s`\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine: %d cores (%s), %s, Linux %s, running as uid %d, shared with other work.\n\n",
		runtime.NumCPU(), cpu, runtime.Version(), strings.TrimSpace(string(kernel)), os.Geteuid())
	b.WriteString(table)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// soakSession runs one session's whole life: create, both viewers, clicks
// until its lifetime (or the soak) is over, end, and the viewers told.
func soakSession(base, pageURL string, client *http.Client, st *soakStats, name string, deadline time.Time) {
	life := soakLifeMin + rand.N(soakLifeMax-soakLifeMin)
	ctx, cancel := context.WithTimeout(context.Background(), life+2*time.Minute)
	defer cancel()
	var closers []func()
	defer func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}()
	fail := func(format string, args ...any) { st.fail(name+": "+format, args...) }

	t0 := time.Now()
	var sess struct{ ID, PIN string }
	if err := soakPost(ctx, client, base, nil, "/api/v1/sessions", `{"start_url":"`+pageURL+`/"}`, e2eKey, &sess); err != nil {
		fail("create: %v", err)
		time.Sleep(time.Second) // not a busy loop while serve refuses
		return
	}
	ended := false
	defer func() {
		if !ended {
			_ = soakDelete(client, base, sess.ID)
		}
	}()
	custJar, _ := cookiejar.New(nil)
	if err := soakPost(ctx, client, base, custJar, "/api/v1/join", `{"company":"demo","pin":"`+sess.PIN+`"}`, "", nil); err != nil {
		fail("join: %v", err)
		return
	}
	cust, closeCust, err := soakDial(ctx, base, custJar, sess.ID, "customer")
	if err != nil {
		fail("customer: %v", err)
		return
	}
	closers = append(closers, closeCust)
	if _, err := cust.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
		fail("customer's first picture: %v", err)
		return
	}
	start := time.Since(t0)
	if err := soakPost(ctx, client, base, custJar, "/api/v1/sessions/"+sess.ID+"/consent", "", "", nil); err != nil {
		fail("consent: %v", err)
		return
	}
	agentJar, _ := cookiejar.New(nil)
	if err := soakPost(ctx, client, base, agentJar, "/api/v1/auth/login", `{"email":"agent@demo.test","password":"`+e2ePassword+`"}`, "", nil); err != nil {
		fail("login: %v", err)
		return
	}
	agent, closeAgent, err := soakDial(ctx, base, agentJar, sess.ID, "agent")
	if err != nil {
		fail("agent: %v", err)
		return
	}
	closers = append(closers, closeAgent)
	if _, err := agent.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
		fail("agent's first picture: %v", err)
		return
	}
	if err := agent.Control(ctx, protocol.ControlRequest); err != nil {
		fail("control request: %v", err)
		return
	}
	if _, _, err := cust.WaitNotice(ctx, 0, func(n string) bool { return strings.Contains(n, `"state":"requested"`) }); err != nil {
		fail("control request notice: %v", err)
		return
	}
	if err := cust.Control(ctx, protocol.ControlGrant); err != nil {
		fail("control grant: %v", err)
		return
	}
	if _, _, err := agent.WaitNotice(ctx, 0, func(n string) bool { return strings.Contains(n, `"controller":"agent"`) }); err != nil {
		fail("control granted notice: %v", err)
		return
	}
	st.mu.Lock()
	st.starts = append(st.starts, start)
	st.viewers += 2
	st.mu.Unlock()

	// Both click on the page (it turns red or blue on each press) until
	// the session's life or the soak is over.
	var clicks atomic.Int64
	end := time.Now().Add(life)
	if deadline.Before(end) {
		end = deadline
	}
	for i := 0; time.Now().Before(end); i++ {
		v := cust
		if i%2 == 1 {
			v = agent
		}
		if err := v.Click(ctx, 600+float64(i%5)*20, 500); err != nil {
			fail("click: %v", err)
			return
		}
		clicks.Add(1)
		time.Sleep(700 * time.Millisecond)
	}
	// Each viewer kept receiving video: the page changed on every click.
	cn, an := soakPictures(cust), soakPictures(agent)
	if cn < 3 || an < 3 {
		fail("pictures decoded: customer %d, agent %d; want video all along", cn, an)
	}
	if err := soakDelete(client, base, sess.ID); err != nil {
		fail("end: %v", err)
		return
	}
	ended = true
	for _, v := range []*botviewer.Viewer{cust, agent} {
		if reason, err := v.WaitEnded(ctx); err != nil {
			fail("viewer not told the session ended: %v", err)
			return
		} else if reason != "agent_ended" {
			fail("ended as %q, want agent_ended", reason)
		}
	}
	st.mu.Lock()
	st.ended++
	st.frames += int64(cn + an)
	st.clicks += clicks.Load()
	st.mu.Unlock()
}

// soakPictures is how many pictures v decoded so far.
func soakPictures(v *botviewer.Viewer) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, _ := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true })
	return p.N
}

func soakPost(ctx context.Context, client *http.Client, base string, jar http.CookieJar, path, body, key string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	c := *client
	c.Jar = jar
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s = %d %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func soakDelete(client *http.Client, base, id string) error {
	req, _ := http.NewRequest("DELETE", base+"/api/v1/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+e2eKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(raw, []byte(`"ended"`)) {
		return fmt.Errorf("DELETE = %d %s", resp.StatusCode, raw)
	}
	return nil
}

// soakDial connects a Go viewer as role; close ends it and its WebSocket.
func soakDial(ctx context.Context, base string, jar http.CookieJar, id, role string) (*botviewer.Viewer, func(), error) {
	u, _ := url.Parse(base)
	hdr := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/v1/sessions/"+id+"/ws?role="+role, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: %w", err)
	}
	ws.SetReadLimit(protocol.MaxSignalBytes)
	sig := botviewer.WebSocket{C: ws}
	if hello, err := sig.Recv(ctx); err != nil || hello.Type != protocol.TypeHello {
		_ = ws.CloseNow()
		return nil, nil, fmt.Errorf("hello = %+v, %v", hello, err)
	}
	v, err := botviewer.Dial(ctx, sig)
	if err != nil {
		_ = ws.CloseNow()
		return nil, nil, err
	}
	return v, func() { _ = v.Close(); _ = ws.CloseNow() }, nil
}
