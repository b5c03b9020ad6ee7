package protocol

import (
	"unicode"
	"unicode/utf8"
)

// Navigation of the remote tab from the viewers' address bar
// (docs/navigation.md), on the input DataChannel.
const (
	TypeNavigate = "navigate" // viewer → worker
	TypeLocation = "location" // worker → viewer
)

// Navigate actions.
const (
	NavigateGo      = "go" // open URL
	NavigateBack    = "back"
	NavigateForward = "forward"
	NavigateReload  = "reload"
	NavigateTab     = "tab"       // bring tab Tab to the front
	NavigateClose   = "close_tab" // close tab Tab
)

// maxTabID is the longest tab id a viewer may name.
const maxTabID = 8

// MaxNavigateURL is the longest address a viewer may type.
const MaxNavigateURL = 2048

// Navigate is a viewer's navigation: URL (what was typed: a URL, or a host
// and path without a scheme) with NavigateGo only; Tab (an id of the
// location notice's tabs) with NavigateTab and NavigateClose only.
type Navigate struct {
	Type   string `json:"type"` // TypeNavigate
	Action string `json:"action"`
	URL    string `json:"url,omitempty"`
	Tab    string `json:"tab,omitempty"`
}

func decodeNavigate(data []byte) (*Navigate, error) {
	var n Navigate
	if err := decodeStrict(data, MaxInputBytes, &n); err != nil {
		return nil, err
	}
	switch n.Action {
	case NavigateGo:
		if n.Tab != "" {
			return nil, bad("go carries no tab")
		}
		if n.URL == "" || len(n.URL) > MaxNavigateURL || !utf8.ValidString(n.URL) {
			return nil, bad("go needs a url of 1 to %d bytes of UTF-8", MaxNavigateURL)
		}
		for _, r := range n.URL {
			if unicode.IsControl(r) {
				return nil, bad("a url has no control characters")
			}
		}
	case NavigateBack, NavigateForward, NavigateReload:
		if n.URL != "" || n.Tab != "" {
			return nil, bad("%s carries no url and no tab", n.Action)
		}
	case NavigateTab, NavigateClose:
		if n.URL != "" || !validTabID(n.Tab) {
			return nil, bad("%s needs a tab id of 1 to %d digits and no url", n.Action, maxTabID)
		}
	default:
		return nil, bad("navigate action %q", n.Action)
	}
	return &n, nil
}

// validTabID says whether id is a tab id: 1 to maxTabID ASCII digits.
func validTabID(id string) bool {
	if id == "" || len(id) > maxTabID {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// TabNotice is one tab of the remote browser, for the viewers' tab strip:
// its URL as LocationNotice's (agents get no query or fragment), and its
// title as the page set it (plain text, never markup).
type TabNotice struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

// LocationNotice is where the remote tab is: URL for customers, and for
// agents only its scheme, host and path (the query and fragment can carry
// what is the customer's alone); Back and Forward say whether the history
// goes that way.
type LocationNotice struct {
	Type    string      `json:"type"` // TypeLocation
	URL     string      `json:"url"`
	Back    bool        `json:"back"`
	Forward bool        `json:"forward"`
	Tabs    []TabNotice `json:"tabs,omitempty"`
}
