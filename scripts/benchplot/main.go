// Command benchplot draws docs/benchmarks.png from the output of the
// benchmarks that scripts/bench.sh runs: click-to-visible latency (p50 and
// p95) of Chrome's floor, Tandem's customer and agent and the
// JPEG-over-WebSocket baseline on an idle and a busy page, and the
// bandwidth of Tandem's viewers against the baseline's on the support
// workload.
//
//	go run ./scripts/benchplot -in bench.txt -out docs/benchmarks.png
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func main() {
	in := flag.String("in", "-", "benchmark output to read; - is standard input")
	out := flag.String("out", "docs/benchmarks.png", "PNG to write")
	flag.Parse()
	r := io.Reader(os.Stdin)
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	results, err := parse(r)
	if err != nil {
		log.Fatal(err)
	}
	img := plot(results)
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// benchLine is "BenchmarkName-2   N   123 ns/op   4.5 unit ...".
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// parse reads benchmark output into name → unit → value ("ClickToVisible/idle"
// → "ms-p50-customer" → 112.0). Names lose "Benchmark" and the -GOMAXPROCS
// suffix.
func parse(r io.Reader) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := strings.TrimPrefix(m[1], "Benchmark")
		f := strings.Fields(m[3])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			metrics[f[i+1]] = v
		}
		out[name] = metrics
	}
	return out, sc.Err()
}

var (
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{34, 34, 34, 255}
	grid      = color.RGBA{225, 225, 225, 255}
	barColour = map[string]color.RGBA{
		"floor":    {140, 140, 140, 255},
		"customer": {31, 119, 180, 255},
		"agent":    {44, 160, 120, 255},
		"baseline": {230, 120, 30, 255},
	}
)

// light is c washed out, for the p95 (or peak) part of a bar.
func light(c color.RGBA) color.RGBA {
	f := func(v uint8) uint8 { return uint8(255 - (255-int(v))*2/5) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), 255}
}

const (
	width, height       = 1100, 530
	plotTop, plotBottom = 90, 440 // the plots' y range
)

func plot(res map[string]map[string]float64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	text(img, 20, 24, "Tandem benchmarks: solid bar = p50 (bandwidth: average), light bar above it = p95 (bandwidth: peak over 1 s)", ink)

	// Latency: two groups (idle, busy page) of four bars.
	whos := []string{"floor", "customer", "agent", "baseline"}
	var groups []barGroup
	for _, page := range []string{"idle", "busy"} {
		m := res["ClickToVisible/"+page]
		g := barGroup{label: page + " page"}
		for _, who := range whos {
			g.bars = append(g.bars, bar{who, m["ms-p50-"+who], m["ms-p95-"+who]})
		}
		groups = append(groups, g)
	}
	panel(img, 20, 640, "click to visible (ms)", groups, "%.0f")
	m := res["ClickToVisible/idle"]
	text(img, 20, 44, fmt.Sprintf("Tandem's overhead above Chrome's floor (p50): idle page %.0f ms, busy page %.0f ms",
		m["ms-p50-overhead"], res["ClickToVisible/busy"]["ms-p50-overhead"]), ink)

	// Bandwidth: one group of three bars.
	bw := res["SupportBandwidth"]
	g := barGroup{label: "support workload, active part"}
	for _, who := range []string{"customer", "agent", "baseline"} {
		g.bars = append(g.bars, bar{who, bw["kbps-active-"+who], bw["kbps-peak-"+who]})
	}
	panel(img, 680, 1080, "bandwidth per viewer (kbit/s)", []barGroup{g}, "%.0f")
	text(img, 680, 44, fmt.Sprintf("baseline / Tandem: %.1fx customer, %.1fx agent",
		bw["x-bandwidth-baseline/customer"], bw["x-bandwidth-baseline/agent"]), ink)
	text(img, 730, plotBottom+34, fmt.Sprintf("idle 20 s: %.0f, %.0f and %.0f kbit/s",
		bw["kbps-idle-customer"], bw["kbps-idle-agent"], bw["kbps-idle-baseline"]), ink)

	// Legend.
	x := 20
	for _, who := range whos {
		fill(img, x, 484, x+14, 498, barColour[who])
		text(img, x+20, 496, who, ink)
		x += 40 + 7*len(who)
	}
	text(img, 20, 518, "floor: CDP input to the screencast frame read in Go, no Tandem. baseline: the screencast's JPEGs relayed over a WebSocket.", ink)
	return img
}

type bar struct {
	who       string
	low, high float64 // p50 and p95, or average and peak
}

type barGroup struct {
	label string
	bars  []bar
}

// panel draws groups of bars between x0 and x1 on a linear scale from 0 to
// the largest high value, with horizontal grid lines.
func panel(img *image.RGBA, x0, x1 int, title string, groups []barGroup, format string) {
	scale := 1.0
	for _, g := range groups {
		for _, b := range g.bars {
			scale = max(scale, b.high, b.low)
		}
	}
	step := niceStep(scale / 5)
	scale = math.Ceil(scale/step) * step
	y := func(v float64) int { return plotBottom - int(v/scale*float64(plotBottom-plotTop)) }
	axis := x0 + 50
	for v := 0.0; v <= scale+step/2; v += step {
		yy := y(v)
		fill(img, axis, yy, x1, yy+1, grid)
		label := fmt.Sprintf(format, v)
		text(img, axis-8-7*len(label), yy+4, label, ink)
	}
	text(img, axis, plotTop-20, title, ink)
	fill(img, axis, plotTop, axis+1, plotBottom, ink)
	groupW := (x1 - axis) / len(groups)
	for gi, g := range groups {
		gx := axis + gi*groupW
		barW := min(50, (groupW-30)/len(g.bars))
		start := gx + (groupW-barW*len(g.bars))/2
		for bi, b := range g.bars {
			bx := start + bi*barW
			c := barColour[b.who]
			if b.high > b.low {
				fill(img, bx+4, y(b.high), bx+barW-4, y(b.low), light(c))
			}
			fill(img, bx+4, y(b.low), bx+barW-4, plotBottom, c)
			// p50 inside the top of its bar when it fits, p95 above the bar
			lo := fmt.Sprintf(format, b.low)
			if plotBottom-y(b.low) >= 18 {
				text(img, bx+barW/2-7*len(lo)/2, y(b.low)+14, lo, white)
			} else {
				text(img, bx+barW/2-7*len(lo)/2, y(b.low)-3, lo, ink)
			}
			if b.high > b.low {
				hi := fmt.Sprintf(format, b.high)
				text(img, bx+barW/2-7*len(hi)/2, y(b.high)-3, hi, ink)
			}
		}
		text(img, gx+groupW/2-7*len(g.label)/2, plotBottom+18, g.label, ink)
	}
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
