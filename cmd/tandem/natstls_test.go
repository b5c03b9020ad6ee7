package main

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap/zaptest"
)

// --nats-tls-ca: a gateway or worker reaches a NATS cluster that speaks
// only TLS when it is given the CA, and not without it (the real
// nats-server, in this process).
func TestNATSOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	url := "tls://" + srv.Addr().String()
	log := zaptest.NewLogger(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := startBus(ctx, serveConfig{NATSURL: url, NATSTLSCA: cert}, "tandem-test", log)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if got := b.Conn().TLSRequired(); !got {
		t.Error("the connection is not TLS")
	}
	if r := b.Replicas(); r != 1 {
		t.Errorf("replicas on a single server = %d, want 1", r)
	}
	b.Close()

	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if b, err := startBus(short, serveConfig{NATSURL: url}, "tandem-test", log); err == nil {
		b.Close()
		t.Fatal("connected without the CA that signed the server's certificate")
	}
}
