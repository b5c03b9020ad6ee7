package input

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fingers returns n touch points with ids 0…n-1.
func fingers(n int) []Touch {
	ts := make([]Touch, n)
	for i := range ts {
		ts[i] = Touch{ID: i, X: float64(10 * i), Y: 20}
	}
	return ts
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"click", Event{Kind: KindMouse, Action: ActionDown, Button: ButtonLeft, Buttons: 1, Clicks: 1}, true},
		{"move", Event{Kind: KindMouse, Action: ActionMove, X: 3, Y: 4}, true},
		{"double click", Event{Kind: KindMouse, Action: ActionUp, Button: ButtonLeft, Clicks: 2}, true},
		{"key", Event{Kind: KindKey, Action: ActionDown, Key: "a", Code: "KeyA", KeyCode: 65, Text: "a"}, true},
		{"japanese text", Event{Kind: KindText, Text: "日本語の入力"}, true},
		{"wheel", Event{Kind: KindWheel, DeltaY: -240}, true},
		{"viewport", Event{Kind: KindViewport, Width: 390, Height: 844}, true},
		{"NaN", Event{Kind: KindMouse, Action: ActionMove, X: math.NaN()}, false},
		{"Inf", Event{Kind: KindWheel, DeltaY: math.Inf(1)}, false},
		{"unknown kind", Event{Kind: "gamepad"}, false},
		{"mouse no action", Event{Kind: KindMouse}, false},
		{"buttons", Event{Kind: KindMouse, Action: ActionMove, Buttons: 8}, false},
		{"key move", Event{Kind: KindKey, Action: ActionMove}, false},
		{"key code", Event{Kind: KindKey, Action: ActionDown, KeyCode: 300}, false},
		{"empty text", Event{Kind: KindText}, false},
		{"bad utf8", Event{Kind: KindText, Text: "\xff"}, false},
		{"huge viewport", Event{Kind: KindViewport, Width: 100000, Height: 1}, false},
		{"modifiers", Event{Kind: KindMouse, Action: ActionMove, Modifiers: 16}, false},
		{"tap start", Event{Kind: KindTouch, Action: ActionStart, Touches: fingers(1)}, true},
		{"pinch move", Event{Kind: KindTouch, Action: ActionMove, Touches: fingers(2)}, true},
		{"five fingers", Event{Kind: KindTouch, Action: ActionStart, Touches: fingers(MaxTouches)}, true},
		{"last finger up", Event{Kind: KindTouch, Action: ActionEnd}, true},
		{"one of two up", Event{Kind: KindTouch, Action: ActionEnd, Touches: fingers(1)}, true},
		{"cancel", Event{Kind: KindTouch, Action: ActionCancel}, true},
		{"highest id", Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{{ID: MaxTouchID}}}, true},
		{"six fingers", Event{Kind: KindTouch, Action: ActionStart, Touches: fingers(MaxTouches + 1)}, false},
		{"start without a finger", Event{Kind: KindTouch, Action: ActionStart}, false},
		{"move without a finger", Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{}}, false},
		{"end with five left", Event{Kind: KindTouch, Action: ActionEnd, Touches: fingers(MaxTouches)}, false},
		{"cancel with a finger", Event{Kind: KindTouch, Action: ActionCancel, Touches: fingers(1)}, false},
		{"touch down", Event{Kind: KindTouch, Action: ActionDown, Touches: fingers(1)}, false},
		{"touch no action", Event{Kind: KindTouch, Touches: fingers(1)}, false},
		{"id too large", Event{Kind: KindTouch, Action: ActionStart, Touches: []Touch{{ID: MaxTouchID + 1}}}, false},
		{"negative id", Event{Kind: KindTouch, Action: ActionStart, Touches: []Touch{{ID: -1}}}, false},
		{"same id twice", Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{{ID: 3}, {ID: 3, X: 5}}}, false},
		{"touch NaN", Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{{X: math.NaN()}}}, false},
		{"touch Inf", Event{Kind: KindTouch, Action: ActionStart, Touches: []Touch{{Y: math.Inf(-1)}}}, false},
		{"touches on a mouse event", Event{Kind: KindMouse, Action: ActionDown, Touches: fingers(1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate(%+v) = %v, want nil", tt.ev, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalid", tt.ev, err)
			}
		})
	}
}

func TestClamp(t *testing.T) {
	tests := []struct {
		in, want Event
	}{
		{Event{Kind: KindMouse, X: -5, Y: 9999}, Event{Kind: KindMouse, X: 0, Y: 719}},
		{Event{Kind: KindMouse, X: 640.5, Y: 360.25}, Event{Kind: KindMouse, X: 640.5, Y: 360.25}},
		{Event{Kind: KindViewport, Width: 100, Height: 5000}, Event{Kind: KindViewport, Width: MinViewportW, Height: MaxViewportH}},
		{Event{Kind: KindViewport, Width: 391, Height: 845}, Event{Kind: KindViewport, Width: 390, Height: 844}},
		{Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{{ID: 1, X: -3, Y: 800}, {ID: 2, X: 2000, Y: 100.5}}},
			Event{Kind: KindTouch, Action: ActionMove, Touches: []Touch{{ID: 1, X: 0, Y: 719}, {ID: 2, X: 1279, Y: 100.5}}}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, tt.in.Clamp(1280, 720)); d != "" {
			t.Errorf("Clamp(%+v) mismatch (-want +got):\n%s", tt.in, d)
		}
	}
}

// Clamp leaves the event it was given as it was: events are shared.
func TestClampCopiesTouches(t *testing.T) {
	in := Event{Kind: KindTouch, Action: ActionStart, Touches: []Touch{{ID: 0, X: 5000, Y: -1}}}
	_ = in.Clamp(390, 844)
	if in.Touches[0] != (Touch{ID: 0, X: 5000, Y: -1}) {
		t.Errorf("Clamp changed its input's touches: %+v", in.Touches)
	}
}
