// Package input defines the input events that viewers send to a hosted tab:
// pointer, wheel, touch, keyboard, composed text and viewport changes, in remote
// viewport CSS pixels. It owns validation and clamping; decoding from the wire
// lives in pkg/protocol and dispatching to Chromium in browserpool.
//
// Events are values, safe to share between goroutines once built; a touch
// event's Touches slice is never changed in place (Clamp copies it).
package input

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Kind names what an Event does.
type Kind string

// The closed set of event kinds.
const (
	KindMouse    Kind = "mouse"    // pointer move, press or release
	KindWheel    Kind = "wheel"    // scroll at a point
	KindTouch    Kind = "touch"    // fingers on a touch screen: start, move, end, cancel
	KindKey      Kind = "key"      // key press or release
	KindText     Kind = "text"     // composed text (IME, paste), inserted as is
	KindViewport Kind = "viewport" // the customer's window size changed
)

// Action is the phase of a mouse, key or touch event.
type Action string

// Actions of mouse and key events (move is a touch action too).
const (
	ActionMove Action = "move"
	ActionDown Action = "down"
	ActionUp   Action = "up"
)

// Actions of touch events, named like the DOM's touchstart, touchmove,
// touchend and touchcancel.
const (
	ActionStart  Action = "start"  // one finger or more came down; Touches holds them all
	ActionEnd    Action = "end"    // one finger or more lifted; Touches holds those still down
	ActionCancel Action = "cancel" // the whole touch sequence is abandoned; no Touches
)

// Touch is one finger of a touch event, in remote viewport CSS pixels. ID
// tells fingers apart within one touch sequence (0 to MaxTouchID; the
// viewer maps its own pointer ids onto small numbers).
type Touch struct {
	ID int     `json:"id"`
	X  float64 `json:"x"`
	Y  float64 `json:"y"`
}

// Button is a mouse button.
type Button string

// Mouse buttons, named as CDP names them.
const (
	ButtonNone   Button = "none"
	ButtonLeft   Button = "left"
	ButtonMiddle Button = "middle"
	ButtonRight  Button = "right"
)

// Modifier bits, as CDP Input.dispatch*Event expects them.
const (
	ModAlt   = 1
	ModCtrl  = 2
	ModMeta  = 4
	ModShift = 8
)

// Limits on what a viewer may send.
const (
	MaxTextLen      = 4096  // bytes of composed text in one event
	MaxKeyLen       = 32    // bytes of a key or code name
	MaxWheelDelta   = 10000 // CSS pixels per wheel event
	MaxTouches      = 5     // fingers down at once (the tab emulates five touch points)
	MaxTouchID      = 31    // largest Touch.ID
	MinViewportW    = 320
	MinViewportH    = 240
	MaxViewportW    = 1920
	MaxViewportH    = 1080
	DefaultViewport = "1280x720"
)

