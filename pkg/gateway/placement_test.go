package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/worker"
)

// standIn is a worker stand-in on the real NATS: it reports the status the
// test sets and answers lease requests by name as the test says (the real
// workers place and refuse in pkg/worker; cmd/tandem's
// TestClusterOfProcesses runs real ones).
type standIn struct {
	id     string
	nc     *nats.Conn
	mu     sync.Mutex
	st     worker.Status
	answer string // "" → take the session; else the LeaseReply error
	leases []string
}

func newStandIn(t *testing.T, e *env, id string, free int) *standIn {
	t.Helper()
	w := &standIn{id: id, nc: e.nc, st: worker.Status{WorkerID: id, MaxSessions: 4, Free: free}}
	sub, err := e.nc.Subscribe(worker.LeaseSubject(id), func(m *nats.Msg) {
		var req worker.LeaseRequest
		_ = json.Unmarshal(m.Data, &req)
		w.mu.Lock()
		rep := worker.LeaseReply{WorkerID: id}
		if w.answer != "" {
			rep = worker.LeaseReply{Error: w.answer, Message: "stand-in says " + w.answer}
		} else {
			w.leases = append(w.leases, req.SessionID)
			w.st.Free, w.st.Sessions = max(0, w.st.Free-1), w.st.Sessions+1 // as a worker does
		}
		w.mu.Unlock()
		b, _ := json.Marshal(rep)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

// report publishes the stand-in's status, changed by fn. It may run on
// other goroutines than the test's, and after the test: a failed publish
// is no failure of the test.
func (w *standIn) report(_ *testing.T, fn func(*worker.Status)) {
	w.mu.Lock()
	if fn != nil {
		fn(&w.st)
	}
	st := w.st
	w.mu.Unlock()
	st.At = time.Now()
	b, _ := json.Marshal(st)
	_ = w.nc.Publish("tandem.worker."+w.id+".status", b)
	_ = w.nc.Flush()
}

func (w *standIn) took() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.leases...)
}

// heard reports the stand-ins' statuses until the gateway counts n free
// places in all (its subscription may not be up at the first report).
func (e *env) heard(t *testing.T, n int, ws ...*standIn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.g.freePlaces() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway counts %d free places, want %d", e.g.freePlaces(), n)
		}
		for _, w := range ws {
			w.report(t, nil)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) sessionID(t *testing.T) string {
	t.Helper()
	id, _ := e.createSession(t, e.keyA)["id"].(string)
	return id
}

// The most free places wins; a draining worker gets nothing whatever it
// says it has, and a session placed counts at once.
func TestPlacementMostFreePlaces(t *testing.T) {
	e := newEnv(t, false)
	e.runGateway(t)
	a, b, c := newStandIn(t, e, "wa", 1), newStandIn(t, e, "wb", 3), newStandIn(t, e, "wc", 5)
	c.report(t, func(s *worker.Status) { s.Draining = true })
	e.heard(t, 9, a, b, c)
	first, second := e.sessionID(t), e.sessionID(t)
	if got := b.took(); len(got) != 2 || got[0] != first || got[1] != second {
		t.Errorf("wb (3 free) took %v, want both %s and %s", got, first, second)
	}
	third := e.sessionID(t) // wb has 1 place left now, as has wa
	if n := len(a.took()) + len(b.took()); n != 3 {
		t.Errorf("wa and wb took %d sessions, want 3 (the third, %s, to either)", n, third)
	}
	if got := c.took(); len(got) != 0 {
		t.Errorf("the draining worker took %v", got)
	}
	s, err := e.store.GetSession(context.Background(), "acme", first)
	if err != nil || s.WorkerID != "wb" {
		t.Errorf("the first session's record: worker %q, %v; want wb", s.WorkerID, err)
	}
}

// A worker that refuses (full by now, or its browser failed) is passed
// over for the next.
func TestPlacementPassesOverRefusals(t *testing.T) {
	for _, refusal := range []string{"no_capacity", "browser_failed"} {
		t.Run(refusal, func(t *testing.T) {
			e := newEnv(t, false)
			e.runGateway(t)
			a, b := newStandIn(t, e, "wa", 1), newStandIn(t, e, "wb", 3)
			b.answer = refusal
			e.heard(t, 4, a, b)
			id := e.sessionID(t)
			if got := a.took(); len(got) != 1 || got[0] != id {
				t.Errorf("wa took %v, want %s after wb refused", got, id)
			}
		})
	}
}

// With no free place the request waits briefly: a place that appears in
// time takes the session; none gets 503 no_capacity, and nothing lives on.
func TestPlacementWaitsThen503(t *testing.T) {
	e := newEnv(t, false)
	e.g.cfg.QueueWait = 1500 * time.Millisecond
	e.runGateway(t)
	a := newStandIn(t, e, "wa", 0)
	deadline := time.Now().Add(5 * time.Second)
	for e.g.liveWorkers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never heard the stand-in")
		}
		a.report(t, nil)
		time.Sleep(50 * time.Millisecond)
	}

	start := time.Now()
	e.do(t, nil, "POST", "/api/v1/sessions", `{"start_url":"https://example.com/"}`, bearer(e.keyA)).wantError(t, 503, "no_capacity")
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("503 after %s; want the request to wait for a place first", waited)
	}
	if got := a.took(); len(got) != 0 {
		t.Errorf("the full worker took %v", got)
	}

	time.AfterFunc(400*time.Millisecond, func() { a.report(t, func(s *worker.Status) { s.Free = 1 }) })
	id := e.sessionID(t)
	if got := a.took(); len(got) != 1 || got[0] != id {
		t.Errorf("the place that came took %v, want %s", got, id)
	}
}

