package protocol

import (
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Annotations and chat (docs/annotations.md), on the input DataChannel.
// A viewer sends TypeAnnotate and TypeChat messages; the worker relays them
// as TypeAnnotation and TypeChat notices, and tells every viewer the
// document's scroll offset (TypeScroll) so that it can draw in page
// coordinates.
const (
	TypeAnnotate   = "annotate"   // viewer → worker
	TypeAnnotation = "annotation" // worker → viewer
	TypeChat       = "chat"       // both ways
	TypeScroll     = "scroll"     // worker → viewer
)

// Annotation actions. A viewer sends stroke, laser, highlight and clear;
// the worker sends all five (remove: a highlight's element is gone, or a
// pinned stroke was dropped to keep the session's limit).
const (
	AnnotateStroke    = "stroke"
	AnnotateLaser     = "laser"
	AnnotateHighlight = "highlight"
	AnnotateClear     = "clear"
	AnnotateRemove    = "remove"
)

// Limits of annotation and chat messages.
const (
	MaxStrokePoints = 64   // points in one stroke message
	MaxStrokeLen    = 4000 // points in one stroke, over all its messages (checked by the worker)
	MaxCoord        = 1e6  // |x| and |y| of any point, in CSS pixels
	MaxAnnotateID   = 32   // characters of a viewer's stroke id
	MaxChatChars    = 2000 // Unicode code points of a chat message, after trimming
)

// Annotate is a viewer's annotation message. Points, Pinned and End belong
// to a stroke (page CSS pixels); X and Y to a laser (page CSS pixels) or a
// highlight (remote viewport CSS pixels, like mouse events).
type Annotate struct {
	Type   string       `json:"type"` // TypeAnnotate
	Action string       `json:"action"`
	ID     string       `json:"id,omitempty"`
	Points [][2]float64 `json:"points,omitempty"`
	Pinned bool         `json:"pinned,omitempty"`
	End    bool         `json:"end,omitempty"`
	X      float64      `json:"x,omitempty"`
	Y      float64      `json:"y,omitempty"`
}

// annotateWire is Annotate as sent, with presence kept: a field of another
// action is refused, and a laser or highlight must say where.
type annotateWire struct {
	Type   string        `json:"type"`
	Action string        `json:"action"`
	ID     *string       `json:"id"`
	Points *[][]*float64 `json:"points"` // null is not 0
	Pinned *bool         `json:"pinned"`
	End    *bool         `json:"end"`
	X      *float64      `json:"x"`
	Y      *float64      `json:"y"`
}

func decodeAnnotate(data []byte) (*Annotate, error) {
	var w annotateWire
	if err := decodeStrict(data, MaxInputBytes, &w); err != nil {
		return nil, err
	}
	a := &Annotate{Type: TypeAnnotate, Action: w.Action}
	stroke := w.ID != nil || w.Points != nil || w.Pinned != nil || w.End != nil
	point := w.X != nil || w.Y != nil
	switch w.Action {
	case AnnotateStroke:
		if point {
			return nil, bad("a stroke has points, not x and y")
		}
		if w.ID == nil || !validAnnotateID(*w.ID) {
			return nil, bad("a stroke needs an id of 1 to %d of [A-Za-z0-9_-]", MaxAnnotateID)
		}
		a.ID = *w.ID
		if w.Points != nil {
			if len(*w.Points) > MaxStrokePoints {
				return nil, bad("%d points in one message, limit %d", len(*w.Points), MaxStrokePoints)
			}
			a.Points = make([][2]float64, 0, len(*w.Points))
			for _, p := range *w.Points {
				if len(p) != 2 || p[0] == nil || p[1] == nil || !validCoord(*p[0]) || !validCoord(*p[1]) {
					return nil, bad("a point is [x, y], each finite and within ±%g", float64(MaxCoord))
				}
				a.Points = append(a.Points, [2]float64{*p[0], *p[1]})
			}
		}
		a.Pinned = w.Pinned != nil && *w.Pinned
		a.End = w.End != nil && *w.End
	case AnnotateLaser, AnnotateHighlight:
		if stroke {
			return nil, bad("a %s has only x and y", w.Action)
		}
		if w.X == nil || w.Y == nil || !validCoord(*w.X) || !validCoord(*w.Y) {
			return nil, bad("a %s needs x and y, finite and within ±%g", w.Action, float64(MaxCoord))
		}
		a.X, a.Y = *w.X, *w.Y
	case AnnotateClear:
		if stroke || point {
			return nil, bad("clear carries nothing")
		}
	default:
		return nil, bad("annotate action %q", w.Action)
	}
	return a, nil
}

func validAnnotateID(id string) bool {
	if id == "" || len(id) > MaxAnnotateID {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func validCoord(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) <= MaxCoord
}

// Chat is a viewer's chat message. Text is trimmed by the decoder.
type Chat struct {
	Type string `json:"type"` // TypeChat
	Text string `json:"text"`
}

func decodeChat(data []byte) (*Chat, error) {
	var c Chat
	if err := decodeStrict(data, MaxInputBytes, &c); err != nil {
		return nil, err
	}
	c.Text = strings.TrimSpace(c.Text)
	if c.Text == "" || utf8.RuneCountInString(c.Text) > MaxChatChars || !utf8.ValidString(c.Text) {
		return nil, bad("chat text must be 1 to %d characters of UTF-8", MaxChatChars)
	}
	for _, r := range c.Text {
		if r != '\n' && unicode.IsControl(r) {
			return nil, bad("control character %U in chat text", r)
		}
	}
	return &c, nil
}

// Author says which viewer drew or wrote something.
type Author struct {
	ViewerID string `json:"viewer_id"`
	Role     string `json:"role"`
	Name     string `json:"name"`
}

// StrokeNotice relays points of a pen stroke (page CSS pixels) to the other
// viewers. ID is "<viewer_id>.<the viewer's id>"; messages with the same ID
// append points; End finishes the stroke. An unpinned stroke fades on the
// viewers a few seconds after its last points.
type StrokeNotice struct {
	Type   string `json:"type"`   // TypeAnnotation
	Action string `json:"action"` // AnnotateStroke
	ID     string `json:"id"`
	Author
	Points [][2]float64 `json:"points"`
	Pinned bool         `json:"pinned"`
	End    bool         `json:"end"`
}

// LaserNotice is where another viewer's laser pointer is, in page CSS
// pixels.
type LaserNotice struct {
	Type   string `json:"type"`   // TypeAnnotation
	Action string `json:"action"` // AnnotateLaser
	Author
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// HighlightNotice draws, or moves, a box around an element: Rect is
// [x, y, width, height] in page CSS pixels. It is sent again with the same
// ID whenever the element's box changes.
type HighlightNotice struct {
	Type   string `json:"type"`   // TypeAnnotation
	Action string `json:"action"` // AnnotateHighlight
	ID     string `json:"id"`
	Author
	Rect [4]float64 `json:"rect"`
}

// RemoveNotice takes one highlight or stroke away.
type RemoveNotice struct {
	Type   string `json:"type"`   // TypeAnnotation
	Action string `json:"action"` // AnnotateRemove
	ID     string `json:"id"`
}

// ClearNotice takes every annotation away; Author cleared them.
type ClearNotice struct {
	Type   string `json:"type"`   // TypeAnnotation
	Action string `json:"action"` // AnnotateClear
	Author
}

// ChatNotice is one chat message as the worker delivers it, to every
// viewer including its sender, in one order for all. At is when the worker
// took it (RFC 3339, UTC).
type ChatNotice struct {
	Type string `json:"type"` // TypeChat
	ID   string `json:"id"`
	Author
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// ScrollNotice is the document's scroll offset in page CSS pixels, of the
// newest captured picture: page coordinates minus it are viewport
// coordinates.
type ScrollNotice struct {
	Type string  `json:"type"` // TypeScroll
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
}
