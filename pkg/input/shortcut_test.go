package input

import "testing"

func key(code, k string, mods int) Event {
	return Event{Kind: KindKey, Action: ActionDown, Code: code, Key: k, Modifiers: mods}
}

func TestBrowserShortcut(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   Event
		want string
	}{
		{"Ctrl+S", key("KeyS", "s", ModCtrl), ShortcutSave},
		{"⌘S", key("KeyS", "s", ModMeta), ShortcutSave},
		{"Ctrl+S on a layout where the key says ы", key("KeyS", "ы", ModCtrl), ShortcutSave},
		{"Ctrl+P", key("KeyP", "p", ModCtrl), ShortcutPrint},
		{"Ctrl+Shift+P", key("KeyP", "P", ModCtrl|ModShift), ShortcutPrint},
		{"Ctrl+O", key("KeyO", "o", ModCtrl), ShortcutOpen},
		{"Ctrl+U", key("KeyU", "u", ModCtrl), ShortcutViewSource},
		{"⌘⌥U", key("KeyU", "u", ModMeta|ModAlt), ShortcutViewSource},
		{"F12", key("F12", "F12", 0), ShortcutDevTools},
		{"Ctrl+Shift+I", key("KeyI", "I", ModCtrl|ModShift), ShortcutDevTools},
		{"Ctrl+Shift+J", key("KeyJ", "J", ModCtrl|ModShift), ShortcutDevTools},
		{"Ctrl+Shift+C", key("KeyC", "C", ModCtrl|ModShift), ShortcutDevTools},
		{"⌘⌥I", key("KeyI", "i", ModMeta|ModAlt), ShortcutDevTools},
		{"Ctrl+W", key("KeyW", "w", ModCtrl), ShortcutWindow},
		{"Ctrl+T", key("KeyT", "t", ModCtrl), ShortcutWindow},
		{"Ctrl+N", key("KeyN", "n", ModCtrl), ShortcutWindow},
		{"Ctrl+Shift+Q", key("KeyQ", "Q", ModCtrl|ModShift), ShortcutWindow},
		{"Ctrl+Tab", key("Tab", "Tab", ModCtrl), ShortcutWindow},
		{"Ctrl+2", key("Digit2", "2", ModCtrl), ShortcutWindow},
		{"Alt+F4", key("F4", "F4", ModAlt), ShortcutWindow},
		{"Ctrl+H", key("KeyH", "h", ModCtrl), ShortcutBrowser},
		{"Ctrl+L", key("KeyL", "l", ModCtrl), ShortcutBrowser},
		{"Alt+D", key("KeyD", "d", ModAlt), ShortcutBrowser},
		{"Ctrl+Shift+Delete", key("Delete", "Delete", ModCtrl|ModShift), ShortcutBrowser},
		{"F11", key("F11", "F11", 0), ShortcutBrowser},
		{"Ctrl+=", key("Equal", "=", ModCtrl), ShortcutZoom},
		{"Ctrl+-", key("Minus", "-", ModCtrl), ShortcutZoom},
		{"Ctrl+0", key("Digit0", "0", ModCtrl), ShortcutZoom},
		// The page's.
		{"Ctrl+C", key("KeyC", "c", ModCtrl), ""},
		{"Ctrl+V", key("KeyV", "v", ModCtrl), ""},
		{"Ctrl+X", key("KeyX", "x", ModCtrl), ""},
		{"Ctrl+A", key("KeyA", "a", ModCtrl), ""},
		{"Ctrl+Z", key("KeyZ", "z", ModCtrl), ""},
		{"Ctrl+Shift+Z", key("KeyZ", "Z", ModCtrl|ModShift), ""},
		{"Ctrl+Y", key("KeyY", "y", ModCtrl), ""},
		{"Ctrl+F", key("KeyF", "f", ModCtrl), ""},
		{"Ctrl+Left", key("ArrowLeft", "ArrowLeft", ModCtrl), ""},
		{"s", key("KeyS", "s", 0), ""},
		{"Shift+S", key("KeyS", "S", ModShift), ""},
		{"F5", key("F5", "F5", 0), ""},
		{"AltGr+Q types @", Event{Kind: KindKey, Action: ActionDown, Code: "KeyQ", Key: "@", Text: "@", Modifiers: ModCtrl | ModAlt}, ""},
		{"Alt+Shift+C", key("KeyC", "C", ModAlt|ModShift), ""},
		{"a click", Event{Kind: KindMouse, Action: ActionDown, Button: ButtonLeft, Modifiers: ModCtrl}, ""},
	} {
		if got := c.ev.BrowserShortcut(); got != c.want {
			t.Errorf("%s: BrowserShortcut() = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestForHost(t *testing.T) {
	for _, c := range []struct {
		name     string
		ev       Event
		wantMods int
	}{
		{"⌘C", key("KeyC", "c", ModMeta), ModCtrl},
		{"⌘⇧Z", key("KeyZ", "z", ModMeta|ModShift), ModCtrl | ModShift},
		{"⌘1", key("Digit1", "1", ModMeta), ModCtrl},
		{"Ctrl+⌘C stays", key("KeyC", "c", ModMeta|ModCtrl), ModMeta | ModCtrl},
		{"⌘← stays", key("ArrowLeft", "ArrowLeft", ModMeta), ModMeta},
		{"Ctrl+C stays", key("KeyC", "c", ModCtrl), ModCtrl},
		{"the ⌘ key itself stays", key("MetaLeft", "Meta", ModMeta), ModMeta},
	} {
		if got := c.ev.ForHost().Modifiers; got != c.wantMods {
			t.Errorf("%s: modifiers %d, want %d", c.name, got, c.wantMods)
		}
	}
	if ev := (Event{Kind: KindMouse, Modifiers: ModMeta}).ForHost(); ev.Modifiers != ModMeta {
		t.Errorf("a ⌘-click became %d", ev.Modifiers)
	}
}
