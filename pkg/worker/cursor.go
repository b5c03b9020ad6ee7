package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// The remote page's CSS cursor (docs/keyboard.md, "Cursor"): each viewer's
// view shows the cursor the page sets where that viewer's pointer is, as a
// local page would. At most cursorEvery, the
// worker looks at the newest pointer position of each viewer that moved
// and tells it when its cursor changed.

// TypeCursor is the cursor notice: State is a CSS cursor keyword.
const TypeCursor = "cursor"

// cursorEvery bounds how often the page is asked for cursors.
const cursorEvery = 100 * time.Millisecond

// cursorJS returns the cursor keyword at (%v, %v) of the viewport: the
// computed cursor of the element there, through same-origin frames and
// open shadow roots; "auto" resolved as browsers do (text in fields and
// editable content, a hand on links, else the arrow); an image cursor's
// fallback keyword. Cross-origin frames give the arrow.
const cursorJS = `((x, y) => {
  const allowed = new Set(['default','pointer','text','vertical-text','wait','progress','help','crosshair','move','grab','grabbing',
    'not-allowed','no-drop','copy','alias','context-menu','cell','all-scroll','zoom-in','zoom-out','col-resize','row-resize',
    'n-resize','e-resize','s-resize','w-resize','ne-resize','nw-resize','se-resize','sw-resize','ew-resize','ns-resize',
    'nesw-resize','nwse-resize','none']);
  let doc = document, el = null;
  for (let depth = 0; depth < 8; depth++) {
    el = doc.elementFromPoint(x, y);
    while (el && el.shadowRoot) {
      const inner = el.shadowRoot.elementFromPoint(x, y);
      if (!inner || inner === el) break;
      el = inner;
    }
    if (!el || (el.tagName !== 'IFRAME' && el.tagName !== 'FRAME')) break;
    let d = null;
    try { d = el.contentDocument; } catch (_) { d = null; }
    if (!d) return 'default';
    const r = el.getBoundingClientRect();
    x -= r.left + el.clientLeft; y -= r.top + el.clientTop;
    doc = d;
  }
  if (!el) return 'default';
  let c = String(getComputedStyle(el).cursor || 'auto').trim();
  if (c.includes('url(')) c = c.slice(c.lastIndexOf(',') + 1).trim();
  if (allowed.has(c)) return c;
  if (el.closest('a[href],area[href]')) return 'pointer';
  if (el.isContentEditable || el.tagName === 'TEXTAREA' ||
      (el.tagName === 'INPUT' && /^(text|search|url|tel|email|password|number)$/i.test(el.type || 'text'))) return 'text';
  return 'default';
})(%v, %v)`

// cursors is the newest pointer position of each viewer that moved, and
// the cursor each was told.
type cursors struct {
	wake chan struct{} // cap 1: a pointer moved

	mu    sync.Mutex
	moved map[string][2]float64 // guarded by mu: viewer id → newest position not looked at
	told  map[string]string     // guarded by mu: viewer id → the cursor it was told
}

func newCursors() cursors {
	return cursors{wake: make(chan struct{}, 1), moved: map[string][2]float64{}, told: map[string]string{}}
}

// move records a viewer's pointer position (on pion's goroutine).
func (c *cursors) move(viewerID string, x, y float64) {
	c.mu.Lock()
	c.moved[viewerID] = [2]float64{x, y}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// cursorLoop tells viewers their cursor until ctx ends.
func (s *session) cursorLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cursor.wake:
		}
		s.cursor.mu.Lock()
		moved := s.cursor.moved
		s.cursor.moved = map[string][2]float64{}
		s.cursor.mu.Unlock()
		for id, p := range moved {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, c, err := s.lease().EvalWorld(cctx, mask.Top, fmt.Sprintf(cursorJS, p[0], p[1]))
			cancel()
			if err != nil {
				continue
			}
			s.cursor.mu.Lock()
			changed := s.cursor.told[id] != c
			s.cursor.told[id] = c
			s.cursor.mu.Unlock()
			if changed {
				s.notify(id, protocol.Encode(protocol.Notice{Type: TypeCursor, State: c}))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cursorEvery):
		}
	}
}
