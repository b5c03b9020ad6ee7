package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if n, ok := settle(before, 10*time.Second); !ok {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %d, started with %d\n", n, before)
			buf := make([]byte, 1<<20)
			os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// settle polls until at most want goroutines run, or the deadline passes.
func settle(want int, within time.Duration) (int, bool) {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n, true
		}
		if time.Now().After(deadline) {
			return n, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startT starts an embedded bus in dir and closes it in t.Cleanup.
func startT(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Start(ctxT(t), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("Start(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	b, err := Start(ctx, Config{Dir: dir, SyncAlways: true}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(b.ClientURL(), ":4222") {
		t.Errorf("ClientURL() = %q, want nats://127.0.0.1:<random port>", b.ClientURL())
	}
	if got := b.srv.JetStreamConfig(); got == nil || !got.SyncAlways || got.StoreDir != dir+"/jetstream" {
		t.Errorf("JetStreamConfig() = %+v, want SyncAlways and StoreDir %s/jetstream", got, dir)
	}
	kv, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("CreateKeyValue: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !b.Conn().IsClosed() {
		t.Errorf("connection still open after Close")
	}

	b2 := startT(t, Config{Dir: dir})
	kv2, err := b2.JetStream().KeyValue(ctx, "t")
	if err != nil {
		t.Fatalf("KeyValue after restart: %v", err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v1" {
		t.Fatalf("Get after restart = %v, %v; want v1", e, err)
	}
}

func TestStartCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 2; i++ {
		b, err := Start(ctxT(t), Config{Dir: t.TempDir()}, zap.NewNop())
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		// Exercise the connection so its goroutines exist.
		if _, err := b.JetStream().AccountInfo(ctxT(t)); err != nil {
			t.Fatalf("AccountInfo: %v", err)
		}
		if runtime.NumGoroutine() <= before {
			t.Fatalf("running bus has no goroutines of its own; the check below proves nothing")
		}
		addr := strings.TrimPrefix(b.ClientURL(), "nats://")
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Close waited for the server: it is down and its port is free.
		if b.srv.Running() {
			t.Errorf("server still running after Close")
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port %s still taken after Close: %v", addr, err)
		} else {
			l.Close()
		}
	}
	if n, ok := settle(before, 10*time.Second); !ok {
		t.Errorf("goroutines after Close = %d, before Start %d", n, before)
	}
}

func TestExternalConnect(t *testing.T) {
	ctx := ctxT(t)
	emb := startT(t, Config{Dir: t.TempDir()})
	ext := startT(t, Config{URLs: " " + emb.ClientURL() + " , " + emb.ClientURL(), Name: "ext-test"})
	if ext.srv != nil {
		t.Fatalf("external bus started a server")
	}
	if ext.ClientURL() != emb.ClientURL() {
		t.Errorf("external ClientURL() = %q, want %q", ext.ClientURL(), emb.ClientURL())
	}
	// A message crosses from one connection to the other.
	sub, err := emb.Conn().SubscribeSync("t.hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := emb.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ext.Conn().Publish("t.hello", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("NextMsg = %v, %v; want hi", m, err)
	}
	if _, err := ext.JetStream().AccountInfo(ctx); err != nil {
		t.Errorf("external AccountInfo: %v", err)
	}
}

func TestExternalUnreachableHonoursContext(t *testing.T) {
	// Find a port nobody listens on by starting and stopping a server.
	b, err := Start(ctxT(t), Config{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	url := b.ClientURL()
	b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	core, logs := observer.New(zap.WarnLevel)
	start := time.Now()
	_, err = Start(ctx, Config{URLs: url}, zap.New(core))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start(unreachable) error = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start(unreachable) took %s after a 700ms deadline", d)
	}
	if logs.FilterMessage("connect to NATS failed; retrying").Len() == 0 {
		t.Errorf("no retry was logged")
	}
}

func TestNoListener(t *testing.T) {
	b := startT(t, Config{Dir: t.TempDir(), Port: -1})
	if got := b.ClientURL(); got != "" {
		t.Errorf("ClientURL() = %q, want \"\" without a listener", got)
	}
	kv, err := b.JetStream().CreateKeyValue(ctxT(t), jetstream.KeyValueConfig{Bucket: "t"})
	if err != nil {
		t.Fatalf("CreateKeyValue: %v", err)
	}
	if _, err := kv.Put(ctxT(t), "k", []byte("v")); err != nil {
		t.Errorf("Put: %v", err)
	}
}

func TestPortTaken(t *testing.T) {
	a := startT(t, Config{Dir: t.TempDir()})
	var port int
	if _, err := fmt.Sscanf(a.ClientURL()[strings.LastIndex(a.ClientURL(), ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	_, err := Start(ctxT(t), Config{Dir: t.TempDir(), Port: port, ReadyTimeout: 500 * time.Millisecond}, zap.NewNop())
	if err == nil {
		t.Fatalf("Start on taken port %d succeeded", port)
	}
	if n, ok := settle(before, 10*time.Second); !ok {
		t.Errorf("goroutines after failed Start = %d, before %d", n, before)
	}
}

func TestServerLogsGoToZap(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := Start(ctxT(t), Config{Dir: t.TempDir()}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if logs.FilterLoggerName("nats-server").FilterMessageSnippet("Starting nats-server").Len() == 0 {
		t.Errorf("no \"Starting nats-server\" line from logger nats-server; got %d entries", logs.Len())
	}
	if logs.FilterLoggerName("bus").FilterMessage("embedded NATS stopped").Len() != 1 {
		t.Errorf("no \"embedded NATS stopped\" line from logger bus")
	}
}

func TestUserClosedHandlerRuns(t *testing.T) {
	called := make(chan struct{})
	b, err := Start(ctxT(t), Config{Dir: t.TempDir(), Options: []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { close(called) }),
	}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	select {
	case <-called:
	default:
		t.Errorf("user's ClosedHandler had not run when Close returned")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"embedded", Config{Dir: "/x", Host: "0.0.0.0", Port: 4222, SyncAlways: true}, true},
		{"no listener", Config{Port: -1}, true},
		{"external", Config{URLs: "nats://a:4222,nats://b:4222", CredsFile: "/c"}, true},
		{"port too low", Config{Port: -2}, false},
		{"port too high", Config{Port: 65536}, false},
		{"creds without urls", Config{CredsFile: "/c"}, false},
		{"external with dir", Config{URLs: "nats://a", Dir: "/x"}, false},
		{"external with port", Config{URLs: "nats://a", Port: 4222}, false},
		{"external with sync", Config{URLs: "nats://a", SyncAlways: true}, false},
		{"negative timeout", Config{ReadyTimeout: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
			}
		})
	}
}

func TestRedactURLs(t *testing.T) {
	got := redactURLs("nats://user:secret@a:4222, tls://tok@b:4222,nats://c")
	if want := "nats://redacted@a:4222,tls://redacted@b:4222,nats://c"; got != want {
		t.Errorf("redactURLs = %q, want %q", got, want)
	}
}
