package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// --pprof-addr serves Go's profiler on a listener of its own while the
// command runs, and stops with it; without the flag nothing listens.
func TestPprofAddr(t *testing.T) {
	addr := freeAddr(t)
	log := zaptest.NewLogger(t)
	got := make(chan int, 1)
	err := withPprof(context.Background(), serveConfig{PprofAddr: addr}, log, func(ctx context.Context) error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
			if err == nil {
				resp.Body.Close()
				got <- resp.StatusCode
				return nil // the command ends: so must the profiler
			}
			if time.Now().After(deadline) {
				got <- 0
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := <-got; code != http.StatusOK {
		t.Fatalf("profiler answered %d, want 200", code)
	}
	if _, err := http.Get("http://" + addr + "/debug/pprof/cmdline"); err == nil {
		t.Error("the profiler still answers after the command ended")
	}

	ran := false
	if err := withPprof(context.Background(), serveConfig{}, log, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("without --pprof-addr: ran %v, %v", ran, err)
	}
}
