package media

import (
	"fmt"
	"testing"
	"time"
)

// waitUntil polls ok until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// warmPool starts a pool of n 64×48 encoders, closed at the test's end,
// and waits until they are ready.
func warmPool(t *testing.T, n int) *EncoderPool {
	t.Helper()
	p, err := NewEncoderPool(EncoderConfig{Width: 64, Height: 48}, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	waitReady(t, p, n)
	return p
}

// waitReady waits until p has n encoders ready.
func waitReady(t *testing.T, p *EncoderPool, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d encoders ready", n), func() bool { return p.Stats().Ready == n })
}

// The pool keeps its encoders started, hands one out for its own size and
// setting only, starts a replacement, and frees them all on Close.
func TestEncoderPool(t *testing.T) {
	p := warmPool(t, 2)
	if e := p.Take(32, 24, 1500); e != nil {
		t.Fatal("Take of another size returned an encoder")
	}
	if e := p.Take(64, 48, 800); e != nil {
		t.Fatal("Take of another bitrate returned an encoder")
	}
	e := p.Take(64, 48, 1500)
	if e == nil {
		t.Fatal("Take of the pool's size returned nil with two ready")
	}
	pool := NewFramePool()
	f := picture(pool, 64, 48, blue, time.Now())
	data, key, err := e.Encode(&f.Image, 0, false)
	f.Release()
	e.Close()
	if err != nil || len(data) == 0 || !key {
		t.Fatalf("the taken encoder's first frame: %d bytes, key %v, err %v; want a key frame", len(data), key, err)
	}
	waitReady(t, p, 2) // replaced
	if st := p.Stats(); st.Taken != 1 {
		t.Errorf("Stats = %+v, want one taken", st)
	}
	p.Close()
	if st := p.Stats(); st.Ready != 0 {
		t.Errorf("after Close %d encoders ready, want none", st.Ready)
	}
	if e := p.Take(64, 48, 1500); e != nil {
		t.Error("Take after Close returned an encoder")
	}
	var none *EncoderPool
	if none.Take(64, 48, 1500) != nil {
		t.Error("Take on a nil pool returned an encoder")
	}
}

// A role encoder with a warm pool takes its first encoder from it.
func TestRoleEncoderTakesWarmEncoder(t *testing.T) {
	p := warmPool(t, 1)
	s := startRole(t, RoleEncoderConfig{Role: "customer", Warm: p})
	pool := NewFramePool()
	s.e.SetViewers(1)
	offer(s.e, pool, 64, 48, blue, time.Now())
	waitUntil(t, "a frame encoded", func() bool { return s.e.Stats().Frames > 0 })
	if st := s.e.Stats(); st.WarmTaken != 1 || st.Starts != 1 {
		t.Errorf("Stats = %+v, want the one encoder taken from the pool", st)
	}
	s.stop()
}
