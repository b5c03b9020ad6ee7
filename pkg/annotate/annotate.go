// Package annotate resolves the elements viewers highlight (docs/annotations.md).
// Its page script runs in the isolated world of every document of the
// hosted tab, next to the mask and block scripts, where page scripts can
// neither see nor change it. The worker asks the top document's world to
// pick the element at a viewport point, which the script remembers under
// the worker's id, and then, while the highlight lives, to measure every
// remembered element in page coordinates; an element that left the
// document, or is hidden, or has no size, is reported gone. Nothing is
// drawn in the page: viewers draw the boxes over the video.
//
// The package builds the expressions and reads the answers; it keeps no
// state and starts no goroutine.
package annotate

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

//go:embed script.js
var scriptSource string

// Script returns the page script. It has no configuration.
func Script() string { return scriptSource }

// Rect is an element's border box in page CSS pixels of the top document:
// x, y, width, height.
type Rect [4]float64

// maxCoord bounds what the page may answer.
const maxCoord = 1e7

// ErrAnswer is wrapped when the page's answer does not parse.
var ErrAnswer = errors.New("annotate: bad answer")

// PickExpression returns the expression that, evaluated in the top
// document's world, remembers the element at (x, y) of the viewport under
// id and answers its Rect (read it with ParsePick). Without the script the
// answer is "nothing there".
func PickExpression(id string, x, y float64) string {
	args, _ := json.Marshal([]any{id, x, y})
	return `globalThis.__tandemAnnotate ? globalThis.__tandemAnnotate.pick(` + string(args[1:len(args)-1]) + `) : '{"none":true}'`
}

// RectsExpression returns the expression that measures the elements
// remembered under ids, and forgets every other (read it with ParseRects).
// Without the script every element is gone.
func RectsExpression(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	arg, _ := json.Marshal(ids)
	return `globalThis.__tandemAnnotate ? globalThis.__tandemAnnotate.rects(` + string(arg) + `) : "{}"`
}

// ParsePick reads a pick's answer: the element's Rect, or ok false when
// there is nothing to highlight at that point.
func ParsePick(s string) (r Rect, ok bool, err error) {
	var a struct {
		Rect  *[4]float64 `json:"rect"`
		None  bool        `json:"none"`
		Error string      `json:"error"` // the script failed: nothing, and worth a log line
	}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return Rect{}, false, fmt.Errorf("%w: %v", ErrAnswer, err)
	}
	if a.Error != "" {
		return Rect{}, false, fmt.Errorf("%w: the page script failed: %s", ErrAnswer, a.Error)
	}
	if a.None || a.Rect == nil {
		return Rect{}, false, nil
	}
	r = Rect(*a.Rect)
	if !r.valid() {
		return Rect{}, false, fmt.Errorf("%w: rect %v", ErrAnswer, r)
	}
	return r, true, nil
}

// ParseRects reads a measure's answer: the Rect of each id still there,
// and gone each id the page reported gone or did not answer for.
func ParseRects(s string, ids []string) (rects map[string]Rect, gone []string, err error) {
	var a map[string]*[4]float64
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrAnswer, err)
	}
	rects = make(map[string]Rect, len(ids))
	for _, id := range ids {
		p := a[id]
		if p == nil || !Rect(*p).valid() {
			gone = append(gone, id)
			continue
		}
		rects[id] = Rect(*p)
	}
	return rects, gone, nil
}

func (r Rect) valid() bool {
	for i, v := range r {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > maxCoord || (i >= 2 && v <= 0) {
			return false
		}
	}
	return true
}

// Moved says whether r differs from old by at least half a pixel anywhere:
// less is subpixel jitter nobody sees.
func (r Rect) Moved(old Rect) bool {
	for i := range r {
		if math.Abs(r[i]-old[i]) >= 0.5 {
			return true
		}
	}
	return false
}