// Event is one input event from a viewer, in remote viewport CSS pixels.
// Only the fields of its Kind are meaningful.
type Event struct {
	Kind      Kind    `json:"type"`
	Action    Action  `json:"action,omitempty"`
	X         float64 `json:"x,omitempty"`
	Y         float64 `json:"y,omitempty"`
	Button    Button  `json:"button,omitempty"`
	Buttons   int     `json:"buttons,omitempty"` // bitmask of held buttons: 1 left, 2 right, 4 middle
	Clicks    int     `json:"clicks,omitempty"`  // click count for down/up (2 for a double click)
	Modifiers int     `json:"mods,omitempty"`    // Mod* bits
	DeltaX    float64 `json:"dx,omitempty"`
	DeltaY    float64 `json:"dy,omitempty"`
	Key       string  `json:"key,omitempty"`     // KeyboardEvent.key
	Code      string  `json:"code,omitempty"`    // KeyboardEvent.code
	KeyCode   int     `json:"keyCode,omitempty"` // windowsVirtualKeyCode
	Text      string  `json:"text,omitempty"`    // text a key produces, or composed text
	Paste     bool    `json:"paste,omitempty"`   // text: it comes from the viewer's clipboard
	Width     int     `json:"width,omitempty"`   // viewport
	Height    int     `json:"height,omitempty"`  // viewport
	Mobile    bool    `json:"mobile,omitempty"`  // viewport: the customer is on a phone or tablet
	DPR       float64 `json:"dpr,omitempty"`     // viewport: the customer's device pixel ratio
	// Touches are a touch event's fingers on the screen after it (as
	// TouchEvent.touches): all of them for start and move, the ones left
	// for end, none for cancel.
	Touches []Touch `json:"touches,omitempty"`
}

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("input: invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks an event from an untrusted viewer. It does not clamp
// coordinates; Clamp does that against the current viewport.
func (e Event) Validate() error {
	for _, f := range []float64{e.X, e.Y, e.DeltaX, e.DeltaY, e.DPR} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return invalid("non-finite number")
		}
	}
	if e.Kind != KindTouch && e.Touches != nil {
		return invalid("touches on a %q event", e.Kind)
	}
	if e.Modifiers < 0 || e.Modifiers > ModAlt|ModCtrl|ModMeta|ModShift {
		return invalid("modifiers %d out of range", e.Modifiers)
	}
	switch e.Kind {
	case KindMouse:
		switch e.Action {
		case ActionMove, ActionDown, ActionUp:
		default:
			return invalid("mouse action %q", e.Action)
		}
		switch e.Button {
		case "", ButtonNone, ButtonLeft, ButtonMiddle, ButtonRight:
		default:
			return invalid("mouse button %q", e.Button)
		}
		if e.Buttons < 0 || e.Buttons > 7 {
			return invalid("buttons %d out of range", e.Buttons)
		}
		if e.Clicks < 0 || e.Clicks > 3 {
			return invalid("click count %d out of range", e.Clicks)
		}
	case KindTouch:
		return e.validateTouch()
	case KindWheel:
		if math.Abs(e.DeltaX) > MaxWheelDelta || math.Abs(e.DeltaY) > MaxWheelDelta {
			return invalid("wheel delta too large")
		}
	case KindKey:
		if e.Action != ActionDown && e.Action != ActionUp {
			return invalid("key action %q", e.Action)
		}
		if len(e.Key) > MaxKeyLen || len(e.Code) > MaxKeyLen || len(e.Text) > 8 {
			return invalid("key fields too long")
		}
		if e.KeyCode < 0 || e.KeyCode > 255 {
			return invalid("key code %d out of range", e.KeyCode)
		}
		if !utf8.ValidString(e.Key) || !utf8.ValidString(e.Code) || !utf8.ValidString(e.Text) {
			return invalid("key fields not UTF-8")
		}
	case KindText:
		if e.Text == "" || len(e.Text) > MaxTextLen || !utf8.ValidString(e.Text) {
			return invalid("text must be 1 to %d bytes of UTF-8", MaxTextLen)
		}
	case KindViewport:
		if e.Width <= 0 || e.Height <= 0 || e.Width > 10000 || e.Height > 10000 {
			return invalid("viewport %dx%d", e.Width, e.Height)
		}
		if e.DPR < 0 || e.DPR > 16 {
			return invalid("device pixel ratio %v", e.DPR)
		}
	default:
		return invalid("unknown type %q", e.Kind)
	}
	return nil
}

// validateTouch checks a touch event: its action, how many fingers it
// holds for that action, and that their ids are in range and distinct.
func (e Event) validateTouch() error {
	lo, hi := 1, MaxTouches
	switch e.Action {
	case ActionStart, ActionMove:
	case ActionEnd:
		lo, hi = 0, MaxTouches-1
	case ActionCancel:
		lo, hi = 0, 0
	default:
		return invalid("touch action %q", e.Action)
	}
	if len(e.Touches) < lo || len(e.Touches) > hi {
		return invalid("touch %s with %d points, want %d to %d", e.Action, len(e.Touches), lo, hi)
	}
	var seen uint32 // bit i: id i is taken (MaxTouchID < 32)
	for _, t := range e.Touches {
		if math.IsNaN(t.X) || math.IsInf(t.X, 0) || math.IsNaN(t.Y) || math.IsInf(t.Y, 0) {
			return invalid("non-finite touch point")
		}
		if t.ID < 0 || t.ID > MaxTouchID {
			return invalid("touch id %d out of range", t.ID)
		}
		if seen&(1<<t.ID) != 0 {
			return invalid("touch id %d twice", t.ID)
		}
		seen |= 1 << t.ID
	}
	return nil
}

// Clamp returns e with its coordinates (a touch event's every point)
// inside a viewport of w×h CSS pixels and a viewport event's size inside
// the allowed range. It never changes e's Touches in place.
func (e Event) Clamp(w, h int) Event {
	e.X = clampF(e.X, 0, float64(max(w-1, 0)))
	e.Y = clampF(e.Y, 0, float64(max(h-1, 0)))
	if e.Touches != nil {
		ts := make([]Touch, len(e.Touches))
		for i, t := range e.Touches {
			t.X = clampF(t.X, 0, float64(max(w-1, 0)))
			t.Y = clampF(t.Y, 0, float64(max(h-1, 0)))
			ts[i] = t
		}
		e.Touches = ts
	}
	if e.Kind == KindViewport {
		e.Width, e.Height = ClampViewport(e.Width, e.Height)
	}
	return e
}

// ClampViewport limits a requested viewport to what Tandem hosts.
func ClampViewport(w, h int) (int, int) {
	w = min(max(w, MinViewportW), MaxViewportW)
	h = min(max(h, MinViewportH), MaxViewportH)
	return w &^ 1, h &^ 1 // even sizes keep the 4:2:0 chroma planes aligned
}

func clampF(v, lo, hi float64) float64 {
	return math.Min(math.Max(v, lo), hi)
}