// A worker whose heartbeats stop is lost: the viewer bridged to its
// session is told worker_lost, the session's record ends so, and a viewer
// coming back is told the same.
func TestLostWorkerEndsItsSessions(t *testing.T) {
	e := newEnv(t, false)
	e.runGateway(t)
	a := newStandIn(t, e, "wa", 1)
	other := newStandIn(t, e, "wb", 0) // a place once wa's session is placed
	beat := make(chan struct{})
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-beat:
				return
			case <-tick.C:
				a.report(t, nil)
				other.report(t, nil)
			}
		}
	}()
	e.heard(t, 1, a, other)
	sess := e.createSession(t, e.keyA)
	id, pin := sess["id"].(string), sess["pin"].(string)
	other.report(t, func(s *worker.Status) { s.Free = 1 })
	e.heard(t, 1, a, other)
	kept := e.sessionID(t)
	if len(a.took()) != 1 || len(other.took()) != 1 {
		t.Fatalf("wa took %v, wb %v; want one each", a.took(), other.took())
	}
	// wa answers the viewer's join as a worker does.
	join, err := e.nc.Subscribe("tandem.sig.acme."+id+".*.up", func(m *nats.Msg) {
		if m.Reply != "" {
			_ = m.Respond(nil)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = join.Unsubscribe() })

	jar, _ := cookiejar.New(nil)
	customer := &http.Client{Jar: jar}
	if r := e.do(t, customer, "POST", "/api/v1/join", `{"company":"acme","pin":"`+pin+`"}`, nil); r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	conn := e.dialViewer(t, jar, id, "customer")
	if s := readSignal(t, conn); s.Type != protocol.TypeHello {
		t.Fatalf("first message %+v, want the hello", s)
	}

	// wa falls silent; wb goes on.
	stop := time.Now()
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.Context().Done():
				return
			case <-tick.C:
				other.report(t, nil)
			}
		}
	}()
	close(beat)
	if s := readSignal(t, conn); s.Type != protocol.TypeEnded || s.Reason != worker.ReasonWorkerLost {
		t.Fatalf("the viewer got %+v, want ended worker_lost", s)
	}
	t.Logf("the viewer was told %s after the last heartbeat", time.Since(stop).Round(100*time.Millisecond))
	s, err := e.store.GetSession(context.Background(), "acme", id)
	if err != nil || s.EndReason != worker.ReasonWorkerLost {
		t.Errorf("the record: %+v, %v; want ended worker_lost", s, err)
	}
	if s, err := e.store.GetSession(context.Background(), "acme", kept); err != nil || s.EndReason != "" {
		t.Errorf("wb's session: %+v, %v; want it live", s, err)
	}
	// An agent coming to it later (a reload) gets the reason, not an
	// error. (The customer's token ended with the session.)
	agent := e.agentClient(t, "acme")
	again := e.dialViewer(t, agent.Jar, id, "agent")
	if s := readSignal(t, again); s.Type != protocol.TypeEnded || s.Reason != worker.ReasonWorkerLost {
		t.Fatalf("an agent coming back got %+v, want ended worker_lost", s)
	}
}

func (e *env) dialViewer(t *testing.T, jar http.CookieJar, id, role string) *websocket.Conn {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	hdr := http.Header{"Origin": {e.srv.URL}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/api/v1/sessions/"+id+"/ws?role="+role,
		&websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

func readSignal(t *testing.T, conn *websocket.Conn) protocol.Signal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.DecodeServerSignal(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
