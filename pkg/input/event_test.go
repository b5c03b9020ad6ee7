package input

import (
	"errors"
	"math"
	"testing"
)

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
	}
	for _, tt := range tests {
		if got := tt.in.Clamp(1280, 720); got != tt.want {
			t.Errorf("Clamp(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
