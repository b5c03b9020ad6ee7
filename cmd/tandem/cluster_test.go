package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-cobrowse/tandem/pkg/botviewer"
)

// The scale-out layout on loopback, every part its own process: three
// nats-server processes clustered with JetStream (built from the
// nats-server module in go.mod), one `tandem gateway` and `tandem worker`
// processes. It proves what docs/scaling.md promises: sessions spread by
// headroom; a drained worker takes no new session, keeps its live ones
// and exits when they end; a killed worker ends only its own sessions,
// and their viewers are told; killing a NATS node (the leader of the
// sessions' stream) loses no acknowledged write, and sessions go on.
func TestClusterOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a cluster of processes")
	}
	bin := t.TempDir()
	goBuild(t, bin, "tandem", ".")
	goBuild(t, bin, "nats-server", "github.com/nats-io/nats-server/v2")

	// Three NATS servers, routed to each other, with JetStream.
	var clientPorts, routePorts [3]int
	for i := range 3 {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	var urls []string
	for _, p := range clientPorts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	natsURLs := strings.Join(urls, ",")
	nodes := map[string]*proc{}
	for i := range 3 {
		dir := t.TempDir()
		var routes []string
		for j, p := range routePorts {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream { store_dir: %q, max_memory_store: 64MB, max_file_store: 1GB }
cluster { name: tandem, listen: 127.0.0.1:%d, routes: [%s] }
`, i+1, clientPorts[i], dir, routePorts[i], strings.Join(routes, ", "))
		file := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("n%d", i+1)
		nodes[name] = startProc(t, name, nil, filepath.Join(bin, "nats-server"), "-c", file)
	}
	nc, err := nats.Connect(natsURLs, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the NATS cluster's JetStream to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})

	// The pages the hosted browsers open.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, animatedPage) }))
	t.Cleanup(site.Close)

	gw := startProc(t, "gateway", nil, filepath.Join(bin, "tandem"), "gateway", "--nats-url", natsURLs, "--addr", "127.0.0.1:0",
		"--demo", "--demo-password", "cluster-password", "--demo-api-key", benchKey, "--log-level", "warn")
	base := gw.waitLine(t, regexp.MustCompile(`Tandem is running at (http://\S+)`))
	s := &benchServer{url: base}
	// A second gateway, for the viewer whose gateway dies.
	gw2 := startProc(t, "gateway2", nil, filepath.Join(bin, "tandem"), "gateway", "--nats-url", natsURLs, "--addr", "127.0.0.1:0",
		"--log-level", "warn")
	s2 := &benchServer{url: gw2.waitLine(t, regexp.MustCompile(`Tandem is running at (http://\S+)`))}
	workerArgs := func(id string) []string {
		return []string{"worker", "--nats-url", natsURLs, "--worker-id", id, "--max-sessions", "3", "--warm", "-1",
			"--egress-allow", "127.0.0.0/8", "--ice-loopback", "true", "--metrics-addr", "127.0.0.1:0", "--log-level", "warn",
			"--drain-timeout", "2m"}
	}
	workers := map[string]*proc{}
	metrics := map[string]string{}
	startWorker := func(id string) {
		// Its own temp dir, which the browser user can enter (t.TempDir's
		// parent is private to root).
		tmp, err := os.MkdirTemp("", "tandem-cluster-"+id+"-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		p := startProc(t, id, []string{"TMPDIR=" + tmp}, filepath.Join(bin, "tandem"), workerArgs(id)...)
		workers[id] = p
		metrics[id] = "http://" + p.waitLine(t, regexp.MustCompile(`metrics at (\S+)`))
	}
	startWorker("wa")
	startWorker("wb")
	waitGatewayWorkers(t, base, 2)

	pins := map[string]string{}
	create := func() string {
		t.Helper()
		var sess struct{ ID, PIN string }
		s.post(t, nil, "/api/v1/sessions", `{"start_url":"`+site.URL+`/"}`, benchKey, &sess)
		pins[sess.ID] = sess.PIN
		return sess.ID
	}
	// Sessions spread by headroom: 2 and 2.
	var ids []string
	for range 4 {
		ids = append(ids, create())
	}
	on := func(id string) []string { return workerSessions(t, metrics[id]) }
	if a, b := on("wa"), on("wb"); len(a) != 2 || len(b) != 2 {
		t.Fatalf("4 sessions placed as wa %v, wb %v; want 2 and 2", a, b)
	}

	// Draining wb (SIGTERM): the next session goes to wa; wb keeps its
	// two, and exits once they ended.
	workers["wb"].signal(t, syscall.SIGTERM)
	eventually(t, 10*time.Second, "wb to report draining", func() bool { return status(metrics["wb"]+"/readyz") == 503 })
	eventually(t, 10*time.Second, "the gateway to see wb drain", func() bool { return gatewayMetric(t, base, "tandem_gateway_free_places") == 1 })
	ids = append(ids, create())
	if a, b := on("wa"), on("wb"); len(a) != 3 || len(b) != 2 {
		t.Fatalf("with wb draining: wa %v, wb %v; want 3 and 2", a, b)
	}
	wbIDs := on("wb")
	for _, id := range wbIDs {
		s.delete(t, "/api/v1/sessions/"+id)
	}
	if code := workers["wb"].wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the drained worker exited with %d, want 0", code)
	}

	// A new worker takes the next session, with a customer watching.
	startWorker("wc")
	waitGatewayWorkers(t, base, 2)
	survivorID := create()
	ids = append(ids, survivorID)
	if c := on("wc"); len(c) != 1 || c[0] != survivorID {
		t.Fatalf("wc hosts %v, want the new session %s", c, survivorID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	firstPicture := func(v *botviewer.Viewer) {
		t.Helper()
		if _, err := v.WaitPicture(ctx, func(botviewer.Picture) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	watch := func(id, pin string) (*botviewer.Viewer, http.CookieJar) {
		jar, _ := cookiejar.New(nil)
		s.post(t, jar, "/api/v1/join", `{"company":"demo","pin":"`+pin+`"}`, "", nil)
		v := s.dial(t, ctx, jar, id, "customer")
		firstPicture(v)
		return v, jar
	}
	survivor, survivorJar := watch(survivorID, pins[survivorID])

	// A viewer of one of wa's sessions, then wa's machine dies.
	waLive := on("wa")
	victim, _ := watch(waLive[0], pins[waLive[0]])
	workers["wa"].kill(t)
	reason, err := victim.WaitEnded(ctx)
	if err != nil || reason != "worker_lost" {
		t.Fatalf("wa's viewer: ended %q, %v; want worker_lost", reason, err)
	}
	for _, id := range waLive {
		eventually(t, 20*time.Second, "wa's session "+id+" to end", func() bool {
			st := s.sessionState(t, id)
			return st.State == "ended" && st.EndReason == "worker_lost"
		})
	}
	if st := s.sessionState(t, survivorID); st.State == "ended" {
		t.Fatalf("wc's session ended with wa: %+v", st)
	}
	afterWA := time.Now()
	if _, err := survivor.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.At.After(afterWA) }); err != nil {
		t.Fatalf("wc's viewer after wa died: %v", err)
	}

	// Kill the NATS node that leads the sessions' stream.
	info, err := js.Stream(ctx, "KV_tandem_sessions")
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil || si.Cluster == nil || si.Config.Replicas != 3 {
		t.Fatalf("sessions stream: %+v, %v; want 3 replicas", si, err)
	}
	leader := si.Cluster.Leader
	t.Logf("killing NATS node %s, leader of the sessions' stream", leader)
	nodes[leader].kill(t)
	// Every acknowledged write is still there.
	states := map[string]string{}
	for _, id := range ids {
		states[id] = "live"
	}
	for _, id := range waLive {
		states[id] = "worker_lost"
	}
	for _, id := range wbIDs {
		states[id] = "agent_ended"
	}
	eventually(t, 30*time.Second, "the sessions to read back after the node died", func() bool {
		for id, want := range states {
			st, ok := s.trySession(id)
			if !ok {
				return false
			}
			got := "live"
			if st.State == "ended" {
				got = st.EndReason
			}
			if got != want {
				t.Fatalf("session %s after the node died: %s, want %s", id, got, want)
			}
		}
		return true
	})
	// Writes go on, and so does the live session's video.
	eventually(t, 30*time.Second, "a new session after the node died", func() bool {
		_, ok := s.tryCreate(`{"start_url":"` + site.URL + `/"}`)
		return ok
	})
	afterNode := time.Now()
	if _, err := survivor.WaitPicture(ctx, func(p botviewer.Picture) bool { return p.At.After(afterNode) }); err != nil {
		t.Fatalf("wc's viewer after the NATS node died: %v", err)
	}

	// The viewer's gateway dies: the viewer comes back through the other
	// one, with its cookie, to the same session.
	gw.kill(t)
	again := s2.dial(t, ctx, survivorJar, survivorID, "customer")
	firstPicture(again)
	if st := s2.sessionState(t, survivorID); st.State == "ended" {
		t.Fatalf("the session ended with its viewer's gateway: %+v", st)
	}
}

// goBuild builds pkg into dir/out (a binary the test runs as a process of
// its own) and returns its path.
func goBuild(t *testing.T, dir, out, pkg string) string {
	t.Helper()
	path := filepath.Join(dir, out)
	if b, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return path
}

// proc is a child process of a test, with its output kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	line chan string
	done chan struct{}
}

// startProc starts a process in its own process group; the test's cleanup
// kills the group.
func startProc(t *testing.T, name string, env []string, path string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, line: make(chan string, 256), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.line <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.killAll()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- output of %s:\n%s", name, strings.Join(p.out, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

// waitLine waits for a line of output matching re and returns its first
// group.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case l := <-p.line:
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case <-p.done:
			t.Fatalf("%s exited before printing %s", p.name, re)
		case <-timeout:
			t.Fatalf("%s printed no %s", p.name, re)
		}
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// kill kills the process and everything it started (a machine that died):
// its process group, and its browsers, which run in groups of their own
// but hold the process's TMPDIR on their command line.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.killAll()
}

func (p *proc) killAll() {
	tmp := ""
	for _, e := range p.cmd.Env {
		if v, ok := strings.CutPrefix(e, "TMPDIR="); ok {
			tmp = v
		}
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	if tmp == "" {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(cmdline), tmp) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				left++
			}
		}
		if left == 0 {
			return
		}
	}
}

// wait waits for the process to exit by itself and returns its code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s", p.name, d)
		return -1
	}
}

