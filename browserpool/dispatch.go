package browserpool

import (
	"bytes"
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	cdpinput "github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tandem-cobrowse/tandem/pkg/input"
)

// Dispatch validates ev, clamps its coordinates to the current viewport and
// feeds it to the tab with CDP Input.* (a viewport event calls SetViewport).
// It returns once Chromium has handled ev. An invalid event returns an error
// wrapping input.ErrInvalid.
//
// Policy (who may send what) is the caller's job; Dispatch only delivers.
func (l *Lease) Dispatch(ctx context.Context, ev input.Event) error {
	return <-l.Send(ctx, ev)
}

// Send is Dispatch without the wait for Chromium: it returns once the
// command is written to Chromium, which handles the commands of its pipe
// in the order they were written, and the returned channel (buffered)
// gets Dispatch's result once Chromium has handled ev. Events sent one
// after the other from one goroutine reach the page in that order, and a
// press no longer waits behind the answer to the move before it (3–4 ms:
// Chromium answers a move once the page has handled it, at its next
// animation frame; docs/architecture.md, "Customers' events do not
// wait"). A viewport event is done by the time Send returns.
func (l *Lease) Send(ctx context.Context, ev input.Event) <-chan error {
	res := make(chan error, 1)
	if err := ev.Validate(); err != nil {
		res <- fmt.Errorf("dispatch: %w", err)
		return res
	}
	if ev.Kind == input.KindViewport {
		res <- l.SetViewport(ctx, ev.Width, ev.Height)
		return res
	}
	what := "dispatch " + string(ev.Kind)
	if err := l.live(what); err != nil {
		res <- err
		return res
	}
	ev = ev.Clamp(l.Viewport())

	// One Input command between its start and its write at a time, so
	// that the pipe's first Input command written after the start is this
	// one (inputWritten).
	l.inputMu.Lock()
	defer l.inputMu.Unlock()
	written := make(chan struct{})
	l.inputSent.Store(&written)
	defer l.inputSent.Store(nil)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		cctx, cancel := l.callCtx(ctx)
		defer cancel()
		if err := l.callInput(cctx, ev); err != nil {
			res <- l.callErr(ctx, what, err)
			return
		}
		res <- nil
	}()
	select {
	case <-written:
	case <-finished:
		// Failed before it was written, or the logger is not set. A call
		// cancelled between chromedp's queue and the pipe is written
		// later and may be taken for the next Send's command; it can only
		// be cancelled with ctx or the lease, which end the next ones too.
	}
	return res
}

// inputWritten is the browser's protocol logger (chromedp calls it on its
// writer goroutine for each message, just before the message is written
// to the pipe): it tells Send that the Input command it started is on its
// way. Every other message is let through untouched.
func (l *Lease) inputWritten(format string, args ...any) {
	if format != "-> %s" || len(args) != 1 {
		return
	}
	p := l.inputSent.Load()
	if p == nil {
		return
	}
	b, ok := args[0].([]byte)
	if !ok || !bytes.Contains(b[:min(len(b), inputMethodWithin)], inputMethod) {
		return
	}
	if l.inputSent.CompareAndSwap(p, nil) {
		close(*p)
	}
}

// inputMethod starts the method of every command Send writes; it comes
// within the first inputMethodWithin bytes of a message (after the id and
// the session id).
var inputMethod = []byte(`"method":"Input.`)

const inputMethodWithin = 160

// callInput makes the CDP call of ev, a valid event other than a viewport.
func (l *Lease) callInput(ctx context.Context, ev input.Event) error {
	var err error
	switch ev.Kind {
	case input.KindMouse:
		_, err = chromedp.Call(ctx, cdpinput.DispatchMouseEvent, mouseParams(ev))
	case input.KindWheel:
		_, err = chromedp.Call(ctx, dispatchWheel, wheelParams{
			Type:      cdpinput.DispatchMouseEventTypeMouseWheel,
			X:         ev.X,
			Y:         ev.Y,
			DeltaX:    ev.DeltaX,
			DeltaY:    ev.DeltaY,
			Modifiers: int64(ev.Modifiers),
		})
	case input.KindTouch:
		_, err = chromedp.Call(ctx, cdpinput.DispatchTouchEvent, touchParams(ev))
	case input.KindKey:
		_, err = chromedp.Call(ctx, cdpinput.DispatchKeyEvent, keyParams(ev))
	case input.KindText:
		_, err = chromedp.Call(ctx, cdpinput.InsertText, cdpinput.InsertTextParams{Text: ev.Text})
	}
	return err
}

// dispatchWheel is Input.dispatchMouseEvent for a wheel: Chromium refuses a
// mouseWheel without both deltas, and cdproto's params leave out a zero
// one (a vertical wheel has deltaX 0).
var dispatchWheel = cdp.Command[wheelParams, cdp.Empty]{Method: cdpinput.CommandDispatchMouseEvent}

