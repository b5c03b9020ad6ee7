package worker

import (
	"context"
	"unicode/utf8"

	"github.com/tandem-cobrowse/tandem/pkg/input"
	"github.com/tandem-cobrowse/tandem/pkg/mask"
	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// The clipboard (docs/clipboard.md). The hosted browser's own clipboard is
// never read: paste keys are not dispatched, and a viewer pastes by sending
// the text of its own clipboard. Copy and cut go to the tab as keys (the
// page's handlers run); the selection they took is read from the page and
// sent to the viewer who pressed them, to put on its own clipboard.
// Customers always may; agents only when the company allows it.

// RefusedClipboard is the refusal of an agent's paste, or of a paste key.
const RefusedClipboard = "clipboard"

// MaxClipboard bounds the text one copy sends to a viewer, in bytes.
const MaxClipboard = 32 << 10

// selectionJS returns the text selected in the tab: in the focused text
// field, else the document's selection, through same-origin frames and
// shadow roots. Passwords are never selected text (their value is not
// read); a cross-origin frame gives nothing.
const selectionJS = `(() => {
  const fields = /^(text|search|url|tel|email|number)$/i;
  const pick = (doc, depth) => {
    if (depth > 8) return '';
    let el = doc.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (el && (el.tagName === 'IFRAME' || el.tagName === 'FRAME')) {
      try {
        const d = el.contentDocument;
        return d ? pick(d, depth + 1) : '';
      } catch (_) {
        return '';
      }
    }
    if (el && (el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && fields.test(el.type)))) {
      try {
        return el.value.substring(el.selectionStart, el.selectionEnd);
      } catch (_) {
        return '';
      }
    }
    const sel = doc.getSelection();
    return sel ? sel.toString() : '';
  };
  return pick(document, 0);
})()`

// clipboardKey says what a key press does with the clipboard: "copy",
// "cut", "paste", or "".
func clipboardKey(ev input.Event) string {
	if ev.Kind != input.KindKey || ev.Action != input.ActionDown {
		return ""
	}
	ctrl := ev.Modifiers&(input.ModCtrl|input.ModMeta) != 0
	shift := ev.Modifiers&input.ModShift != 0
	alt := ev.Modifiers&input.ModAlt != 0
	switch {
	case ev.Code == "Copy" || (ctrl && !shift && !alt && ev.Code == "KeyC") || (ctrl && !alt && ev.Code == "Insert"):
		return "copy"
	case ev.Code == "Cut" || (ctrl && !shift && !alt && ev.Code == "KeyX") || (shift && !ctrl && ev.Code == "Delete"):
		return "cut"
	case ev.Code == "Paste" || (ctrl && !alt && ev.Code == "KeyV") || (shift && !ctrl && ev.Code == "Insert"):
		return "paste"
	}
	return ""
}

// mayClipboard says whether a viewer of role may paste into the tab and
// copy from it.
func (s *session) mayClipboard(role string) bool {
	return role != RoleAgent || s.req.AgentClipboard
}

// clipboardRefuses says whether in must not reach the tab: a paste key
// (anyone's: the hosted clipboard may hold what the customer copied there)
// or an agent's pasted text without the company's leave. An agent is
// told. It runs on the input loop.
func (s *session) clipboardRefuses(in queuedInput) bool {
	pasteKey := clipboardKey(in.ev) == "paste"
	if !pasteKey && !(in.ev.Kind == input.KindText && in.ev.Paste && !s.mayClipboard(in.role)) {
		return false
	}
	s.refusedInput.Add(1)
	if in.role != RoleAgent {
		return true // a customer's viewer pastes its own clipboard's text instead
	}
	if msg := s.refusal(signaling.Viewer{ID: in.viewerID, Role: in.role}, in.ev, RefusedClipboard); msg != nil {
		s.notify(in.viewerID, msg)
	}
	return true
}

// selection reads the tab's selected text before a copy or cut by a viewer
// allowed the clipboard (a cut removes it); "" otherwise.
func (s *session) selection(ctx context.Context, in queuedInput) string {
	if k := clipboardKey(in.ev); (k != "copy" && k != "cut") || !s.mayClipboard(in.role) {
		return ""
	}
	s.settle() // the selection the events before made
	_, text, err := s.lease().EvalWorld(ctx, mask.Top, selectionJS)
	if err != nil {
		return ""
	}
	return text
}

// sendClipboard gives text to the viewer who copied it, cut to
// MaxClipboard on a character boundary.
func (s *session) sendClipboard(viewerID, text string) {
	if text == "" {
		return
	}
	n := protocol.Notice{Type: protocol.TypeClipboard, Text: text}
	if len(text) > MaxClipboard {
		cut := MaxClipboard
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		n.Text, n.State = text[:cut], "truncated"
	}
	s.notify(viewerID, protocol.Encode(n))
}