// freePort is a TCP port free on loopback now (another process could
// take it before the test binds it, which then fails loudly).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeAddr is 127.0.0.1 with a free port.
func freeAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

func eventually(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func status(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func gatewayMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	v, ok := scrape(t, base+"/metrics")[name]
	if !ok {
		t.Fatalf("the gateway has no metric %s", name)
	}
	return v
}

func waitGatewayWorkers(t *testing.T, base string, n int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("the gateway to hear %d workers", n), func() bool {
		return gatewayMetric(t, base, "tandem_gateway_workers") == float64(n)
	})
}

var sessionLabel = regexp.MustCompile(`^tandem_session_browser_memory_bytes\{company_id="[^"]*",session_id="([^"]+)"\}$`)

// workerSessions lists the sessions a worker hosts, from its metrics.
func workerSessions(t *testing.T, metricsURL string) []string {
	t.Helper()
	var ids []string
	for name := range scrape(t, metricsURL+"/metrics") {
		if m := sessionLabel.FindStringSubmatch(name); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

type sessionState struct {
	State     string `json:"state"`
	EndReason string `json:"end_reason"`
}

func (s *benchServer) api(method, path, body string) (int, []byte, error) {
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+benchKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (s *benchServer) trySession(id string) (sessionState, bool) {
	var st sessionState
	code, b, err := s.api("GET", "/api/v1/sessions/"+id, "")
	if err != nil || code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

func (s *benchServer) sessionState(t *testing.T, id string) sessionState {
	t.Helper()
	st, ok := s.trySession(id)
	if !ok {
		t.Fatalf("GET session %s failed", id)
	}
	return st
}

func (s *benchServer) tryCreate(body string) (string, bool) {
	code, b, err := s.api("POST", "/api/v1/sessions", body)
	var out struct{ ID string }
	if err != nil || code != http.StatusCreated || json.Unmarshal(b, &out) != nil {
		return "", false
	}
	return out.ID, true
}

func (s *benchServer) delete(t *testing.T, path string) {
	t.Helper()
	if code, b, err := s.api("DELETE", path, ""); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE %s = %d %s %v", path, code, b, err)
	}
}
