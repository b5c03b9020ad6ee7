package worker

import (
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Wheel steps queued behind each other from one viewer at one point are
// dispatched as one; anything else stops the merge and comes next, in
// order, and nothing is lost.
func TestMergeWheel(t *testing.T) {
	wheel := func(viewer string, x, dy float64, mods int) queuedInput {
		return queuedInput{viewerID: viewer, role: RoleCustomer,
			ev: input.Event{Kind: input.KindWheel, X: x, Y: 300, DeltaY: dy, Modifiers: mods}}
	}
	click := queuedInput{viewerID: "c", role: RoleCustomer, ev: input.Event{Kind: input.KindMouse, Action: input.ActionDown, X: 10, Y: 10}}
	for _, tc := range []struct {
		name     string
		queued   []queuedInput
		wantDY   float64
		wantNext string // "" when the queue was emptied
		wantLeft int    // items still queued after the one returned as next
	}{
		{"alone", nil, 60, "", 0},
		{"steps behind it", []queuedInput{wheel("c", 640, 60, 0), wheel("c", 640, -20, 0)}, 100, "", 0},
		{"then a click", []queuedInput{wheel("c", 640, 60, 0), click, wheel("c", 640, 60, 0)}, 120, "mouse", 1},
		{"another viewer", []queuedInput{wheel("a", 640, 60, 0)}, 60, "wheel", 0},
		{"another point", []queuedInput{wheel("c", 641, 60, 0)}, 60, "wheel", 0},
		{"a modifier (zoom)", []queuedInput{wheel("c", 640, 60, input.ModCtrl)}, 60, "wheel", 0},
		{"a notice", []queuedInput{{viewerID: "c", notice: []byte("{}")}}, 60, "", 0},
		{"past the largest step", []queuedInput{wheel("c", 640, input.MaxWheelDelta, 0)}, 60, "wheel", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := make(chan queuedInput, 8)
			for _, in := range tc.queued {
				q <- in
			}
			got, next := mergeWheel(q, wheel("c", 640, 60, 0))
			if got.ev.DeltaY != tc.wantDY || got.viewerID != "c" || got.ev.X != 640 {
				t.Errorf("merged = %+v, want dy %v", got.ev, tc.wantDY)
			}
			switch {
			case tc.name == "a notice":
				if next == nil || next.notice == nil {
					t.Errorf("next = %+v, want the notice", next)
				}
			case tc.wantNext == "" && next != nil:
				t.Errorf("next = %+v, want none", next)
			case tc.wantNext != "" && (next == nil || string(next.ev.Kind) != tc.wantNext):
				t.Errorf("next = %+v, want a %s event", next, tc.wantNext)
			}
			if len(q) != tc.wantLeft {
				t.Errorf("%d items left in the queue, want %d", len(q), tc.wantLeft)
			}
		})
	}
}