type wheelParams struct {
	Type      cdpinput.DispatchMouseEventType `json:"type"`
	X         float64                         `json:"x"`
	Y         float64                         `json:"y"`
	DeltaX    float64                         `json:"deltaX"`
	DeltaY    float64                         `json:"deltaY"`
	Modifiers int64                           `json:"modifiers"`
}

// mouseParams maps a mouse event onto Input.dispatchMouseEvent. A press or
// release of a button with no click count counts as a single click, as a
// real mouse would.
func mouseParams(ev input.Event) cdpinput.DispatchMouseEventParams {
	p := cdpinput.DispatchMouseEventParams{
		X:          ev.X,
		Y:          ev.Y,
		Modifiers:  int64(ev.Modifiers),
		Button:     cdpinput.MouseButton(ev.Button),
		Buttons:    int64(ev.Buttons),
		ClickCount: int64(ev.Clicks),
	}
	if p.Button == "" {
		p.Button = cdpinput.MouseButtonNone
	}
	switch ev.Action {
	case input.ActionMove:
		p.Type = cdpinput.DispatchMouseEventTypeMouseMoved
		p.ClickCount = 0
	case input.ActionDown:
		p.Type = cdpinput.DispatchMouseEventTypeMousePressed
	case input.ActionUp:
		p.Type = cdpinput.DispatchMouseEventTypeMouseReleased
	}
	if ev.Action != input.ActionMove && p.Button != cdpinput.MouseButtonNone && p.ClickCount == 0 {
		p.ClickCount = 1
	}
	return p
}

// touchParams maps a touch event onto Input.dispatchTouchEvent
// (https://chromedevtools.github.io/devtools-protocol/tot/Input/#method-dispatchTouchEvent).
// CDP lists every finger still down and compares with the previous event:
// a new id is pressed, a known one moved, a missing one released; its
// touchEnd and touchCancel must list none and release them all. So a start
// or a move is sent as is, the end of the last finger is touchEnd, and the
// end of some fingers a touchMove with the ones left. The tab's touch
// emulation turns the sequence into gestures (tap, scroll, pinch) as a
// phone would: docs/mobile.md has what was measured.
func touchParams(ev input.Event) cdpinput.DispatchTouchEventParams {
	p := cdpinput.DispatchTouchEventParams{TouchPoints: make([]*cdpinput.TouchPoint, 0, len(ev.Touches))}
	for _, t := range ev.Touches {
		id := float64(t.ID)
		p.TouchPoints = append(p.TouchPoints, &cdpinput.TouchPoint{X: t.X, Y: t.Y, ID: &id})
	}
	switch {
	case ev.Action == input.ActionStart:
		p.Type = cdpinput.DispatchTouchEventTypeTouchStart
	case ev.Action == input.ActionMove, ev.Action == input.ActionEnd && len(ev.Touches) > 0:
		p.Type = cdpinput.DispatchTouchEventTypeTouchMove
	case ev.Action == input.ActionEnd:
		p.Type = cdpinput.DispatchTouchEventTypeTouchEnd
	default:
		p.Type = cdpinput.DispatchTouchEventTypeTouchCancel
	}
	return p
}

// keyParams maps a key event onto Input.dispatchKeyEvent: a press that
// produces text is keyDown (which also types it), one that does not is
// rawKeyDown, and a release is keyUp.
func keyParams(ev input.Event) cdpinput.DispatchKeyEventParams {
	p := cdpinput.DispatchKeyEventParams{
		Modifiers:             int64(ev.Modifiers),
		Key:                   ev.Key,
		Code:                  ev.Code,
		WindowsVirtualKeyCode: int64(ev.KeyCode),
		NativeVirtualKeyCode:  int64(ev.KeyCode),
	}
	switch {
	case ev.Action == input.ActionUp:
		p.Type = cdpinput.DispatchKeyEventTypeKeyUp
	case ev.Text != "":
		p.Type = cdpinput.DispatchKeyEventTypeKeyDown
		p.Text = ev.Text
		p.UnmodifiedText = ev.Text
	default:
		p.Type = cdpinput.DispatchKeyEventTypeRawKeyDown
		if ev.Modifiers&(input.ModCtrl|input.ModMeta) == 0 && ev.Modifiers&input.ModAlt != 0 && utf8.RuneCountInString(ev.Key) == 1 {
			// Alt+character types nothing, but Blink finds accesskeys in
			// a keyDown, by the key's unmodified text. (Ctrl shortcuts
			// stay rawKeyDown: Blink's editing bindings look there.)
			p.Type = cdpinput.DispatchKeyEventTypeKeyDown
			p.UnmodifiedText = ev.Key
		}
	}
	return p
}
