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
)

// MaxNavigateURL is the longest address a viewer may type.
const MaxNavigateURL = 2048

// Navigate is a viewer's navigation: URL (what was typed: a URL, or a host
// and path without a scheme) with NavigateGo only.
type Navigate struct {
	Type   string `json:"type"` // TypeNavigate
	Action string `json:"action"`
	URL    string `json:"url,omitempty"`
}

func decodeNavigate(data []byte) (*Navigate, error) {
	var n Navigate
	if err := decodeStrict(data, MaxInputBytes, &n); err != nil {
		return nil, err
	}
	switch n.Action {
	case NavigateGo:
		if n.URL == "" || len(n.URL) > MaxNavigateURL || !utf8.ValidString(n.URL) {
			return nil, bad("go needs a url of 1 to %d bytes of UTF-8", MaxNavigateURL)
		}
		for _, r := range n.URL {
			if unicode.IsControl(r) {
				return nil, bad("a url has no control characters")
			}
		}
	case NavigateBack, NavigateForward, NavigateReload:
		if n.URL != "" {
			return nil, bad("%s carries no url", n.Action)
		}
	default:
		return nil, bad("navigate action %q", n.Action)
	}
	return &n, nil
}

// LocationNotice is where the remote tab is: URL for customers, and for
// agents only its scheme, host and path (the query and fragment can carry
// what is the customer's alone); Back and Forward say whether the history
// goes that way.
type LocationNotice struct {
	Type    string `json:"type"` // TypeLocation
	URL     string `json:"url"`
	Back    bool   `json:"back"`
	Forward bool   `json:"forward"`
}
