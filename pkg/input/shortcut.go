package input

import "strings"

// Browser features that a key press may reach instead of the page.
const (
	ShortcutDevTools   = "devtools"
	ShortcutSave       = "save"
	ShortcutPrint      = "print"
	ShortcutOpen       = "open"
	ShortcutViewSource = "view_source"
	ShortcutWindow     = "window"  // new, close, switch or quit windows and tabs
	ShortcutBrowser    = "browser" // history, downloads, bookmarks, settings, the address bar, full screen
	ShortcutZoom       = "zoom"
)

// Ctrl (⌘ on macOS) with a letter key, by the feature it opens; with Shift
// or Alt (⌥) as well, shifted. Copy, paste, cut, select all, undo, redo and
// find are the page's.
var (
	ctrlLetters = map[string]string{
		"s": ShortcutSave, "p": ShortcutPrint, "o": ShortcutOpen, "u": ShortcutViewSource,
		"n": ShortcutWindow, "t": ShortcutWindow, "w": ShortcutWindow, "q": ShortcutWindow,
		"h": ShortcutBrowser, "j": ShortcutBrowser, "d": ShortcutBrowser, "l": ShortcutBrowser,
		"e": ShortcutBrowser, "k": ShortcutBrowser,
	}
	shiftedLetters = map[string]string{
		"i": ShortcutDevTools, "j": ShortcutDevTools, "c": ShortcutDevTools, "u": ShortcutViewSource,
		"s": ShortcutSave, "p": ShortcutPrint, "o": ShortcutBrowser, "b": ShortcutBrowser,
		"m": ShortcutBrowser, "a": ShortcutBrowser, "n": ShortcutWindow, "t": ShortcutWindow,
		"w": ShortcutWindow, "q": ShortcutWindow,
	}
	ctrlCodes = map[string]string{
		"Tab": ShortcutWindow, "PageUp": ShortcutWindow, "PageDown": ShortcutWindow, "F4": ShortcutWindow,
		"Delete": ShortcutBrowser, "Backspace": ShortcutBrowser, "Comma": ShortcutBrowser,
		"Equal": ShortcutZoom, "Minus": ShortcutZoom, "Digit0": ShortcutZoom,
		"NumpadAdd": ShortcutZoom, "NumpadSubtract": ShortcutZoom, "Numpad0": ShortcutZoom,
	}
	// Keys that reach the browser with no modifier, or with Alt alone.
	plainCodes = map[string]string{
		"F12": ShortcutDevTools, "F11": ShortcutBrowser, "F6": ShortcutBrowser,
		"BrowserBack": ShortcutBrowser, "BrowserForward": ShortcutBrowser, "BrowserRefresh": ShortcutBrowser,
		"BrowserHome": ShortcutBrowser, "BrowserSearch": ShortcutBrowser, "BrowserFavorites": ShortcutBrowser,
		"BrowserStop": ShortcutBrowser,
	}
	altLetters = map[string]string{"d": ShortcutBrowser, "e": ShortcutBrowser, "f": ShortcutBrowser}
)

// BrowserShortcut names the browser feature that the key event e would
// reach in Chromium (Ctrl on Linux and Windows, ⌘ on macOS), or returns ""
// for a key that belongs to the page. A key that types text (AltGr
// combinations, which arrive as Ctrl+Alt) is never a shortcut.
func (e Event) BrowserShortcut() string {
	if e.Kind != KindKey || e.Text != "" {
		return ""
	}
	if f := plainCodes[e.Code]; f != "" {
		return f
	}
	ctrl := e.Modifiers&(ModCtrl|ModMeta) != 0
	alt := e.Modifiers&ModAlt != 0
	shifted := e.Modifiers&(ModShift|ModAlt) != 0
	letter := strings.ToLower(e.Key)
	if c, ok := strings.CutPrefix(e.Code, "Key"); ok && len(c) == 1 {
		letter = strings.ToLower(c) // the physical key, as Chromium matches accelerators
	}
	switch {
	case ctrl && shifted && shiftedLetters[letter] != "":
		return shiftedLetters[letter]
	case ctrl && !shifted && ctrlLetters[letter] != "":
		return ctrlLetters[letter]
	case ctrl && ctrlCodes[e.Code] != "":
		return ctrlCodes[e.Code]
	case ctrl && len(e.Code) == 6 && strings.HasPrefix(e.Code, "Digit"):
		return ShortcutWindow // Ctrl+1…9: go to a tab
	case ctrl && (e.Key == "+" || e.Key == "-" || e.Key == "="):
		return ShortcutZoom
	case alt && !ctrl && altLetters[letter] != "":
		return altLetters[letter]
	case alt && !ctrl && (e.Code == "F4" || e.Code == "Home"):
		return ShortcutWindow
	}
	return ""
}

// ForHost returns e as the hosted browser (Chromium on Linux) expects it:
// ⌘ with a letter or a digit, from a Mac, becomes Ctrl, that platform's
// shortcut modifier, so that ⌘C copies, ⌘A selects all and ⌘Z undoes in
// the page as they do locally.
func (e Event) ForHost() Event {
	if e.Kind != KindKey || e.Modifiers&ModMeta == 0 || e.Modifiers&ModCtrl != 0 {
		return e
	}
	if (strings.HasPrefix(e.Code, "Key") && len(e.Code) == 4) || (strings.HasPrefix(e.Code, "Digit") && len(e.Code) == 6) {
		e.Modifiers = e.Modifiers&^ModMeta | ModCtrl
	}
	return e
}
