package mask

import (
	"testing"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// BenchmarkMaskFrame is the agents' cost per 720p frame: planning from a
// window of reports (a form page's 24 masked fields, scrolled during the
// window) and painting a masked copy.
func BenchmarkMaskFrame(b *testing.B) {
	tr := NewTracker(Config{})
	tr.SetContext(Top, 1)
	for i := range 20 {
		var rects []Rect
		for f := range 24 {
			rects = append(rects, Rect{X: 100 + float64(f%3)*300, Y: 80 + float64(f)*90, W: 260, H: 40})
		}
		r := Report{Doc: "d", Seq: int64(i + 1), At: t0.Add(time.Duration(i*25) * time.Millisecond), Width: 1280, Height: 720,
			ScrollY: float64(i * 30), Scale: 1, Rects: rects}
		tr.Add(Top, 1, r)
	}
	m := media.Meta{PageScaleFactor: 1, DeviceWidth: 1280, DeviceHeight: 720, ScrollOffsetY: 19 * 30, Timestamp: t0.Add(470 * time.Millisecond)}
	pool := media.NewFramePool()
	src := pool.Get(1280, 720)
	defer src.Release()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rects, err := tr.Plan(m, 1280, 720, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		f := Apply(src, rects, pool)
		f.Release()
	}
}
