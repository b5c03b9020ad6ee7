package signaling_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// TestMain fails the package if a test left goroutines running.
func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }

// newHost starts the worker side of session acme/s_1 on worker's
// connection; it is closed when the test ends (Close is idempotent).
func newHost(t *testing.T, worker *nats.Conn, peers signaling.Peers) *signaling.Host {
	t.Helper()
	h, err := signaling.NewHost(worker, "acme", "s_1", peers, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNATS starts an embedded NATS server on a random loopback port and
// returns two connections to it, as a gateway and a worker would hold.
// Everything is closed in t.Cleanup.
func startNATS(t *testing.T) (gateway, worker *nats.Conn) {
	t.Helper()
	gateway, worker, stop := launchNATS(t)
	t.Cleanup(stop)
	return gateway, worker
}

// launchNATS is startNATS with the stopping left to the caller: stop closes
// both connections and shuts the server down.
func launchNATS(t *testing.T) (gateway, worker *nats.Conn, stop func()) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	var conns []*nats.Conn
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, nc := range conns {
				nc.Close()
			}
			ns.Shutdown()
			ns.WaitForShutdown()
		})
	}
	if !ns.ReadyForConnections(10 * time.Second) {
		stop()
		t.Fatal("nats server not ready")
	}
	for _, name := range []string{"gateway", "worker"} {
		nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
		if err != nil {
			stop()
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	return conns[0], conns[1], stop
}

// fakeConn is a viewer's WebSocket made of channels.
type fakeConn struct {
	in        chan []byte   // viewer → Bridge
	out       chan []byte   // Bridge → viewer
	gone      chan struct{} // closed when the viewer disconnects
	closeOnce sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan []byte, 256), out: make(chan []byte, 256), gone: make(chan struct{})}
}

func (c *fakeConn) Read(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.in:
		return b, nil
	case <-c.gone:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *fakeConn) Write(ctx context.Context, data []byte) error {
	select {
	case c.out <- append([]byte(nil), data...):
		return nil
	case <-c.gone:
		return io.ErrClosedPipe
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeConn) disconnect() { c.closeOnce.Do(func() { close(c.gone) }) }

// send queues a message from the viewer.
func (c *fakeConn) send(s string) { c.in <- []byte(s) }

// next returns the next message to the viewer, decoded.
func (c *fakeConn) next(t *testing.T) protocol.Signal {
	t.Helper()
	select {
	case b := <-c.out:
		s, err := protocol.DecodeServerSignal(b)
		if err != nil {
			t.Fatalf("viewer got a bad message %q: %v", b, err)
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a message to the viewer")
		return protocol.Signal{}
	}
}

// bridge runs Relay.Bridge for v on its own goroutine; the returned channel
// yields its result.
func bridge(ctx context.Context, r *signaling.Relay, c *fakeConn, v signaling.Viewer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Bridge(ctx, c, v) }()
	return done
}

// result waits for a bridge's result.
func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Bridge did not return")
		return nil
	}
}

// fakePeers records Host's calls.
type fakePeers struct {
	joinErr error
	// offer answers an offer; nil answers "answer:"+sdp.
	offer func(ctx context.Context, v signaling.Viewer, sdp string) (string, error)

	mu    sync.Mutex
	calls []string // guarded by mu
}

func (p *fakePeers) record(s string) {
	p.mu.Lock()
	p.calls = append(p.calls, s)
	p.mu.Unlock()
}

func (p *fakePeers) Join(_ context.Context, v signaling.Viewer) error {
	p.record(fmt.Sprintf("join %s %s %s %s %s", v.Company, v.Session, v.ID, v.Role, v.Name))
	return p.joinErr
}

func (p *fakePeers) Offer(ctx context.Context, v signaling.Viewer, o signaling.Offer) (string, error) {
	if o.Restart {
		p.record("restart " + v.ID + " " + o.SDP)
	} else {
		p.record("offer " + v.ID + " " + o.SDP)
	}
	if p.offer != nil {
		return p.offer(ctx, v, o.SDP)
	}
	return "answer:" + o.SDP, nil
}

func (p *fakePeers) Candidate(v signaling.Viewer, c protocol.Candidate) error {
	p.record("candidate " + v.ID + " " + c.Candidate)
	return nil
}

func (p *fakePeers) Leave(v signaling.Viewer) { p.record("leave " + v.ID) }

// of returns the recorded calls that start with prefix.
func (p *fakePeers) of(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, c := range p.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}
