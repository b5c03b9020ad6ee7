package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	out := `goos: linux
BenchmarkClickToVisible/idle-2   	       5	2762137180 ns/op	       121.8 ms-p50-agent	       -44.89 ms-p50-overhead
BenchmarkSupportBandwidth-2   	       1	80073894281 ns/op	       437.6 kbps-active-agent	         5.976 x-bandwidth-baseline/customer
PASS
`
	got, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		"ClickToVisible/idle": {"ns/op": 2762137180, "ms-p50-agent": 121.8, "ms-p50-overhead": -44.89},
		"SupportBandwidth":    {"ns/op": 80073894281, "kbps-active-agent": 437.6, "x-bandwidth-baseline/customer": 5.976},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parse: -want +got\n%s", d)
	}
}

// A run where benchmarks failed still draws a chart (of zeros).
func TestPlotMissing(t *testing.T) {
	img := plot(map[string]map[string]float64{})
	if img.Bounds().Dx() != width {
		t.Errorf("width %d, want %d", img.Bounds().Dx(), width)
	}
}
