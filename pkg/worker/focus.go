package worker

import (
	"context"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
)

// After a customer's click the worker tells that customer whether the
// keyboard focus is now in a text field of the tab, so that a phone opens
// its own keyboard (docs/mobile.md).

// TypeFocus is the notice of where the tab's focus is: State "editable"
// (a text field) or "none".
const TypeFocus = "focus"

// editableJS says whether the focused element of the tab takes text,
// through same-origin frames and open shadow roots; "none" in a
// cross-origin frame, which cannot be seen into.
const editableJS = `(() => {
  let el = document.activeElement;
  for (let depth = 0; el && depth < 8; depth++) {
    while (el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (el.tagName !== 'IFRAME' && el.tagName !== 'FRAME') break;
    let d = null;
    try { d = el.contentDocument; } catch (_) { d = null; }
    if (!d) return 'none';
    el = d.activeElement;
  }
  if (!el) return 'none';
  if (el.isContentEditable) return 'editable';
  const usable = !el.readOnly && !el.disabled;
  if (el.tagName === 'TEXTAREA') return usable ? 'editable' : 'none';
  if (el.tagName === 'INPUT' && /^(text|search|url|tel|email|password|number|date|time|datetime-local|month|week)$/i.test(el.type || 'text')) return usable ? 'editable' : 'none';
  return 'none';
})()`

// tellFocus sends the customer who just released a button, or lifted the
// last finger, where the focus went (on the input loop, after the event
// was dispatched).
func (s *session) tellFocus(ctx context.Context, in queuedInput) {
	released := (in.ev.Kind == input.KindMouse && in.ev.Action == input.ActionUp) ||
		(in.ev.Kind == input.KindTouch && in.ev.Action == input.ActionEnd && len(in.ev.Touches) == 0)
	if in.role != RoleCustomer || !released {
		return
	}
	s.settle() // the focus after the release
	_, state, err := s.lease().EvalWorld(ctx, mask.Top, editableJS)
	if err != nil || (state != "editable" && state != "none") {
		return
	}
	s.notify(in.viewerID, protocol.Encode(protocol.Notice{Type: TypeFocus, State: state}))
}
