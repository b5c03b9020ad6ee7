package mask

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxReportBytes bounds one report of the page script; a page with more
// masked elements than fit is masked by the error path (held).
const MaxReportBytes = 512 << 10

// Rect is a masked area in CSS pixels of the top document (the client
// rectangle plus the root scroll at measurement). Bound rectangles (under
// position fixed or sticky) are valid only at the root scroll they were
// measured at.
type Rect struct {
	X, Y, W, H float64
	Bound      bool
}

// Opaque is an area the script cannot see into: a cross-origin frame or a
// plugin. A frame tagged with its CDP frame id (Frame) whose own script
// reports is masked with that report, placed in its Content box; any other
// is masked whole.
type Opaque struct {
	Rect
	Frame   string
	Content Rect
}

// Report is one measurement of the page script.
type Report struct {
	Doc      string    // random id of the document instance
	Seq      int64     // increasing per document
	At       time.Time // when the page measured (the page's clock: the same wall clock as Chromium's frame stamps)
	Width    float64   // layout viewport in CSS px
	Height   float64
	ScrollX  float64 // root scroll at measurement
	ScrollY  float64
	Scale    float64 // pinch zoom
	Rects    []Rect
	Opaque   []Opaque // cross-origin frames and plugins: masked whole unless placed
	Origin   string   // the document's origin (child frames report it)
	Focus    bool     // keyboard focus is in a masked field
	Err      string   // the page could not measure: hold the agent's picture
	Received time.Time
	// Confirmed is set by the Tracker: the time of the newest report that
	// measured the same; the layout held until then.
	Confirmed time.Time
}

// wireReport is the script's JSON.
type wireReport struct {
	V     int               `json:"v"`
	Doc   string            `json:"doc"`
	Seq   int64             `json:"seq"`
	T     float64           `json:"t"`
	W     float64           `json:"w"`
	H     float64           `json:"h"`
	SX    float64           `json:"sx"`
	SY    float64           `json:"sy"`
	Scale float64           `json:"scale"`
	R     [][5]float64      `json:"r"`
	O     []json.RawMessage `json:"o"`
	F     int               `json:"f"`
	A     int               `json:"a"`
	Err   string            `json:"err"`
	Org   string            `json:"org"`
}

var errReport = errors.New("mask: bad report")

// ParseReport decodes a report of the page script. A report that does not
// parse is an error for the caller to fail closed on.
func ParseReport(b []byte, received time.Time) (Report, error) {
	if len(b) > MaxReportBytes {
		return Report{}, fmt.Errorf("%w: %d bytes", errReport, len(b))
	}
	var w wireReport
	if err := json.Unmarshal(b, &w); err != nil {
		return Report{}, fmt.Errorf("%w: %v", errReport, err)
	}
	if w.V != 1 || w.Doc == "" || !finite(w.T) || w.T <= 0 {
		return Report{}, fmt.Errorf("%w: version %d, doc %q, t %v", errReport, w.V, w.Doc, w.T)
	}
	r := Report{
		Doc: w.Doc, Seq: w.Seq, Err: w.Err, Focus: w.F != 0, Received: received, Origin: w.Org,
		At: time.UnixMicro(int64(w.T * 1000)),
	}
	if w.Err != "" {
		return r, nil
	}
	if !finite(w.W, w.H, w.SX, w.SY, w.Scale) || w.W <= 0 || w.H <= 0 || w.Scale <= 0 {
		return Report{}, fmt.Errorf("%w: viewport %vx%v scroll %v,%v scale %v", errReport, w.W, w.H, w.SX, w.SY, w.Scale)
	}
	r.Width, r.Height, r.ScrollX, r.ScrollY, r.Scale = w.W, w.H, w.SX, w.SY, w.Scale
	r.Rects = make([]Rect, 0, len(w.R))
	for _, q := range w.R {
		if !finite(q[:]...) || q[2] < 0 || q[3] < 0 {
			return Report{}, fmt.Errorf("%w: rect %v", errReport, q)
		}
		r.Rects = append(r.Rects, Rect{X: q[0], Y: q[1], W: q[2], H: q[3], Bound: q[4] != 0})
	}
	for _, raw := range w.O {
		// [x, y, w, h, bound, tag] and, for a frame, its content box
		// [cx, cy, cw, ch].
		var o []any
		if err := json.Unmarshal(raw, &o); err != nil || (len(o) != 6 && len(o) != 10) {
			return Report{}, fmt.Errorf("%w: opaque %s", errReport, raw)
		}
		var q [9]float64
		for i, j := range []int{0, 1, 2, 3, 4, 6, 7, 8, 9} {
			if j >= len(o) {
				break
			}
			v, ok := o[j].(float64)
			if !ok || !finite(v) || (v < 0 && (j == 2 || j == 3 || j == 8 || j == 9)) {
				return Report{}, fmt.Errorf("%w: opaque %s", errReport, raw)
			}
			q[i] = v
		}
		tag, ok := o[5].(string)
		if !ok || len(tag) > 64 {
			return Report{}, fmt.Errorf("%w: opaque %s", errReport, raw)
		}
		op := Opaque{Rect: Rect{X: q[0], Y: q[1], W: q[2], H: q[3], Bound: q[4] != 0}, Frame: tag}
		if len(o) == 10 {
			op.Content = Rect{X: q[5], Y: q[6], W: q[7], H: q[8], Bound: op.Bound}
		} else {
			op.Frame = "" // no content box: cannot place a frame's report
		}
		r.Opaque = append(r.Opaque, op)
	}
	return r, nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
