package media

import (
	"sync"
	"testing"
)

func TestFramePoolLayout(t *testing.T) {
	p := NewFramePool()
	for _, sz := range [][2]int{{1, 1}, {3, 5}, {33, 17}, {1280, 720}, {1279, 719}} {
		w, h := sz[0], sz[1]
		f := p.Get(w, h)
		cw, ch := (w+1)/2, (h+1)/2
		if f.Width != w || f.Height != h || f.StrideY < w || f.StrideUV < cw ||
			len(f.Y) < f.StrideY*h || len(f.U) < f.StrideUV*ch || len(f.V) < f.StrideUV*ch {
			t.Errorf("Get(%d, %d) = %dx%d strides %d/%d planes %d/%d/%d", w, h,
				f.Width, f.Height, f.StrideY, f.StrideUV, len(f.Y), len(f.U), len(f.V))
		}
		// Planes must not overlap.
		for i, pl := range [][]byte{f.Y, f.U, f.V} {
			for j := range pl {
				pl[j] = byte(i + 1)
			}
		}
		for i, pl := range [][]byte{f.Y, f.U, f.V} {
			for j := range pl {
				if pl[j] != byte(i+1) {
					t.Fatalf("Get(%d, %d): plane %d overlaps another at %d", w, h, i, j)
				}
			}
		}
		f.Release()
	}
}

func TestFramePoolReuse(t *testing.T) {
	p := NewFramePool()
	f := p.Get(64, 48)
	y0 := &f.Y[0]
	if got := f.Retain(); got != f {
		t.Fatalf("Retain returned %p, want %p", got, f)
	}
	f.Release()
	if s := p.Stats(); s.Free != 0 {
		t.Fatalf("after one of two Releases: Free = %d, want 0", s.Free)
	}
	f.Release()
	if s := p.Stats(); s.Free != 1 {
		t.Fatalf("after the last Release: Free = %d, want 1", s.Free)
	}
	if f.Y != nil || f.Width != 0 {
		t.Errorf("released frame still shows an image: %dx%d", f.Width, f.Height)
	}
	g := p.Get(64, 48)
	if &g.Y[0] != y0 {
		t.Errorf("Get after Release did not reuse the buffer")
	}
	if s := p.Stats(); s.Allocs != 1 || s.Reuses != 1 {
		t.Errorf("Stats = %+v, want 1 alloc and 1 reuse", s)
	}
	g.Release()

	// A new size drops the old buffers, and old-size frames coming back are not kept.
	old := p.Get(64, 48)
	n := p.Get(32, 32)
	old.Release()
	if s := p.Stats(); s.Free != 0 {
		t.Errorf("old-size frame kept after a resize: Free = %d", s.Free)
	}
	n.Release()
	if s := p.Stats(); s.Free != 1 {
		t.Errorf("Free = %d after releasing the new-size frame, want 1", s.Free)
	}

	// The pool keeps at most maxFreeBuffers idle buffers.
	var fs []*Frame
	for range 3 * maxFreeBuffers {
		fs = append(fs, p.Get(32, 32))
	}
	for _, f := range fs {
		f.Release()
	}
	if s := p.Stats(); s.Free != maxFreeBuffers {
		t.Errorf("Free = %d, want the cap %d", s.Free, maxFreeBuffers)
	}
}

func TestFrameDoubleRelease(t *testing.T) {
	p := NewFramePool()
	f := p.Get(16, 16)
	f.Release()
	f.Release() // bug: ignored and counted
	if s := p.Stats(); s.RefErrors != 1 || s.Free != 1 {
		t.Fatalf("after a double release: Stats = %+v, want 1 ref error and 1 free buffer", s)
	}
	// The buffer goes to a new frame; a late Release of the old one must not
	// take it back from its new owner.
	g := p.Get(16, 16)
	f.Release()
	f.Retain()
	if s := p.Stats(); s.RefErrors != 3 || s.Free != 0 {
		t.Fatalf("stale Release/Retain: Stats = %+v, want 3 ref errors and no free buffer", s)
	}
	h := p.Get(16, 16)
	if &h.Y[0] == &g.Y[0] {
		t.Fatal("a stale Release handed a live frame's buffer to another frame")
	}
	g.Release()
	h.Release()
	if s := p.Stats(); s.Free != 2 {
		t.Errorf("Free = %d, want 2", s.Free)
	}
}

func TestFrameWithoutPool(t *testing.T) {
	var p *FramePool
	f := p.Get(5, 3)
	if f.Width != 5 || len(f.Y) < 15 {
		t.Fatalf("nil pool Get(5, 3) = %dx%d", f.Width, f.Height)
	}
	f.Retain().Release()
	f.Release()
	f.Release() // no pool, nothing to corrupt or count
	lit := &Frame{Image: Image{Width: 1, Height: 1, Y: []byte{1}, U: []byte{2}, V: []byte{3}, StrideY: 1, StrideUV: 1}}
	lit.Retain()
	lit.Release()
	lit.Release()
	if lit.Y[0] != 1 {
		t.Error("releasing a literal frame changed it")
	}
}

func TestFramePoolSteadyStateAllocs(t *testing.T) {
	p := NewFramePool()
	p.Get(1280, 720).Release()
	// One small Frame header per Get, never the 1.4 MB of planes.
	allocs := testing.AllocsPerRun(50, func() {
		f := p.Get(1280, 720)
		f.Retain()
		f.Release()
		f.Release()
	})
	if allocs > 1 {
		t.Errorf("Get/Retain/Release: %v allocations per frame, want at most 1 (the header)", allocs)
	}
	if s := p.Stats(); s.Allocs != 1 {
		t.Errorf("Stats.Allocs = %d, want 1 buffer for all frames", s.Allocs)
	}
}

func TestFrameConcurrentRefs(t *testing.T) {
	p := NewFramePool()
	for range 20 {
		f := p.Get(8, 8)
		var wg sync.WaitGroup
		for range 8 {
			f.Retain()
			wg.Go(func() {
				for range 100 {
					f.Retain().Release()
				}
				_ = f.Y[0] // still ours
				f.Release()
			})
		}
		f.Release()
		wg.Wait()
	}
	if s := p.Stats(); s.RefErrors != 0 || s.Free != 1 || s.Allocs != 1 {
		t.Errorf("Stats = %+v, want no ref errors, one buffer, free", s)
	}
}
